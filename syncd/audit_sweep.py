"""Pruning the audit trail: records older than ``SYNCD_AUDIT_RETENTION_SECONDS`` go.

One ``DELETE … WHERE at < cutoff`` (the ``(tenant, at)`` index does not serve a delete across
tenants, but the rows it removes are the oldest, and it runs once every ``interval``: a tenth of
the retention, at least every second and at most once an hour), so the table stays bounded by
retention times the rate of reads served. Every node runs it; concurrent prunes delete the same
rows, which is harmless. ``passes`` counts completed passes, so a test can wait for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from storage import StoreUnavailable
from storage.audit import SqlAudit

__all__ = ["AuditSweep"]

log = logging.getLogger("syncd.audit")

MAX_INTERVAL = 3600.0
MIN_INTERVAL = 1.0


class AuditSweep:
    def __init__(self, audit: SqlAudit, retention_seconds: float) -> None:
        self.audit = audit
        self.retention_seconds = retention_seconds
        self.interval = max(MIN_INTERVAL, min(MAX_INTERVAL, retention_seconds / 10))
        self.passes = 0
        self._passed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="audit-sweep")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def wait_passes(self, count: int) -> None:
        """Wait until ``count`` more passes have completed."""
        async with self._passed:
            target = self.passes + count
            await self._passed.wait_for(lambda: self.passes >= target)

    async def _run(self) -> None:
        while True:
            try:
                pruned = await self.audit.prune(self.retention_seconds)
                if pruned:
                    log.info("audit: pruned %d records past retention", pruned)
            except StoreUnavailable as exc:  # the next pass tries again
                log.warning("audit prune failed: %s", exc)
            except Exception:
                log.exception("audit prune failed")
            async with self._passed:
                self.passes += 1
                self._passed.notify_all()
            await asyncio.sleep(self.interval)
