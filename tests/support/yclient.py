"""A minimal y-websocket client for tests: a pycrdt replica synced over a real WebSocket."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import pycrdt
import websockets

from crdt.awareness import AwarenessEntry, decode_awareness, encode_awareness_update
from crdt.protocol import (
    AuthMessage,
    AwarenessMessage,
    SyncMessage,
    SyncStep,
    decode_message,
    encode_awareness,
    encode_sync,
)


class YClient:
    """Connects to ``url``, syncs ``doc`` both ways, tracks awareness and how the socket ended."""

    def __init__(self, url: str, doc: pycrdt.Doc | None = None, *, client_id: int | None = None):
        self.url = url
        self.doc = doc if doc is not None else pycrdt.Doc(client_id=client_id)
        self.ws: Any = None
        self.synced = asyncio.Event()
        self.closed = asyncio.Event()
        self.changed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self.denied: str | None = None
        self.awareness: dict[int, Any] = {}
        self.received_updates: list[bytes] = []
        self._clock = 0
        self._applying = False
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []
        self._sub = self.doc.observe(self._on_local)

    async def connect(self, *, wait_synced: bool = True, timeout: float = 10) -> YClient:
        self.ws = await websockets.connect(self.url, max_size=None, open_timeout=timeout)
        self._tasks = [
            asyncio.create_task(self._read()),
            asyncio.create_task(self._write()),
        ]
        with contextlib.suppress(websockets.ConnectionClosed):  # a refusal may come first
            await self.send_raw(encode_sync(SyncStep.STEP1, self.doc.get_state()))
        if wait_synced:
            await self.wait(self.synced, timeout)
        return self

    async def wait(self, event: asyncio.Event, timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            await event.wait()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                if self.closed.is_set() and not predicate():
                    raise ConnectionError(f"closed {self.close_code} {self.close_reason}")
                await self.changed.wait()

    async def send_raw(self, frame: bytes) -> None:
        await self.ws.send(frame)

    def set_awareness(self, state: dict[str, Any] | None) -> None:
        self._clock += 1
        text = json.dumps(state) if state is not None else "null"
        entry = AwarenessEntry(self.doc.client_id, self._clock, text)
        self._outbox.put_nowait(encode_awareness(encode_awareness_update([entry])))

    def _on_local(self, event: Any) -> None:
        if not self._applying:
            self._outbox.put_nowait(encode_sync(SyncStep.UPDATE, event.update))

    def _apply(self, update: bytes) -> None:
        self._applying = True
        try:
            self.doc.apply_update(update)
        finally:
            self._applying = False

    async def _write(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await self.ws.send(await self._outbox.get())

    async def _read(self) -> None:
        try:
            async for frame in self.ws:
                msg = decode_message(frame)
                if isinstance(msg, SyncMessage):
                    if msg.step is SyncStep.STEP1:
                        await self.ws.send(
                            encode_sync(SyncStep.STEP2, self.doc.get_update(msg.payload))
                        )
                    else:
                        self.received_updates.append(msg.payload)
                        self._apply(msg.payload)
                        if msg.step is SyncStep.STEP2:
                            self.synced.set()
                elif isinstance(msg, AwarenessMessage):
                    for e in decode_awareness(msg.update):
                        if e.removed:
                            self.awareness.pop(e.client_id, None)
                        else:
                            self.awareness[e.client_id] = json.loads(e.state)
                elif isinstance(msg, AuthMessage):
                    self.denied = msg.denied_reason
                self.changed.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason
            self.closed.set()
            self.changed.set()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            self.doc.unobserve(self._sub)
        if self.ws is not None:
            await self.ws.close()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self.closed.set()

    async def __aenter__(self) -> YClient:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


def doc_json(doc: pycrdt.Doc, roots: dict[str, type]) -> dict[str, Any]:
    """A comparable view of ``doc`` (root name -> type)."""
    out: dict[str, Any] = {}
    for name, kind in roots.items():
        value = doc.get(name, type=kind)
        out[name] = value.to_py() if hasattr(value, "to_py") else str(value)
    return out
