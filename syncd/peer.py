"""A WebSocket's outgoing side: one bounded send queue per socket, its drain, the close handshake.

Rooms never await a socket: their members (``syncd/member.py``) send through the socket's
:class:`Peer`, whose :meth:`Peer.send` writes at once when the socket can take it: framed and
written below ASGI where the transport allows (``write_now``, syncd/transport.py), else through
uvicorn's send, which completes without suspending while the client's TCP window is open. A send
that has to wait becomes a drain task, and later messages queue behind it until the task has written
them all; so a slow client's queue grows instead of the room waiting. At ``max_messages`` or
``max_bytes`` the peer is closed with 1013 and its queue dropped: one slow reader never holds up a
room or grows the server's memory. All queues together are bounded too (:class:`SendQueues`): past
that bound the peer with the most queued bytes is closed with 1013, so many slow readers at once
cannot exhaust memory either. Idle peers own no task at all.

A close that is not delivered in time (the client does not read) aborts the TCP connection, so the
socket and its buffers are released at once rather than when the client goes away.

A peer knows nothing of documents or identities: a ``/v1/sync`` socket carries many documents, each
its own member with its own grant, through one peer.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

__all__ = ["CloseCode", "Peer", "PeerState", "SendQueues"]

log = logging.getLogger("syncd.peer")

# How long a close handshake may take before the connection is dropped (aborted, its handler
# cancelled). A peer closed with 1013 is one that does not read: it gets less
# (SendQueues.slow_close_seconds, by default SLOW_READER_CLOSE_TIMEOUT).
CLOSE_TIMEOUT = 5.0
SLOW_READER_CLOSE_TIMEOUT = 2.0


class CloseCode(enum.IntEnum):
    """Close codes of DESIGN.md §1.4; 44xx are permanent (do not retry blindly)."""

    NORMAL = 1000
    GOING_AWAY = 1001  # server shutting down
    INTERNAL_ERROR = 1011
    TRY_AGAIN_LATER = 1013  # overloaded, slow consumer
    MALFORMED = 4400
    UNAUTHORIZED = 4401  # missing/invalid/expired token, access revoked
    FORBIDDEN = 4403
    NOT_FOUND = 4404  # document deleted
    TOO_LARGE = 4413


class PeerState(enum.Enum):
    OPEN = "open"
    CLOSING = "closing"
    CLOSED = "closed"


SendBytes = Callable[[bytes], Coroutine[Any, Any, None]]
WriteNow = Callable[[bytes], bool]  # True: written at once; False: nothing written
CloseSocket = Callable[[int, str], Awaitable[None]]
AbortSocket = Callable[[], None]


class SendQueues:
    """Every peer's send queue, together under one bound on their bytes.

    Peers report what enters and leaves their queue. When the total passes ``max_bytes``, the
    peer holding the most is closed with 1013 (which drops its queue), until the total is back
    under the bound: the slowest reader pays, not whoever happened to send last. The bytes
    counted are those waiting behind a socket write; a message shared by many peers (a
    broadcast) counts once per peer, so the bound is conservative.
    """

    __slots__ = ("_by_peer", "max_bytes", "queued_bytes", "slow_close_seconds")

    def __init__(
        self, max_bytes: int, slow_close_seconds: float = SLOW_READER_CLOSE_TIMEOUT
    ) -> None:
        self.max_bytes = max_bytes
        self.slow_close_seconds = slow_close_seconds
        self.queued_bytes = 0
        self._by_peer: dict[Peer, int] = {}

    def grew(self, peer: Peer, size: int) -> None:
        self._by_peer[peer] = self._by_peer.get(peer, 0) + size
        self.queued_bytes += size
        while self.queued_bytes > self.max_bytes and self._by_peer:
            biggest = max(self._by_peer, key=self._by_peer.__getitem__)
            log.info("send queues hold %d bytes (bound %d): closing peer %s (%d bytes) 1013",
                     self.queued_bytes, self.max_bytes, biggest.id, self._by_peer[biggest])
            biggest.close(CloseCode.TRY_AGAIN_LATER, "server send queues full: client too slow")
            if biggest in self._by_peer:  # closing drops its queue; never loop on a peer
                self.shrank(biggest, self._by_peer[biggest])

    def shrank(self, peer: Peer, size: int) -> None:
        left = self._by_peer.get(peer, 0) - size
        if left > 0:
            self._by_peer[peer] = left
        else:
            self._by_peer.pop(peer, None)
        self.queued_bytes -= size


class Peer:
    __slots__ = (
        "_abort",
        "_close_socket",
        "_close_task",
        "_drain_task",
        "_handler",
        "_queue",
        "_queued_bytes",
        "_queues",
        "_send",
        "_write_now",
        "close_code",
        "close_reason",
        "id",
        "max_bytes",
        "max_messages",
        "on_sent",
        "state",
    )

    def __init__(
        self,
        peer_id: str,
        send: SendBytes,
        close: CloseSocket,
        *,
        max_messages: int = 4096,
        max_bytes: int = 32 * 1024 * 1024,
        abort: AbortSocket | None = None,
        queues: SendQueues | None = None,
        write_now: WriteNow | None = None,
    ) -> None:
        """``abort`` drops the TCP connection at once (when a close is not delivered in time);
        ``queues`` is the bound shared by every peer's queue; ``write_now`` writes a message
        below ``send`` when the socket can take it at once (syncd/transport.py)."""
        self.id = peer_id
        self._send = send
        self._write_now = write_now
        self._close_socket = close
        self._abort = abort
        self._queues = queues
        self.max_messages = max_messages
        self.max_bytes = max_bytes
        # Made when a message must wait, dropped when drained: an idle peer holds no deque.
        self._queue: deque[bytes] | None = None
        self._queued_bytes = 0
        self._drain_task: asyncio.Task[None] | None = None
        self._handler: asyncio.Task[object] | None = None
        self._close_task: asyncio.Task[None] | None = None
        self.state = PeerState.OPEN
        self.close_code: int | None = None
        self.close_reason = ""
        self.on_sent: Callable[[int], None] | None = None

    def __repr__(self) -> str:
        return f"<Peer {self.id} {self.state.value}>"

    @property
    def queued(self) -> int:
        return len(self._queue) if self._queue is not None else 0

    def bind_handler(self, task: asyncio.Task[object] | None) -> None:
        """The task reading this peer's socket: cancelled if a close cannot be delivered."""
        self._handler = task

    def send(self, message: bytes) -> None:
        if self.state is not PeerState.OPEN:
            return
        if self.on_sent is not None:
            self.on_sent(len(message))
        if self._drain_task is None:
            if self._write_now is not None and self._write_now(message):
                return
            # Eager write, as Python 3.12's eager tasks would do: uvicorn's send completes
            # without suspending while the client's TCP window is open, so most messages cost
            # no task and no extra loop turn. Only a send that must wait becomes a task.
            coro = self._send(message)
            try:
                waiting = coro.send(None)
            except StopIteration:
                return
            except Exception as exc:
                self._broken(exc)
                return
            self._drain_task = asyncio.create_task(
                self._finish(coro, waiting), name=f"drain-{self.id}"
            )
            return
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        if len(queue) >= self.max_messages or (
            queue and self._queued_bytes + len(message) > self.max_bytes
        ):
            self.close(CloseCode.TRY_AGAIN_LATER, "send queue full: client too slow")
            return
        queue.append(message)
        self._queued_bytes += len(message)
        if self._queues is not None:
            self._queues.grew(self, len(message))  # may close this peer, or a slower one

    async def _finish(self, coro: Coroutine[Any, Any, None], waiting: Any) -> None:
        """Drive a send that suspended to its end, then write what queued up meanwhile."""
        try:
            while True:
                try:
                    if waiting is None:  # a bare yield: give the loop one turn
                        await asyncio.sleep(0)
                    else:
                        # Do what a Task does with a future its coroutine yields: take over the
                        # "blocking" flag, or awaiting the same future again is refused.
                        waiting._asyncio_future_blocking = False
                        await waiting
                except asyncio.CancelledError:
                    coro.close()
                    raise
                except Exception as exc:  # what it waited for failed: the send sees it
                    try:
                        waiting = coro.throw(exc)
                    except StopIteration:
                        break
                    continue
                try:
                    waiting = coro.send(None)
                except StopIteration:
                    break
            while self._queue and self.state is PeerState.OPEN:
                message = self._queue[0]
                await self._send(message)
                # Pop only after the write: close() may have cleared the queue meanwhile.
                if self._queue and self._queue[0] is message:
                    self._queue.popleft()
                    self._queued_bytes -= len(message)
                    if self._queues is not None:
                        self._queues.shrank(self, len(message))
        except Exception as exc:  # the socket went away under us: the handler sees it too
            self._broken(exc)
        finally:
            self._drain_task = None
            if not self._queue:
                self._queue = None

    def _broken(self, exc: BaseException) -> None:
        log.debug("peer %s: send failed: %r", self.id, exc)
        self.state = PeerState.CLOSED
        self._drop_queue()

    def _drop_queue(self) -> None:
        if self._queues is not None and self._queued_bytes:
            self._queues.shrank(self, self._queued_bytes)
        self._queue = None
        self._queued_bytes = 0

    def close(self, code: int, reason: str = "", *, final: bytes | None = None) -> None:
        """Close the connection (idempotent). ``final`` is one last message sent before the close
        frame, e.g. a permission-denied message that a browser can read."""
        if self.state is not PeerState.OPEN:
            return
        self.state = PeerState.CLOSING
        self.close_code, self.close_reason = code, reason
        self._drop_queue()
        if self._drain_task is not None:
            self._drain_task.cancel()
            self._drain_task = None
        self._close_task = asyncio.create_task(
            self._close(code, reason, final), name=f"close-{self.id}"
        )

    async def wait_closed(self) -> None:
        """Wait until a close started by :meth:`close` has been delivered (or given up)."""
        task = self._close_task
        if task is not None and task is not asyncio.current_task():
            await asyncio.shield(task)

    def _close_timeout(self, code: int) -> float:
        if code != CloseCode.TRY_AGAIN_LATER:
            return CLOSE_TIMEOUT
        if self._queues is not None:
            return self._queues.slow_close_seconds
        return SLOW_READER_CLOSE_TIMEOUT

    async def _close(self, code: int, reason: str, final: bytes | None) -> None:
        try:
            async with asyncio.timeout(self._close_timeout(code)):
                if final is not None:
                    await self._send(final)
                await self._close_socket(code, _truncate_reason(reason))
        except TimeoutError:
            # The client does not read: drop its TCP connection (asyncio would otherwise keep the
            # socket until the client goes away) and stop its handler so the server forgets it.
            log.info("peer %s: close %d not delivered in time; dropping it", self.id, code)
            if self._abort is not None:
                self._abort()
            if self._handler is not None and not self._handler.done():
                self._handler.cancel()
        except Exception as exc:
            log.debug("peer %s: close failed: %r", self.id, exc)
        finally:
            self.state = PeerState.CLOSED


def _truncate_reason(reason: str) -> str:
    # A close frame's reason may hold at most 123 bytes of UTF-8.
    raw = reason.encode()[:123]
    return raw.decode(errors="ignore")
