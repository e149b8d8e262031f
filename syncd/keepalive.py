"""WebSocket keepalive pings from one server-wide timer instead of one timer per socket.

uvicorn schedules a ping timer for each socket (and a pong deadline after each ping): a
``TimerHandle`` with its arguments per idle connection, kept in the event loop's heap, and a
heap push and pop per socket every interval. Here one timer ticks every ``ping_interval``
seconds for all the sockets of a server. At each tick a socket whose last ping is answered gets
a new one; a socket whose ping has gone unanswered for ``ping_timeout`` (counted in ticks, so at
least one interval) is failed with 1011, as uvicorn's keepalive does. A socket's first ping
comes within one interval of its handshake, rather than exactly one interval after it.
"""

from __future__ import annotations

import asyncio
import math
from typing import Protocol

__all__ = ["Keepalive", "Pinged"]


class Pinged(Protocol):
    """A socket as :class:`Keepalive` drives it (``websocket_protocol.WebSocketProtocol``)."""

    ping_interval: float | None
    ping_timeout: float | None

    def keepalive_tick(self, tick: int, ticks_to_fail: int | None) -> None: ...


class Keepalive:
    """The ping timer of one server's WebSockets, running while any socket is registered."""

    __slots__ = ("_loop", "_sockets", "_timer", "interval", "tick", "ticks_to_fail")

    def __init__(self) -> None:
        self._sockets: dict[Pinged, None] = {}  # an ordered set
        self._timer: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.interval = 0.0
        self.tick = 0
        # Ticks a ping may go unanswered before its socket fails; None: never (no timeout).
        self.ticks_to_fail: int | None = None

    def __len__(self) -> int:
        return len(self._sockets)

    def add(self, socket: Pinged) -> None:
        """Ping ``socket`` from the next tick on (its settings are the server's: the first
        socket's interval and timeout set the timer's)."""
        if not socket.ping_interval or socket.ping_interval <= 0:
            return
        self._sockets[socket] = None
        loop = asyncio.get_running_loop()
        if self._timer is None or self._loop is not loop:  # not running, or left on a dead loop
            self.interval = socket.ping_interval
            timeout = socket.ping_timeout
            self.ticks_to_fail = (
                None if timeout is None else max(1, math.ceil(timeout / self.interval))
            )
            self._loop = loop
            self._timer = loop.call_later(self.interval, self._tick)

    def discard(self, socket: Pinged) -> None:
        self._sockets.pop(socket, None)

    def _tick(self) -> None:
        self.tick += 1
        for socket in list(self._sockets):
            socket.keepalive_tick(self.tick, self.ticks_to_fail)
        if self._sockets and self._loop is not None:
            self._timer = self._loop.call_later(self.interval, self._tick)
        else:
            self._timer = None
