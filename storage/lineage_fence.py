"""The lineage fence: what keeps a rewritten history rewritten (docs/privacy.md, erasure).

Erasure rewrites a document as a new lineage: its content copied into a fresh Yjs document under
a new client id, a new epoch. syncd's SDKs see the epoch change and never merge their old
replica back. A stock Yjs client (y-websocket, Hocuspocus provider) knows nothing of epochs: on
reconnect it answers the server's state vector with every struct the server lacks, which is the
whole old lineage, erased identity included, and the server would merge it in.

So the rewrite records, per client id of the old lineage, the clock its structs reach (the end
of each client's range). Yjs clocks only grow, and a client id is random per session, so a struct
of ``client`` below that clock can only come from the old lineage: an update holding one is
refused whole (``Room.check_lineage``), before it reaches the document. Later edits of the same
session (clocks past the fence) are not refused; they cannot bring the old structs with them.
The fence holds numbers only (no content, no identity), and grows with every rewrite.
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncConnection

from .schema import lineage_fences

__all__ = ["extend_fence", "read_fence"]


async def read_fence(conn: AsyncConnection, doc_id: int) -> dict[int, int]:
    """``{client: clock}``: structs of ``client`` below ``clock`` belong to a rewritten lineage."""
    rows = await conn.execute(
        select(lineage_fences.c.client, lineage_fences.c.clock).where(
            lineage_fences.c.doc_id == doc_id
        )
    )
    return {client: clock for client, clock in rows}


async def extend_fence(conn: AsyncConnection, doc_id: int, ends: Mapping[int, int]) -> None:
    """Fence off the lineage whose clients reach ``ends`` (``{client: end clock}``), keeping
    what earlier rewrites fenced. In the transaction that rewrites the document."""
    fence = await read_fence(conn, doc_id)
    for client, end in ends.items():
        if end > fence.get(client, 0):
            fence[client] = end
    await conn.execute(delete(lineage_fences).where(lineage_fences.c.doc_id == doc_id))
    if fence:
        await conn.execute(
            lineage_fences.insert(),
            [{"doc_id": doc_id, "client": c, "clock": k} for c, k in fence.items()],
        )
