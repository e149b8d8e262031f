"""A principal's records removed or anonymised at erasure (docs/privacy.md "Export and erasure").

Rows that name the principal outside document content: grants they hold, consents, push
subscriptions (deleted), version authorship and audit records (kept, without the name: audit
records still say what was served to whom else, and a version stays the owner's work).
"""

from __future__ import annotations

import json

from sqlalchemy import delete, or_, select
from sqlalchemy import update as sa_update
from sqlalchemy.ext.asyncio import AsyncConnection

from crdt.scrub import ERASED, Scrubber

from .schema import audit, consents, documents, grants, push_subscriptions, versions

__all__ = ["forget_records"]


async def forget_records(
    conn: AsyncConnection, tenant: str, sub: str, scrubber: Scrubber
) -> dict[str, int]:
    """In the caller's transaction; returns counts by kind (``grants``, ``consents``,
    ``push_subscriptions``, ``audit_records``)."""
    in_tenant = select(documents.c.id).where(documents.c.tenant == tenant)
    counts = {
        "grants": (
            await conn.execute(
                delete(grants).where(grants.c.principal == sub, grants.c.doc_id.in_(in_tenant))
            )
        ).rowcount,
        "consents": (
            await conn.execute(
                delete(consents).where(consents.c.tenant == tenant, consents.c.principal == sub)
            )
        ).rowcount,
        "push_subscriptions": (
            await conn.execute(
                delete(push_subscriptions).where(
                    push_subscriptions.c.tenant == tenant,
                    push_subscriptions.c.principal == sub,
                )
            )
        ).rowcount,
    }
    await conn.execute(
        sa_update(versions)
        .where(versions.c.created_by == sub, versions.c.doc_id.in_(in_tenant))
        .values(created_by=ERASED)
    )
    counts["audit_records"] = await _scrub_audit(conn, tenant, sub, scrubber)
    return counts


async def _scrub_audit(conn: AsyncConnection, tenant: str, sub: str, scrubber: Scrubber) -> int:
    """Audit rows naming the principal keep their shape, without the name: the principal left
    out of ``principals``, their documents (and any mention) replaced by :data:`ERASED`."""
    needles = sorted(scrubber.identities)
    # A coarse filter (LIKE may match more, e.g. "_" is a wildcard); the rows are checked below.
    mentions = [
        column.contains(needle)
        for needle in needles
        for column in (audit.c.service, audit.c.principals, audit.c.documents)
    ]
    rows = (
        await conn.execute(
            select(audit.c.id, audit.c.service, audit.c.principals, audit.c.documents).where(
                audit.c.tenant == tenant, or_(*mentions)
            )
        )
    ).all()
    changed = 0
    for row in rows:
        service = ERASED if row.service in scrubber.identities else row.service
        principals = _scrub_list(row.principals, scrubber, drop=True, sub=sub)
        docs = _scrub_list(row.documents, scrubber, drop=False, sub=sub)
        if (service, principals, docs) == (row.service, row.principals, row.documents):
            continue
        await conn.execute(
            sa_update(audit)
            .where(audit.c.id == row.id)
            .values(service=service, principals=principals, documents=docs)
        )
        changed += 1
    return changed


def _scrub_list(raw: str, scrubber: Scrubber, *, drop: bool, sub: str) -> str:
    """A JSON list of names without the principal: dropped (``drop``) or, for document names
    under their name, replaced; anything else that mentions them scrubbed."""
    try:
        items = json.loads(raw)
    except ValueError:
        items = None
    if not isinstance(items, list):
        return scrubber.string(raw.replace(sub, ERASED)) if scrubber.mentions(raw.encode()) else raw
    out: list[object] = []
    for item in items:
        if not isinstance(item, str):
            out.append(item)
        elif item in scrubber.identities:
            if not drop:
                out.append(ERASED)
        elif item.startswith(sub + "/"):
            out.append(ERASED)
        else:
            out.append(scrubber.string(item))
    return json.dumps(out, separators=(",", ":")) if out != items else raw
