"""Where an update came from: a typed origin on every update a room takes in.

Attribution is never guessed from the transport (``peer is None`` used to mean "HTTP"), and an
update is never echoed back to where it came from: a room sends a batch to every local member
except the connection that wrote it, and an update that arrived from another node (through the
broker) is never published again.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .member import Member

__all__ = ["Origin", "OriginKind"]


class OriginKind(enum.Enum):
    CLIENT = "client"  # a WebSocket connection on this node
    HTTP = "http"  # POST /v1/docs/{id}/updates by a user
    SERVICE = "service"  # a service or admin writing with its own identity
    RESTORE = "restore"  # a version restored as a forward edit (history)


@dataclass(frozen=True, slots=True)
class Origin:
    kind: OriginKind
    principal: str  # who is attributed: the token's ``sub``
    peer: Member | None = None  # the connection, for CLIENT

    @classmethod
    def client(cls, peer: Member) -> Origin:
        return cls(OriginKind.CLIENT, peer.principal, peer)

    @classmethod
    def http(cls, principal: str, *, privileged: bool) -> Origin:
        return cls(OriginKind.SERVICE if privileged else OriginKind.HTTP, principal)

    @property
    def stored_as(self) -> str:
        """The ``origin`` column of the stored update. A service or admin is stored as
        ``service`` over a socket too: the consent rules tell a service's own writes from a
        participant's by it (docs/privacy.md)."""
        peer = self.peer
        if peer is not None and self.kind is OriginKind.CLIENT and peer.identity.privileged:
            return OriginKind.SERVICE.value
        return self.kind.value
