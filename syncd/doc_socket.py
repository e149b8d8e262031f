"""``/v1/docs/{OWNER}/{NAME}``: one document per WebSocket, y-websocket compatible.

Only the transport and the framing are here; admission and the document session are
``syncd/session.py``'s, shared with ``/v1/sync``. Refusals are sent *after* accepting the socket
(permission-denied message, then a 44xx close), because a browser cannot see why an HTTP upgrade
failed. Each frame carries one y-protocols message; a frame that does not decode costs its
connection (4400), never the room.
"""

from __future__ import annotations

import itertools
import logging

from starlette.datastructures import Headers, QueryParams
from starlette.websockets import WebSocket

from crdt.protocol import decode_message, encode_auth_denied

from . import transport
from .access import Grant, Refusal
from .bearer import bearer_token
from .daemon import Daemon
from .peer import Peer, PeerState
from .session import CLOSE_CODES, DocumentSession, Leave, Reply, admit, read_frames, socket_peer
from .tokens import Identity

__all__ = ["Connection", "doc_socket"]

log = logging.getLogger("syncd.socket")

_peer_ids = itertools.count(1)


class Connection:
    """A ``/v1/docs`` WebSocket as its room sees it (a :class:`~syncd.member.Member`): the
    whole socket is one member, sending through the socket's one queue."""

    __slots__ = ("awareness_ids", "identity", "peer", "readonly")

    def __init__(self, peer: Peer, grant: Grant) -> None:
        self.peer = peer
        self.identity: Identity = grant.identity
        self.readonly = grant.readonly
        self.awareness_ids: set[int] = set()

    def __repr__(self) -> str:
        return f"<Connection {self.id} {self.principal} {self.state.value}>"

    @property
    def id(self) -> str:
        return self.peer.id

    @property
    def principal(self) -> str:
        return self.identity.sub

    @property
    def state(self) -> PeerState:
        return self.peer.state

    def send(self, message: bytes) -> None:
        self.peer.send(message)

    def close(self, code: int, reason: str = "") -> None:
        self.peer.close(code, reason)

    async def wait_closed(self) -> None:
        await self.peer.wait_closed()


async def _refuse(ws: WebSocket, refusal: Refusal) -> None:
    try:
        await ws.send_bytes(encode_auth_denied(refusal.message))
        await ws.close(CLOSE_CODES[refusal.reason], refusal.message[:120])
    except Exception as exc:  # the client left first: nothing to tell it
        log.debug("refusal not delivered: %r", exc)


async def doc_socket(ws: WebSocket) -> None:
    daemon: Daemon = ws.app.state.daemon
    await ws.accept()
    doc = f"{ws.path_params['owner']}/{ws.path_params['name']}"
    # Read once, not through ws.headers / ws.query_params (they keep their parsed copy on the
    # WebSocket), and into no local variable: this frame lives as long as the socket.
    try:
        admission = await admit(
            daemon.access,
            daemon.rooms,
            bearer_token(Headers(scope=ws.scope), QueryParams(ws.scope.get("query_string", b""))),
            doc,
        )
    except Refusal as refusal:
        await _refuse(ws, refusal)
        return
    transport.authenticated(ws)  # admitted: frames up to max_message_bytes from now on

    async with socket_peer(ws, daemon, f"p{next(_peer_ids)}") as peer:
        member = Connection(peer, admission.grant)
        session = DocumentSession(
            admission, member, daemon.rooms, daemon.metrics, daemon.token_expiry, acknowledges=False
        )

        async def handle(data: bytes) -> None:
            # y-websocket has neither acknowledgements nor a presence echo.
            match await session.receive(decode_message(data)):
                case Reply(message):
                    member.send(message)
                case Leave(code, reason):
                    member.close(code, reason)

        try:
            left = await session.start()
            if left is not None:
                member.close(left.code, left.reason)
                return
            label = f"doc {admission.room.key}: peer {peer.id}"
            await read_frames(ws, peer, daemon, handle, label=label)
        finally:
            session.end()
