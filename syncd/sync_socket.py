"""``/v1/sync``: many documents over one WebSocket, in the Hocuspocus framing (DESIGN.md §1.5).

A stock ``@hocuspocus/provider`` opens each document with an auth message carrying a token; each
is decided on its own, exactly as ``/v1/docs`` decides a connection, and answered with
``Authenticated`` (scope ``readonly`` or ``read-write``) or ``PermissionDenied``. A refusal, a
revocation or a ``Close`` ends that document only; the socket and its other documents go on.
What costs the whole socket is what the socket did: a malformed frame (4400), an oversized one
(4413), a slow reader (1013), or a transient failure (1001/1011/1013, after which the provider
reconnects and syncs every document again).

Each open document is a :class:`DocPeer` in its room. It has no queue of its own: it frames the
room's y-protocols messages with the document's address and appends them to the socket's one
:class:`Peer`, whose bounded queue, drain task and close handshake serve every document on the
socket. Every sync step 2 / update a client sends is answered, in order per document, with
``SyncStatus``: true once durably committed (or when it adds nothing), false when refused.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections import deque
from collections.abc import Callable

from starlette.websockets import WebSocket

from crdt.hocuspocus import (
    Authenticated,
    Close,
    HpMessage,
    PermissionDenied,
    Stateless,
    SyncStatus,
    Token,
    address_prefix,
    decode_frame,
    encode_frame,
    split_address,
)
from crdt.protocol import (
    AwarenessMessage,
    ProtocolError,
    QueryAwarenessMessage,
    SyncMessage,
    SyncStep,
)
from crdt.updates import validate_update
from storage import DocumentDeleted, StoreUnavailable

from . import transport
from .access import NO_ACCESS, Grant, Refusal
from .daemon import Daemon
from .origin import Origin
from .peer import CloseCode, Peer, PeerState
from .rate import ConnectionPace
from .room import Room, RoomClosed
from .rooms import DocumentNotFound

__all__ = ["MAX_DOCUMENTS", "DocPeer", "sync_socket"]

log = logging.getLogger("syncd.sync")

# Documents open (or opening) at once on one socket; one more is refused with PermissionDenied.
MAX_DOCUMENTS = 1024

# Closes that are nobody's fault and go away by themselves: the whole socket closes with them, so
# that the provider reconnects and re-syncs (a Hocuspocus provider never re-opens one document).
_TRANSIENT = frozenset({CloseCode.GOING_AWAY, CloseCode.INTERNAL_ERROR, CloseCode.TRY_AGAIN_LATER})

_socket_ids = itertools.count(1)


class DocPeer(Peer):
    """One document opened on a multiplexed socket, as its room sees it.

    :meth:`send` frames and forwards to the socket's peer; :meth:`close` ends this document only
    (``PermissionDenied`` and ``Close`` with the reason), except for transient codes, which close
    the socket. The scope is announced again (``Authenticated``) before the next message after a
    role change, so a stock provider's ``authorizedScope`` follows upgrades and downgrades.
    """

    __slots__ = ("_announced", "_on_close", "_prefix", "address", "socket")

    def __init__(
        self,
        peer_id: str,
        address: str,
        socket: Peer,
        on_close: Callable[[DocPeer], None],
        *,
        principal: str,
        readonly: bool,
    ) -> None:
        super().__init__(
            peer_id, _through_socket, _through_socket, principal=principal, readonly=readonly
        )
        self.address = address
        self.socket = socket
        self._prefix = address_prefix(address)
        self._on_close = on_close
        self._announced: bool | None = None  # the readonly flag the client was last told

    def send(self, message: bytes) -> None:
        """Send one y-protocols message (sync or awareness) of this document."""
        if self.state is PeerState.OPEN:
            self.announce_scope()
            self.socket.send(self._prefix + message)

    def send_frame(self, message: HpMessage) -> None:
        if self.state is PeerState.OPEN:
            self.announce_scope()
            self.socket.send(encode_frame(self.address, message))

    def announce_scope(self) -> None:
        if self._announced is not self.readonly and self.state is PeerState.OPEN:
            self._announced = self.readonly
            scope = "readonly" if self.readonly else "read-write"
            self.socket.send(encode_frame(self.address, Authenticated(scope)))

    def close(self, code: int, reason: str = "", *, final: bytes | None = None) -> None:
        if self.state is not PeerState.OPEN:
            return
        self.state = PeerState.CLOSED
        self.close_code, self.close_reason = code, reason
        if code in _TRANSIENT:
            self.socket.close(code, reason)
        else:
            # Both: ``authenticationFailed`` tells the app why; ``Close`` makes the provider drop
            # the presence it was shown. It stays attached, and whatever it sends for this
            # address is ignored until it authenticates again.
            self.socket.send(encode_frame(self.address, PermissionDenied(reason)))
            self.socket.send(encode_frame(self.address, Close(reason)))
        self._on_close(self)

    def end(self) -> None:
        """The client closed the document, or the socket is gone: nothing to tell anyone."""
        self.state = PeerState.CLOSED

    async def wait_closed(self) -> None:
        if self.close_code in _TRANSIENT:
            await self.socket.wait_closed()


async def _through_socket(*_: object) -> None:
    raise AssertionError("a DocPeer sends and closes through its socket's peer")


class _Session:
    """One address on the socket: authenticating, then served by a :class:`DocPeer`."""

    __slots__ = ("acks", "address", "ended", "peer", "room", "settled")

    def __init__(self, address: str) -> None:
        self.address = address
        self.peer: DocPeer | None = None
        self.room: Room | None = None
        self.settled = asyncio.Event()  # set when authentication is over, either way
        self.ended = False
        # Outcomes to acknowledge in order: a commit future (seq or failure) or a verdict.
        self.acks: deque[asyncio.Future[int] | bool] = deque()


class SyncConnection:
    def __init__(self, ws: WebSocket, daemon: Daemon) -> None:
        self.ws = ws
        self.daemon = daemon
        self.id = f"s{next(_socket_ids)}"
        settings = daemon.settings
        self.socket = Peer(
            self.id,
            ws.send_bytes,
            ws.close,
            principal="(multiplexed)",
            max_messages=settings.send_queue_messages,
            max_bytes=settings.send_queue_bytes,
            abort=transport.aborter(ws),
            queues=daemon.send_queues,
        )
        self.socket.on_sent = daemon.count_sent
        self.sessions: dict[str, _Session] = {}
        self._peer_ids = itertools.count(1)  # DocPeer ids: <socket id>.<n>
        self._auth_tasks: set[asyncio.Task[None]] = set()
        self._finished = False

    async def serve(self) -> None:
        self.socket.bind_handler(asyncio.current_task())
        self.daemon.socket_opened(self.socket)
        try:
            await self._read()
        except asyncio.CancelledError:
            if self.socket.close_code is None:
                raise
            # We cancelled ourselves: the client would not take its close frame.
            task = asyncio.current_task()
            if task is not None:
                task.uncancel()
        finally:
            self._finished = True  # authentications still running release what they acquire
            for session in list(self.sessions.values()):
                self._end(session)
            self.daemon.socket_closed(self.socket)
            if self.socket.close_code is not None:
                self.daemon.metrics.closes.labels(str(self.socket.close_code)).inc()
                await self.socket.wait_closed()

    async def _read(self) -> None:
        settings = self.daemon.settings
        limit = settings.max_message_bytes
        metrics = self.daemon.metrics
        pace = ConnectionPace(settings.rate_messages_per_second, settings.rate_bytes_per_second)
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect" or self.socket.state is not PeerState.OPEN:
                return
            data = message.get("bytes")
            if data is None:
                log.info("sync %s: text frame; closing 4400", self.id)
                self.socket.close(CloseCode.MALFORMED, "expected binary frames")
                return
            metrics.bytes_received.inc(len(data))
            if len(data) > limit:
                log.info("sync %s: %d bytes (limit %d); closing 4413", self.id, len(data), limit)
                self.socket.close(CloseCode.TOO_LARGE, f"message over {limit} bytes")
                return
            await pace.admit(len(data))
            try:
                frame = decode_frame(data)
                await self._dispatch(frame.address, frame.message)
            except ProtocolError as exc:
                log.info("sync %s: malformed data (%s); closing 4400", self.id, exc)
                self.socket.close(CloseCode.MALFORMED, f"malformed message: {exc}")
                return
            if self.socket.state is not PeerState.OPEN:
                return

    async def _dispatch(self, address: str, msg: HpMessage) -> None:
        session = self.sessions.get(address)
        if isinstance(msg, Token):
            if session is None:
                self._open(address, msg.token)
            else:  # a token for an open document changes nothing: its grant was decided
                log.debug("sync %s: %r: token for an open document ignored", self.id, address)
            return
        if not isinstance(
            msg, SyncMessage | AwarenessMessage | QueryAwarenessMessage | Stateless | Close
        ):
            raise ProtocolError(f"{type(msg).__name__} is not a message a client sends")
        if session is None:
            # Before its auth message (a provider can race an edit ahead of it) or after the
            # document was refused or closed. Nothing is lost: a provider sends all we lack in
            # answer to the sync step 1 that follows authentication.
            log.debug("sync %s: %r is not open; message ignored", self.id, address)
            return
        if not session.settled.is_set():
            await session.settled.wait()  # keeps each document's messages in order
        peer, room = session.peer, session.room
        if peer is None or room is None or peer.state is not PeerState.OPEN:
            return
        if isinstance(msg, Close):
            self._end(session)
            return
        try:
            await self._handle(session, peer, room, msg)
        except RoomClosed as exc:  # the room closed under us (unloaded, deleted, shutdown)
            log.info("sync %s: doc %s: %s", self.id, room.key, exc)
            peer.close(exc.code, exc.reason)

    async def _handle(self, session: _Session, peer: DocPeer, room: Room, msg: HpMessage) -> None:
        metrics = self.daemon.metrics
        if isinstance(msg, SyncMessage):
            if msg.step is SyncStep.STEP1:
                peer.send(await room.sync_step2_for(msg.payload))
            elif peer.readonly:
                # Viewers' edits are never applied, stored or forwarded. A step 2 that holds
                # nothing new is acknowledged anyway, so that a viewer's provider is not left
                # with an unsynced change it never made.
                metrics.updates_dropped.inc()
                nothing = msg.step is SyncStep.STEP2 and await room.holds(msg.payload)
                self._ack(session, nothing)
            else:
                validate_update(msg.payload)
                metrics.updates_received.inc()
                done = await room.ingest(Origin.client(peer), msg.payload, ack=True)
                self._ack(session, False if done is None else done)
        elif isinstance(msg, AwarenessMessage):
            echo = room.awareness_from(peer, msg.update)
            # Hocuspocus relays presence to its sender too, and stock providers count on it: one
            # that hears nothing for 30 s drops the socket (the provider renews presence every
            # 15 s). The echo is what the room validated and stamped, never the raw message.
            if echo is not None:
                peer.send(echo)
        elif isinstance(msg, QueryAwarenessMessage):
            reply = room.awareness_message()
            if reply is not None:
                peer.send(reply)
        # Stateless messages are for server hooks; syncd has none, so they are dropped.

    # -- acknowledgements ------------------------------------------------------------------

    def _ack(self, session: _Session, outcome: asyncio.Future[int] | bool) -> None:
        session.acks.append(outcome)
        if isinstance(outcome, asyncio.Future):
            outcome.add_done_callback(lambda _: self._flush_acks(session))
        self._flush_acks(session)

    def _flush_acks(self, session: _Session) -> None:
        while session.acks:
            head = session.acks[0]
            if isinstance(head, bool):
                stored = head
            elif not head.done():
                return
            else:
                # A failed commit closed the socket (1011): nothing will be sent.
                stored = not head.cancelled() and head.exception() is None
            session.acks.popleft()
            if session.peer is not None:
                session.peer.send_frame(SyncStatus(stored))

    # -- opening and closing documents -------------------------------------------------------

    def _open(self, address: str, token: str) -> None:
        if len(self.sessions) >= MAX_DOCUMENTS:
            reason = f"more than {MAX_DOCUMENTS} documents on one connection"
            self.socket.send(encode_frame(address, PermissionDenied(reason)))
            return
        session = self.sessions[address] = _Session(address)
        task = asyncio.create_task(self._authenticate(session, token), name=f"auth-{self.id}")
        self._auth_tasks.add(task)
        task.add_done_callback(self._auth_tasks.discard)

    async def _authenticate(self, session: _Session, token: str) -> None:
        try:
            grant, room = await self._decide(session, token)
        except Refusal as refusal:
            self._refuse(session, refusal.reason)
        except DocumentDeleted:
            self._refuse(session, "document deleted")
        except DocumentNotFound:
            self._refuse(session, NO_ACCESS)
        except StoreUnavailable:
            self._forget(session)
            self.socket.close(CloseCode.TRY_AGAIN_LATER, "storage unavailable, retry later")
        except Exception:
            log.exception("sync %s: opening %r failed", self.id, session.address)
            self._forget(session)
            self.socket.close(CloseCode.INTERNAL_ERROR, "internal error, reconnect")
        else:
            if self._finished or self.sessions.get(session.address) is not session:
                self.daemon.rooms.release(room)
            else:
                await self._join(session, grant, room)
        finally:
            session.settled.set()

    async def _decide(self, session: _Session, token: str) -> tuple[Grant, Room]:
        """Exactly what ``/v1/docs`` decides for a connection, for one document.

        Raises:
            Refusal, DocumentNotFound, StoreUnavailable: as on ``/v1/docs``.
        """
        name = split_address(session.address)[0]
        owner, sep, rest = name.partition("/")
        if not sep:
            raise Refusal(CloseCode.MALFORMED, f"document name {name[:200]!r} is not OWNER/NAME")
        doc_id = self.daemon.access.parse_doc(owner, rest)
        grant = await self.daemon.access.authorize(token, doc_id)
        room = await self.daemon.rooms.acquire(grant.key, create=grant.may_create)
        try:
            return self.daemon.access.recheck(grant, room), room
        except Refusal:
            self.daemon.rooms.release(room)
            raise

    async def _join(self, session: _Session, grant: Grant, room: Room) -> None:
        transport.authenticated(self.ws)  # a document admitted: frames up to max_message_bytes
        peer = DocPeer(
            f"{self.id}.{next(self._peer_ids)}",
            session.address,
            self.socket,
            self._doc_closed,
            principal=grant.identity.sub,
            readonly=grant.readonly,
        )
        session.peer, session.room = peer, room
        self.daemon.connected(peer, grant)
        peer.announce_scope()
        try:
            await room.join(peer)  # our sync step 1, then presence
        except RoomClosed as exc:
            log.info("sync %s: doc %s: %s", self.id, room.key, exc)
            peer.close(exc.code, exc.reason)

    def _refuse(self, session: _Session, reason: str) -> None:
        self._forget(session)
        self.socket.send(encode_frame(session.address, PermissionDenied(reason)))

    def _forget(self, session: _Session) -> None:
        if self.sessions.get(session.address) is session:
            del self.sessions[session.address]

    def _doc_closed(self, peer: DocPeer) -> None:
        session = self.sessions.get(peer.address)
        if session is not None and session.peer is peer:
            if peer.close_code is not None and peer.close_code not in _TRANSIENT:
                self.daemon.metrics.closes.labels(str(peer.close_code)).inc()
            self._end(session)

    def _end(self, session: _Session) -> None:
        """Leave the document (idempotent): room, daemon, the idle-unload clock."""
        self._forget(session)
        peer, room = session.peer, session.room
        if session.ended or peer is None or room is None:
            return
        session.ended = True
        peer.end()
        room.leave(peer)
        self.daemon.disconnected(peer)
        self.daemon.rooms.release(room)


async def sync_socket(ws: WebSocket) -> None:
    daemon: Daemon = ws.app.state.daemon
    await ws.accept()
    await SyncConnection(ws, daemon).serve()
