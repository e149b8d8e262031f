"""Pruning the audit trail: records older than ``SYNCD_AUDIT_RETENTION_SECONDS`` go.

One ``DELETE … WHERE at < cutoff`` (the ``(tenant, at)`` index does not serve a delete across
tenants, but the rows it removes are the oldest, and it runs once every ``interval``: a tenth of
the retention, at least every second and at most once an hour), so the table stays bounded by
retention times the rate of reads served. Every node runs it; concurrent prunes delete the same
rows, which is harmless. ``passes`` counts completed passes, so a test can wait for one.
"""

from __future__ import annotations

import logging

from storage.audit import SqlAudit

from .periodic import Periodic

__all__ = ["AuditSweep"]

log = logging.getLogger("syncd.audit")

MAX_INTERVAL = 3600.0
MIN_INTERVAL = 1.0


class AuditSweep(Periodic):
    def __init__(self, audit: SqlAudit, retention_seconds: float) -> None:
        self.audit = audit
        self.retention_seconds = retention_seconds
        interval = max(MIN_INTERVAL, min(MAX_INTERVAL, retention_seconds / 10))
        super().__init__("audit prune", interval, log)

    async def run_pass(self) -> None:
        pruned = await self.audit.prune(self.retention_seconds)
        if pruned:
            log.info("audit: pruned %d records past retention", pruned)
