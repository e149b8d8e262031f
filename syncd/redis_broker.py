"""The Broker over Redis pub/sub (redis-py's asyncio client).

Channels: ``syncd:doc:{tenant}:{name}`` per document (a node subscribes while it has the
document loaded), ``syncd:feed`` (commit wake-ups) and ``syncd:nodes`` (heartbeats). Messages
are msgpack lists ``[kind, node, ...]``; a node ignores its own.

Nothing waits on Redis: :meth:`RedisBroker.publish` appends to a bounded queue that one task
sends in pipelines; when the queue is full or Redis is away the event is dropped and counted,
and receivers fill the gap from the store. The subscriber task reconnects with backoff; after
a reconnect it re-subscribes and asks the node to re-check every open document (``resync``),
since pub/sub keeps nothing for a subscriber that was away. State changes are logged once.

Heartbeats: every node publishes one every ``HEARTBEAT_SECONDS``; a node not heard from for
``NODE_TIMEOUT_SECONDS`` is gone, and so is one that says goodbye on a graceful stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections import deque
from typing import Any

import msgpack
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from storage import DocKey

from .broker import (
    AccessChanged,
    BrokerState,
    ClusterEvents,
    Deleted,
    DocumentEvent,
    PresenceChanged,
    PresenceWanted,
    UpdatesCommitted,
)

__all__ = ["RedisBroker"]

log = logging.getLogger("syncd.broker")

HEARTBEAT_SECONDS = 2.0
NODE_TIMEOUT_SECONDS = 10.0
MAX_QUEUED = 10_000  # events waiting to be published; past it new ones are dropped
_WANTED = "w"
_FEED = "syncd:feed"
_NODES = "syncd:nodes"
_DOC_PREFIX = "syncd:doc:"
_CLOSE_SECONDS = 1.0  # closing a Redis connection, at most (stopping a node)

_UPDATES, _PRESENCE, _ACCESS, _DELETED, _ALIVE, _GONE, _COMMIT = (
    "u", "p", "a", "d", "alive", "gone", "c",
)


def _channel(key: DocKey) -> str:
    return f"{_DOC_PREFIX}{key.tenant}:{key.name}"


def _key_of(channel: str) -> DocKey:
    tenant, _, name = channel[len(_DOC_PREFIX) :].partition(":")
    return DocKey(tenant, name)


def _encode(event: DocumentEvent) -> bytes:
    match event:
        case UpdatesCommitted(node, first, last, update):
            body: list[Any] = [_UPDATES, node, first, last, update]
        case PresenceChanged(node, update):
            body = [_PRESENCE, node, update]
        case PresenceWanted(node):
            body = [_WANTED, node]
        case AccessChanged(node):
            body = [_ACCESS, node]
        case Deleted(node):
            body = [_DELETED, node]
    return msgpack.packb(body, use_bin_type=True)


def _decode(data: bytes) -> DocumentEvent | None:
    body = msgpack.unpackb(data, raw=False)
    kind, node = body[0], body[1]
    if kind == _UPDATES:
        return UpdatesCommitted(node, int(body[2]), int(body[3]), bytes(body[4]))
    if kind == _PRESENCE:
        return PresenceChanged(node, bytes(body[2]))
    if kind == _WANTED:
        return PresenceWanted(node)
    if kind == _ACCESS:
        return AccessChanged(node)
    if kind == _DELETED:
        return Deleted(node)
    return None


class RedisBroker:
    def __init__(self, url: str, *, node_id: str | None = None) -> None:
        self.url = url
        self.node_id = node_id or secrets.token_hex(6)
        self._state = BrokerState.UNAVAILABLE
        self._events: ClusterEvents | None = None
        self._watched: set[str] = set()
        self._control: asyncio.Queue[tuple[str, str]] = asyncio.Queue()
        self._outbox: deque[tuple[str, bytes]] = deque()
        self._wake_publisher = asyncio.Event()
        self._nodes: dict[str, float] = {}  # node id -> monotonic time last heard
        self._tasks: list[asyncio.Task[None]] = []
        self._client: aioredis.Redis | None = None
        self.dropped = 0  # events not published (queue full, Redis away)
        self._stopping = False

    @property
    def state(self) -> BrokerState:
        return self._state

    # -- lifecycle ---------------------------------------------------------------------------

    async def start(self, events: ClusterEvents) -> None:
        self._events = events
        self._client = aioredis.from_url(
            self.url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=10
        )
        self._tasks = [
            asyncio.create_task(self._subscriber(), name="broker-subscriber"),
            asyncio.create_task(self._publisher(), name="broker-publisher"),
            asyncio.create_task(self._heartbeat(), name="broker-heartbeat"),
        ]

    async def stop(self) -> None:
        self._stopping = True
        if self._client is not None and self._state is BrokerState.OK:
            with contextlib.suppress(RedisError, OSError):
                async with asyncio.timeout(1):
                    await self._send_pending()
                    await self._client.publish(_NODES, msgpack.packb([_GONE, self.node_id]))
        for task in self._tasks:
            task.cancel()
        # A node stopping must not hang on Redis: every wait here is bounded.
        if self._tasks:
            _, stuck = await asyncio.wait(self._tasks, timeout=2 * _CLOSE_SECONDS)
            if stuck:
                log.warning("broker: %d tasks did not stop in time; left behind", len(stuck))
        self._tasks = []
        if self._client is not None:
            with contextlib.suppress(RedisError, OSError, TimeoutError):
                async with asyncio.timeout(_CLOSE_SECONDS):
                    await self._client.aclose()
            self._client = None

    # -- publishing --------------------------------------------------------------------------

    def watch(self, key: DocKey) -> None:
        channel = _channel(key)
        if channel not in self._watched:
            self._watched.add(channel)
            self._control.put_nowait(("subscribe", channel))

    def unwatch(self, key: DocKey) -> None:
        channel = _channel(key)
        if channel in self._watched:
            self._watched.discard(channel)
            self._control.put_nowait(("unsubscribe", channel))

    def publish(self, key: DocKey, event: DocumentEvent) -> None:
        self._enqueue(_channel(key), _encode(event))

    def committed(self) -> None:
        # One wake-up per commit round is plenty; skip it if one is already waiting.
        if not self._outbox or self._outbox[-1][0] != _FEED:
            self._enqueue(_FEED, msgpack.packb([_COMMIT, self.node_id]))

    def _enqueue(self, channel: str, payload: bytes) -> None:
        if self._state is not BrokerState.OK or len(self._outbox) >= MAX_QUEUED:
            self.dropped += 1
            return
        self._outbox.append((channel, payload))
        self._wake_publisher.set()

    async def _publisher(self) -> None:
        while True:
            await self._wake_publisher.wait()
            self._wake_publisher.clear()
            try:
                await self._send_pending()
            except (RedisError, OSError) as exc:
                # The subscriber notices the outage too and owns the state; what was in the
                # pipeline is lost (receivers fill the gap from the store).
                log.debug("broker: publish failed: %r", exc)

    async def _send_pending(self) -> None:
        assert self._client is not None
        while self._outbox:
            batch = [self._outbox.popleft() for _ in range(min(len(self._outbox), 512))]
            async with self._client.pipeline(transaction=False) as pipe:
                for channel, payload in batch:
                    pipe.publish(channel, payload)
                try:
                    await pipe.execute()
                except (RedisError, OSError):
                    self.dropped += len(batch)
                    raise

    async def _heartbeat(self) -> None:
        beat = msgpack.packb([_ALIVE, self.node_id])
        while True:
            if self._state is BrokerState.OK:
                self._enqueue(_NODES, beat)
                now = time.monotonic()
                for node, seen in list(self._nodes.items()):
                    if now - seen > NODE_TIMEOUT_SECONDS:
                        del self._nodes[node]
                        log.info("broker: node %s silent for %.0fs: gone", node, now - seen)
                        self._deliver_node_gone(node)
            await asyncio.sleep(HEARTBEAT_SECONDS)

    # -- subscribing -------------------------------------------------------------------------

    async def _subscriber(self) -> None:
        delay = 0.1
        while True:
            pubsub = None
            try:
                assert self._client is not None
                pubsub = self._client.pubsub()
                await pubsub.subscribe(_FEED, _NODES, *self._watched)
                self._drain_control()  # whatever was asked meanwhile is in _watched already
                self._set_state(BrokerState.OK)
                # Nodes heard from before the outage are given a fresh timeout.
                now = time.monotonic()
                self._nodes = dict.fromkeys(self._nodes, now)
                if self._events is not None:
                    self._events.resync()
                delay = 0.1
                await self._read(pubsub)
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                self._set_state(BrokerState.UNAVAILABLE, exc)
            finally:
                if pubsub is not None:
                    # Bounded: also when cancelled (stop), a connection to a Redis that went
                    # away must not hold the task here.
                    with contextlib.suppress(Exception):
                        async with asyncio.timeout(_CLOSE_SECONDS):
                            await pubsub.aclose()
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)

    def _drain_control(self) -> None:
        while not self._control.empty():
            self._control.get_nowait()

    async def _read(self, pubsub: Any) -> None:
        while True:
            while not self._control.empty():
                op, channel = self._control.get_nowait()
                if op == "subscribe" and channel in self._watched:
                    await pubsub.subscribe(channel)
                    if self._events is not None:
                        self._events.watching(_key_of(channel))
                elif op == "unsubscribe" and channel not in self._watched:
                    await pubsub.unsubscribe(channel)
            message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.05)
            if message is None or message.get("type") != "message":
                continue
            channel = message["channel"]
            channel = channel.decode() if isinstance(channel, bytes) else channel
            try:
                self._dispatch(channel, message["data"])
            except Exception:  # one bad message must not stop the subscription
                log.exception("broker: could not handle a message on %s", channel)

    def _dispatch(self, channel: str, data: bytes) -> None:
        events = self._events
        if events is None:
            return
        if channel == _NODES:
            kind, node = msgpack.unpackb(data, raw=False)
            if node == self.node_id:
                return
            if kind == _ALIVE:
                self._nodes[node] = time.monotonic()
            elif kind == _GONE:
                self._nodes.pop(node, None)
                self._deliver_node_gone(node)
            return
        if channel == _FEED:
            _, node = msgpack.unpackb(data, raw=False)
            if node != self.node_id:
                events.feed_wake_up()
            return
        event = _decode(data)
        if event is None or event.node == self.node_id:
            return
        self._nodes.setdefault(event.node, time.monotonic())
        events.document_event(_key_of(channel), event)

    def _deliver_node_gone(self, node: str) -> None:
        if self._events is not None:
            self._events.node_gone(node)

    def _set_state(self, state: BrokerState, exc: BaseException | None = None) -> None:
        if state is self._state:
            return
        self._state = state
        if state is BrokerState.OK:
            log.info("broker: connected to Redis (node %s)", self.node_id)
        else:
            log.warning("broker: Redis unavailable, cross-node fan-out paused: %r", exc)
            self._outbox.clear()
