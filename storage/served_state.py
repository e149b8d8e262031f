"""A document as a new client receives it, kept across unloads: a cold load's first answer.

Most of a cold load of a long history is yrs applying the snapshot to a fresh replica (about
120 ms for the 4.6 MiB snapshot of 100,000 edits), and the first client waits for it only
because the replica is what answers. The replica's answer to a new client is its whole state,
garbage collected, which the node holds anyway when the room unloads or the node stops: that is
stored here (``syncd_served_states``), with the replica's state vector and the seq and epoch it
is of. A load that finds it current (nothing committed since, the same lineage) answers new
clients with it at once, and the replica is rebuilt from the snapshot and tail behind that
answer (``Room.restore_later``): the client receives what the rebuilt replica would send.

It is a cache. Stale, missing or not opening, the load takes the usual path; it is never the
source of a replica. Its bytes are the document's content: sealed like a snapshot (kind
``served-state``, number ``upto_seq``), resealed by key rotation, and deleted with the rest of a
document's content by purge and by erasure's rewrite. The state vector (client ids and clocks,
numbers only, like the lineage fence) is stored as it is.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncConnection

from .binary_rows import fetch_rows
from .schema import served_states
from .sealing import Kind, SealedRowError

if TYPE_CHECKING:
    from .sealed_rows import RowSealing
    from .store import DocKey

__all__ = ["MIN_SERVED_BYTES", "ServedState", "forget_served", "read_served", "write_served"]

log = logging.getLogger(__name__)

# Below this a replica is rebuilt in a few milliseconds: a row would cost more than it saves.
MIN_SERVED_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class ServedState:
    """The replica's answer to a new client at ``seq``: its state vector and whole state."""

    seq: int
    state_vector: bytes
    update: bytes


async def read_served(
    conn: AsyncConnection,
    sealing: RowSealing,
    key: DocKey,
    doc_id: int,
    *,
    seq: int,
    epoch: str,
) -> ServedState | None:
    """The stored served state of document ``doc_id`` if it is of ``seq`` and ``epoch``."""
    rows = await fetch_rows(
        conn,
        "SELECT upto_seq, epoch, state_vector, state FROM syncd_served_states WHERE doc_id = :id",
        {"id": doc_id},
    )
    if not rows:
        return None
    upto_seq, row_epoch, state_vector, state = rows[0]
    if upto_seq != seq or row_epoch != epoch:
        return None
    try:
        update = await sealing.open_one(conn, key, Kind.SERVED_STATE, seq, state)
    except SealedRowError as exc:  # a cache: the snapshot and tail still serve the document
        log.warning("doc %s: its served state does not open, not used: %s", key, exc)
        return None
    return ServedState(seq, bytes(state_vector), update)


async def write_served(
    conn: AsyncConnection,
    sealing: RowSealing,
    key: DocKey,
    doc_id: int,
    *,
    epoch: str,
    served: ServedState,
    at: float,
) -> None:
    """Store ``served`` for document ``doc_id``, replacing any older one. The caller holds the
    document's row lock and has checked that ``served.seq`` and ``epoch`` are still its own."""
    stored = await sealing.seal(conn, key, Kind.SERVED_STATE, served.seq, served.update)
    await forget_served(conn, doc_id)
    await conn.execute(
        served_states.insert().values(
            doc_id=doc_id,
            upto_seq=served.seq,
            epoch=epoch,
            state_vector=served.state_vector,
            state=stored,
            at=at,
        )
    )


async def forget_served(conn: AsyncConnection, doc_id: int) -> None:
    await conn.execute(delete(served_states).where(served_states.c.doc_id == doc_id))
