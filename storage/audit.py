"""The audit trail (DESIGN.md §1.11) over ``syncd_audit``: what was served to services.

One row per feed page or HTTP read served to a service or admin: who (``service``, its
``purpose``), what kind of read, which documents, and whose data it saw (``principals``). Rows
are listed oldest first by id (ids only grow, so ``after`` pages through a growing table without
skipping a row) and pruned once older than ``SYNCD_AUDIT_RETENTION_SECONDS``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from .row_security import ALL_TENANTS
from .schema import audit

if TYPE_CHECKING:
    from .sql import SqlStore

__all__ = ["AuditRecord", "SqlAudit"]


@dataclass(frozen=True, slots=True)
class AuditRecord:
    id: int
    tenant: str
    at: float
    service: str
    purpose: str | None
    kind: str  # "feed" | "http"
    documents: list[str]
    principals: list[str]


class SqlAudit:
    def __init__(self, store: SqlStore) -> None:
        self.store = store

    async def record(
        self,
        tenant: str,
        service: str,
        purpose: str | None,
        kind: str,
        documents: Iterable[str],
        principals: Iterable[str],
    ) -> None:
        async with self.store._begin(tenants=[tenant]) as conn:
            await conn.execute(
                audit.insert().values(
                    tenant=tenant,
                    at=time.time(),
                    service=service,
                    purpose=purpose or "",
                    kind=kind,
                    documents=json.dumps(sorted(set(documents))),
                    principals=json.dumps(sorted(set(principals))),
                )
            )

    async def list(
        self,
        tenant: str,
        *,
        since: float | None = None,
        service: str | None = None,
        after: int = 0,
        limit: int = 100,
    ) -> list[AuditRecord]:
        """Records of ``tenant`` with an id above ``after``, oldest first."""
        where = [audit.c.tenant == tenant, audit.c.id > after]
        if since is not None:
            where.append(audit.c.at >= since)
        if service is not None:
            where.append(audit.c.service == service)
        async with self.store._begin(tenants=[tenant], write=False) as conn:
            rows = await conn.execute(select(audit).where(*where).order_by(audit.c.id).limit(limit))
            return [
                AuditRecord(
                    r.id,
                    r.tenant,
                    r.at,
                    r.service,
                    r.purpose or None,
                    r.kind,
                    json.loads(r.documents),
                    json.loads(r.principals),
                )
                for r in rows
            ]

    async def prune(self, retention_seconds: float) -> int:
        """Delete records older than ``retention_seconds``; returns how many."""
        cutoff = time.time() - retention_seconds
        # Retention spans tenants: a maintenance sweep (storage/row_security.py).
        async with self.store._begin(tenants=ALL_TENANTS) as conn:
            result = await conn.execute(delete(audit).where(audit.c.at < cutoff))
            return result.rowcount or 0
