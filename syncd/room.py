"""A Room is one loaded document: its in-memory replica, its peers, their presence.

The path of an update, and why it is ordered so:

1. a peer's update is validated (it decodes) and queued in the room;
2. the room's flush task hands everything queued to the group commit and waits for the commit;
3. only then is it applied to the in-memory document and sent to the other peers.

So the in-memory document, and everything any client or service can see, is always a prefix of
what is durably stored: killing the daemon at any instant loses nothing anyone has seen. Updates
that arrive while a commit is in flight form the next batch; a batch goes out to each peer as
one merged update (one message per peer per batch, not one per update).
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
    StateTooLarge,
    decode_awareness,
    encode_awareness_update,
    stamp,
)
from crdt.protocol import ProtocolError, SyncStep, encode_awareness, encode_sync
from crdt.updates import EMPTY_UPDATE, merge
from storage import DocKey, DocMeta, GroupCommit, LoadedDoc, NewUpdate

from .peer import CloseCode, Peer, PeerState

__all__ = ["Room", "RoomState"]

log = logging.getLogger("syncd.room")

# Updates committed, merged and sent together at most: merging grows quadratically with the
# number of updates (see crdt.updates.merge), so a burst is handled as several rounds.
MAX_BATCH = 256

# Beyond this many writers in one batch, everyone gets the full merged update (their own edits
# echoed back, which Yjs ignores) instead of one merge per writer.
_MAX_PERSONAL_MERGES = 8


class RoomState(enum.Enum):
    OPEN = "open"
    CLOSED = "closed"
    FAILED = "failed"


@dataclass(slots=True)
class _Incoming:
    peer: Peer | None  # None: not from a connection (HTTP, service)
    data: bytes
    principal: str
    origin: str
    done: asyncio.Future[int] | None = None  # resolved with the seq once stored


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
    ) -> None:
        self.key = key
        self.doc = pycrdt.Doc()
        self.peers: set[Peer] = set()
        self.awareness = awareness if awareness is not None else AwarenessStates()
        self.meta: DocMeta | None = None  # access settings, cached for joining peers
        self._awareness_holders: dict[int, Peer] = {}
        self.state = RoomState.OPEN
        self.seq = 0
        self.snapshot_seq = 0
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

    def __repr__(self) -> str:
        return f"<Room {self.key} {self.state.value} peers={len(self.peers)} seq={self.seq}>"

    # -- loading ---------------------------------------------------------------------------

    def restore(self, loaded: LoadedDoc) -> None:
        """Fill the replica from storage: the snapshot, then the log tail in order."""
        if loaded.snapshot:
            self.doc.apply_update(loaded.snapshot)
        for update in loaded.tail:  # in order: yrs mishandles out-of-order updates
            self.doc.apply_update(update)
        self.seq = loaded.seq
        self.snapshot_seq = loaded.snapshot_seq
        self._bytes_since_snapshot = sum(len(u) for u in loaded.tail)

    @property
    def idle(self) -> bool:
        return not self.peers and not self._pending and self._flush_task is None

    @property
    def pending(self) -> int:
        return len(self._pending)

    # -- peers -----------------------------------------------------------------------------

    def join(self, peer: Peer) -> None:
        """Add a peer and greet it as the y-websocket server does: our step 1, then presence."""
        if self.state is not RoomState.OPEN:
            raise RuntimeError(f"room {self.key} is {self.state.value}")
        self.peers.add(peer)
        peer.send(encode_sync(SyncStep.STEP1, self.doc.get_state()))
        live = self.awareness.live()
        if live:
            peer.send(encode_awareness(encode_awareness_update(live)))

    def leave(self, peer: Peer) -> None:
        if peer not in self.peers:
            return
        self.peers.discard(peer)
        for cid in peer.awareness_ids:
            if self._awareness_holders.get(cid) is peer:
                del self._awareness_holders[cid]
        gone = self.awareness.remove(peer.awareness_ids)
        if gone:
            self._broadcast(encode_awareness(encode_awareness_update(gone)), None)

    # -- messages from a peer ---------------------------------------------------------------

    def sync_step2_for(self, state_vector: bytes) -> bytes:
        """The answer to a sync step 1: everything we hold that the asker lacks."""
        try:
            update = self.doc.get_update(state_vector)
        except ValueError as exc:
            raise ProtocolError("invalid state vector") from exc
        return encode_sync(SyncStep.STEP2, update)

    def awareness_from(self, peer: Peer, update: bytes) -> bytes | None:
        """Apply a peer's presence update and relay what changed.

        Stock clients echo every awareness change they receive back to the server, other
        clients' states included, with the clock unchanged; so stale entries are skipped before
        anything else (they are never stored or relayed, so they need no parsing). Every other
        state is parsed as a stock client's ``JSON.parse`` would read it and written out again
        with ``principal`` set from the token (``crdt.awareness.stamp``): what others see can
        neither be forged nor break their ``applyAwarenessUpdate``. A client id belongs to the
        connection whose newer, non-null state first claimed it; a connection of the same
        principal may take it over (a client that reconnected before we noticed its old socket
        died), one of another principal may not touch it at all. The document's presence bounds
        (``self.awareness.limits``) are checked before anything changes, so a refused message
        changes nothing, and the per-connection one before any state is parsed.

        Returns:
            The echo ``/v1/sync`` sends back to the sender, as Hocuspocus does (a stock provider
            that hears nothing for 30 s drops its socket): for each client id of the update,
            what the room now holds for it, or the sender's state as validated and stamped when
            the room holds nothing (its presence was full); ``None`` for an empty update. So the
            echo never carries what the server did not parse and re-serialise; and a
            reconnected provider whose stale state meets the server's removal of it hears that
            removal, which makes it announce itself again with a newer clock.

        Raises:
            ProtocolError: a malformed update or state, or more client ids on this connection
                than ``max_ids_per_connection`` (4400). A state over ``max_state_bytes``
                closes the peer here, with 4413, and returns ``None``.
        """
        limits = self.awareness.limits
        decoded = decode_awareness(update)
        # Only the entry that wins for each id counts (y-protocols applies them in order: the
        # highest clock, a removal at equal clocks), so a message repeating one id with rising
        # clocks costs one parse, not thousands.
        latest: dict[int, AwarenessEntry] = {}
        for e in decoded:
            prev = latest.get(e.client_id)
            if prev is None or (e.clock, e.removed) > (prev.clock, prev.removed):
                latest[e.client_id] = e

        def may_announce(client_id: int) -> bool:
            holder = self._awareness_holders.get(client_id)
            return (
                holder is None
                or holder is peer
                or holder not in self.peers
                or holder.principal == peer.principal
            )

        owned = [
            e for e in latest.values() if self.awareness.accepts(e) and may_announce(e.client_id)
        ]
        # Before parsing anything: at most max_ids_per_connection states are parsed per message.
        claimed = {e.client_id for e in owned if not e.removed} - peer.awareness_ids
        if len(peer.awareness_ids) + len(claimed) > limits.max_ids_per_connection:
            raise ProtocolError(
                f"awareness for more than {limits.max_ids_per_connection} client ids "
                "on one connection"
            )
        try:
            owned = [stamp(e, peer.principal, max_bytes=limits.max_state_bytes) for e in owned]
        except StateTooLarge as exc:
            log.info("doc %s: peer %s: %s; closing 4413", self.key, peer.id, exc)
            peer.close(CloseCode.TOO_LARGE, str(exc))
            return None
        for e in owned:
            if e.removed:
                continue
            holder = self._awareness_holders.get(e.client_id)
            if holder is not None and holder is not peer:  # a reconnected client takes it over
                holder.awareness_ids.discard(e.client_id)
            self._awareness_holders[e.client_id] = peer
            peer.awareness_ids.add(e.client_id)
        refused_before = self.awareness.refused
        accepted = self.awareness.apply(owned)
        if self.awareness.refused and not refused_before:  # once per loaded document
            log.warning(
                "doc %s: presence is full (%d clients, %d bytes): new states are dropped "
                "(counted in syncd_awareness_refused)",
                self.key,
                len(self.awareness),
                self.awareness.live_bytes,
            )
        if accepted:
            self._broadcast(encode_awareness(encode_awareness_update(accepted)), peer)
        validated = {e.client_id: e for e in owned}
        echo = [
            self.awareness.get(cid) or validated[cid]
            for cid in dict.fromkeys(e.client_id for e in decoded)
            if self.awareness.get(cid) is not None or cid in validated
        ]
        return encode_awareness(encode_awareness_update(echo)) if echo else None

    def regrant(self, peer: Peer, readonly: bool) -> None:
        """Apply a changed role to a live peer (DESIGN.md §1.4).

        An upgraded viewer gets a sync step 1: it answers with everything we lack from it,
        including the edits it made while its updates were being dropped, which its later
        edits depend on.
        """
        was_readonly, peer.readonly = peer.readonly, readonly
        if was_readonly and not readonly and peer in self.peers:
            peer.send(encode_sync(SyncStep.STEP1, self.doc.get_state()))

    def awareness_message(self) -> bytes | None:
        live = self.awareness.live()
        return encode_awareness(encode_awareness_update(live)) if live else None

    async def ingest(
        self,
        peer: Peer | None,
        update: bytes,
        principal: str,
        origin: str = "client",
        *,
        ack: bool = False,
    ) -> asyncio.Future[int] | None:
        """Queue a validated update for commit; with ``ack``, returns a future of its seq.

        Waits while the room already holds ``max_pending_bytes`` of uncommitted updates, so a
        writer faster than the database is slowed down at its socket instead of filling memory.
        Returns ``None`` without queueing if the peer lost its write access meanwhile.
        """
        while not self._space.is_set():
            await self._space.wait()
        if self.state is not RoomState.OPEN:
            raise RuntimeError(f"room {self.key} is {self.state.value}")
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
        self._pending.append(_Incoming(peer, update, principal, origin, done))
        self._pending_bytes += len(update)
        if self._pending_bytes >= self._max_pending_bytes:
            self._space.clear()
        if self._flush_task is None:
            self._flush_task = asyncio.create_task(self._flush(), name=f"flush-{self.key}")
        return done

    # -- commit and fan-out ------------------------------------------------------------------

    async def _flush(self) -> None:
        try:
            while self._pending and self.state is RoomState.OPEN:
                batch = self._pending[:MAX_BATCH]
                del self._pending[:MAX_BATCH]
                self._pending_bytes -= sum(len(i.data) for i in batch)
                if self._pending_bytes < self._max_pending_bytes:
                    self._space.set()
                await self._commit_and_apply(batch)
        finally:
            self._flush_task = None

    async def _commit_and_apply(self, batch: list[_Incoming]) -> None:
        items = [NewUpdate(i.data, i.principal, i.origin) for i in batch]
        try:
            seqs = await self._commit.submit(self.key, items)
        except Exception as exc:
            # Nothing was stored and nobody has seen these updates. Their senders still hold
            # them (a Yjs client keeps its state) and send them again when they reconnect, so
            # closing them with a transient code loses nothing.
            log.warning("doc %s: commit of %d updates failed: %s", self.key, len(batch), exc)
            senders = {i.peer for i in batch if i.peer is not None}
            # Their later updates depend on the lost ones: storing those alone would leave a
            # gap in each sender's causal chain. They all come back with the reconnect.
            dropped = [i for i in self._pending if i.peer in senders]
            self._pending = [i for i in self._pending if i.peer not in senders]
            self._pending_bytes -= sum(len(i.data) for i in dropped)
            if self._pending_bytes < self._max_pending_bytes:
                self._space.set()
            for i in batch + dropped:
                if i.done is not None and not i.done.done():
                    i.done.set_exception(exc)
            for peer in senders:
                peer.close(CloseCode.INTERNAL_ERROR, "storage unavailable, retry later")
            return
        merged = merge([i.data for i in batch])
        try:
            self.doc.apply_update(merged)
        except Exception as exc:
            # Stored but cannot be applied: this replica can no longer be trusted.
            log.error("doc %s: stored update failed to apply, closing room: %s", self.key, exc)
            for i, seq in zip(batch, seqs, strict=True):
                if i.done is not None and not i.done.done():
                    i.done.set_result(seq)
            self.fail()
            return
        self.seq = seqs[-1]
        self._bytes_since_snapshot += sum(len(i.data) for i in batch)
        for i, seq in zip(batch, seqs, strict=True):
            if i.done is not None and not i.done.done():
                i.done.set_result(seq)
        self._fan_out(batch, merged)
        if self._on_compact is not None and (
            self.seq - self.snapshot_seq >= self._compact_after_updates
            or self._bytes_since_snapshot >= self._compact_after_bytes
        ):
            self._on_compact(self)

    def compacted(self, upto_seq: int) -> None:
        if upto_seq > self.snapshot_seq:
            self.snapshot_seq = upto_seq
            self._bytes_since_snapshot = 0

    def _fan_out(self, batch: list[_Incoming], merged: bytes) -> None:
        everyone = encode_sync(SyncStep.UPDATE, merged)
        writers: dict[Peer, list[bytes]] = {}
        for i in batch:
            if i.peer is not None:
                writers.setdefault(i.peer, []).append(i.data)
        if len(writers) > _MAX_PERSONAL_MERGES:
            writers = {}
        for peer in tuple(self.peers):
            own = writers.get(peer)
            if own is None:
                peer.send(everyone)
                continue
            others = [i.data for i in batch if i.peer is not peer]
            if others:
                peer.send(encode_sync(SyncStep.UPDATE, merge(others)))

    def _broadcast(self, message: bytes, exclude: Peer | None) -> None:
        for peer in tuple(self.peers):
            if peer is not exclude:
                peer.send(message)

    # -- end of life ---------------------------------------------------------------------------

    async def drain(self) -> None:
        """Wait until every queued update is committed (graceful shutdown, unload)."""
        while self._flush_task is not None:
            await asyncio.shield(self._flush_task)

    def fail(self) -> None:
        self.state = RoomState.FAILED
        for peer in tuple(self.peers):
            peer.close(CloseCode.INTERNAL_ERROR, "document failed, reconnect")
        self.peers.clear()

    def close(self, code: int, reason: str) -> list[Peer]:
        """Close the room and its peers; returns the peers (to await their close frames)."""
        self.state = RoomState.CLOSED
        peers = list(self.peers)
        for peer in peers:
            peer.close(code, reason)
        self.peers.clear()
        return peers

