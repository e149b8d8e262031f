"""``syncd.rate``: the token bucket that paces a connection's reader (a controlled clock)."""

from __future__ import annotations

import pytest

from syncd.rate import TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_passes_then_the_rate_holds():
    clock = Clock()
    bucket = TokenBucket(100, 400, clock=clock)
    assert [bucket.take() for _ in range(400)] == [0.0] * 400
    # The 401st waits one token's time; the next ones queue up behind it.
    assert bucket.take() == pytest.approx(0.01)
    assert bucket.take() == pytest.approx(0.02)
    clock.now = 0.02  # the caller waited: back within budget
    assert bucket.take() == pytest.approx(0.01)


def test_tokens_refill_up_to_the_burst_only():
    clock = Clock()
    bucket = TokenBucket(10, 20, clock=clock)
    for _ in range(20):
        bucket.take()
    clock.now = 1000.0  # a long pause saves up at most the burst
    assert [bucket.take() for _ in range(20)] == [0.0] * 20
    assert bucket.take() > 0


def test_cost_counts_bytes():
    bucket = TokenBucket(1000, 1000, clock=Clock())
    assert bucket.take(1000) == 0.0
    assert bucket.take(500) == pytest.approx(0.5)


def test_rate_and_burst_must_be_positive():
    with pytest.raises(ValueError):
        TokenBucket(0, 1)
