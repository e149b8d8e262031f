"""A wake-up for readers waiting on new commits (the feed's long-poll and push)."""

from __future__ import annotations

import asyncio
import contextlib

__all__ = ["CommitSignal"]


class CommitSignal:
    """Pulsed after every commit on this node.

    Take :meth:`mark` *before* reading, then :meth:`wait` on it: a commit that lands between the
    read and the wait still wakes the reader (no lost wake-up).
    """

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self) -> None:
        event, self._event = self._event, asyncio.Event()
        event.set()

    def mark(self) -> asyncio.Event:
        return self._event

    @staticmethod
    async def wait(mark: asyncio.Event, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await mark.wait()
