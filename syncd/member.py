"""What a :class:`~syncd.room.Room` talks to: one client in one document.

A room never sees a socket, a framing or a send queue; it sees members. Two kinds implement
this protocol, and neither inherits from the other or from the socket machinery:

- ``doc_socket.Connection``: a ``/v1/docs`` WebSocket, whose one document is the whole socket;
- ``sync_socket.DocumentMember``: one document opened on a ``/v1/sync`` socket, which frames
  each message with its document's address.

Both send through their socket's :class:`~syncd.peer.Peer`: one bounded queue per socket,
however many documents it carries.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from .peer import PeerState
    from .tokens import Identity

__all__ = ["Member"]


class Member(Protocol):
    """One client in one room.

    ``readonly`` and ``awareness_ids`` belong to the room: it changes the first on an access
    change (``Room.regrant``) and keeps in the second the awareness client ids this member
    announced (removed from presence when it leaves).
    """

    readonly: bool  # a viewer: its document updates are dropped
    awareness_ids: set[int]

    @property
    def id(self) -> str:
        """For logs: unique on this node (``p7``; ``s3.2``, the second document of socket 3)."""
        ...

    @property
    def identity(self) -> Identity:
        """Who the token says the client is; access changes decide again from it."""
        ...

    @property
    def principal(self) -> str:
        """``identity.sub``: the author of its updates, the ``principal`` of its presence."""
        ...

    @property
    def state(self) -> PeerState:
        """``OPEN`` while it may be sent to; a room sends nothing to any other."""
        ...

    def send(self, message: bytes) -> None:
        """Queue one y-protocols message (sync or awareness) for the client; never waits."""
        ...

    def close(self, code: int, reason: str = "") -> None:
        """End this client's time in the document with a close code of DESIGN.md §1.4
        (idempotent; never waits: see :meth:`wait_closed`)."""
        ...

    async def wait_closed(self) -> None:
        """Wait until the client has been told of a :meth:`close` (or given up on)."""
        ...
