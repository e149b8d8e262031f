"""Reading a document's content for :class:`~storage.sql.SqlStore`: the load (snapshot and log
tail in one consistent read), a range of its log, its state just before an update.

Each function opens its own transaction through the store's ``begin`` and opens sealed rows
(storage/sealed_rows.py) before anything replays them; quarantined rows are left out.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from crdt.replay import replay

from .binary_rows import fetch_rows
from .document_rows import document_row
from .engine import Begin
from .lineage_fence import read_fence
from .schema import quarantine, snapshots, updates
from .sealed_rows import RowSealing
from .sealing import Kind
from .served_state import read_served
from .snapshot_mark import SnapshotMarks
from .store import DocKey, LoadedDoc

__all__ = ["load_document", "state_before", "updates_between"]

# One statement, so snapshot and tail come from one consistent view of the database even if a
# compaction commits in between. Quarantined rows (and a quarantined snapshot, seq 0) are left
# out; the tail then starts after the last good snapshot.
_SNAPSHOT_AND_TAIL = (
    "WITH snap AS (SELECT upto_seq, upto_pos, state, checked"
    " FROM syncd_snapshots s"
    " WHERE s.doc_id = :id AND NOT EXISTS (SELECT 1 FROM syncd_quarantine q"
    " WHERE q.doc_id = :id AND q.seq = 0))"
    " SELECT 0 AS part, upto_seq AS seq, upto_pos AS pos, state AS data,"
    " checked FROM snap"
    " UNION ALL"
    " SELECT 1 AS part, seq, pos, data, NULL FROM syncd_updates u"
    " WHERE u.doc_id = :id"
    " AND u.seq > COALESCE((SELECT upto_seq FROM snap), 0)"
    " AND NOT EXISTS (SELECT 1 FROM syncd_quarantine q"
    " WHERE q.doc_id = :id AND q.seq = u.seq)"
    " ORDER BY part, seq"
)


def _fold_checked(loaded: LoadedDoc) -> tuple[bytes, dict[int, str]]:
    """The document ``loaded`` holds, as one update with its history, and what was left out."""
    result = replay(
        loaded.snapshot,
        loaded.numbered_tail(),
        skip_gc=True,
        snapshot_checked=loaded.snapshot_checked,
    )
    return result.doc.get_update(), dict(result.skipped)


async def load_document(
    begin: Begin,
    key: DocKey,
    *,
    include_deleted: bool,
    sealing: RowSealing,
    snapshot_marks: SnapshotMarks,
) -> LoadedDoc | None:
    """``SqlStore.load``: the document's snapshot and log tail; ``None`` if it never existed or
    is a tombstone (unless ``include_deleted``)."""
    async with begin(tenants=[key.tenant], write=False, snapshot=True) as conn:
        doc = await document_row(conn, key)
        if doc is None or (doc.deleted_at is not None and not include_deleted):
            return None  # include_deleted: erasure rewrites documents in the trash too
        rows = await fetch_rows(conn, _SNAPSHOT_AND_TAIL, {"id": doc.id})
        # SealedRowError (refusing the document) before anything replays a row.
        opened = await sealing.open(
            conn,
            key,
            [(Kind.UPDATE if r[0] else Kind.SNAPSHOT, r[1], r[3]) for r in rows],
        )
        if not rows:
            await sealing.check_tenant(conn, key)
        fence = await read_fence(conn, doc.id)
        served = await read_served(conn, sealing, key, doc.id, seq=doc.seq, epoch=doc.epoch)
    snapshot: bytes | None = None
    snapshot_seq = 0
    checked = False
    tail: list[bytes] = []
    tail_seqs: list[int] = []
    pos = 0
    for (part, row_seq, row_pos, _, mark), data in zip(rows, opened, strict=True):
        if part == 0:
            snapshot, snapshot_seq = data, row_seq
            checked = snapshot_marks.verifies(mark, doc.id, row_seq, data)
        else:
            tail.append(data)
            tail_seqs.append(row_seq)
        pos = row_pos
    return LoadedDoc(
        snapshot,
        snapshot_seq,
        tail,
        doc.seq,
        doc.created_at,
        doc.updated_at,
        pos=pos,
        tail_seqs=tail_seqs,
        epoch=doc.epoch,
        fence=fence,
        snapshot_checked=checked,
        served=served,
    )


async def updates_between(
    begin: Begin, key: DocKey, after: int, upto: int, *, sealing: RowSealing
) -> list[tuple[int, bytes]] | None:
    """``SqlStore.updates_between``: the stored updates with ``after < seq <= upto``, in order,
    quarantined ones left out; ``None`` if the document is gone or part of the range pruned."""
    async with begin(tenants=[key.tenant], write=False) as conn:
        doc = await document_row(conn, key)
        if doc is None or doc.deleted_at is not None:
            return None
        rows = (
            await conn.execute(
                select(updates.c.seq, updates.c.data)
                .where(updates.c.doc_id == doc.id, updates.c.seq > after, updates.c.seq <= upto)
                .order_by(updates.c.seq)
            )
        ).all()
        bad = set(
            (
                await conn.execute(
                    select(quarantine.c.seq).where(
                        quarantine.c.doc_id == doc.id,
                        quarantine.c.seq > after,
                        quarantine.c.seq <= upto,
                    )
                )
            ).scalars()
        )
        rows = [r for r in rows if r.seq not in bad] if len(rows) == upto - after else None
        if rows is not None:
            opened = await sealing.open(conn, key, [(Kind.UPDATE, r.seq, r.data) for r in rows])
    if rows is None:
        return None  # pruned: the caller reloads the whole document
    return [(r.seq, data) for r, data in zip(rows, opened, strict=True)]


async def state_before(begin: Begin, key: DocKey, seq: int, *, sealing: RowSealing) -> bytes | None:
    """``SqlStore.state_before``: the document as it was just before update ``seq`` (one
    update), or ``None`` if that history is no longer complete (pruned by retention)."""
    async with begin(tenants=[key.tenant], write=False, snapshot=True) as conn:
        doc = await document_row(conn, key)
        if doc is None:
            return None
        bad = set(
            (
                await conn.execute(select(quarantine.c.seq).where(quarantine.c.doc_id == doc.id))
            ).scalars()
        )
        snap = None
        if 0 not in bad:
            snap = (
                await conn.execute(
                    select(snapshots.c.upto_seq, snapshots.c.state).where(
                        snapshots.c.doc_id == doc.id, snapshots.c.upto_seq < seq
                    )
                )
            ).first()
        start = snap.upto_seq if snap is not None else 0
        rows = (
            await conn.execute(
                select(updates.c.seq, updates.c.data)
                .where(updates.c.doc_id == doc.id, updates.c.seq > start, updates.c.seq < seq)
                .order_by(updates.c.seq)
            )
        ).all()
        if len(rows) != seq - 1 - start:
            return None
        rows = [r for r in rows if r.seq not in bad]
        opened = await sealing.open(
            conn,
            key,
            ([(Kind.SNAPSHOT, snap.upto_seq, snap.state)] if snap is not None else [])
            + [(Kind.UPDATE, r.seq, r.data) for r in rows],
        )
    if snap is not None:
        snap_state, opened = opened[0], opened[1:]
    loaded = LoadedDoc(
        snap_state if snap is not None else None,
        start,
        opened,
        seq - 1,
        0.0,
        0.0,
        tail_seqs=[r.seq for r in rows],
    )
    state, _ = await asyncio.to_thread(_fold_checked, loaded)
    return state
