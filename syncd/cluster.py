"""What a node does with what the broker brings from the other nodes (DESIGN.md §1.9).

Every event is about committed state, so applying it needs no database write; when one may
have been lost (Redis restarted, a subscription dropped), the node re-reads what it has loaded
from the store, which is the truth: documents' seqs (gaps filled from the log) and access
settings (revocations and downgrades made elsewhere take effect here). The same resync also
runs every ``RESYNC_SECONDS`` as a safety net for a message that slipped between a document's
load and its subscription.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from storage import DocKey, DocMeta, Store, StoreUnavailable

from .broker import (
    AccessChanged,
    Broker,
    BrokerState,
    Deleted,
    DocumentEvent,
    PresenceChanged,
    PresenceWanted,
    UpdatesCommitted,
)
from .commit_signal import CommitSignal
from .rooms import Rooms

__all__ = ["Cluster"]

log = logging.getLogger("syncd.cluster")

RESYNC_SECONDS = 5.0


class Cluster:
    """The :class:`~syncd.broker.ClusterEvents` of one node."""

    def __init__(
        self,
        broker: Broker,
        rooms: Rooms,
        store: Store,
        commits: CommitSignal,
        apply_access: Callable[[DocMeta], None],
    ) -> None:
        self.broker = broker
        self.rooms = rooms
        self.store = store
        self.commits = commits
        self._apply_access = apply_access
        self._tasks: set[asyncio.Task[None]] = set()
        self._periodic: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.broker.start(self)
        if self.broker.state is not BrokerState.LOCAL:
            self._periodic = asyncio.create_task(self._resync_every(), name="cluster-resync")

    async def stop(self) -> None:
        if self._periodic is not None:
            self._periodic.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._periodic
        for task in list(self._tasks):
            task.cancel()
        await self.broker.stop()

    # -- ClusterEvents -------------------------------------------------------------------------

    def document_event(self, key: DocKey, event: DocumentEvent) -> None:
        if isinstance(event, Deleted):
            self.rooms.deleted_elsewhere(key)
            return
        room = self.rooms.get_loaded(key)
        if room is None:
            return
        match event:
            case UpdatesCommitted():
                room.remote_updates(event)
            case PresenceChanged():
                room.remote_presence(event)
            case PresenceWanted():
                room.share_presence()
            case AccessChanged():
                self._spawn(self._reread_access([key]))

    def feed_wake_up(self) -> None:
        self.commits.notify()

    def resync(self) -> None:
        self._spawn(self._resync())

    def watching(self, key: DocKey) -> None:
        # Between reading the document (and its access settings) and this subscription, an
        # update, a revocation or a deletion on another node would otherwise be missed.
        self._spawn(self._check(key))

    async def _check(self, key: DocKey) -> None:
        try:
            room = await self.rooms.when_loaded(key)
            if room is None:
                return
            # Asked only now that the room is loaded: the answers would be dropped by a
            # document still loading (there is no room to hold them yet).
            self.broker.publish(key, PresenceWanted(self.broker.node_id))
            committed = await self.store.seqs([key])
            if key in committed:
                room.catch_up(committed[key])
            await self._reread_access([key])
        except StoreUnavailable as exc:  # the periodic resync tries again
            log.warning("cluster: could not check %s after subscribing: %s", key, exc)

    def node_gone(self, node: str) -> None:
        for room in self.rooms.loaded():
            room.node_gone(node)

    # -- re-reading the truth ------------------------------------------------------------------

    async def _resync(self) -> None:
        try:
            await self.rooms.resync()
            await self._reread_access([room.key for room in self.rooms.loaded()])
        except StoreUnavailable as exc:  # the next resync tries again
            log.warning("cluster: resync failed: %s", exc)
        self.commits.notify()  # feed readers may have missed wake-ups too

    async def _reread_access(self, keys: list[DocKey]) -> None:
        for key in keys:
            try:
                meta = await self.store.meta(key)
            except StoreUnavailable as exc:
                log.warning("cluster: could not re-read access of %s: %s", key, exc)
                return
            if meta is not None and not meta.deleted:
                self._apply_access(meta)
            elif meta is not None:
                self.rooms.deleted_elsewhere(key)

    async def _resync_every(self) -> None:
        while True:
            await asyncio.sleep(RESYNC_SECONDS)
            with contextlib.suppress(StoreUnavailable):
                await self.rooms.resync()

    def _spawn(self, coro) -> None:  # type: ignore[no-untyped-def]
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
