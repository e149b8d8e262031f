"""A pass that runs every so often on a task of its own: the daemon's sweeps and watches.

A pass that fails is logged (a database away for a moment is a warning) and the next one tries
again: one bad pass must not end the loop. ``passes`` counts completed passes, so a test can
wait for one (``wait_passes``) instead of sleeping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from storage import StoreUnavailable

__all__ = ["Periodic"]


class Periodic:
    """:meth:`run_pass` (a subclass's) every ``interval`` seconds from ``start()`` to
    ``stop()``; the first pass at once, or after one interval with ``wait_first``."""

    def __init__(
        self, name: str, interval: float, log: logging.Logger, *, wait_first: bool = False
    ) -> None:
        self.name = name
        self.interval = interval
        self.passes = 0
        self._log = log
        self._wait_first = wait_first
        self._passed = asyncio.Condition()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name.replace(" ", "-"))

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def wait_passes(self, count: int) -> None:
        """Wait until ``count`` more passes have completed."""
        async with self._passed:
            target = self.passes + count
            await self._passed.wait_for(lambda: self.passes >= target)

    async def run_pass(self) -> object:
        """One pass (also called directly, e.g. by tests)."""
        raise NotImplementedError

    async def _run(self) -> None:
        if self._wait_first:
            await asyncio.sleep(self.interval)
        while True:
            try:
                await self.run_pass()
            except StoreUnavailable as exc:  # the next pass tries again
                self._log.warning("%s failed: %s", self.name, exc)
            except Exception:
                self._log.exception("%s failed", self.name)
            async with self._passed:
                self.passes += 1
                self._passed.notify_all()
            await asyncio.sleep(self.interval)
