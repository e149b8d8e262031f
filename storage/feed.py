"""Reading the change feed: every stored update of a tenant in feed-position order.

Positions come from ``syncd_feed_position``, allocated under a lock held until commit, so the
committed positions always form a prefix (with gaps only for transactions that rolled back, and
for updates refused because their document was deleted).
A page therefore reads the committed high-water mark first and then rows up to it: nothing
below the mark can appear later, and a cursor never skips an update.

Retention may delete log rows already folded into a snapshot. A document whose ``pruned_pos``
is above the cursor has lost history the subscriber has not seen: instead of its remaining old
rows, the page carries one ``reset`` event placed at the snapshot's position, holding the
snapshot (the whole document up to there); the document's rows after it follow as usual.

Nothing of a deleted document is served, neither its updates nor a reset.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from sqlalchemy import ColumnElement, and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .schema import documents, feed_position, quarantine, snapshots, updates

__all__ = ["FeedEvent", "FeedPage", "read_feed_page"]


@dataclass(frozen=True, slots=True)
class FeedEvent:
    type: Literal["update", "reset"]
    pos: int
    doc: str
    seq: int
    principal: str | None  # None for a reset (a snapshot has no single author)
    at: float
    data: bytes  # the update, or for a reset the full state as one update


@dataclass(frozen=True, slots=True)
class FeedPage:
    events: list[FeedEvent]
    next_pos: int  # pass back as ``after``


async def read_feed_page(
    conn: AsyncConnection, tenant: str, after: int, prefix: str | None, limit: int
) -> FeedPage:
    """One page of at most ``limit`` events after position ``after`` (one read snapshot)."""
    high = (
        await conn.execute(select(feed_position.c.pos).where(feed_position.c.id == 1))
    ).scalar_one()
    # Deleted documents are never served: their content is gone, and whatever an older syncd
    # let a racing append store after the tombstone must not leak through the feed.
    in_scope = [documents.c.tenant == tenant, documents.c.deleted_at.is_(None)]
    if prefix:
        in_scope.append(_starts_with(prefix))

    # Documents whose history after the cursor was pruned: a reset at their snapshot position.
    reset_rows = (
        await conn.execute(
            select(
                documents.c.name,
                snapshots.c.upto_seq,
                snapshots.c.upto_pos,
                snapshots.c.state,
                snapshots.c.at,
            )
            .join(snapshots, snapshots.c.doc_id == documents.c.id)
            .where(
                *in_scope,
                documents.c.pruned_pos > after,
                snapshots.c.upto_pos <= high,
            )
            .order_by(snapshots.c.upto_pos)
            .limit(limit)
        )
    ).all()
    resets = {
        r.name: FeedEvent("reset", r.upto_pos, r.name, r.upto_seq, None, r.at, bytes(r.state))
        for r in reset_rows
    }
    # Rows covered by a reset are skipped; fetch enough to fill the page despite them.
    row_limit = limit + (_COVERED_BUDGET if resets else 0)
    rows = (
        await conn.execute(
            select(
                updates.c.pos,
                documents.c.name,
                updates.c.seq,
                updates.c.principal,
                updates.c.at,
                updates.c.data,
            )
            .join(documents, and_(documents.c.id == updates.c.doc_id))
            .where(
                *in_scope,
                updates.c.pos > after,
                updates.c.pos <= high,
                # Quarantined updates (see storage/schema.py) are never served.
                ~exists().where(
                    quarantine.c.doc_id == updates.c.doc_id, quarantine.c.seq == updates.c.seq
                ),
            )
            .order_by(updates.c.pos)
            .limit(row_limit)
        )
    ).all()
    # Everything up to ``horizon`` has been read: both queries are complete below it.
    horizon = max(high, after)
    if len(reset_rows) == limit:
        horizon = min(horizon, reset_rows[-1].upto_pos)
    if len(rows) == row_limit:
        horizon = min(horizon, rows[-1].pos)
    events = [
        FeedEvent("update", r.pos, r.name, r.seq, r.principal, r.at, bytes(r.data))
        for r in rows
        if not (r.name in resets and r.pos <= resets[r.name].pos)
    ]
    events.extend(resets.values())
    events = sorted((e for e in events if e.pos <= horizon), key=lambda e: e.pos)
    if len(events) > limit:
        events = events[:limit]
        return FeedPage(events, events[-1].pos)
    return FeedPage(events, horizon)


def _starts_with(prefix: str) -> ColumnElement[bool]:
    """Names beginning with ``prefix``, literally and case-sensitively on both databases.

    Not ``LIKE``: SQLite's ignores ASCII case (``alice/`` would match ``Alice/x``) and gives
    ``%`` and ``_`` meaning. Comparing the name's first characters with ``=`` is exact on both
    (SQLite's default BINARY collation, Postgres's deterministic ones).
    """
    return func.substr(documents.c.name, 1, len(prefix)) == prefix


# How many rows a reset may hide from one page. Not a hard bound (a pruned document may have
# more rows left before its snapshot), just a bounded query: the next page continues.
_COVERED_BUDGET = 1000
