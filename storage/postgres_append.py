"""The Postgres write path of :meth:`SqlStore.append`: fixed SQL over arrays, on psycopg itself.

Every live update is appended here. Through SQLAlchemy Core a batch cost about 2 ms of CPU:
statements compiled anew on every commit (the ``CASE`` over the batch's documents has a
different shape each time, so nothing is cached) and one row dict per update. Here the three
statements are fixed text whatever the batch holds — the documents and the rows travel as
arrays (``unnest``) — so psycopg prepares each once per connection and a commit costs three
round trips and little Python.

It runs on the connection of a transaction that :meth:`SqlStore._begin` opened: the same pool,
deadlines (``storage/deadline.py``) and error handling as every other operation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .row_security import SETTING, scope_value
from .sealed_rows import Sealer
from .store import DocKey, DocumentDeleted, NewUpdate

__all__ = ["append_rows"]

# Taken first by every appender and held until commit: positions become visible in commit order
# (see schema.feed_position), and one lock order for everyone rules out deadlocks. The same
# statement names the transaction's tenants for row-level security (storage/row_security.py),
# which a separate set_config would cost one more round trip on every commit.
_BUMP_POSITION = (
    "UPDATE syncd_feed_position SET pos = pos + %s"
    f" FROM (SELECT set_config('{SETTING}', %s, true)) AS scope WHERE id = 1 RETURNING pos"
)
# Tombstones are left alone: a delete committing meanwhile holds the row lock, and the condition
# is checked again on the row it committed.
_BUMP_DOCUMENTS = (
    "UPDATE syncd_documents AS d SET seq = d.seq + b.n, size_bytes = d.size_bytes + b.size,"
    " updated_at = %s"
    " FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[]) AS b(id, n, size)"
    " WHERE d.id = b.id AND d.deleted_at IS NULL RETURNING d.id, d.seq"
)
_INSERT_UPDATES = (
    "INSERT INTO syncd_updates (pos, doc_id, seq, principal, origin, at, data)"
    " SELECT * FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::text[], %s::text[],"
    " %s::float8[], %s::bytea[])"
)


async def append_rows(
    raw: Any,
    batch: Mapping[DocKey, Sequence[NewUpdate]],
    ids: Mapping[DocKey, int],
    now: float,
    seal: Sealer | None = None,
) -> dict[DocKey, list[int] | DocumentDeleted]:
    """Store ``batch`` through ``raw`` (a psycopg ``AsyncConnection`` inside a transaction
    opened with no tenants named: this names the batch's); ``ids`` are the documents' row ids;
    ``seal`` (with a master key) seals each row once its seq is known. Returns each document's
    seqs, or ``DocumentDeleted``."""
    total = sum(len(items) for items in batch.values())
    async with raw.cursor() as cur:
        await cur.execute(_BUMP_POSITION, (total, scope_value({key.tenant for key in batch})))
        (last_pos,) = await cur.fetchone()
        keys = sorted(batch)
        await cur.execute(
            _BUMP_DOCUMENTS,
            (
                now,
                [ids[k] for k in keys],
                [len(batch[k]) for k in keys],
                [sum(len(u.data) for u in batch[k]) for k in keys],
            ),
        )
        last_seq = dict(await cur.fetchall())
        seqs: dict[DocKey, list[int] | DocumentDeleted] = {}
        columns: tuple[list[Any], ...] = ([], [], [], [], [], [], [])
        pos_col, doc_col, seq_col, principal_col, origin_col, at_col, data_col = columns
        next_pos = last_pos - total + 1
        # Documents in key order: feed positions follow it, as on SQLite.
        for key in keys:
            items, doc_id = batch[key], ids[key]
            if doc_id not in last_seq:
                # A tombstone: nothing of it is stored; its feed positions stay unused (a gap,
                # like a rolled-back transaction's).
                seqs[key] = DocumentDeleted(key)
                continue
            first = last_seq[doc_id] - len(items) + 1
            seqs[key] = list(range(first, first + len(items)))
            for seq, item in enumerate(items, first):
                pos_col.append(next_pos)
                doc_col.append(doc_id)
                seq_col.append(seq)
                principal_col.append(item.principal)
                origin_col.append(item.origin)
                at_col.append(now)
                data_col.append(item.data if seal is None else seal(key, seq, item.data))
                next_pos += 1
        if pos_col:
            await cur.execute(_INSERT_UPDATES, columns)
    return seqs
