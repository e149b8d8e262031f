"""``/v1/sync``: many documents over one WebSocket, in the Hocuspocus framing (DESIGN.md §1.5).

Only the transport and the framing are here; admission and the document session are
``syncd/session.py``'s, shared with ``/v1/docs``. A stock ``@hocuspocus/provider`` opens each
document with an auth message carrying a token; each is admitted on its own, exactly as
``/v1/docs`` admits a connection, and answered with ``Authenticated`` (scope ``readonly`` or
``read-write``) or ``PermissionDenied``. A refusal, a revocation or a ``Close`` ends that
document only; the socket and its other documents go on. What costs the whole socket is what the
socket did: a malformed frame (4400), an oversized one (4413), a slow reader (1013), or a
transient failure (1001/1011/1013, after which the provider reconnects and syncs every document
again).

Each open document is a :class:`DocumentMember` in its room. It has no queue of its own: it
frames the room's y-protocols messages with the document's address and appends them to the
socket's one :class:`~syncd.peer.Peer`, whose bounded queue, drain task and close handshake serve
every document on the socket. Every sync step 2 / update a client sends is answered, in order per
document, with ``SyncStatus``: true once durably committed (or when it adds nothing), false when
refused.
"""

from __future__ import annotations

import asyncio
import itertools
import json
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
from crdt.protocol import AwarenessMessage, ProtocolError, QueryAwarenessMessage, SyncMessage
from storage import StoreUnavailable

from . import transport
from .access import Grant, Refusal, RefusalReason
from .daemon import Daemon
from .peer import CloseCode, Peer, PeerState
from .session import (
    CLOSE_CODES,
    Ack,
    Admission,
    DocumentSession,
    Echo,
    Leave,
    Reply,
    admit,
    read_frames,
    socket_peer,
)
from .tokens import Identity

__all__ = ["MAX_DOCUMENTS", "DocumentMember", "epoch_message", "sync_socket"]

log = logging.getLogger("syncd.sync")

# Documents open (or opening) at once on one socket; one more is refused with PermissionDenied.
MAX_DOCUMENTS = 1024

# Closes that are nobody's fault and go away by themselves: the whole socket closes with them, so
# that the provider reconnects and re-syncs (a Hocuspocus provider never re-opens one document).
_TRANSIENT = frozenset({CloseCode.GOING_AWAY, CloseCode.INTERNAL_ERROR, CloseCode.TRY_AGAIN_LATER})

_socket_ids = itertools.count(1)


def epoch_message(epoch: str) -> str:
    """The ``Stateless`` payload sent right after ``Authenticated`` (DESIGN §1.10)."""
    return json.dumps({"syncd": "epoch", "epoch": epoch}, separators=(",", ":"))


class DocumentMember:
    """One document opened on a multiplexed socket, as its room sees it (a
    :class:`~syncd.member.Member`).

    :meth:`send` frames and forwards to the socket's peer; :meth:`close` ends this document only
    (``PermissionDenied`` and ``Close`` with the reason), except for transient codes, which close
    the socket. The scope is announced again (``Authenticated``) before the next message after a
    role change, so a stock provider's ``authorizedScope`` follows upgrades and downgrades.
    """

    __slots__ = (
        "_announced",
        "_on_close",
        "_prefix",
        "address",
        "awareness_ids",
        "close_code",
        "close_reason",
        "id",
        "identity",
        "readonly",
        "socket",
        "state",
    )

    def __init__(
        self,
        member_id: str,
        address: str,
        socket: Peer,
        grant: Grant,
        on_close: Callable[[DocumentMember], None],
    ) -> None:
        self.id = member_id
        self.address = address
        self.socket = socket
        self.identity: Identity = grant.identity
        self.readonly = grant.readonly
        self.awareness_ids: set[int] = set()
        self.state = PeerState.OPEN
        self.close_code: int | None = None
        self.close_reason = ""
        self._prefix = address_prefix(address)
        self._on_close = on_close
        self._announced: bool | None = None  # the readonly flag the client was last told

    def __repr__(self) -> str:
        return f"<DocumentMember {self.id} {self.address!r} {self.principal} {self.state.value}>"

    @property
    def principal(self) -> str:
        return self.identity.sub

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

    def close(self, code: int, reason: str = "") -> None:
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


class _OpenDocument:
    """One address on the socket: authenticating, then a member in its room's session."""

    __slots__ = ("acks", "address", "member", "session", "settled")

    def __init__(self, address: str) -> None:
        self.address = address
        self.member: DocumentMember | None = None
        self.session: DocumentSession | None = None
        self.settled = asyncio.Event()  # set when authentication is over, either way
        # Outcomes to acknowledge in order: a commit future (seq or failure) or a verdict.
        self.acks: deque[asyncio.Future[int] | bool] = deque()


class SyncConnection:
    """The documents of one ``/v1/sync`` socket, served through its one peer."""

    def __init__(self, ws: WebSocket, daemon: Daemon, socket: Peer) -> None:
        self.ws = ws
        self.daemon = daemon
        self.socket = socket
        self.id = socket.id
        self.docs: dict[str, _OpenDocument] = {}
        self._member_ids = itertools.count(1)  # DocumentMember ids: <socket id>.<n>
        self._auth_tasks: set[asyncio.Task[None]] = set()
        self._finished = False

    async def receive(self, data: bytes) -> None:
        """Serve one frame (``ProtocolError``: it does not decode, or is not a client's)."""
        frame = decode_frame(data)
        await self._dispatch(frame.address, frame.message)

    def finish(self) -> None:
        """The socket is gone: leave every document (authentications still running release
        what they acquire)."""
        self._finished = True
        for doc in list(self.docs.values()):
            self._end(doc)

    async def _dispatch(self, address: str, msg: HpMessage) -> None:
        doc = self.docs.get(address)
        if isinstance(msg, Token):
            if doc is None:
                self._open(address, msg.token)
            else:  # a token for an open document changes nothing: its grant was decided
                log.debug("sync %s: %r: token for an open document ignored", self.id, address)
            return
        if not isinstance(
            msg, SyncMessage | AwarenessMessage | QueryAwarenessMessage | Stateless | Close
        ):
            raise ProtocolError(f"{type(msg).__name__} is not a message a client sends")
        if doc is None:
            # Before its auth message (a provider can race an edit ahead of it) or after the
            # document was refused or closed. Nothing is lost: a provider sends all we lack in
            # answer to the sync step 1 that follows authentication.
            log.debug("sync %s: %r is not open; message ignored", self.id, address)
            return
        if not doc.settled.is_set():
            await doc.settled.wait()  # keeps each document's messages in order
        member, session = doc.member, doc.session
        if member is None or session is None or member.state is not PeerState.OPEN:
            return
        if isinstance(msg, Close):
            self._end(doc)
            return
        if isinstance(msg, Stateless):
            return  # for server hooks; syncd has none
        match await session.receive(msg):
            case Reply(message) | Echo(message):
                # Hocuspocus relays presence to its sender too, and stock providers count on it:
                # one that hears nothing for 30 s drops the socket (it renews presence every 15 s).
                member.send(message)
            case Ack(outcome):
                self._ack(doc, outcome)
            case Leave(code, reason):
                member.close(code, reason)

    # -- acknowledgements ------------------------------------------------------------------

    def _ack(self, doc: _OpenDocument, outcome: asyncio.Future[int] | bool) -> None:
        doc.acks.append(outcome)
        if isinstance(outcome, asyncio.Future):
            outcome.add_done_callback(lambda _: self._flush_acks(doc))
        self._flush_acks(doc)

    def _flush_acks(self, doc: _OpenDocument) -> None:
        while doc.acks:
            head = doc.acks[0]
            if isinstance(head, bool):
                stored = head
            elif not head.done():
                return
            else:
                # A failed commit closed the socket (1011): nothing will be sent.
                stored = not head.cancelled() and head.exception() is None
            doc.acks.popleft()
            if doc.member is not None:
                doc.member.send_frame(SyncStatus(stored))

    # -- opening and closing documents -------------------------------------------------------

    def _open(self, address: str, token: str) -> None:
        if len(self.docs) >= MAX_DOCUMENTS:
            reason = f"more than {MAX_DOCUMENTS} documents on one connection"
            self.socket.send(encode_frame(address, PermissionDenied(reason)))
            return
        doc = self.docs[address] = _OpenDocument(address)
        task = asyncio.create_task(self._authenticate(doc, token), name=f"auth-{self.id}")
        self._auth_tasks.add(task)
        task.add_done_callback(self._auth_tasks.discard)

    async def _authenticate(self, doc: _OpenDocument, token: str) -> None:
        daemon = self.daemon
        try:
            name = split_address(doc.address)[0]
            admission = await admit(daemon.access, daemon.rooms, token, name)
            epoch = await self._epoch(admission)
        except Refusal as refusal:
            self._forget(doc)
            code = CLOSE_CODES[refusal.reason]
            if code in _TRANSIENT:  # the storage is away: the whole socket comes back later
                self.socket.close(code, refusal.message)
            else:
                self.socket.send(encode_frame(doc.address, PermissionDenied(refusal.message)))
        except Exception:
            log.exception("sync %s: opening %r failed", self.id, doc.address)
            self._forget(doc)
            self.socket.close(CloseCode.INTERNAL_ERROR, "internal error, reconnect")
        else:
            if self._finished or self.docs.get(doc.address) is not doc:
                daemon.rooms.release(admission.room)
            else:
                await self._join(doc, admission, epoch)
        finally:
            doc.settled.set()

    async def _epoch(self, admission: Admission) -> str:
        """The document's epoch (DESIGN §1.10), from the room's metadata; a room created by this
        admission has none cached yet, so it is read once and kept there.

        Raises:
            Refusal: ``UNAVAILABLE`` (the room released) when the metadata could not be read.
        """
        room = admission.room
        if room.meta is None:
            try:
                meta = await self.daemon.store.meta(room.key)
            except StoreUnavailable as exc:
                self.daemon.rooms.release(room)
                reason = "storage unavailable, retry later"
                raise Refusal(RefusalReason.UNAVAILABLE, reason) from exc
            except BaseException:
                self.daemon.rooms.release(room)
                raise
            if room.meta is None:
                room.meta = meta
        return room.meta.epoch if room.meta is not None else ""

    async def _join(self, doc: _OpenDocument, admission: Admission, epoch: str) -> None:
        transport.authenticated(self.ws)  # a document admitted: frames up to max_message_bytes
        member = DocumentMember(
            f"{self.id}.{next(self._member_ids)}",
            doc.address,
            self.socket,
            admission.grant,
            self._doc_closed,
        )
        session = DocumentSession(
            admission,
            member,
            self.daemon.rooms,
            self.daemon.metrics,
            self.daemon.token_expiry,
            acknowledges=True,
        )
        doc.member, doc.session = member, session
        member.announce_scope()
        # Before anything of the document: our SDKs compare it with the epoch they stored and
        # never merge state of an older lineage into this one; stock providers ignore it.
        self.socket.send(encode_frame(doc.address, Stateless(epoch_message(epoch))))
        left = await session.start()  # our sync step 1, then presence
        if left is not None:
            member.close(left.code, left.reason)

    def _forget(self, doc: _OpenDocument) -> None:
        if self.docs.get(doc.address) is doc:
            del self.docs[doc.address]

    def _doc_closed(self, member: DocumentMember) -> None:
        doc = self.docs.get(member.address)
        if doc is not None and doc.member is member:
            if member.close_code is not None and member.close_code not in _TRANSIENT:
                self.daemon.metrics.closes.labels(str(member.close_code)).inc()
            self._end(doc)

    def _end(self, doc: _OpenDocument) -> None:
        """Leave the document (idempotent): room, token expiry, the idle-unload clock."""
        self._forget(doc)
        if doc.member is None or doc.session is None:
            return
        doc.member.end()
        doc.session.end()


async def sync_socket(ws: WebSocket) -> None:
    daemon: Daemon = ws.app.state.daemon
    await ws.accept()
    async with socket_peer(ws, daemon, f"s{next(_socket_ids)}") as socket:
        connection = SyncConnection(ws, daemon, socket)
        try:
            await read_frames(ws, socket, daemon, connection.receive, label=f"sync {socket.id}")
        finally:
            connection.finish()
