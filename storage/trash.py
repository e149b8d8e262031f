"""The trash and the purge (DESIGN.md §1.10): deleted documents, their restore, their erasure.

``Store.delete`` moves a document to the trash: its row becomes a tombstone (``deleted_at``), so
loads, appends and the feed refuse it at once, but its content, access settings and versions stay
for :meth:`SqlTrash.restore` within the trash window. A purge (asked for, or by the sweep once the
window is over) erases all of it in one transaction: log, snapshot, versions, quarantine rows,
grants; the row stays as a bare tombstone (``purged_at``) so that the id keeps answering 4404 and
an old offline replica cannot bring the content back by reconnecting. Only an explicit
:meth:`SqlTrash.recreate` makes the id a document again, with a new epoch (clients holding the
old lineage then refuse to merge it) and its seq starting again from 0.

Why a late compaction cannot resurrect a purged document: compaction writes only under the
document's row lock and only if the document is live *and* has the epoch it read (see
``SqlStore.compact``); a purge changes the epoch in the transaction that erases the rows.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy import update as sa_update

from .row_security import ALL_TENANTS
from .schema import (
    documents,
    grants,
    new_epoch,
    quarantine,
    served_states,
    snapshots,
    updates,
    versions,
)
from .store import DocKey, DocMeta

if TYPE_CHECKING:
    from .sql import SqlStore

__all__ = ["SqlTrash", "TrashEntry"]


@dataclass(frozen=True, slots=True)
class TrashEntry:
    key: DocKey
    deleted_at: float


class SqlTrash:
    def __init__(self, store: SqlStore) -> None:
        self.store = store

    async def list(self, tenant: str, owner: str | None) -> list[TrashEntry]:
        """Documents in the trash of ``tenant`` (of ``owner`` only, unless ``None``), newest
        deletion first."""
        where = [
            documents.c.tenant == tenant,
            documents.c.deleted_at.is_not(None),
            documents.c.purged_at.is_(None),
        ]
        if owner is not None:
            where.append(documents.c.name.startswith(owner + "/", autoescape=True))
        async with self.store._begin(tenants=[tenant], write=False) as conn:
            rows = await conn.execute(
                select(documents.c.name, documents.c.deleted_at)
                .where(*where)
                .order_by(documents.c.deleted_at.desc())
            )
            return [TrashEntry(DocKey(tenant, r.name), r.deleted_at) for r in rows]

    async def restore(self, key: DocKey, window_seconds: float) -> DocMeta | None:
        """Bring a document back from the trash, whole; ``None`` unless it is in the trash and
        was deleted less than ``window_seconds`` ago (past that it is as good as purged: the
        sweep erases it)."""
        now = time.time()
        async with self.store._begin(tenants=[key.tenant]) as conn:
            restored = (
                await conn.execute(
                    sa_update(documents)
                    .where(
                        documents.c.tenant == key.tenant,
                        documents.c.name == key.name,
                        documents.c.deleted_at.is_not(None),
                        documents.c.purged_at.is_(None),
                        documents.c.deleted_at > now - window_seconds,
                    )
                    .values(deleted_at=None, updated_at=now)
                    .returning(documents.c.id)
                )
            ).scalar_one_or_none()
            if restored is None:
                return None
            return await self.store._meta(conn, key)

    async def purge(self, key: DocKey) -> bool:
        """Erase a deleted document's content, history, versions and access, irreversibly;
        ``False`` unless it was in the trash. The caller deletes a live document first."""
        now = time.time()
        async with self.store._begin(tenants=[key.tenant]) as conn:
            # The row first, as in ``delete``: its lock orders this against appends and
            # compactions; the new epoch fences off a compaction that read the old content.
            doc_id = (
                await conn.execute(
                    sa_update(documents)
                    .where(
                        documents.c.tenant == key.tenant,
                        documents.c.name == key.name,
                        documents.c.deleted_at.is_not(None),
                        documents.c.purged_at.is_(None),
                    )
                    .values(
                        purged_at=now,
                        updated_at=now,
                        epoch=new_epoch(),
                        mode="private",
                        size_bytes=0,
                    )
                    .returning(documents.c.id)
                )
            ).scalar_one_or_none()
            if doc_id is None:
                return False
            for table in (updates, snapshots, served_states, versions, quarantine, grants):
                await conn.execute(table.delete().where(table.c.doc_id == doc_id))
        return True

    async def expired(self, window_seconds: float) -> list[DocKey]:
        """Documents in the trash for ``window_seconds`` or longer."""
        cutoff = time.time() - window_seconds
        # A sweep over every tenant: maintenance, the scope storage/row_security.py reserves.
        async with self.store._begin(tenants=ALL_TENANTS, write=False) as conn:
            rows = await conn.execute(
                select(documents.c.tenant, documents.c.name).where(
                    documents.c.deleted_at.is_not(None),
                    documents.c.purged_at.is_(None),
                    documents.c.deleted_at <= cutoff,
                )
            )
            return [DocKey(r.tenant, r.name) for r in rows]

    async def recreate(self, key: DocKey) -> DocMeta | None:
        """Make a purged id (or a new one) a live, empty document with a new epoch; ``None`` if
        it exists and is live or in the trash."""
        now = time.time()
        async with self.store._begin(tenants=[key.tenant]) as conn:
            if await self.store._create(conn, key, now):
                return await self.store._meta(conn, key)
            revived = (
                await conn.execute(
                    sa_update(documents)
                    .where(
                        documents.c.tenant == key.tenant,
                        documents.c.name == key.name,
                        documents.c.purged_at.is_not(None),
                    )
                    .values(
                        deleted_at=None,
                        purged_at=None,
                        epoch=new_epoch(),
                        seq=0,
                        snapshot_seq=0,
                        size_bytes=0,
                        created_at=now,
                        updated_at=now,
                    )
                    .returning(documents.c.id)
                )
            ).scalar_one_or_none()
            if revived is None:
                return None
            return await self.store._meta(conn, key)
