"""What both sync sockets share: admission, the life of a socket, and the document session.

``/v1/docs`` (y-websocket: one document, one message per frame) and ``/v1/sync`` (Hocuspocus:
many documents, each frame prefixed with its document's address) differ only in transport and
framing. Everything else is here, once:

- :func:`admit`: the one admission path. Parse the document id, identify the token, decide,
  acquire the room, decide again against the loaded room; every way it can fail is one
  :class:`~syncd.access.Refusal`, which :data:`CLOSE_CODES` maps to a close code.
- :func:`socket_peer` and :func:`read_frames`: a socket's send side for as long as it is served,
  and the checks every frame passes before it is decoded (binary, the size limit: 4413, the
  pace), then ``ProtocolError`` → 4400.
- :class:`DocumentSession`: one member in one room, as pycrdt keeps sync: given one decoded
  y-protocols message, it does what the room must do and returns what the sender should be told
  (an :data:`Action`), which each transport carries out in its own framing. The awaits are
  explicit and the room's own: an answer waits for a readable replica, a write for room in the
  room's queue, and neither ever waits on a socket.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

from starlette.websockets import WebSocket

from crdt.protocol import (
    AwarenessMessage,
    Message,
    ProtocolError,
    QueryAwarenessMessage,
    SyncMessage,
    SyncStep,
)
from crdt.updates import validate_update
from storage import DocumentDeleted, StoreUnavailable

from . import transport
from .access import NO_ACCESS, Authorizer, Grant, Refusal, RefusalReason, parse_doc_id
from .origin import Origin
from .peer import CloseCode, Peer, PeerState
from .rate import ConnectionPace
from .room import RoomClosed
from .rooms import DocumentNotFound

if TYPE_CHECKING:
    from .daemon import Daemon
    from .member import Member
    from .metrics import Metrics
    from .room import Room
    from .rooms import Rooms
    from .token_expiry import TokenExpiry

__all__ = [
    "CLOSE_CODES",
    "Ack",
    "Action",
    "Admission",
    "DocumentSession",
    "Echo",
    "Leave",
    "Reply",
    "SocketPeer",
    "admit",
    "read_frames",
    "socket_peer",
]

log = logging.getLogger("syncd.session")
frames_log = logging.getLogger("syncd.socket")  # what a socket's frames cost it

# -- admission -----------------------------------------------------------------------------

# What a WebSocket client is told for each refusal (DESIGN.md §1.4): 44xx are permanent, 1013
# means try again later. /v1/docs, /v1/sync (for the socket or one document) and the feed's push.
CLOSE_CODES: Mapping[RefusalReason, CloseCode] = MappingProxyType(
    {
        RefusalReason.BAD_DOCUMENT_ID: CloseCode.MALFORMED,
        RefusalReason.UNAUTHENTICATED: CloseCode.UNAUTHORIZED,
        RefusalReason.NO_ACCESS: CloseCode.FORBIDDEN,
        RefusalReason.NOT_PRIVILEGED: CloseCode.FORBIDDEN,
        RefusalReason.DELETED: CloseCode.NOT_FOUND,
        RefusalReason.UNAVAILABLE: CloseCode.TRY_AGAIN_LATER,
        RefusalReason.PURPOSE_BOUND: CloseCode.FORBIDDEN,
    }
)


@dataclass(frozen=True, slots=True)
class Admission:
    """A client admitted to a document: its grant, and the room acquired for it (released by
    :meth:`DocumentSession.end`, or by whoever gives up on it before a session starts)."""

    grant: Grant
    room: Room


async def admit(authorizer: Authorizer, rooms: Rooms, token: str | None, doc: str) -> Admission:
    """Admit the bearer of ``token`` to the document ``doc`` (``OWNER/NAME``).

    The access change that lands while the room loads is why the grant is decided twice: once
    from the metadata (no room is loaded, or created, for a caller who may not see it), and
    again against the loaded room's, which access changes keep current.

    Raises:
        Refusal: the only exception; ``UNAVAILABLE`` when the database could not be read.
    """
    try:
        doc_id = parse_doc_id(doc)
        grant = await authorizer.authorize(authorizer.identify(token), doc_id)
        room = await rooms.acquire(grant.key, create=grant.may_create)
    except DocumentDeleted as exc:
        raise Refusal(RefusalReason.DELETED, "document deleted") from exc
    except DocumentNotFound as exc:  # absent, and not the caller's to create
        raise Refusal(RefusalReason.NO_ACCESS, NO_ACCESS) from exc
    except StoreUnavailable as exc:
        raise Refusal(RefusalReason.UNAVAILABLE, "storage unavailable, retry later") from exc
    try:
        return Admission(authorizer.recheck(grant, room), room)
    except Refusal:
        rooms.release(room)
        raise


# -- a socket --------------------------------------------------------------------------------


def socket_peer(ws: WebSocket, daemon: Daemon, peer_id: str) -> SocketPeer:
    """The send side of an accepted WebSocket, for as long as its endpoint serves it
    (``async with socket_peer(ws, daemon, peer_id) as peer``).

    One bounded queue per socket (``syncd/peer.py``), counted by the daemon. At the end our
    close frame is delivered before the handler returns (returning closes the transport, and the
    client would see 1006, not our code); a handler that the peer cancelled because its client
    would not take that close frame returns quietly, so the server drops the connection.
    """
    return SocketPeer(ws, daemon, peer_id)


class SocketPeer:
    """:func:`socket_peer`'s context manager: an object, not an ``asynccontextmanager``, whose
    suspended generator frame every open socket would keep (~0.3 KiB)."""

    __slots__ = ("_daemon", "_peer", "_peer_id", "_ws")

    def __init__(self, ws: WebSocket, daemon: Daemon, peer_id: str) -> None:
        self._ws: WebSocket | None = ws  # only until the peer is made
        self._daemon = daemon
        self._peer_id = peer_id
        self._peer: Peer | None = None

    async def __aenter__(self) -> Peer:
        ws, daemon, settings = self._ws, self._daemon, self._daemon.settings
        assert ws is not None, "socket_peer is entered once"
        self._ws = None
        peer = Peer(
            self._peer_id,
            ws.send_bytes,
            ws.close,
            max_messages=settings.send_queue_messages,
            max_bytes=settings.send_queue_bytes,
            abort=transport.aborter(ws),
            queues=daemon.send_queues,
            write_now=transport.binary_writer(ws),
        )
        peer.bind_handler(asyncio.current_task())
        peer.on_sent = daemon.count_sent
        daemon.socket_opened(peer)
        self._peer = peer
        return peer

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> bool:
        peer, daemon = self._peer, self._daemon
        assert peer is not None
        quiet = False
        if isinstance(exc, asyncio.CancelledError) and peer.close_code is not None:
            # Cancelled by the peer (its client would not take our close): return quietly.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
            quiet = True
        daemon.socket_closed(peer)
        if peer.close_code is not None:
            daemon.metrics.closes.labels(str(peer.close_code)).inc()
            await peer.wait_closed()
        return quiet


async def read_frames(
    ws: WebSocket,
    peer: Peer,
    daemon: Daemon,
    handle: Callable[[bytes], Awaitable[None]],
    *,
    label: str,
) -> None:
    """Serve a socket's frames until it closes or either side closes it.

    Each frame is checked before anything decodes it: binary (else 4400), at most
    ``max_message_bytes`` (else 4413: the transport refuses larger ones from their header,
    this is the second line), and paced (``syncd/rate.py``: past the rate the reader pauses
    and TCP slows the client; nobody is closed). ``handle`` decodes and serves it; the
    ``ProtocolError`` it raises for a frame that does not decode, or that this endpoint does
    not speak, closes the socket with 4400 (the frame's sender, never its room, pays).
    ``label`` names the socket (and its document, if it has one) in the log.
    """
    settings, metrics = daemon.settings, daemon.metrics
    limit = settings.max_message_bytes
    pace = ConnectionPace(settings.rate_messages_per_second, settings.rate_bytes_per_second)
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect" or peer.state is not PeerState.OPEN:
            return
        data = message.get("bytes")
        if data is None:
            frames_log.info("%s: text frame; closing 4400", label)
            peer.close(CloseCode.MALFORMED, "expected binary frames")
            return
        metrics.bytes_received.inc(len(data))
        if len(data) > limit:
            frames_log.info("%s: %d bytes (limit %d); closing 4413", label, len(data), limit)
            peer.close(CloseCode.TOO_LARGE, f"message over {limit} bytes")
            return
        await pace.admit(len(data))
        try:
            await handle(data)
        except ProtocolError as exc:
            frames_log.info("%s: malformed data (%s); closing 4400", label, exc)
            peer.close(CloseCode.MALFORMED, f"malformed message: {exc}")
            return
        if peer.state is not PeerState.OPEN:
            return


# -- one member in one room ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reply:
    """A y-protocols message for the sender alone (a sync step 2, the presence it asked for)."""

    message: bytes


@dataclass(frozen=True, slots=True)
class Echo:
    """The sender's presence as the room took it (validated, stamped). Hocuspocus relays
    presence to its sender and stock providers count on it; y-websocket does not."""

    message: bytes


@dataclass(frozen=True, slots=True)
class Ack:
    """What became of a sync step 2 / update the sender wrote: its commit (a future of its
    seq), ``True`` for one that adds nothing, ``False`` for one refused (a viewer's)."""

    outcome: asyncio.Future[int] | bool


@dataclass(frozen=True, slots=True)
class Leave:
    """The room closed under the member (unloaded, deleted, shut down, unreadable): close the
    member with ``code`` and tell it ``reason``."""

    code: int
    reason: str


Action = Reply | Echo | Ack | Leave


class DocumentSession:
    """One member in one room, from its admission until it leaves.

    ``acknowledges``: the transport answers every write (``/v1/sync``'s ``SyncStatus``). Only
    then is a viewer's step 2 judged (whether it brings anything new); otherwise it is dropped
    unread, as y-websocket's server does.
    """

    __slots__ = (
        "_ended",
        "_expiries",
        "_metrics",
        "_rooms",
        "acknowledges",
        "grant",
        "member",
        "room",
    )

    def __init__(
        self,
        admission: Admission,
        member: Member,
        rooms: Rooms,
        metrics: Metrics,
        expiries: TokenExpiry,
        *,
        acknowledges: bool,
    ) -> None:
        self.grant = admission.grant
        self.room = admission.room
        self.member = member
        self.acknowledges = acknowledges
        self._rooms = rooms
        self._metrics = metrics
        self._expiries = expiries
        self._ended = False

    async def start(self) -> Leave | None:
        """Join the room: the member gets our sync step 1, then the presence of the others.

        The token is checked at admission and again when it expires: then the member is closed
        with 4401 (for ``/v1/sync``, that document only), from the daemon's one expiry timer
        (``token_expiry.py``).
        """
        self._expiries.add(self, self.grant.identity.exp)
        try:
            await self.room.join(self.member)
        except RoomClosed as exc:
            return self._left(exc)
        return None

    async def receive(self, message: Message) -> Action | None:
        """Serve one message of the member; returns what to tell it, if anything.

        Raises:
            ProtocolError: a payload that does not decode, or an update the strict decoder
                refuses (4400 for the socket: nothing of it reached the room).
        """
        try:
            return await self._receive(message)
        except RoomClosed as exc:
            return self._left(exc)

    async def _receive(self, message: Message) -> Action | None:
        room, member, metrics = self.room, self.member, self._metrics
        if isinstance(message, SyncMessage):
            if message.step is SyncStep.STEP1:
                return Reply(await room.sync_step2_for(message.payload))
            if member.readonly:
                # Viewers' edits are never applied, stored or forwarded. A step 2 that holds
                # nothing new is acknowledged anyway, so that a viewer's provider is not left
                # with an unsynced change it never made.
                metrics.updates_dropped.inc()
                if not self.acknowledges:
                    return None
                return Ack(message.step is SyncStep.STEP2 and await room.holds(message.payload))
            room.check_lineage(validate_update(message.payload))
            metrics.updates_received.inc()
            done = await room.ingest(Origin.client(member), message.payload, ack=self.acknowledges)
            if not self.acknowledges:
                return None
            return Ack(False if done is None else done)  # None: it lost write access meanwhile
        if isinstance(message, AwarenessMessage):
            echo = room.awareness_from(member, message.update)
            return None if echo is None else Echo(echo)
        if isinstance(message, QueryAwarenessMessage):
            reply = room.awareness_message()
            return None if reply is None else Reply(reply)
        return None  # an auth message from a client means nothing; stock clients send none

    def token_expired(self) -> None:
        """The token this session was admitted with has expired (:class:`TokenExpiry`)."""
        self.member.close(CloseCode.UNAUTHORIZED, "token expired")

    def _left(self, exc: RoomClosed) -> Leave:
        log.info("doc %s: member %s: %s", self.room.key, self.member.id, exc)
        return Leave(exc.code, exc.reason)

    def end(self) -> None:
        """Leave the room (idempotent): its presence goes, the room may unload when idle."""
        if self._ended:
            return
        self._ended = True
        self._expiries.discard(self, self.grant.identity.exp)
        self.room.leave(self.member)
        self._rooms.release(self.room)
