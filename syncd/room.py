"""A Room is one loaded document: its in-memory replica, its peers, their presence.

The path of an update, and why it is ordered so:

1. a peer's update passes the strict decoder (``crdt.update_format``) and is queued in the room;
2. the room's flush task applies the batch to the in-memory document, one update at a time
   (``syncd/batch_apply.py``): an update that yrs refuses or panics on (shapes only a document
   can judge, e.g. an item whose parent is not a shared type) is rejected there, its sender
   closed with 4400, and the replica rebuilt from the store plus the batch's good updates (a
   failed apply may leave it damaged);
3. it hands the good updates to the group commit and waits for the commit;
4. only then are they sent to the other peers and nodes (``syncd/fan_out.py``).

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

``Room`` is the one class callers use; it owns the pieces that are concepts of their own, each
in its module: the bounded queue of uncommitted updates (``syncd/pending_updates.py``), the
commits of other nodes and the gaps they leave (``syncd/catch_up.py``), and the errors readers
and writers meet (``syncd/room_errors.py``). What stays here is what needs the whole room: the
flush task, the readable gate and the reload of a stale replica, the peers and their presence.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Callable

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
from crdt.updates import EMPTY_UPDATE, decode_state_vector
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

from .batch_apply import apply_batch
from .broker import Broker, LocalBroker, PresenceChanged, UpdatesCommitted
from .catch_up import CatchUp
from .fan_out import fan_out
from .member import Member
from .origin import Origin
from .peer import CloseCode, PeerState
from .pending_updates import Incoming, PendingUpdates
from .presence import Presence
from .room_errors import RoomClosed, StaleLineage, UpdateRejected

# RoomClosed, StaleLineage and UpdateRejected live in room_errors.py; callers import them here.
__all__ = ["Room", "RoomClosed", "RoomState", "StaleLineage", "UpdateRejected"]

log = logging.getLogger("syncd.room")

# Updates committed, merged and sent together at most: merging grows quadratically with the
# number of updates (see crdt.updates.merge), so a burst is handled as several rounds.
MAX_BATCH = 256

# How long a reader waits for the replica to be readable (a commit in flight, a reload after a
# failed one) before it is told to come back later (1013).
READ_WAIT_SECONDS = 10.0

# The encoded empty state vector: a client that has nothing asks for everything.
_EMPTY_STATE_VECTOR = b"\x00"


class RoomState(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"


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
        # Which seqs the replica holds, and getting those committed elsewhere (syncd/catch_up.py).
        self._catch_up = CatchUp(key, commit.store)
        self._commit = commit
        self._pending = PendingUpdates(max_pending_bytes)
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
        return self._catch_up.held.highest

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
        self._catch_up.adopt(loaded.seq)
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
            and not self._catch_up.has_received
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
        if self._stale or self._catch_up.lagging or not self._committed.is_set():
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
        space = self._pending.space
        while not space.is_set():
            await space.wait()
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
        self._pending.append(Incoming(origin, update, done))
        if self._flush_task is None:
            self._flush_task = asyncio.create_task(self._flush(), name=f"flush-{self.key}")
        return done

    # -- commit and fan-out ------------------------------------------------------------------

    async def _flush(self) -> None:
        self._build()  # nothing is applied to a replica not built yet
        try:
            while self.state is RoomState.OPEN and (self._pending or self._catch_up.due):
                if self._stale:
                    await self._reload()
                    continue
                self._committed.clear()
                try:
                    if self._catch_up.due:
                        if not await self._catch_up.take(self._apply_committed):
                            self._stale = True
                    else:
                        await self._commit_and_apply(self._pending.take(MAX_BATCH))
                finally:
                    self._settle_readable()
                # Let readers woken by that run before the next batch clears the flag again.
                await asyncio.sleep(0)
        finally:
            self._flush_task = None

    async def _commit_and_apply(self, batch: list[Incoming]) -> None:
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
                i.failed(RoomClosed(str(exc), CloseCode.NOT_FOUND))
            self._stale = True  # never read again: the room closes
            self.close(CloseCode.NOT_FOUND, "document deleted")
            return
        except Exception as exc:
            self._refuse_batch(batch, exc)
            return
        self._catch_up.held.add(seqs[0], seqs[-1])
        self._bytes_since_snapshot += sum(len(i.data) for i in batch)
        for i, seq in zip(batch, seqs, strict=True):
            i.stored(seq)
        fan_out(self.key, batch, seqs, self.peers, self._broker)
        self._catch_up.apply_waiting(self._apply_committed)
        if self._on_compact is not None and (
            self.seq - self.snapshot_seq >= self._compact_after_updates
            or self._bytes_since_snapshot >= self._compact_after_bytes
        ):
            self._on_compact(self)

    async def _try_apply(self, batch: list[Incoming]) -> list[Incoming]:
        """Apply each update to the replica; return those it took (``syncd/batch_apply.py``:
        one that yrs refuses closes its sender with 4400 and the replica is rebuilt)."""
        applied = await apply_batch(
            self.doc, batch, key=self.key, store=self._commit.store, on_rejected=self.on_rejected
        )
        self.doc = applied.doc
        self._changed()
        if applied.rejected:
            earlier = UpdateRejected("an earlier update was rejected")
            self._drop_pending_of(applied.rejected, earlier)
        return applied.taken

    def _refuse_batch(self, batch: list[Incoming], exc: Exception) -> None:
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
            i.failed(exc)
        for peer in senders:
            peer.close(CloseCode.INTERNAL_ERROR, "storage unavailable, retry later")
        self._start_reload()

    def _drop_pending_of(self, senders: set[Member], exc: Exception) -> None:
        for i in self._pending.drop_from(senders):
            i.failed(exc)

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

    def _broadcast(self, message: bytes, exclude: Member | None) -> None:
        for peer in tuple(self.peers):
            if peer is not exclude:
                peer.send(message)

    # -- other nodes (syncd/broker.py) -------------------------------------------------------

    def remote_updates(self, event: UpdatesCommitted) -> None:
        """Another node committed ``event``'s updates: apply them in seq order, then fan out."""
        if self.state is not RoomState.OPEN:
            return
        self._catch_up.received(event)
        self._kick()

    def catch_up(self, committed_seq: int) -> None:
        """The store says the document is at ``committed_seq`` (a resync after messages may
        have been lost): fetch whatever the replica lacks, now."""
        if self.state is not RoomState.OPEN or not self._catch_up.told(committed_seq):
            return
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

    def _settle_readable(self) -> None:
        """Readable again unless stale or behind what we were told is committed; a lag is
        filled from the store after a short grace (the missing message is usually on its way)."""
        if self._stale:
            return
        if not self._catch_up.lagging:
            self._committed.set()
            return
        self._committed.clear()
        self._catch_up.fill_after_grace(self._kick)

    def _apply_committed(self, first: int, last: int, update: bytes) -> bool:
        """Apply updates committed elsewhere and send them to every local peer (``CatchUp``'s
        ``apply``); ``False``, the room stale, if the replica cannot take them."""
        try:
            apply_update(self.doc, update)
        except YrsFailure as exc:  # checked by the node that took it: should not happen
            log.error(
                "doc %s: seqs %d..%d from another node failed: %s", self.key, first, last, exc
            )
            self._stale = True
            return False
        self._catch_up.held.add(first, last)
        self._changed()
        message = encode_sync(SyncStep.UPDATE, update)
        for peer in tuple(self.peers):
            peer.send(message)
        return True

    # -- end of life ---------------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait until every queued update is committed (graceful shutdown, unload)."""
        while self._flush_task is not None:
            await asyncio.shield(self._flush_task)

    def close(self, code: int, reason: str) -> list[Member]:
        """Close the room and its peers; returns the peers (to await their close frames)."""
        self.state = RoomState.CLOSED
        self._close_code = code
        self._catch_up.cancel()
        self._committed.set()  # wakes waiting readers, who then see the room closed
        for i in self._pending.clear():  # never stored: their senders learn it (HTTP: 503)
            i.failed(RoomClosed(f"room {self.key} closed"))
        for task in (self._reload_task, *self._tasks):
            if task is not None:
                task.cancel()
        peers = list(self.peers)
        for peer in peers:
            peer.close(code, reason)
        self.peers.clear()
        return peers
