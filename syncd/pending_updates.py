"""The updates a room has taken in and not yet committed: a queue bounded in bytes.

At the bound (``max_pending_bytes``) nothing is refused: :attr:`PendingUpdates.space` is
cleared, and ``Room.ingest`` holds the next writer until the flush task takes a batch. A writer
faster than the database is thus slowed down at its socket instead of filling memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Collection
from dataclasses import dataclass

from .member import Member
from .origin import Origin

__all__ = ["Incoming", "PendingUpdates"]


@dataclass(slots=True)
class Incoming:
    """One update queued in a room, with who sent it and who waits for its seq."""

    origin: Origin
    data: bytes
    done: asyncio.Future[int] | None = None  # resolved with the seq once stored

    @property
    def peer(self) -> Member | None:
        """The connection that sent it (None: HTTP, a service, a restore)."""
        return self.origin.peer

    def stored(self, seq: int) -> None:
        """It was committed as ``seq``: tell whoever waits for it."""
        if self.done is not None and not self.done.done():
            self.done.set_result(seq)

    def failed(self, exc: Exception) -> None:
        """It will never be stored: whoever waits for it gets ``exc``."""
        if self.done is not None and not self.done.done():
            self.done.set_exception(exc)


class PendingUpdates:
    """The queue, oldest first. ``space`` is set while it holds less than ``max_bytes``."""

    __slots__ = ("_bytes", "_items", "_max_bytes", "space")

    def __init__(self, max_bytes: int) -> None:
        self._items: list[Incoming] = []
        self._bytes = 0
        self._max_bytes = max_bytes
        self.space = asyncio.Event()
        self.space.set()

    def __len__(self) -> int:
        return len(self._items)

    def append(self, item: Incoming) -> None:
        self._items.append(item)
        self._bytes += len(item.data)
        if self._bytes >= self._max_bytes:
            self.space.clear()

    def take(self, most: int) -> list[Incoming]:
        """Remove and return the oldest ``most`` updates (the next batch)."""
        batch = self._items[:most]
        del self._items[:most]
        self._bytes -= sum(len(i.data) for i in batch)
        self._freed()
        return batch

    def drop_from(self, senders: Collection[Member]) -> list[Incoming]:
        """Remove and return the updates of ``senders`` (their earlier ones were not stored)."""
        dropped = [i for i in self._items if i.peer in senders]
        if not dropped:
            return dropped
        self._items = [i for i in self._items if i.peer not in senders]
        self._bytes -= sum(len(i.data) for i in dropped)
        self._freed()
        return dropped

    def clear(self) -> list[Incoming]:
        """Remove and return everything (the room closes)."""
        items, self._items, self._bytes = self._items, [], 0
        self.space.set()
        return items

    def _freed(self) -> None:
        if self._bytes < self._max_bytes:
            self.space.set()
