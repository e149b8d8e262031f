"""Compaction's writes: a document's folded log stored as its snapshot, the folded rows pruned.

``SqlStore.compact`` folds the log outside any transaction (CPU-bound, on a worker thread) and
then, in one transaction holding the document's row lock, calls these on its connection. The
log is append-only, so the state of seqs up to the fold never changes: writing it in a second
transaction is safe, and the guards below keep a newer snapshot from a racing compaction.
"""

from __future__ import annotations

from sqlalchemy import func, select, text
from sqlalchemy import update as sa_update
from sqlalchemy.ext.asyncio import AsyncConnection

from crdt.protocol import ProtocolError
from crdt.replay import check_stored

from .engine import dialect_insert
from .schema import documents, quarantine, snapshots, updates
from .store import LoadedDoc

__all__ = ["passes_strict_check", "prune_folded", "write_snapshot"]


def passes_strict_check(state: bytes) -> bool:
    """Whether ``state`` (a fold's bytes) passes the strict decoder: only then is the snapshot
    marked as checked, so a load trusts exactly what a load would have checked
    (storage/snapshot_mark.py)."""
    try:
        check_stored(state)
    except ProtocolError:
        return False
    return True


async def write_snapshot(
    conn: AsyncConnection,
    doc_id: int,
    loaded: LoadedDoc,
    stored: bytes,
    mark: bytes | None,
    state_size: int,
    now: float,
) -> None:
    """Store ``stored`` (the fold of ``loaded``, sealed; ``state_size`` bytes in plaintext) as the
    document's snapshot up to ``loaded.seq``, unless a newer one is there already, and recount
    the document's size."""
    values = {
        "upto_seq": loaded.seq,
        "upto_pos": loaded.pos,
        "state": stored,
        "at": now,
        "checked": mark,
    }
    result = await conn.execute(
        sa_update(snapshots)
        .where(snapshots.c.doc_id == doc_id, snapshots.c.upto_seq < loaded.seq)
        .values(**values)
    )
    if result.rowcount == 0:
        await conn.execute(
            dialect_insert(conn.dialect.name)(snapshots)
            .values(doc_id=doc_id, **values)
            .on_conflict_do_nothing(index_elements=["doc_id"])
        )
    # The new snapshot was folded from checked updates: a quarantined older one is gone.
    await conn.execute(
        quarantine.delete().where(quarantine.c.doc_id == doc_id, quarantine.c.seq == 0)
    )
    tail_size = (
        await conn.execute(
            text(
                "SELECT COALESCE(SUM(LENGTH(data)), 0) FROM syncd_updates"
                " WHERE doc_id = :id AND seq > :seq"
            ),
            {"id": doc_id, "seq": loaded.seq},
        )
    ).scalar_one()
    await conn.execute(
        sa_update(documents)
        .where(documents.c.id == doc_id, documents.c.snapshot_seq < loaded.seq)
        .values(snapshot_seq=loaded.seq, size_bytes=state_size + int(tail_size))
    )


async def prune_folded(conn: AsyncConnection, doc_id: int, upto_seq: int, before: float) -> None:
    """Delete the log rows up to ``upto_seq`` (folded into the snapshot) written before
    ``before`` (the retention window's start), and record the last pruned feed position."""
    expired = (
        updates.c.doc_id == doc_id,
        updates.c.seq <= upto_seq,
        updates.c.at < before,
    )
    pruned = (await conn.execute(select(func.max(updates.c.pos)).where(*expired))).scalar_one()
    if pruned is not None:
        await conn.execute(updates.delete().where(*expired))
        await conn.execute(
            sa_update(documents)
            .where(documents.c.id == doc_id, documents.c.pruned_pos < pruned)
            .values(pruned_pos=pruned)
        )
