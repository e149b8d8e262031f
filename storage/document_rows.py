"""A document's row in ``syncd_documents``: finding it, locking it, creating it, its metadata.

Functions on the connection of a transaction the caller opened (``SqlStore._begin``); every
store path that touches a document starts here.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .engine import dialect_insert
from .erased_principals import erased_tombstone, is_erased
from .schema import documents, grants, new_epoch
from .store import DocKey, DocMeta

__all__ = ["create_document", "document_row", "lock_live_document", "read_meta"]


async def document_row(conn: AsyncConnection, key: DocKey) -> Row[Any] | None:
    """The document's row (also a tombstone's), or ``None`` if it never existed."""
    stmt = select(documents).where(documents.c.tenant == key.tenant, documents.c.name == key.name)
    return (await conn.execute(stmt)).first()


async def lock_live_document(conn: AsyncConnection, key: DocKey) -> Row[Any] | None:
    """The document's row unless it is a tombstone, locked until commit (Postgres; SQLite
    writers hold the database lock anyway), so that ``delete`` cannot commit in between."""
    stmt = (
        select(documents)
        .where(
            documents.c.tenant == key.tenant,
            documents.c.name == key.name,
            documents.c.deleted_at.is_(None),
        )
        .with_for_update()
    )
    return (await conn.execute(stmt)).first()


async def create_document(conn: AsyncConnection, key: DocKey, now: float) -> bool:
    """Insert the document's row; ``False`` if it already existed or its owner was erased."""
    # An erased principal's documents never come back (storage/erased_principals.py).
    if await is_erased(conn, key.tenant, key.name.split("/", 1)[0]):
        return False
    stmt = (
        dialect_insert(conn.dialect.name)(documents)
        .values(
            tenant=key.tenant,
            name=key.name,
            seq=0,
            snapshot_seq=0,
            size_bytes=0,
            created_at=now,
            updated_at=now,
            mode="private",
            pruned_pos=0,
            epoch=new_epoch(),
        )
        .on_conflict_do_nothing(index_elements=["tenant", "name"])
        .returning(documents.c.id)
    )
    return (await conn.execute(stmt)).first() is not None


async def read_meta(conn: AsyncConnection, key: DocKey) -> DocMeta | None:
    """The document's metadata and access settings; ``None`` if it never existed."""
    doc = await document_row(conn, key)
    if doc is None:
        # An erased principal's documents answer as purged tombstones, with no row to
        # carry the name (storage/erased_principals.py).
        owner = key.name.split("/", 1)[0]
        return erased_tombstone(key) if await is_erased(conn, key.tenant, owner) else None
    rows = await conn.execute(
        select(grants.c.principal, grants.c.role).where(grants.c.doc_id == doc.id)
    )
    return DocMeta(
        key=key,
        mode=doc.mode,
        grants={p: r for p, r in rows},
        seq=doc.seq,
        size_bytes=doc.size_bytes,
        created_at=doc.created_at,
        updated_at=doc.updated_at,
        deleted=doc.deleted_at is not None,
        epoch=doc.epoch,
        deleted_at=doc.deleted_at,
        purged=doc.purged_at is not None,
    )
