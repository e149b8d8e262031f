"""A principal's documents: the ones it owns and the ones shared with it, in one query.

Owned means the name starts with ``OWNER/`` (ownership is the id, §1.3). Shared means a row of
``syncd_grants`` for the principal on a document whose mode is ``shared``: grants on a private
document are kept but give nothing, so they are not listed either. Only live documents (not in
the trash, not purged) of the caller's tenant.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import and_, func, literal, or_, select

from .schema import documents, grants
from .store import DocKey

if TYPE_CHECKING:
    from .sql import SqlStore

__all__ = ["ListedDoc", "SqlListing"]


@dataclass(frozen=True, slots=True)
class ListedDoc:
    key: DocKey
    role: str  # "owner" | "editor" | "viewer": what the principal may do with it
    mode: str
    seq: int
    size_bytes: int
    created_at: float
    updated_at: float


class SqlListing:
    def __init__(self, store: SqlStore) -> None:
        self.store = store

    async def list(
        self, tenant: str, principal: str, *, owned: bool, shared: bool, limit: int
    ) -> tuple[list[ListedDoc], bool]:
        """Up to ``limit`` documents, most recently updated first, and whether more exist."""
        prefix = principal + "/"
        # Not LIKE: SQLite's ignores ASCII case and gives "_" a meaning (see storage/feed.py).
        is_owned = func.substr(documents.c.name, 1, len(prefix)) == prefix
        is_shared = and_(grants.c.principal.is_not(None), documents.c.mode == "shared")
        wanted = [c for c, on in ((is_owned, owned), (is_shared, shared)) if on]
        if not wanted:
            return [], False
        # The outer join meets at most one grant row per document (its key is doc_id, principal).
        joined = documents.outerjoin(
            grants, and_(grants.c.doc_id == documents.c.id, grants.c.principal == principal)
        )
        query = (
            select(
                documents.c.name,
                documents.c.mode,
                documents.c.seq,
                documents.c.size_bytes,
                documents.c.created_at,
                documents.c.updated_at,
                func.coalesce(grants.c.role, literal("")).label("role"),
                is_owned.label("owned"),
            )
            .select_from(joined)
            .where(
                documents.c.tenant == tenant,
                documents.c.deleted_at.is_(None),
                or_(*wanted),
            )
            .order_by(documents.c.updated_at.desc(), documents.c.name)
            .limit(limit + 1)
        )
        # Row-level security on Postgres (storage/row_security.py): this tenant's rows only.
        async with self.store._begin(write=False, tenants=[tenant]) as conn:
            rows = (await conn.execute(query)).all()
        listed = [
            ListedDoc(
                key=DocKey(tenant, r.name),
                role="owner" if r.owned else r.role,
                mode=r.mode,
                seq=r.seq,
                size_bytes=r.size_bytes,
                created_at=r.created_at,
                updated_at=r.updated_at,
            )
            for r in rows[:limit]
        ]
        return listed, len(rows) > limit
