"""Which of a document's updates a replica holds, by ``seq``: a contiguous prefix plus ranges
beyond it. Pure bookkeeping, no I/O.

With several nodes writing one document, a node's replica does not take updates in ``seq``
order: its own commits land at once, other nodes' arrive through the broker a moment later, and
a message lost on the way leaves a hole that only the store can fill. Each commit is one
contiguous range (the store allocates a batch's seqs in one statement), so a replica holds the
prefix ``1..upto`` and some whole ranges after it; a hole between them is a *gap*.
"""

from __future__ import annotations

import bisect

__all__ = ["SeqRanges"]


class SeqRanges:
    __slots__ = ("_ahead", "upto")

    def __init__(self, upto: int = 0) -> None:
        self.upto = upto  # every seq <= upto is held
        self._ahead: list[tuple[int, int]] = []  # held ranges beyond upto, sorted, disjoint

    def holds(self, first: int, last: int) -> bool:
        """Whether the whole range is held (a range is held whole or not at all)."""
        if last <= self.upto:
            return True
        i = bisect.bisect_right(self._ahead, (first, last)) - 1
        return i >= 0 and self._ahead[i][0] <= first and last <= self._ahead[i][1]

    def add(self, first: int, last: int) -> None:
        if last <= self.upto:
            return
        if first <= self.upto + 1:
            self.upto = last
        else:
            bisect.insort(self._ahead, (first, last))
        while self._ahead and self._ahead[0][0] <= self.upto + 1:
            self.upto = max(self.upto, self._ahead.pop(0)[1])

    @property
    def gap(self) -> tuple[int, int] | None:
        """The first missing range ``(first, last)``, or None when nothing is missing."""
        if not self._ahead:
            return None
        return self.upto + 1, self._ahead[0][0] - 1

    @property
    def highest(self) -> int:
        """The highest seq held."""
        return self._ahead[-1][1] if self._ahead else self.upto

    def reset(self, upto: int) -> None:
        self.upto = upto
        self._ahead.clear()
