"""Consent per participant and purpose (DESIGN.md §1.11) over ``syncd_consents``.

One row per (tenant, principal, purpose) with ``granted`` true or false; a missing row is no
consent, so a principal nobody asked is never analysed. The feed reads the consents of a page's
writers in one query per page (:meth:`SqlConsents.granted`), which is why a change applies from
the next page on without any cache to invalidate.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from .feed import SERVICE_ORIGIN
from .schema import consents, documents, updates

if TYPE_CHECKING:
    from .sql import SqlStore

__all__ = ["SqlConsents", "document_writers"]


class SqlConsents:
    def __init__(self, store: SqlStore) -> None:
        self.store = store

    async def of(self, tenant: str, principal: str) -> dict[str, bool]:
        """Every purpose a principal has answered, granted or not (sorted by purpose)."""
        async with self.store._begin(tenants=[tenant], write=False) as conn:
            rows = await conn.execute(
                select(consents.c.purpose, consents.c.granted)
                .where(consents.c.tenant == tenant, consents.c.principal == principal)
                .order_by(consents.c.purpose)
            )
            return {r.purpose: bool(r.granted) for r in rows}

    async def set(
        self, tenant: str, principal: str, answers: Mapping[str, bool]
    ) -> dict[str, bool]:
        """Store ``answers`` (purposes not named keep their answer); returns all of them.

        Delete-then-insert in one transaction: the same statements on SQLite and Postgres,
        where an upsert would need each dialect's own syntax."""
        now = time.time()
        async with self.store._begin(tenants=[tenant]) as conn:
            if answers:
                await conn.execute(
                    delete(consents).where(
                        consents.c.tenant == tenant,
                        consents.c.principal == principal,
                        consents.c.purpose.in_(list(answers)),
                    )
                )
                await conn.execute(
                    consents.insert(),
                    [
                        {
                            "tenant": tenant,
                            "principal": principal,
                            "purpose": purpose,
                            "granted": bool(granted),
                            "updated_at": now,
                        }
                        for purpose, granted in answers.items()
                    ],
                )
            rows = await conn.execute(
                select(consents.c.purpose, consents.c.granted)
                .where(consents.c.tenant == tenant, consents.c.principal == principal)
                .order_by(consents.c.purpose)
            )
            return {r.purpose: bool(r.granted) for r in rows}

    async def granted(self, tenant: str, purpose: str, principals: Iterable[str]) -> set[str]:
        """Those of ``principals`` who consent to ``purpose`` (one query)."""
        wanted = sorted(set(principals))
        if not wanted:
            return set()
        async with self.store._begin(tenants=[tenant], write=False) as conn:
            rows = await conn.execute(
                select(consents.c.principal).where(
                    consents.c.tenant == tenant,
                    consents.c.purpose == purpose,
                    consents.c.granted.is_(True),
                    consents.c.principal.in_(wanted),
                )
            )
            return {r.principal for r in rows}


async def document_writers(store: SqlStore, tenant: str, name: str) -> tuple[set[str], bool]:
    """The participants who wrote a document's stored updates (services' own writes left
    out), and whether that is all of them: ``False`` once retention pruned log rows, whose
    writers nobody can tell any more."""
    async with store._begin(tenants=[tenant], write=False, snapshot=True) as conn:
        doc = (
            await conn.execute(
                select(documents.c.id, documents.c.pruned_pos).where(
                    documents.c.tenant == tenant, documents.c.name == name
                )
            )
        ).first()
        if doc is None:
            return set(), True
        rows = await conn.execute(
            select(updates.c.principal)
            .where(updates.c.doc_id == doc.id, updates.c.origin != SERVICE_ORIGIN)
            .distinct()
        )
        return {r.principal for r in rows}, not doc.pruned_pos
