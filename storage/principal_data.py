"""What the store holds about one principal of a tenant: the reads of export and erasure.

Metadata only (names, grants, consents, attribution): document content is read through the
store's own functions (``SqlStore.load``, ``SqlHistory``), which are the ones that open what
encryption at rest seals. Every query names its tenant, so on Postgres the row-level security
scope (``storage/row_security.py``) is the tenant's alone.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .schema import consents, documents, grants, updates, versions

if TYPE_CHECKING:
    from .sql import SqlStore

__all__ = ["DocumentRow", "PrincipalData", "scoped"]


@asynccontextmanager
async def scoped(
    store: SqlStore, tenant: str, *, write: bool = False
) -> AsyncIterator[AsyncConnection]:
    """A transaction of the store confined to ``tenant`` (its row-level security scope)."""
    async with store._begin(write=write, tenants=[tenant]) as conn:
        yield conn


@dataclass(frozen=True, slots=True)
class DocumentRow:
    name: str  # "OWNER/NAME"
    mode: str
    seq: int
    epoch: str
    created_at: float
    updated_at: float
    deleted_at: float | None
    purged: bool

    @property
    def in_trash(self) -> bool:
        return self.deleted_at is not None and not self.purged


def _owned_by(sub: str):  # type: ignore[no-untyped-def]
    # Not LIKE (case and wildcards, see storage/feed.py): the name's first characters, exactly.
    prefix = sub + "/"
    return func.substr(documents.c.name, 1, len(prefix)) == prefix


# The columns of a DocumentRow, in its order.
_ROW_COLUMNS = (
    documents.c.name,
    documents.c.mode,
    documents.c.seq,
    documents.c.epoch,
    documents.c.created_at,
    documents.c.updated_at,
    documents.c.deleted_at,
    documents.c.purged_at.is_not(None),
)


class PrincipalData:
    def __init__(self, store: SqlStore) -> None:
        self.store = store

    async def owned(self, tenant: str, sub: str) -> list[DocumentRow]:
        """Every document row named ``sub/…``: live, in the trash, or a purged tombstone."""
        async with scoped(self.store, tenant) as conn:
            rows = await conn.execute(
                select(*_ROW_COLUMNS)
                .where(documents.c.tenant == tenant, _owned_by(sub))
                .order_by(documents.c.name)
            )
            return [DocumentRow(*row) for row in rows]

    async def grants_on_owned(self, tenant: str, sub: str) -> list[tuple[str, str, str]]:
        """``(document, principal, role)`` of every grant on ``sub``'s live documents."""
        async with scoped(self.store, tenant) as conn:
            rows = await conn.execute(
                select(documents.c.name, grants.c.principal, grants.c.role)
                .join(grants, grants.c.doc_id == documents.c.id)
                .where(
                    documents.c.tenant == tenant,
                    _owned_by(sub),
                    documents.c.purged_at.is_(None),
                )
                .order_by(documents.c.name, grants.c.principal)
            )
            return [(r.name, r.principal, r.role) for r in rows]

    async def grants_held(self, tenant: str, sub: str) -> list[tuple[str, str]]:
        """``(document, role)`` of every grant ``sub`` holds on someone else's document."""
        async with scoped(self.store, tenant) as conn:
            rows = await conn.execute(
                select(documents.c.name, grants.c.role)
                .join(grants, grants.c.doc_id == documents.c.id)
                .where(documents.c.tenant == tenant, grants.c.principal == sub)
                .order_by(documents.c.name)
            )
            return [(r.name, r.role) for r in rows]

    async def consents(self, tenant: str, sub: str) -> list[tuple[str, bool, float]]:
        """``(purpose, granted, updated_at)`` of ``sub``'s consent rows."""
        async with scoped(self.store, tenant) as conn:
            rows = await conn.execute(
                select(consents.c.purpose, consents.c.granted, consents.c.updated_at)
                .where(consents.c.tenant == tenant, consents.c.principal == sub)
                .order_by(consents.c.purpose)
            )
            return [(r.purpose, bool(r.granted), r.updated_at) for r in rows]

    async def written_in(self, tenant: str, sub: str, *, live_only: bool = True) -> list[str]:
        """Documents of other owners with a stored update (or a version) by ``sub``: live ones,
        or also those in the trash (``live_only=False``)."""
        where = [
            documents.c.tenant == tenant,
            ~_owned_by(sub),
            documents.c.purged_at.is_(None),
        ]
        if live_only:
            where.append(documents.c.deleted_at.is_(None))
        async with scoped(self.store, tenant) as conn:
            by_updates = select(updates.c.doc_id).where(updates.c.principal == sub)
            by_versions = select(versions.c.doc_id).where(versions.c.created_by == sub)
            rows = await conn.execute(
                select(documents.c.name)
                .where(*where, documents.c.id.in_(by_updates.union(by_versions)))
                .order_by(documents.c.name)
            )
            return list(rows.scalars())

    async def others_documents(self, tenant: str, sub: str) -> list[DocumentRow]:
        """Every live or trashed document of the tenant not owned by ``sub`` (erasure checks
        each of them for the principal's identity in its content)."""
        async with scoped(self.store, tenant) as conn:
            rows = await conn.execute(
                select(*_ROW_COLUMNS)
                .where(
                    documents.c.tenant == tenant,
                    ~_owned_by(sub),
                    documents.c.purged_at.is_(None),
                )
                .order_by(documents.c.name)
            )
            return [DocumentRow(*row) for row in rows]
