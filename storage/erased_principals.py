"""Erased principals, remembered without their names (DESIGN.md §1.11, docs/privacy.md).

After ``DELETE /v1/principals/{sub}`` no row may carry the principal's id, yet their old offline
replica (a phone that comes back online with ``bob/journal``) must not bring their documents
back by connecting: the owner of ``bob/…`` may create it, and the tombstone that used to refuse
the id (its name ``bob/journal``) is gone with the rest. So the tenant keeps one row per erased
principal: a random salt and ``sha256(salt | tenant | sub)``. Creating a document under an erased
owner's name is refused (``SqlStore._create`` asks :func:`is_erased`), and such a document's
metadata reads as a purged tombstone (:func:`erased_tombstone`), so every endpoint refuses it
exactly as it refused the tombstone that is gone (4404, 404; ``PUT`` to re-create it: 409).

Why a salt per row: a table of plain hashes of short ids is a dictionary away from the names;
with a salt per row, confirming a guess costs one hash per row and guess, and nothing can be
listed. Anyone holding the database can still test a guessed id: that is inherent in being able
to refuse it, and the row says nothing about what the principal wrote.
"""

from __future__ import annotations

import hashlib
import secrets
import time

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection

from .schema import erased_principals
from .store import DocKey, DocMeta

__all__ = ["erased_tombstone", "is_erased", "record_erased"]


def _digest(salt: str, tenant: str, sub: str) -> str:
    return hashlib.sha256(f"{salt}\0{tenant}\0{sub}".encode()).hexdigest()


async def is_erased(conn: AsyncConnection, tenant: str, sub: str) -> bool:
    """Whether ``sub`` was erased in ``tenant`` (one hash per erased principal of the tenant)."""
    rows = await conn.execute(
        select(erased_principals.c.salt, erased_principals.c.digest).where(
            erased_principals.c.tenant == tenant
        )
    )
    return any(_digest(salt, tenant, sub) == digest for salt, digest in rows)


async def record_erased(conn: AsyncConnection, tenant: str, sub: str) -> None:
    """Remember that ``sub`` is erased in ``tenant`` (once)."""
    if await is_erased(conn, tenant, sub):
        return
    salt = secrets.token_hex(16)
    await conn.execute(
        erased_principals.insert().values(
            tenant=tenant, digest=_digest(salt, tenant, sub), salt=salt, erased_at=time.time()
        )
    )


def erased_tombstone(key: DocKey) -> DocMeta:
    """What the store answers for a document of an erased owner: a purged tombstone."""
    return DocMeta(
        key=key,
        mode="private",
        grants={},
        seq=0,
        size_bytes=0,
        created_at=0.0,
        updated_at=0.0,
        deleted=True,
        deleted_at=0.0,
        purged=True,
    )
