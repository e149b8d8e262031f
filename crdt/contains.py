"""Would an update change a document? Yjs' ``snapshotContainsUpdate``, without the document.

The sync endpoint uses it to acknowledge a viewer's sync step 2 that brings nothing new: a Yjs
client always sends its whole delete set, so "empty" cannot be judged from the size. An update
brings nothing when every struct it carries is below the document's state vector and every
range it deletes is already deleted in the document. Both sides are plain data here: the
update's :class:`~crdt.update_format.UpdateShape` and the document's :class:`Knowledge` (its
state vector and delete set, which the room computes once per document version), so a check
costs O(update), never a copy of the document.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

from .update_format import UpdateShape

__all__ = ["Knowledge", "contains_update", "normalize_ranges"]

DeleteSet = dict[int, list[tuple[int, int]]]


def normalize_ranges(delete_set: DeleteSet) -> DeleteSet:
    """Per client, ranges sorted by clock with overlapping and adjacent ones merged."""
    out: DeleteSet = {}
    for client, ranges in delete_set.items():
        merged: list[tuple[int, int]] = []
        for clock, length in sorted(ranges):
            if merged and clock <= merged[-1][0] + merged[-1][1]:
                start, prev = merged[-1]
                merged[-1] = (start, max(prev, clock + length - start))
            else:
                merged.append((clock, length))
        out[client] = merged
    return out


@dataclass(frozen=True, slots=True)
class Knowledge:
    """What a document holds, as far as "is this news?" needs: state vector and delete set."""

    state_vector: dict[int, int]
    delete_set: DeleteSet  # normalized
    _starts: dict[int, list[int]]

    @classmethod
    def of(cls, state_vector: dict[int, int], delete_set: DeleteSet) -> Knowledge:
        ds = normalize_ranges(delete_set)
        return cls(state_vector, ds, {c: [r[0] for r in rs] for c, rs in ds.items()})

    def deleted(self, client: int, clock: int, length: int) -> bool:
        """Whether ``[clock, clock + length)`` of ``client`` is all deleted here."""
        ranges = self.delete_set.get(client)
        if not ranges:
            return False
        i = bisect_right(self._starts[client], clock) - 1
        if i < 0:
            return False
        start, span = ranges[i]
        return clock + length <= start + span


def contains_update(known: Knowledge, shape: UpdateShape) -> bool:
    """Whether applying the update of ``shape`` would change nothing in the document."""
    for client, (_, end) in shape.clients.items():
        if end > known.state_vector.get(client, 0):
            return False
    return all(
        known.deleted(client, clock, length)
        for client, ranges in shape.delete_set.items()
        for clock, length in ranges
    )
