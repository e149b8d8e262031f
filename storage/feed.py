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

With encryption at rest the rows are opened here (``storage/sealed_rows.py``): events and
resets carry plaintext to the service, and a row that does not open fails the whole page
(``SealedRowError``) instead of leaving a gap.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from sqlalchemy import ColumnElement, and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .schema import consents, documents, feed_position, quarantine, snapshots, updates
from .sealed_rows import RowSealing
from .sealing import Kind
from .store import DocKey

# Refuses sealed rows: what a caller that does not pass its store's sealing gets.
_PLAINTEXT_ONLY = RowSealing(None)

__all__ = [
    "SERVICE_ORIGIN",
    "ConsentedHistory",
    "ConsentedRow",
    "FeedEvent",
    "FeedPage",
    "read_consented_history",
    "read_feed_page",
]


@dataclass(frozen=True, slots=True)
class FeedEvent:
    type: Literal["update", "reset"]
    pos: int
    doc: str
    seq: int
    principal: str | None  # None for a reset (a snapshot has no single author)
    at: float
    data: bytes  # the update, or for a reset the full state as one update
    # How it was written (``syncd_updates.origin``: "client", "http", "service", "restore");
    # None for a reset. The consent gate counts a service's own writes as consenting.
    origin: str | None = None


@dataclass(frozen=True, slots=True)
class FeedPage:
    events: list[FeedEvent]
    next_pos: int  # pass back as ``after``


async def read_feed_page(
    conn: AsyncConnection,
    tenant: str,
    after: int,
    prefix: str | None,
    limit: int,
    *,
    sealing: RowSealing = _PLAINTEXT_ONLY,
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
                updates.c.origin,
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
        FeedEvent("update", r.pos, r.name, r.seq, r.principal, r.at, bytes(r.data), r.origin)
        for r in rows
        if not (r.name in resets and r.pos <= resets[r.name].pos)
    ]
    events.extend(resets.values())
    events = sorted((e for e in events if e.pos <= horizon), key=lambda e: e.pos)
    if len(events) > limit:
        events = await _opened(conn, sealing, tenant, events[:limit])
        return FeedPage(events, events[-1].pos)
    return FeedPage(await _opened(conn, sealing, tenant, events), horizon)


async def _opened(
    conn: AsyncConnection, sealing: RowSealing, tenant: str, events: list[FeedEvent]
) -> list[FeedEvent]:
    """``events`` with their stored bytes opened (a reset holds the snapshot at its seq)."""
    by_doc: dict[str, list[int]] = {}
    for i, e in enumerate(events):
        by_doc.setdefault(e.doc, []).append(i)
    out = list(events)
    for name, indexes in by_doc.items():
        opened = await sealing.open(
            conn,
            DocKey(tenant, name),
            [
                (Kind.SNAPSHOT if events[i].type == "reset" else Kind.UPDATE, events[i].seq,
                 events[i].data)
                for i in indexes
            ],
        )
        for i, data in zip(indexes, opened, strict=True):
            out[i] = replace(events[i], data=data)
    return out


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


@dataclass(frozen=True, slots=True)
class ConsentedRow:
    seq: int
    principal: str
    granted: bool  # the principal consents to the purpose
    by_service: bool  # a service's (or admin's) own write: no participant's to withhold
    data: bytes

    @property
    def consenting(self) -> bool:
        return self.granted or self.by_service


@dataclass(frozen=True, slots=True)
class ConsentedHistory:
    """A document's stored history before a seq, each update marked with its writer's consent.

    ``snapshot`` is set when the log no longer holds every update from seq 1 (retention pruned
    it): the snapshot's writers are unknown then, so it counts as non-consenting as a whole."""

    snapshot: bytes | None
    rows: list[ConsentedRow]


SERVICE_ORIGIN = "service"  # syncd_updates.origin of a service's (or admin's) own HTTP write


async def read_consented_history(
    conn: AsyncConnection,
    tenant: str,
    name: str,
    seq: int,
    purpose: str,
    *,
    sealing: RowSealing = _PLAINTEXT_ONLY,
) -> ConsentedHistory | None:
    """The updates of document ``name`` before ``seq`` with their writers' consent to
    ``purpose`` (one read, consents joined in); ``None`` if that history is incomplete."""
    doc = (
        await conn.execute(
            select(documents.c.id).where(
                documents.c.tenant == tenant,
                documents.c.name == name,
                documents.c.deleted_at.is_(None),
            )
        )
    ).scalar_one_or_none()
    if doc is None:
        return None
    bad = set(
        (await conn.execute(select(quarantine.c.seq).where(quarantine.c.doc_id == doc))).scalars()
    )
    rows = (
        await conn.execute(
            select(
                updates.c.seq,
                updates.c.principal,
                updates.c.origin,
                updates.c.data,
                consents.c.granted,
            )
            .outerjoin(
                consents,
                and_(
                    consents.c.tenant == tenant,
                    consents.c.principal == updates.c.principal,
                    consents.c.purpose == purpose,
                ),
            )
            .where(updates.c.doc_id == doc, updates.c.seq < seq)
            .order_by(updates.c.seq)
        )
    ).all()
    snapshot: bytes | None = None
    if len(rows) != seq - 1:  # pruned: start from the snapshot, if the rest follows it
        snap = (
            await conn.execute(
                select(snapshots.c.upto_seq, snapshots.c.state).where(
                    snapshots.c.doc_id == doc, snapshots.c.upto_seq < seq
                )
            )
        ).first()
        if snap is None or 0 in bad:
            return None
        rows = [r for r in rows if r.seq > snap.upto_seq]
        if len(rows) != seq - 1 - snap.upto_seq:
            return None
        key = DocKey(tenant, name)
        snapshot = await sealing.open_one(conn, key, Kind.SNAPSHOT, snap.upto_seq, snap.state)
    rows = [r for r in rows if r.seq not in bad]
    opened = await sealing.open(
        conn, DocKey(tenant, name), [(Kind.UPDATE, r.seq, r.data) for r in rows]
    )
    return ConsentedHistory(
        snapshot,
        [
            ConsentedRow(r.seq, r.principal, bool(r.granted), r.origin == SERVICE_ORIGIN, data)
            for r, data in zip(rows, opened, strict=True)
        ],
    )
