"""Hold a running daemon's store calls at a gate, to observe what happens before they run."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from syncd.daemon import Daemon


class StoreGate:
    """While closed, every call of the gated store method waits (before doing anything)."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()  # an append is waiting at the gate
        self._open = asyncio.Event()

    def open(self) -> None:
        self._open.set()

    async def wait_entered(self, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            await self.entered.wait()


@contextlib.contextmanager
def gated_store(daemon: Daemon, method: str) -> Iterator[StoreGate]:
    """Gate ``daemon``'s store method ``method`` (e.g. ``"delete"``) for the ``with`` block."""
    gate = StoreGate()
    store = daemon.commit.store
    original = getattr(store, method)

    async def gated(*args: Any, **kwargs: Any) -> Any:
        gate.entered.set()
        await gate._open.wait()
        return await original(*args, **kwargs)

    setattr(store, method, gated)
    try:
        yield gate
    finally:
        gate.open()
        delattr(store, method)  # back to the class's method


def gated_commits(daemon: Daemon) -> contextlib.AbstractContextManager[StoreGate]:
    """Gate the commits of ``daemon`` (the group commit's ``Store.append``)."""
    return gated_store(daemon, "append")
