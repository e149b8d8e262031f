"""Hold a running daemon's commits at a gate, to observe what happens before an update is stored."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

from syncd.daemon import Daemon


class CommitGate:
    """While closed, every ``Store.append`` waits (before writing anything) until it opens."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()  # an append is waiting at the gate
        self._open = asyncio.Event()

    def open(self) -> None:
        self._open.set()

    async def wait_entered(self, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            await self.entered.wait()


@contextlib.contextmanager
def gated_commits(daemon: Daemon) -> Iterator[CommitGate]:
    """Gate the commits of ``daemon`` (the group commit's store) for the ``with`` block."""
    gate = CommitGate()
    store = daemon.commit.store
    append = store.append

    async def gated_append(*args: Any, **kwargs: Any) -> Any:
        gate.entered.set()
        await gate._open.wait()
        return await append(*args, **kwargs)

    store.append = gated_append  # type: ignore[method-assign]
    try:
        yield gate
    finally:
        gate.open()
        del store.append  # back to the class's method
