"""A Room is one loaded document: its in-memory replica, its peers, their presence.

The path of an update, and why it is ordered so:

1. a peer's update passes the strict decoder (``crdt.update_format``) and is queued in the room;
2. the room's flush task applies the batch to the in-memory document, one update at a time: an
   update that yrs refuses or panics on (shapes only a document can judge, e.g. an item whose
   parent is not a shared type) is rejected there, its sender closed with 4400, and the replica
   rebuilt from the store plus the batch's good updates (a failed apply may leave it damaged);
3. it hands the good updates to the group commit and waits for the commit;
4. only then are they sent to the other peers.

While a batch is applied but not yet committed, nothing reads the replica: sync answers, joins
and the HTTP state wait for :meth:`Room.readable`. So everything any client or service can see
is always a prefix of what is durably stored: killing the daemon at any instant loses nothing
anyone has seen. If the commit fails, the replica is ahead of the store: the room marks itself
*stale* and reloads from the store (retrying while the database is away) before anyone reads it
again. Updates that arrive while a commit is in flight form the next batch; a batch goes out to
each peer as one merged update (one message per peer per batch, not one per update).

A cold load that finds the document's served state current (storage/served_state.py) builds
the replica *after* answering: joins get our step 1 from its state vector, new clients their
step 2 from its bytes, and the first reader, write or answer to anyone else builds the replica
from the snapshot and tail (:meth:`Room.restore_later`). Nothing has been applied before then,
so the served state is exactly the committed state those answers need.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable
from dataclasses import dataclass

import pycrdt

from crdt.awareness import (
    AwarenessEntry,
    AwarenessStates,
    encode_awareness_update,
)
from crdt.contains import Knowledge, contains_update
from crdt.protocol import ProtocolError, SyncStep, encode_awareness, encode_sync
from crdt.replay import replay
from crdt.update_format import UpdateShape, decode_delete_set, decode_update
from crdt.updates import EMPTY_UPDATE, decode_state_vector, merge
from crdt.yrs_guard import YrsFailure, apply_update, guarded
from storage import (
    DocKey,
    DocMeta,
    DocumentDeleted,
    GroupCommit,
    LoadedDoc,
    NewUpdate,
    StoreUnavailable,
)
from storage.served_state import ServedState

from .broker import Broker, LocalBroker, PresenceChanged, UpdatesCommitted
from .member import Member
from .origin import Origin
from .peer import CloseCode, PeerState
from .presence import Presence
from .seq_ranges import SeqRanges

__all__ = ["Room", "RoomClosed", "RoomState", "UpdateRejected"]

log = logging.getLogger("syncd.room")

# Updates committed, merged and sent together at most: merging grows quadratically with the
# number of updates (see crdt.updates.merge), so a burst is handled as several rounds.
MAX_BATCH = 256

# Beyond this many writers in one batch, everyone gets the full merged update (their own edits
# echoed back, which Yjs ignores) instead of one merge per writer.
_MAX_PERSONAL_MERGES = 8


# How long a missing seq may stay missing before it is read from the store: another node's
# message for it is usually a moment behind ours.
GAP_GRACE_SECONDS = 0.15

# How long a reader waits for the replica to be readable (a commit in flight, a reload after a
# failed one) before it is told to come back later (1013).
READ_WAIT_SECONDS = 10.0

# The encoded empty state vector: a client that has nothing asks for everything.
_EMPTY_STATE_VECTOR = b"\x00"


class RoomState(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


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


@dataclass(slots=True)
class _Incoming:
    origin: Origin
    data: bytes
    done: asyncio.Future[int] | None = None  # resolved with the seq once stored

    @property
    def peer(self) -> Member | None:
        """The connection that sent it (None: HTTP, a service, a restore)."""
        return self.origin.peer


class Room:
    def __init__(
        self,
        key: DocKey,
        commit: GroupCommit,
        *,
        max_pending_bytes: int = 16 * 1024 * 1024,
        compact_after_updates: int = 500,
        compact_after_bytes: int = 4 * 1024 * 1024,
        on_compact: Callable[[Room], None] | None = None,
        awareness: AwarenessStates | None = None,  # presence, with its bounds
        broker: Broker | None = None,  # other nodes (LocalBroker: none)
    ) -> None:
        self.key = key
        self.doc = pycrdt.Doc()
        self.peers: set[Member] = set()
        self.presence = Presence(key, awareness if awareness is not None else AwarenessStates())
        self.meta: DocMeta | None = None  # access settings, cached for joining peers
        self.state = RoomState.OPEN
        self.snapshot_seq = 0
        self.epoch = ""  # the lineage the replica is of (storage/served_state.py keys on it)
        self.fence: dict[int, int] = {}  # rewritten lineages' clocks (storage/lineage_fence.py)
        self._broker: Broker = broker if broker is not None else LocalBroker()
        # Which seqs the replica holds; other nodes' commits arrive out of order (syncd/broker.py).
        self._held = SeqRanges()
        self._known = 0  # the highest seq we have been told is committed
        self._waiting: dict[int, UpdatesCommitted] = {}  # other nodes' updates beyond a gap
        self._gap_timer: asyncio.TimerHandle | None = None
        self._fill_now = False
        self._remote: list[UpdatesCommitted] = []  # received, not yet applied
        self._commit = commit
        self._pending: list[_Incoming] = []
        self._pending_bytes = 0
        self._max_pending_bytes = max_pending_bytes
        self._space = asyncio.Event()
        self._space.set()
        self._flush_task: asyncio.Task[None] | None = None
        self._bytes_since_snapshot = 0
        self._compact_after_updates = compact_after_updates
        self._compact_after_bytes = compact_after_bytes
        self._on_compact = on_compact
        self.on_quarantine: Callable[[Room, list[tuple[int, str]]], None] | None = None
        self.on_rejected: Callable[[], None] | None = None  # an update yrs refused (metrics)
        # Set while the replica is exactly the committed state; cleared while a batch is being
        # applied and committed, and while a stale replica waits to be reloaded.
        self._committed = asyncio.Event()
        self._committed.set()
        self._stale = False
        self._close_code: int = CloseCode.NORMAL
        self._reload_task: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()  # short-lived ones, kept referenced
        # Derived from the replica, cached until it changes (see _changed).
        self._full_update: bytes | None = None
        self._knowledge: Knowledge | None = None
        # restore_later: what the replica is still to be built from, and what answers meanwhile.
        self._deferred: LoadedDoc | None = None
        self._served: ServedState | None = None

    @property
    def awareness(self) -> AwarenessStates:
        """The presence states (with their bounds) of the document."""
        return self.presence.states

    @property
    def seq(self) -> int:
        """The highest seq the replica holds."""
        return self._held.highest

    def __repr__(self) -> str:
        return f"<Room {self.key} {self.state.value} peers={len(self.peers)} seq={self.seq}>"

    # -- loading ---------------------------------------------------------------------------

    def restore(self, loaded: LoadedDoc) -> list[tuple[int, str]]:
        """Fill the replica from storage: the snapshot, then the log tail in order (yrs
        mishandles out-of-order updates). Returns the stored updates that had to be left out
        (``(seq, reason)``; seq 0 is the snapshot), which the caller quarantines."""
        self._deferred = self._served = None
        self._adopt(loaded)
        return self._replay(loaded)

    def restore_later(self, loaded: LoadedDoc, served: ServedState) -> None:
        """Take ``loaded``'s seq and fence now, answer with ``served`` (its state at that seq)
        and build the replica when something first needs it: the first client of a cold
        document is answered without waiting for yrs to apply a long history."""
        self._adopt(loaded)
        self._deferred, self._served = loaded, served

    @property
    def built(self) -> bool:
        """Whether the replica is built (``False`` only between restore_later and first use)."""
        return self._deferred is None

    def _adopt(self, loaded: LoadedDoc) -> None:
        self._held.reset(loaded.seq)
        self._waiting = {s: u for s, u in self._waiting.items() if u.first_seq > loaded.seq}
        self.snapshot_seq = loaded.snapshot_seq
        self.epoch = loaded.epoch
        self.fence = loaded.fence
        self._bytes_since_snapshot = sum(len(u) for u in loaded.tail)

    def _build(self) -> None:
        """Build the deferred replica now (idempotent)."""
        loaded = self._deferred
        if loaded is None or self.state is not RoomState.OPEN:
            return
        self._deferred = self._served = None
        self._replay(loaded)

    def _replay(self, loaded: LoadedDoc) -> list[tuple[int, str]]:
        result = replay(
            loaded.snapshot, loaded.numbered_tail(), snapshot_checked=loaded.snapshot_checked
        )
        self.doc = result.doc
        self._changed()
        if result.skipped:
            log.error(
                "doc %s: %d stored updates cannot be applied and are quarantined: %s",
                self.key,
                len(result.skipped),
                ", ".join(f"seq {seq} ({why})" for seq, why in result.skipped[:5]),
            )
            if self.on_quarantine is not None:
                self.on_quarantine(self, result.skipped)
        return result.skipped

    @property
    def idle(self) -> bool:
        return (
            not self.peers
            and not self._pending
            and not self._remote
            and self._flush_task is None
            and self._reload_task is None
        )

    async def readable(self) -> None:
        """Wait until the replica is exactly the committed state, then return at once (the
        caller reads it before its next ``await``).

        Raises:
            RoomClosed: the room closed, or stayed unreadable for ``READ_WAIT_SECONDS``.
        """
        self._build()
        if self._committed.is_set() and self.state is RoomState.OPEN:
            return  # the common case: no timeout to arm (every joining client comes here)
        try:
            async with asyncio.timeout(READ_WAIT_SECONDS):
                # A loop: the flush task may clear the flag again before this task runs.
                while not self._committed.is_set() and self.state is RoomState.OPEN:
                    await self._committed.wait()
        except TimeoutError:
            raise RoomClosed(f"document {self.key} is not readable now, retry later") from None
        self._raise_if_closed()

    def _raise_if_closed(self) -> None:
        if self.state is not RoomState.OPEN:
            code = self._close_code
            if code not in (CloseCode.NOT_FOUND, CloseCode.GOING_AWAY):
                code = CloseCode.TRY_AGAIN_LATER
            raise RoomClosed(f"room {self.key} is {self.state.value}", code)

    def full_update(self) -> bytes:
        """The whole document as one update (cached: every joining client asks for it)."""
        if self._served is not None:
            return self._served.update
        if self._full_update is None:
            self._full_update = self.doc.get_update()
        return self._full_update

    def served_state(self) -> ServedState | None:
        """What a new client receives now, at :attr:`seq` (kept for the next cold load);
        ``None`` unless the replica is exactly the committed state (a batch applied but not
        committed, a failed commit, a gap behind other nodes: nothing to keep)."""
        if self._served is not None:
            return self._served
        if self._stale or self._lagging() or not self._committed.is_set():
            return None
        return ServedState(self.seq, self.doc.get_state(), self.full_update())

    async def holds(self, update: bytes) -> bool:
        """Whether the document already holds everything in ``update`` (a viewer's step 2).

        O(update): the document's state vector and delete set are computed once per version.

        Raises:
            ProtocolError: not a valid update. RoomClosed: the room closed or is not readable.
        """
        shape = decode_update(update)
        await self.readable()
        if self._knowledge is None:
            state = self.doc.get_state()
            self._knowledge = Knowledge.of(
                decode_state_vector(state), decode_delete_set(self.doc.get_update(state))
            )
        return contains_update(self._knowledge, shape)

    def check_lineage(self, shape: UpdateShape) -> None:
        """Refuse an update that brings back structs of a rewritten lineage (erasure), as a
        stock Yjs client's replica of the old history does on reconnect.

        Raises:
            StaleLineage: it holds such a struct; nothing of it may reach the document.
        """
        fence = self.fence
        if not fence:
            return
        for client, (first, _) in shape.clients.items():
            if first < fence.get(client, 0):
                raise StaleLineage(
                    "this replica holds a history the server rewrote (a principal was erased): "
                    "discard it and load the document again"
                )

    def _changed(self) -> None:
        """The replica changed: drop what was derived from it."""
        self._full_update = None
        self._knowledge = None

    @property
    def pending(self) -> int:
        return len(self._pending)

    # -- peers -----------------------------------------------------------------------------

    async def join(self, peer: Member) -> None:
        """Add a peer and greet it as the y-websocket server does: our step 1, then presence.

        Raises:
            RoomClosed: the room closed or is not readable.
        """
        if self._served is not None:  # nothing applied yet: the served state is committed
            self._raise_if_closed()
            state_vector = self._served.state_vector
        else:
            await self.readable()
            state_vector = self.doc.get_state()
        if peer.state is not PeerState.OPEN:
            return
        self.peers.add(peer)
        peer.send(encode_sync(SyncStep.STEP1, state_vector))
        greeting = self.presence.greeting()
        if greeting is not None:
            peer.send(greeting)

    def leave(self, peer: Member) -> None:
        if peer not in self.peers:
            return
        self.peers.discard(peer)
        gone = self.presence.member_left(peer)
        if gone:
            self._presence_changed(gone, None)

    # -- messages from a peer ---------------------------------------------------------------

    async def sync_step2_for(self, state_vector: bytes) -> bytes:
        """The answer to a sync step 1: everything we hold that the asker lacks.

        Raises:
            ProtocolError: not a state vector. RoomClosed: the room closed or is not readable.
        """
        decode_state_vector(state_vector)  # strict: raises ProtocolError before yrs sees it
        if state_vector == _EMPTY_STATE_VECTOR and self._served is not None:
            self._raise_if_closed()
            # Built once this answer is on its way: the caller sends it before its next await.
            asyncio.get_running_loop().call_soon(self._build)
            return encode_sync(SyncStep.STEP2, self._served.update)
        await self.readable()
        if state_vector == _EMPTY_STATE_VECTOR:
            return encode_sync(SyncStep.STEP2, self.full_update())
        try:
            update = guarded(self.doc.get_update, state_vector)
        except YrsFailure as exc:
            raise ProtocolError("invalid state vector") from exc
        return encode_sync(SyncStep.STEP2, update)

    def awareness_from(self, peer: Member, update: bytes) -> bytes | None:
        """Apply a peer's presence update, relay what changed, return the echo for /v1/sync
        (see :meth:`Presence.from_member`).

        Raises:
            ProtocolError: a malformed update or state, or too many client ids (4400).
        """
        accepted, echo = self.presence.from_member(peer, self.peers, update)
        if accepted:
            self._presence_changed(accepted, peer)
        return echo

    def regrant(self, peer: Member, readonly: bool) -> None:
        """Apply a changed role to a live peer (DESIGN.md §1.4).

        An upgraded viewer gets a sync step 1: it answers with everything we lack from it,
        including the edits it made while its updates were being dropped, which its later
        edits depend on.
        """
        was_readonly, peer.readonly = peer.readonly, readonly
        if was_readonly and not readonly and peer in self.peers:
            # Our state vector must be a committed one: were the batch in flight to fail, the
            # client would believe we hold edits we never stored and not send them again.
            task = asyncio.create_task(self._ask_for_edits(peer), name=f"regrant-{peer.id}")
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _ask_for_edits(self, peer: Member) -> None:
        try:
            await self.readable()
        except RoomClosed:
            return
        if peer in self.peers:
            peer.send(encode_sync(SyncStep.STEP1, self.doc.get_state()))

    def awareness_message(self) -> bytes | None:
        return self.presence.greeting()

    async def ingest(
        self, origin: Origin, update: bytes, *, ack: bool = False
    ) -> asyncio.Future[int] | None:
        """Queue a validated update for commit; with ``ack``, returns a future of its seq.

        Waits while the room already holds ``max_pending_bytes`` of uncommitted updates, so a
        writer faster than the database is slowed down at its socket instead of filling memory.
        Returns ``None`` without queueing if the peer lost its write access meanwhile.
        """
        while not self._space.is_set():
            await self._space.wait()
        self._raise_if_closed()
        peer = origin.peer
        if peer is not None and (peer.readonly or peer.state is not PeerState.OPEN):
            return None  # downgraded or revoked while it waited
        done: asyncio.Future[int] | None = (
            asyncio.get_running_loop().create_future() if ack else None
        )
        if update == EMPTY_UPDATE:
            # Clients answer every sync step 1 with a step 2, mostly empty: nothing to store.
            if done is not None:
                done.set_result(self.seq)
            return done
        self._pending.append(_Incoming(origin, update, done))
        self._pending_bytes += len(update)
        if self._pending_bytes >= self._max_pending_bytes:
            self._space.clear()
        if self._flush_task is None:
            self._flush_task = asyncio.create_task(self._flush(), name=f"flush-{self.key}")
        return done

    # -- commit and fan-out ------------------------------------------------------------------

    async def _flush(self) -> None:
        self._build()  # nothing is applied to a replica not built yet
        try:
            while self.state is RoomState.OPEN and (
                self._pending or self._remote or self._fill_now
            ):
                if self._stale:
                    await self._reload()
                    continue
                self._committed.clear()
                try:
                    if self._remote or self._fill_now:
                        await self._take_remote()
                    else:
                        batch = self._pending[:MAX_BATCH]
                        del self._pending[:MAX_BATCH]
                        self._pending_bytes -= sum(len(i.data) for i in batch)
                        if self._pending_bytes < self._max_pending_bytes:
                            self._space.set()
                        await self._commit_and_apply(batch)
                finally:
                    self._settle_readable()
                # Let readers woken by that run before the next batch clears the flag again.
                await asyncio.sleep(0)
        finally:
            self._flush_task = None

    async def _commit_and_apply(self, batch: list[_Incoming]) -> None:
        try:
            batch = await self._try_apply(batch)
        except StoreUnavailable as exc:  # rebuilding after a rejected update needs the store
            self._refuse_batch(batch, exc)
            return
        if not batch:
            return
        items = [NewUpdate(i.data, i.origin.principal, i.origin.stored_as) for i in batch]
        try:
            seqs = await self._commit.submit(self.key, items)
        except DocumentDeleted as exc:  # deleted elsewhere (another node, a direct delete)
            for i in batch:
                self._settle(i, RoomClosed(str(exc), CloseCode.NOT_FOUND))
            self._stale = True  # never read again: the room closes
            self.close(CloseCode.NOT_FOUND, "document deleted")
            return
        except Exception as exc:
            self._refuse_batch(batch, exc)
            return
        self._held.add(seqs[0], seqs[-1])
        self._bytes_since_snapshot += sum(len(i.data) for i in batch)
        for i, seq in zip(batch, seqs, strict=True):
            if i.done is not None and not i.done.done():
                i.done.set_result(seq)
        self._fan_out(batch, seqs)
        self._apply_waiting()
        if self._on_compact is not None and (
            self.seq - self.snapshot_seq >= self._compact_after_updates
            or self._bytes_since_snapshot >= self._compact_after_bytes
        ):
            self._on_compact(self)

    async def _try_apply(self, batch: list[_Incoming]) -> list[_Incoming]:
        """Apply each update to the replica; return those it took.

        One that yrs refuses is rejected: its sender is closed with 4400, its later updates
        (which depend on it) are dropped, and the replica, which the failed apply may have
        damaged, is rebuilt from the store plus the updates of this batch taken so far.
        """
        taken: list[_Incoming] = []
        rejected: set[Member] = set()
        for i in batch:
            if i.peer is not None and i.peer in rejected:
                self._settle(i, UpdateRejected("an earlier update of this connection was rejected"))
                continue
            try:
                apply_update(self.doc, i.data)
            except YrsFailure as exc:
                log.warning(
                    "doc %s: update from %s (%d bytes) rejected, cannot be applied: %s",
                    self.key,
                    i.peer.id if i.peer is not None else i.origin.stored_as,
                    len(i.data),
                    exc,
                )
                self._settle(i, UpdateRejected(f"update cannot be applied: {exc}"))
                if self.on_rejected is not None:
                    self.on_rejected()
                if i.peer is not None:
                    rejected.add(i.peer)
                    i.peer.close(CloseCode.MALFORMED, "update cannot be applied to the document")
                self.doc = await self._rebuilt([t.data for t in taken])
                continue
            taken.append(i)
        self._changed()
        if rejected:
            self._drop_pending_of(rejected, UpdateRejected("an earlier update was rejected"))
        return taken

    async def _rebuilt(self, uncommitted: list[bytes]) -> pycrdt.Doc:
        loaded = await self._commit.store.load(self.key)  # raises StoreUnavailable
        if loaded is None:
            raise RoomClosed(f"document {self.key} was deleted")
        result = replay(
            loaded.snapshot, loaded.numbered_tail(), snapshot_checked=loaded.snapshot_checked
        )
        for update in uncommitted:
            apply_update(result.doc, update)  # each applied cleanly a moment ago
        return result.doc

    def _refuse_batch(self, batch: list[_Incoming], exc: Exception) -> None:
        """Nothing of ``batch`` was stored and nobody has seen it, but the replica may hold it:
        the room turns stale (reloaded before anyone reads it). The senders still hold their
        updates (a Yjs client keeps its state) and send them again when they reconnect, so
        closing them with a transient code loses nothing."""
        log.warning("doc %s: commit of %d updates failed: %s", self.key, len(batch), exc)
        self._stale = True
        self._committed.clear()
        senders = {i.peer for i in batch if i.peer is not None}
        # Their later updates depend on the lost ones: storing those alone would leave a gap in
        # each sender's causal chain. They all come back with the reconnect.
        self._drop_pending_of(senders, exc)
        for i in batch:
            self._settle(i, exc)
        for peer in senders:
            peer.close(CloseCode.INTERNAL_ERROR, "storage unavailable, retry later")
        self._start_reload()

    def _drop_pending_of(self, senders: set[Member], exc: Exception) -> None:
        dropped = [i for i in self._pending if i.peer in senders]
        if not dropped:
            return
        self._pending = [i for i in self._pending if i.peer not in senders]
        self._pending_bytes -= sum(len(i.data) for i in dropped)
        if self._pending_bytes < self._max_pending_bytes:
            self._space.set()
        for i in dropped:
            self._settle(i, exc)

    @staticmethod
    def _settle(i: _Incoming, exc: Exception) -> None:
        if i.done is not None and not i.done.done():
            i.done.set_exception(exc)

    async def _reload(self) -> None:
        """Replace a stale replica by what the store holds, retrying while it is away."""
        self._start_reload()
        if self._reload_task is not None:
            await asyncio.shield(self._reload_task)

    def _start_reload(self) -> None:
        if self._stale and self._reload_task is None and self.state is RoomState.OPEN:
            self._reload_task = asyncio.create_task(
                self._reload_until_done(), name=f"reload-{self.key}"
            )

    async def _reload_until_done(self) -> None:
        delay = 0.05
        try:
            while self.state is RoomState.OPEN:
                try:
                    loaded = await self._commit.store.load(self.key)
                except StoreUnavailable as exc:
                    log.debug("doc %s: reload failed, retrying in %.2fs: %s", self.key, delay, exc)
                    await asyncio.sleep(delay)
                    delay = min(delay * 2, 1.0)
                    continue
                if loaded is None:
                    self.close(CloseCode.NOT_FOUND, "document deleted")
                    return
                self.restore(loaded)
                self._stale = False
                self._settle_readable()
                log.info("doc %s: reloaded from the store at seq %d", self.key, self.seq)
                return
        finally:
            self._reload_task = None

    def compacted(self, upto_seq: int) -> None:
        if upto_seq > self.snapshot_seq:
            self.snapshot_seq = upto_seq
            self._bytes_since_snapshot = 0

    def _fan_out(self, batch: list[_Incoming], seqs: list[int]) -> None:
        merged = _merged([i.data for i in batch])
        if merged is not None:
            everyone = [encode_sync(SyncStep.UPDATE, merged)]
            self._broker.publish(
                self.key, UpdatesCommitted(self._broker.node_id, seqs[0], seqs[-1], merged)
            )
        else:
            everyone = [encode_sync(SyncStep.UPDATE, i.data) for i in batch]
            for i, seq in zip(batch, seqs, strict=True):
                self._broker.publish(
                    self.key, UpdatesCommitted(self._broker.node_id, seq, seq, i.data)
                )
        writers: dict[Member, list[bytes]] = {}
        for i in batch:
            if i.peer is not None:
                writers.setdefault(i.peer, []).append(i.data)
        if len(writers) > _MAX_PERSONAL_MERGES:
            writers = {}
        for peer in tuple(self.peers):
            own = writers.get(peer)
            if own is None:
                for message in everyone:
                    peer.send(message)
                continue
            others = [i.data for i in batch if i.peer is not peer]
            if others:
                for message in _update_messages(others):
                    peer.send(message)

    def _broadcast(self, message: bytes, exclude: Member | None) -> None:
        for peer in tuple(self.peers):
            if peer is not exclude:
                peer.send(message)

    # -- other nodes (syncd/broker.py) -------------------------------------------------------

    def remote_updates(self, event: UpdatesCommitted) -> None:
        """Another node committed ``event``'s updates: apply them in seq order, then fan out."""
        if self.state is not RoomState.OPEN:
            return
        self._known = max(self._known, event.last_seq)
        self._remote.append(event)
        self._kick()

    def catch_up(self, committed_seq: int) -> None:
        """The store says the document is at ``committed_seq`` (a resync after messages may
        have been lost): fetch whatever the replica lacks, now."""
        if self.state is not RoomState.OPEN or committed_seq <= self._held.highest:
            return
        self._known = max(self._known, committed_seq)
        self._fill_now = True
        self._committed.clear()
        self._kick()

    def remote_presence(self, event: PresenceChanged) -> None:
        accepted = self.presence.from_node(event.node, event.update)
        if accepted:
            self._broadcast(encode_awareness(encode_awareness_update(accepted)), None)

    def share_presence(self) -> None:
        """Another node just opened the document: send it this node's clients' presence."""
        live = self.presence.of_members()
        if live:
            update = encode_awareness_update(live)
            self._broker.publish(self.key, PresenceChanged(self._broker.node_id, update))

    def node_gone(self, node: str) -> None:
        """``node`` stopped: its clients' presence goes, as if they had all disconnected."""
        gone = self.presence.node_gone(node)
        if gone:
            self._broadcast(encode_awareness(encode_awareness_update(gone)), None)

    def _presence_changed(self, entries: list[AwarenessEntry], exclude: Member | None) -> None:
        """Relay local presence changes to this node's other peers and to the other nodes."""
        update = encode_awareness_update(entries)
        self._broadcast(encode_awareness(update), exclude)
        self._broker.publish(self.key, PresenceChanged(self._broker.node_id, update))

    def _kick(self) -> None:
        if self._flush_task is None and self.state is RoomState.OPEN:
            self._flush_task = asyncio.create_task(self._flush(), name=f"flush-{self.key}")

    def _lagging(self) -> bool:
        return self._held.gap is not None or self._known > self._held.highest

    def _settle_readable(self) -> None:
        """Readable again unless stale or behind what we were told is committed; a lag is
        filled from the store after a short grace (the missing message is usually on its way)."""
        if self._stale:
            return
        if not self._lagging():
            self._committed.set()
            return
        self._committed.clear()
        if self._gap_timer is None and not self._fill_now:
            self._gap_timer = asyncio.get_running_loop().call_later(GAP_GRACE_SECONDS, self._fill)

    def _fill(self) -> None:
        self._gap_timer = None
        if self._lagging():
            self._fill_now = True
            self._kick()

    async def _take_remote(self) -> None:
        events, self._remote = self._remote, []
        for event in events:
            if not self._held.holds(event.first_seq, event.last_seq):
                self._waiting[event.first_seq] = event
        self._apply_waiting()
        if self._fill_now:
            self._fill_now = False
            await self._fill_from_store()

    def _apply_waiting(self) -> None:
        """Apply the received updates that continue the held prefix, in seq order."""
        while (event := self._waiting.pop(self._held.upto + 1, None)) is not None:
            self._apply_committed([(event.first_seq, event.last_seq, event.update)])
        for first in [f for f, e in self._waiting.items() if self._held.holds(f, e.last_seq)]:
            del self._waiting[first]

    async def _fill_from_store(self) -> None:
        target = max(self._known, self._held.highest)
        after = self._held.upto
        if target <= after:
            return
        rows = await self._commit.store.updates_between(self.key, after, target)
        if rows is None:  # pruned meanwhile, or deleted: start again from the store
            self._stale = True
            return
        log.info("doc %s: filling seqs %d..%d from the store", self.key, after + 1, target)
        self._apply_committed([(s, s, u) for s, u in rows if not self._held.holds(s, s)])
        if self._stale:
            return
        self._held.add(after + 1, target)  # quarantined seqs are left out, but not missing
        self._apply_waiting()

    def _apply_committed(self, ranges: list[tuple[int, int, bytes]]) -> None:
        """Apply updates committed elsewhere and send them to every local peer."""
        for first, last, update in ranges:
            try:
                apply_update(self.doc, update)
            except YrsFailure as exc:  # checked by the node that took it: should not happen
                log.error(
                    "doc %s: seqs %d..%d from another node failed: %s", self.key, first, last, exc
                )
                self._stale = True
                return
            self._held.add(first, last)
            self._changed()
            message = encode_sync(SyncStep.UPDATE, update)
            for peer in tuple(self.peers):
                peer.send(message)

    # -- end of life ---------------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait until every queued update is committed (graceful shutdown, unload)."""
        while self._flush_task is not None:
            await asyncio.shield(self._flush_task)

    def close(self, code: int, reason: str) -> list[Member]:
        """Close the room and its peers; returns the peers (to await their close frames)."""
        self.state = RoomState.CLOSED
        self._close_code = code
        if self._gap_timer is not None:
            self._gap_timer.cancel()
        self._committed.set()  # wakes waiting readers, who then see the room closed
        pending, self._pending, self._pending_bytes = self._pending, [], 0
        self._space.set()
        for i in pending:  # never stored: their senders learn it (an HTTP writer gets 503)
            self._settle(i, RoomClosed(f"room {self.key} closed"))
        for task in (self._reload_task, *self._tasks):
            if task is not None:
                task.cancel()
        peers = list(self.peers)
        for peer in peers:
            peer.close(code, reason)
        self.peers.clear()
        return peers


def _merged(updates: list[bytes]) -> bytes | None:
    """``updates`` merged into one, or ``None`` should yrs fail to merge what it applied one by
    one (then they go out one by one, which says the same)."""
    try:
        return guarded(merge, updates)
    except YrsFailure as exc:
        log.warning("merging %d updates failed, sending them one by one: %s", len(updates), exc)
        return None


def _update_messages(updates: list[bytes]) -> list[bytes]:
    """Sync update messages carrying ``updates``: one merged message, or one per update."""
    merged = _merged(updates)
    if merged is not None:
        return [encode_sync(SyncStep.UPDATE, merged)]
    return [encode_sync(SyncStep.UPDATE, u) for u in updates]
