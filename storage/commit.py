"""Group commit: many rooms' updates share one database transaction.

Rooms hand their batches to one :class:`GroupCommit`; its single writer task commits whatever
has gathered since the previous commit in one transaction (SQLite has one writer anyway, and a
Postgres commit costs the same for one row or a hundred). Under load the batches grow by
themselves; ``window_ms`` adds an optional wait to gather more when the load is light.

A failed transaction fails every submitter of the round. A document refused by the store (a
tombstone: ``DocumentDeleted``) fails only its own submitters; the others' updates are
committed with the round.

Bound: each room has at most one batch in flight (it awaits the result before sending the next),
so the pending list never holds more entries than there are open rooms.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence

from .store import DocKey, DocumentDeleted, NewUpdate, Store

__all__ = ["GroupCommit"]

log = logging.getLogger("syncd.storage")


class GroupCommit:
    def __init__(
        self,
        store: Store,
        *,
        window_ms: float = 0.0,
        on_commit: Callable[[int, float], None] | None = None,
    ) -> None:
        self.store = store
        self.window = window_ms / 1000.0
        self._on_commit = on_commit  # (number of updates, seconds) for metrics
        self._pending: list[tuple[DocKey, Sequence[NewUpdate], asyncio.Future[list[int]]]] = []
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="syncd-group-commit")

    async def stop(self) -> None:
        """Commit what is pending, then stop."""
        if self._task is None:
            return
        task, self._task = self._task, None
        while self._pending:
            await self._commit_pending()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    async def submit(self, key: DocKey, items: Sequence[NewUpdate]) -> list[int]:
        """Store ``items`` (in order) for ``key``; return their seqs once they are committed.

        Raises:
            DocumentDeleted: ``key`` is deleted; nothing of ``items`` was stored.
            StoreUnavailable: the commit failed; nothing of this round was stored.
        """
        if self._task is None:
            raise RuntimeError("group commit is not running")
        fut: asyncio.Future[list[int]] = asyncio.get_running_loop().create_future()
        self._pending.append((key, items, fut))
        self._wake.set()
        return await fut

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            if self.window:
                await asyncio.sleep(self.window)
            await self._commit_pending()

    async def _commit_pending(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        batch: dict[DocKey, list[NewUpdate]] = {}
        for key, items, _ in pending:
            batch.setdefault(key, []).extend(items)
        started = time.perf_counter()
        try:
            seqs = await self.store.append(batch)
        except Exception as exc:
            # Nothing of this batch is stored; every submitter learns it and decides.
            for _, _, fut in pending:
                if not fut.done():
                    fut.set_exception(exc)
            return
        if self._on_commit is not None:
            stored = sum(len(v) for v in seqs.values() if not isinstance(v, DocumentDeleted))
            self._on_commit(stored, time.perf_counter() - started)
        offsets: dict[DocKey, int] = {}
        for key, items, fut in pending:
            at = offsets.get(key, 0)
            offsets[key] = at + len(items)
            result = seqs.get(key, [])
            if fut.done():
                continue
            if isinstance(result, DocumentDeleted):
                fut.set_exception(DocumentDeleted(key))  # one exception object per waiter
            else:
                fut.set_result(result[at : at + len(items)])
