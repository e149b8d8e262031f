"""Per-connection rate limits: a token bucket that paces a socket's reader.

A connection that sends faster than its budget is not closed: its reader pauses until the
bucket has refilled, so TCP back-pressure slows the client down (a legitimate burst, such as a
phone syncing a hundred documents after a night offline, goes through a little later; a flood
of 70,000 tiny updates a second becomes 500 a second and cannot starve other connections).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

__all__ = ["ConnectionPace", "TokenBucket"]


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up."""

    __slots__ = ("_at", "_clock", "_tokens", "burst", "rate")

    def __init__(
        self, rate: float, burst: float, *, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst <= 0:
            raise ValueError("rate and burst must be positive")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._at = clock()

    def take(self, cost: float = 1.0) -> float:
        """Spend ``cost`` tokens; return how long to wait before going on (0: within budget).

        The tokens are spent at once (the balance may go negative), so a caller that waits the
        returned time is exactly back within its budget.
        """
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now
        self._tokens -= cost
        return 0.0 if self._tokens >= 0 else -self._tokens / self.rate


class ConnectionPace:
    """The budgets of one connection: messages and bytes per second."""

    __slots__ = ("_bytes", "_messages")

    def __init__(self, messages_per_second: float, bytes_per_second: float) -> None:
        # A burst of four seconds' worth: reconnect bursts pass unpaced.
        self._messages = TokenBucket(messages_per_second, 4 * messages_per_second)
        self._bytes = TokenBucket(bytes_per_second, 4 * bytes_per_second)

    async def admit(self, size: int) -> None:
        """Wait, if needed, until a message of ``size`` bytes is within the budget."""
        delay = max(self._messages.take(), self._bytes.take(size))
        if delay > 0:
            await asyncio.sleep(delay)
