"""Sending a committed batch on: to the other nodes, then to this node's peers.

Functions with no state of their own, called by ``Room`` the moment the commit returns (no task,
no await: what a client sees is never more than what is stored, and never later than it need
be). A batch goes to each peer as one merged update, one message per peer per batch; a peer
that wrote some of it gets only the others' updates, merged again for it, as long as there are
at most ``_MAX_PERSONAL_MERGES`` writers. Should yrs fail to merge what it applied one by one,
the updates go out one by one, which says the same.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence

from crdt.protocol import SyncStep, encode_sync
from crdt.updates import merge
from crdt.yrs_guard import YrsFailure, guarded
from storage import DocKey

from .broker import Broker, UpdatesCommitted
from .member import Member
from .pending_updates import Incoming

__all__ = ["fan_out", "merged", "update_messages"]

log = logging.getLogger("syncd.room")  # the room's records, wherever the code sits

# Beyond this many writers in one batch, everyone gets the full merged update (their own edits
# echoed back, which Yjs ignores) instead of one merge per writer.
_MAX_PERSONAL_MERGES = 8


def fan_out(
    key: DocKey,
    batch: Sequence[Incoming],
    seqs: Sequence[int],
    peers: Iterable[Member],
    broker: Broker,
) -> None:
    """Publish ``batch`` (committed as ``seqs``) to the other nodes and send it to ``peers``."""
    merged_update = merged([i.data for i in batch])
    if merged_update is not None:
        everyone = [encode_sync(SyncStep.UPDATE, merged_update)]
        broker.publish(key, UpdatesCommitted(broker.node_id, seqs[0], seqs[-1], merged_update))
    else:
        everyone = [encode_sync(SyncStep.UPDATE, i.data) for i in batch]
        for i, seq in zip(batch, seqs, strict=True):
            broker.publish(key, UpdatesCommitted(broker.node_id, seq, seq, i.data))
    writers: dict[Member, list[bytes]] = {}
    for i in batch:
        if i.peer is not None:
            writers.setdefault(i.peer, []).append(i.data)
    if len(writers) > _MAX_PERSONAL_MERGES:
        writers = {}
    for peer in tuple(peers):
        own = writers.get(peer)
        if own is None:
            for message in everyone:
                peer.send(message)
            continue
        others = [i.data for i in batch if i.peer is not peer]
        if others:
            for message in update_messages(others):
                peer.send(message)


def merged(updates: list[bytes]) -> bytes | None:
    """``updates`` merged into one, or ``None`` should yrs fail to merge what it applied one by
    one (then they go out one by one, which says the same)."""
    try:
        return guarded(merge, updates)
    except YrsFailure as exc:
        log.warning("merging %d updates failed, sending them one by one: %s", len(updates), exc)
        return None


def update_messages(updates: list[bytes]) -> list[bytes]:
    """Sync update messages carrying ``updates``: one merged message, or one per update."""
    merged_update = merged(updates)
    if merged_update is not None:
        return [encode_sync(SyncStep.UPDATE, merged_update)]
    return [encode_sync(SyncStep.UPDATE, u) for u in updates]
