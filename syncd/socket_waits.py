"""The two things a WebSocket waits on, sized for a socket that is idle most of its life.

uvicorn gives every WebSocket an ``asyncio.Queue`` for what the client sent and an
``asyncio.Event`` for "the transport is writable". Each allocates ``collections.deque``\\ s in
its constructor (three for the queue, one for the event), and an empty deque is a 760-byte
block: 3 KiB per connection before it has sent anything. The queue holds at most a message or
two (uvicorn pauses reading after each message until the application takes it), and the event
is waited on only while the client's TCP window is shut. These two do the same with a list, or
nothing until someone waits.
"""

from __future__ import annotations

import asyncio
from typing import Generic, TypeVar

__all__ = ["ReceiveQueue", "WaitFlag"]

T = TypeVar("T")


class ReceiveQueue(Generic[T]):
    """``asyncio.Queue``'s ``put_nowait`` / ``get`` / ``empty`` / ``qsize``, unbounded, FIFO."""

    __slots__ = ("_items", "_waiters")

    def __init__(self) -> None:
        self._items: list[T] = []
        self._waiters: list[asyncio.Future[None]] = []

    def put_nowait(self, item: T) -> None:
        self._items.append(item)
        self._wake_one()

    def empty(self) -> bool:
        return not self._items

    def qsize(self) -> int:
        return len(self._items)

    async def get(self) -> T:
        while not self._items:
            waiter = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
            try:
                await waiter
            except asyncio.CancelledError:
                # Woken, then cancelled: hand the wake-up on, or an item would wait for nobody.
                if waiter.done() and not waiter.cancelled() and self._items:
                    self._wake_one()
                raise
            finally:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
        return self._items.pop(0)

    def _wake_one(self) -> None:
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)
                return


class WaitFlag:
    """``asyncio.Event``'s ``set`` / ``clear`` / ``is_set`` / ``wait``; no waiter list until
    someone waits."""

    __slots__ = ("_value", "_waiters")

    def __init__(self, value: bool = False) -> None:
        self._value = value
        self._waiters: list[asyncio.Future[None]] | None = None

    def is_set(self) -> bool:
        return self._value

    def set(self) -> None:
        if self._value:
            return
        self._value = True
        waiters, self._waiters = self._waiters, None
        for waiter in waiters or ():
            if not waiter.done():
                waiter.set_result(None)

    def clear(self) -> None:
        self._value = False

    async def wait(self) -> bool:
        if self._value:
            return True
        waiter = asyncio.get_running_loop().create_future()
        if self._waiters is None:
            self._waiters = []
        self._waiters.append(waiter)
        try:
            await waiter
            return True
        finally:
            if self._waiters is not None and waiter in self._waiters:
                self._waiters.remove(waiter)
