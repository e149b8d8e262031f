"""``syncd.seq_ranges``: the bookkeeping of which seqs a replica holds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from syncd.seq_ranges import SeqRanges


def test_in_order_ranges_extend_the_prefix():
    r = SeqRanges()
    r.add(1, 3)
    r.add(4, 4)
    assert (r.upto, r.gap, r.highest) == (4, None, 4)
    assert r.holds(2, 3) and not r.holds(5, 6)


def test_a_range_beyond_leaves_a_gap_until_it_is_filled():
    r = SeqRanges(upto=2)
    r.add(6, 8)
    assert r.gap == (3, 5) and r.highest == 8 and r.holds(6, 8) and not r.holds(3, 5)
    r.add(3, 5)
    assert (r.upto, r.gap) == (8, None)


def test_duplicates_change_nothing():
    r = SeqRanges(upto=5)
    r.add(2, 4)
    r.add(7, 7)
    r.add(7, 7)
    assert r.gap == (6, 6) and r.upto == 5


# A document's commits: consecutive ranges; delivered in any order, each any number of times.
@given(st.lists(st.integers(1, 5), min_size=1, max_size=20), st.randoms())
def test_any_delivery_order_ends_holding_everything(sizes, rng):
    ranges, first = [], 1
    for size in sizes:
        ranges.append((first, first + size - 1))
        first += size
    deliveries = ranges + rng.sample(ranges, k=len(ranges) // 2)
    rng.shuffle(deliveries)
    r = SeqRanges()
    delivered: list[tuple[int, int]] = []
    for a, b in deliveries:
        r.add(a, b)
        delivered.append((a, b))
        gap = r.gap
        if gap is not None:  # a gap is exactly what has not been delivered yet
            assert not any(a2 <= gap[0] <= b2 for a2, b2 in delivered)
            assert not any(a2 <= gap[1] <= b2 for a2, b2 in delivered)
    assert (r.upto, r.gap, r.highest) == (first - 1, None, first - 1)
