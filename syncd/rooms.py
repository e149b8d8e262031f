"""The set of loaded documents: deduplicated loads, idle unloading, background compaction.

A room that unloads, or closes at shutdown, leaves its answer to a new client behind (when the
document is big enough for that to matter), so that the next cold load answers at once
(storage/served_state.py).

Two peers that open the same document at the same instant share one pending load (a map of
in-flight loads, as Hocuspocus does), so there is never a second in-memory copy. A load that
fails fails for every waiter and is forgotten: a document is never served empty because its
storage was unreachable.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Coroutine
from typing import Any

from crdt.awareness import AwarenessLimits, AwarenessStates
from crdt.replay import SNAPSHOT_SEQ
from storage import DocKey, DocumentDeleted, GroupCommit, Store, StoreUnavailable
from storage.served_state import MIN_SERVED_BYTES

from .broker import Broker, Deleted, LocalBroker
from .member import Member
from .metrics import Metrics
from .peer import CloseCode
from .room import Room, RoomState
from .settings import Settings

__all__ = ["DocumentNotFound", "Rooms"]

log = logging.getLogger("syncd.rooms")


class DocumentNotFound(LookupError):
    """The document does not exist and the caller may not create it."""


class Rooms:
    def __init__(
        self,
        store: Store,
        commit: GroupCommit,
        settings: Settings,
        metrics: Metrics,
        broker: Broker | None = None,
    ) -> None:
        self.store = store
        self.broker: Broker = broker if broker is not None else LocalBroker()
        self.commit = commit
        self.settings = settings
        self.metrics = metrics
        self._rooms: dict[DocKey, Room] = {}
        self._loading: dict[DocKey, asyncio.Future[Room]] = {}
        self._unload_timers: dict[DocKey, asyncio.TimerHandle] = {}
        self._compacting: dict[DocKey, asyncio.Task[None]] = {}
        self._background: set[asyncio.Task[None]] = set()
        # Documents being deleted: neither loaded nor written until the tombstone is stored.
        self._deleting: set[DocKey] = set()
        self._closing = False

    def __len__(self) -> int:
        return len(self._rooms)

    def loaded(self) -> list[Room]:
        return list(self._rooms.values())

    def get_loaded(self, key: DocKey) -> Room | None:
        return self._rooms.get(key)

    async def when_loaded(self, key: DocKey) -> Room | None:
        """The room for ``key`` once a load in flight has ended; ``None`` if it is not loaded
        (or its load failed)."""
        pending = self._loading.get(key)
        if pending is not None:
            with contextlib.suppress(Exception):
                await asyncio.shield(pending)
        return self._rooms.get(key)

    async def acquire(self, key: DocKey, *, create: bool) -> Room:
        """The loaded room for ``key``, loading it (once) if needed.

        Raises:
            DocumentNotFound: it does not exist and ``create`` is false.
            DocumentDeleted: it is being deleted.
            StoreUnavailable: the database could not be read.
        """
        if self._closing:
            raise StoreUnavailable("server is shutting down")
        if key in self._deleting:
            raise DocumentDeleted(key)
        timer = self._unload_timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        room = self._rooms.get(key)
        if room is not None and room.state is RoomState.OPEN:
            return room
        pending = self._loading.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._load(key, create))
            self._loading[key] = pending
            pending.add_done_callback(lambda _: self._loading.pop(key, None))
        room = await asyncio.shield(pending)
        if key in self._deleting:
            raise DocumentDeleted(key)
        if room.state is not RoomState.OPEN:  # it closed while we waited
            return await self.acquire(key, create=create)
        return room

    async def _load(self, key: DocKey, create: bool) -> Room:
        # Watch before reading, so that what other nodes commit from now on reaches the room;
        # what slips between (the subscription is asynchronous) is caught by the resync.
        self.broker.watch(key)
        try:
            loaded = await self.store.load(key)
            if loaded is None:
                if not create:
                    raise DocumentNotFound(str(key))
                await self.store.create(key)
                loaded = await self.store.load(key)
                if loaded is None:  # a tombstone: deleted documents are not re-created
                    raise DocumentNotFound(str(key))
            room = Room(
                key,
                self.commit,
                max_pending_bytes=self.settings.room_pending_bytes,
                compact_after_updates=self.settings.compact_after_updates,
                compact_after_bytes=self.settings.compact_after_bytes,
                on_compact=self._schedule_compaction,
                awareness=AwarenessStates(
                    AwarenessLimits(
                        max_state_bytes=self.settings.max_awareness_state_bytes,
                        max_clients=self.settings.max_awareness_clients,
                        max_ids_per_connection=self.settings.max_awareness_ids_per_connection,
                        max_total_bytes=self.settings.max_awareness_document_bytes,
                    ),
                    on_refused=self.metrics.on_awareness_refused,
                ),
                broker=self.broker,
            )
            room.on_quarantine = self._quarantine
            room.on_rejected = self.metrics.updates_rejected.inc
            if loaded.served is not None and (loaded.snapshot is None or loaded.snapshot_checked):
                # The served state is current: answer with it, build the replica behind it.
                # (An unmarked snapshot is checked and marked now instead, once.)
                room.restore_later(loaded, loaded.served)
                skipped = []
            else:
                skipped = room.restore(loaded)
        except DocumentNotFound:
            self._unwatch_unless_loaded(key)
            raise
        except Exception:
            self._unwatch_unless_loaded(key)
            self.metrics.load_failures.inc()
            log.exception("doc %s: load failed", key)
            raise
        self._rooms[key] = room
        self.metrics.documents.set(len(self._rooms))
        snapshot_left_out = any(seq == SNAPSHOT_SEQ for seq, _ in skipped)
        if loaded.snapshot and not loaded.snapshot_checked and not snapshot_left_out:
            self._mark_checked(key, loaded.snapshot_seq, loaded.snapshot)
        return room

    def _mark_checked(self, key: DocKey, upto_seq: int, snapshot: bytes) -> None:
        """This load checked an unmarked snapshot (one an older syncd wrote): mark it, so that
        the next load trusts it (storage/snapshot_mark.py). In the background; best effort."""

        async def run() -> None:
            try:
                await self.store.mark_snapshot_checked(key, upto_seq, snapshot)
            except StoreUnavailable as exc:  # checked again at the next load, marked then
                log.warning("doc %s: could not mark its snapshot checked: %s", key, exc)

        self._in_background(run(), f"mark-snapshot-{key}")

    def _in_background(self, work: Coroutine[Any, Any, None], name: str) -> None:
        task = asyncio.create_task(work, name=name)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _keep_served_state(self, room: Room) -> Coroutine[Any, Any, None] | None:
        """What stores ``room``'s answer to a new client for the next cold load of its
        document (storage/served_state.py), or ``None`` when there is nothing worth keeping:
        a small document, or one whose stored served state is still current (never built)."""
        if not room.built or room.state is not RoomState.OPEN:
            return None
        served = room.served_state()
        if served is None or len(served.update) < MIN_SERVED_BYTES:
            return None
        key, epoch = room.key, room.epoch

        async def run() -> None:
            try:
                await self.store.save_served_state(key, epoch, served)
            except StoreUnavailable as exc:  # the next cold load takes the usual path
                log.warning("doc %s: could not keep its served state: %s", key, exc)

        return run()

    def _quarantine(self, room: Room, skipped: list[tuple[int, str]]) -> None:
        """Flag stored updates the room had to leave out, so that compaction and the feed leave
        them out too (in the background: the room serves the rest meanwhile)."""
        self.metrics.quarantined_updates.inc(len(skipped))
        task = asyncio.create_task(
            self._flag(room.key, dict(skipped)), name=f"quarantine-{room.key}"
        )
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _flag(self, key: DocKey, seqs: dict[int, str]) -> None:
        try:
            await self.store.quarantine(key, seqs)
        except StoreUnavailable as exc:  # left out of this load anyway; flagged at the next one
            log.warning("doc %s: could not record quarantined updates: %s", key, exc)

    def release(self, room: Room) -> None:
        """Called when a peer leaves: unload the room after the idle delay if nobody is left."""
        if room.state is not RoomState.OPEN:
            self._forget(room)
            return
        if room.peers or self._closing:
            return
        old = self._unload_timers.pop(room.key, None)
        if old is not None:
            old.cancel()
        loop = asyncio.get_running_loop()
        self._unload_timers[room.key] = loop.call_later(
            self.settings.idle_unload_seconds, self._unload_if_idle, room
        )

    def _unload_if_idle(self, room: Room) -> None:
        self._unload_timers.pop(room.key, None)
        if self._rooms.get(room.key) is not room:
            return
        if not room.idle or room.key in self._compacting:
            self.release(room)  # try again later
            return
        keep = self._keep_served_state(room)
        if keep is not None:
            self._in_background(keep, f"served-state-{room.key}")
        room.close(CloseCode.NORMAL, "unloaded")
        self._forget(room)
        log.debug("doc %s: unloaded", room.key)

    async def delete(self, key: DocKey) -> bool:
        """Delete a document: from the first instant until its tombstone is stored, it can be
        neither loaded nor written here; its live peers are closed with 4404. Returns whether
        the store deleted it (``False``: absent or already deleted).

        Raises:
            StoreUnavailable: the tombstone could not be stored (the document stays).
        """
        self._deleting.add(key)
        try:
            pending = self._loading.get(key)
            if pending is not None:  # a load in flight ends first; its room closes below
                await asyncio.gather(pending, return_exceptions=True)
            room = self._rooms.get(key)
            peers: list[Member] = []
            if room is not None:
                peers = room.close(CloseCode.NOT_FOUND, "document deleted")
                self._forget(room)
                await room.drain()  # a commit in flight lands before the tombstone, not after
            deleted = await self.store.delete(key)
            if deleted:
                self.broker.publish(key, Deleted(self.broker.node_id))
        finally:
            self._deleting.discard(key)
        # Close frames are awaited after the tombstone: a client that does not read its close
        # frame must not hold the deletion open.
        await asyncio.gather(*(p.wait_closed() for p in peers), return_exceptions=True)
        return deleted

    def _forget(self, room: Room) -> None:
        if self._rooms.get(room.key) is room:
            del self._rooms[room.key]
            self.metrics.documents.set(len(self._rooms))
            self._unwatch_unless_loaded(room.key)

    def _unwatch_unless_loaded(self, key: DocKey) -> None:
        if key not in self._rooms and key not in self._loading:
            self.broker.unwatch(key)

    # -- other nodes -----------------------------------------------------------------------

    def deleted_elsewhere(self, key: DocKey) -> None:
        """Another node deleted the document: close it here too (4404)."""
        room = self._rooms.get(key)
        if room is not None:
            room.close(CloseCode.NOT_FOUND, "document deleted")
            self._forget(room)

    def close_tenant(self, tenant: str, code: int, reason: str) -> int:
        """Close every loaded document of ``tenant`` (its data keys were shredded); returns
        how many."""
        rooms = [room for room in self._rooms.values() if room.key.tenant == tenant]
        for room in rooms:
            room.close(code, reason)
            self._forget(room)
        return len(rooms)

    async def resync(self) -> None:
        """Bring every loaded room up to what the store has committed (after messages from
        other nodes may have been lost)."""
        rooms = {room.key: room for room in self._rooms.values()}
        if not rooms:
            return
        committed = await self.store.seqs(list(rooms))
        for key, room in rooms.items():
            if key in committed:
                room.catch_up(committed[key])

    # -- compaction ------------------------------------------------------------------------

    def _schedule_compaction(self, room: Room) -> None:
        if room.key in self._compacting or self._closing:
            return
        self._compacting[room.key] = asyncio.create_task(
            self._compact(room), name=f"compact-{room.key}"
        )

    async def _compact(self, room: Room) -> None:
        try:
            upto = await self.store.compact(room.key)
            room.compacted(upto)
            self.metrics.compactions.inc()
        except StoreUnavailable as exc:
            log.warning("doc %s: compaction failed, will retry: %s", room.key, exc)
        except Exception:
            log.exception("doc %s: compaction failed", room.key)
        finally:
            self._compacting.pop(room.key, None)

    # -- shutdown ----------------------------------------------------------------------------

    async def close(self) -> None:
        """Commit every queued update, then close all peers with 1001 (going away)."""
        self._closing = True
        for timer in self._unload_timers.values():
            timer.cancel()
        self._unload_timers.clear()
        rooms = list(self._rooms.values())
        await asyncio.gather(*(r.drain() for r in rooms), return_exceptions=True)
        keep = [k for k in map(self._keep_served_state, rooms) if k is not None]
        await asyncio.gather(*keep, return_exceptions=True)
        reason = "server shutting down"
        peers = [p for room in rooms for p in room.close(CloseCode.GOING_AWAY, reason)]
        await asyncio.gather(*(p.wait_closed() for p in peers), return_exceptions=True)
        if self._compacting:
            await asyncio.gather(*self._compacting.values(), return_exceptions=True)
        self._rooms.clear()
        self.metrics.documents.set(0)
