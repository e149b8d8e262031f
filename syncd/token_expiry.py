"""Token expiry for all the document sessions of a daemon from one timer, not one per session.

A session's token expires at its ``exp`` (seconds since the epoch) and the session is then closed
with 4401. An asyncio ``TimerHandle`` per session (with its arguments and its place in the loop's
heap) is about 0.5 KiB for as long as the connection lives (benchmarks/RESULTS.md, "Connection
cost"). Here sessions wait in buckets of one second, by ``ceil(exp)``, and one timer is armed for
the earliest bucket: a session expires at its token's ``exp`` (syncd mints whole seconds) or less
than a second after it, never before.

A bucket stays until its second has come, emptied or not, so every second has one bucket and one
heap entry however many sessions come and go in it; a session that ended leaves no reference.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import time
from typing import Protocol

__all__ = ["Expiring", "TokenExpiry"]

log = logging.getLogger("syncd.token_expiry")


class Expiring(Protocol):
    """What :class:`TokenExpiry` holds (``session.DocumentSession``): told once, when due."""

    def token_expired(self) -> None: ...


class TokenExpiry:
    """The sessions of one daemon by the second their token expires, and the timer for the next."""

    __slots__ = ("_armed_for", "_buckets", "_due", "_loop", "_timer")

    def __init__(self) -> None:
        self._buckets: dict[int, dict[Expiring, None]] = {}  # second -> an ordered set
        self._due: list[int] = []  # the buckets' seconds, a heap: each exactly once
        self._timer: asyncio.TimerHandle | None = None
        self._armed_for = 0
        self._loop: asyncio.AbstractEventLoop | None = None

    def __len__(self) -> int:
        return sum(len(bucket) for bucket in self._buckets.values())

    def add(self, session: Expiring, exp: float) -> None:
        """Tell ``session`` once its token's ``exp`` has passed (at once if it has)."""
        second = math.ceil(exp)
        bucket = self._buckets.get(second)
        if bucket is None:
            bucket = self._buckets[second] = {}
            heapq.heappush(self._due, second)
        bucket[session] = None
        loop = asyncio.get_running_loop()
        if self._timer is None or self._loop is not loop or second < self._armed_for:
            self._arm(loop)

    def discard(self, session: Expiring, exp: float) -> None:
        """``session`` ended before its token expired (a no-op if it was never added or was
        told already)."""
        bucket = self._buckets.get(math.ceil(exp))
        if bucket is not None:
            bucket.pop(session, None)

    def _arm(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._loop = loop
        self._armed_for = self._due[0]
        self._timer = loop.call_later(max(0.0, self._armed_for - time.time()), self._fire)

    def _fire(self) -> None:
        self._timer = None
        now = time.time()
        due, buckets = self._due, self._buckets
        while due and due[0] <= now:
            # Out of the dict before anyone is told: a session ending now finds no bucket.
            for session in buckets.pop(heapq.heappop(due)):
                try:
                    session.token_expired()
                except Exception:  # one session's failure leaves the others to be told
                    log.exception("telling a session its token expired")
        if due and self._loop is not None:
            self._arm(self._loop)
