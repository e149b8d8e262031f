"""Applying a batch of clients' updates to a room's replica, one update at a time.

The strict decoder (``crdt.update_format``) already refused what it can judge alone; what only a
document can judge (an item whose parent is not a shared type, say) shows here, when yrs refuses
or panics applying it. Such an update is rejected: its sender is closed with 4400, its later
updates, which depend on it, are refused too, and the replica, which the failed apply may have
damaged, is rebuilt from the store plus the updates of the batch taken so far. Nothing of the
batch is stored yet, so nobody has seen the rejected update.

A function, not a part of ``Room``: it needs only the replica, the batch and the store, and the
rule reads best in one place.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import pycrdt

from crdt.replay import replay
from crdt.yrs_guard import YrsFailure, apply_update
from storage import DocKey, Store

from .member import Member
from .peer import CloseCode
from .pending_updates import Incoming
from .room_errors import RoomClosed, UpdateRejected

__all__ = ["AppliedBatch", "apply_batch"]

log = logging.getLogger("syncd.room")  # the room's records, wherever the code sits


@dataclass(slots=True)
class AppliedBatch:
    doc: pycrdt.Doc  # the replica: the one given, or the last one rebuilt
    taken: list[Incoming] = field(default_factory=list)  # applied, in order: to be committed
    rejected: set[Member] = field(default_factory=set)  # senders closed with 4400


async def apply_batch(
    doc: pycrdt.Doc,
    batch: Sequence[Incoming],
    *,
    key: DocKey,
    store: Store,
    on_rejected: Callable[[], None] | None = None,
) -> AppliedBatch:
    """Apply each update of ``batch`` to ``doc``; return the replica and the updates it took.

    Every rejected update's waiter gets :class:`UpdateRejected`; ``on_rejected`` (metrics) is
    called once per rejected update.

    Raises:
        StoreUnavailable: a rebuild could not load the document. RoomClosed: it was deleted.
    """
    applied = AppliedBatch(doc)
    for i in batch:
        if i.peer is not None and i.peer in applied.rejected:
            i.failed(UpdateRejected("an earlier update of this connection was rejected"))
            continue
        try:
            apply_update(applied.doc, i.data)
        except YrsFailure as exc:
            log.warning(
                "doc %s: update from %s (%d bytes) rejected, cannot be applied: %s",
                key,
                i.peer.id if i.peer is not None else i.origin.stored_as,
                len(i.data),
                exc,
            )
            i.failed(UpdateRejected(f"update cannot be applied: {exc}"))
            if on_rejected is not None:
                on_rejected()
            if i.peer is not None:
                applied.rejected.add(i.peer)
                i.peer.close(CloseCode.MALFORMED, "update cannot be applied to the document")
            applied.doc = await _rebuilt(key, store, [t.data for t in applied.taken])
            continue
        applied.taken.append(i)
    return applied


async def _rebuilt(key: DocKey, store: Store, uncommitted: list[bytes]) -> pycrdt.Doc:
    loaded = await store.load(key)  # raises StoreUnavailable
    if loaded is None:
        raise RoomClosed(f"document {key} was deleted")
    result = replay(
        loaded.snapshot, loaded.numbered_tail(), snapshot_checked=loaded.snapshot_checked
    )
    for update in uncommitted:
        apply_update(result.doc, update)  # each applied cleanly a moment ago
    return result.doc
