"""What a room raises at those who read it or write to it.

Kept apart from ``syncd/room.py`` so that the sockets, the HTTP API and the services, which only
catch these, read them without the room's machinery; ``syncd.room`` still exports them.
"""

from __future__ import annotations

from crdt.protocol import ProtocolError

from .peer import CloseCode

__all__ = ["RoomClosed", "StaleLineage", "UpdateRejected"]


class RoomClosed(RuntimeError):
    """The room closed (unloaded, deleted, shutting down) or cannot be read now; ``code`` is
    the close code for a connection that met it (4404 deleted, 1001 shutdown, else 1013)."""

    _REASONS = {
        CloseCode.NOT_FOUND: "document deleted",
        CloseCode.GOING_AWAY: "server shutting down",
    }

    def __init__(self, detail: str, code: int = CloseCode.TRY_AGAIN_LATER) -> None:
        super().__init__(detail)
        self.code = code

    @property
    def reason(self) -> str:
        """What to tell the client (the detail names the tenant: for the log only)."""
        return self._REASONS.get(self.code, "document closed, reconnect")


class UpdateRejected(ProtocolError):
    """An update the document cannot take (yrs refused or panicked applying it): 4400 / 400."""


class StaleLineage(ProtocolError):
    """An update holding structs of a lineage the document's history was rewritten away from
    (``storage/lineage_fence.py``): refused whole, 4400 / 400."""
