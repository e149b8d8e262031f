"""A minimal Hocuspocus-framing client for tests: several pycrdt replicas over one WebSocket.

It behaves as ``@hocuspocus/provider`` does on the wire: per document an auth message with the
token, then sync step 1 (and awareness when set); it answers the server's step 1 with a step 2,
sends local edits as updates, and records what the server says about each document
(``Authenticated`` scope, ``PermissionDenied`` reason, ``Close``, every ``SyncStatus`` and the
order in which frames arrived).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import pycrdt
import websockets

from crdt.awareness import AwarenessEntry, decode_awareness, encode_awareness_update
from crdt.hocuspocus import (
    Authenticated,
    Close,
    HpMessage,
    PermissionDenied,
    SyncStatus,
    Token,
    decode_frame,
    encode_frame,
)
from crdt.protocol import AwarenessMessage, SyncMessage, SyncStep


class HpDoc:
    """One document on an :class:`HpClient`."""

    def __init__(self, client: HpClient, address: str, doc: pycrdt.Doc) -> None:
        self.client = client
        self.address = address
        self.doc = doc
        self.scope: str | None = None  # the latest Authenticated scope
        self.scopes: list[str] = []
        self.denied: str | None = None
        self.closed: str | None = None  # the reason of a Close from the server
        self.synced = False  # got a sync step 2
        self.statuses: list[bool] = []  # every SyncStatus, in order
        self.received: list[HpMessage] = []
        self.awareness: dict[int, Any] = {}
        self.updates_sent = 0
        self._clock = 0
        self._applying = False
        self._sub = doc.observe(self._on_local)

    @property
    def unsynced(self) -> int:
        """Updates and step 2s sent minus positive SyncStatus received (the provider's count)."""
        return self.updates_sent - sum(self.statuses)

    def send(self, message: HpMessage) -> None:
        if isinstance(message, SyncMessage) and message.step is not SyncStep.STEP1:
            self.updates_sent += 1
        self.client.send_frame(self.address, message)

    def set_awareness(self, state: dict[str, Any] | None) -> None:
        self._clock += 1
        text = json.dumps(state) if state is not None else "null"
        entry = AwarenessEntry(self.doc.client_id, self._clock, text)
        self.send(AwarenessMessage(encode_awareness_update([entry])))

    def _on_local(self, event: Any) -> None:
        if not self._applying and self.client.ws is not None:
            self.send(SyncMessage(SyncStep.UPDATE, event.update))

    def _receive(self, msg: HpMessage) -> None:
        self.received.append(msg)
        if isinstance(msg, SyncMessage):
            if msg.step is SyncStep.STEP1:
                self.send(SyncMessage(SyncStep.STEP2, self.doc.get_update(msg.payload)))
            else:
                self._applying = True
                try:
                    self.doc.apply_update(msg.payload)
                finally:
                    self._applying = False
                if msg.step is SyncStep.STEP2:
                    self.synced = True
        elif isinstance(msg, AwarenessMessage):
            for e in decode_awareness(msg.update):
                if e.removed:
                    self.awareness.pop(e.client_id, None)
                else:
                    self.awareness[e.client_id] = json.loads(e.state)
        elif isinstance(msg, Authenticated):
            self.scope = msg.scope
            self.scopes.append(msg.scope)
        elif isinstance(msg, PermissionDenied):
            self.denied = msg.reason
        elif isinstance(msg, Close):
            self.closed = msg.reason
        elif isinstance(msg, SyncStatus):
            self.statuses.append(msg.stored)

    def forget(self) -> None:
        with contextlib.suppress(Exception):
            self.doc.unobserve(self._sub)


class HpClient:
    """One WebSocket to ``ws://…/v1/sync`` carrying any number of :class:`HpDoc`."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ws: Any = None
        self.docs: dict[str, HpDoc] = {}
        self.stray: list[tuple[str, HpMessage]] = []  # frames for addresses not opened here
        self.changed = asyncio.Event()
        self.closed = asyncio.Event()
        self.close_code: int | None = None
        self.close_reason: str | None = None
        self._outbox: asyncio.Queue[bytes] = asyncio.Queue()
        self._tasks: list[asyncio.Task[None]] = []

    async def connect(self, timeout: float = 10) -> HpClient:
        self.ws = await websockets.connect(self.url, max_size=None, open_timeout=timeout)
        self._tasks = [asyncio.create_task(self._read()), asyncio.create_task(self._write())]
        return self

    def open(
        self, address: str, token: str, doc: pycrdt.Doc | None = None, *, version: str = "4.8.0"
    ) -> HpDoc:
        """Auth, then sync step 1, as a provider does on attach (without waiting for an answer)."""
        hp = HpDoc(self, address, doc if doc is not None else pycrdt.Doc())
        self.docs[address] = hp
        self.send_frame(address, Token(token, version))
        hp.send(SyncMessage(SyncStep.STEP1, hp.doc.get_state()))
        return hp

    def close_doc(self, address: str) -> None:
        """Leave one document (the provider's ``detach``)."""
        self.send_frame(address, Close())
        self.docs.pop(address).forget()

    def send_frame(self, address: str, message: HpMessage) -> None:
        self._outbox.put_nowait(encode_frame(address, message))

    def send_raw(self, frame: bytes | str) -> None:
        self._outbox.put_nowait(frame)  # type: ignore[arg-type]

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                if self.closed.is_set() and not predicate():
                    raise ConnectionError(f"closed {self.close_code} {self.close_reason}")
                await self.changed.wait()

    async def _write(self) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await self.ws.send(await self._outbox.get())

    async def _read(self) -> None:
        try:
            async for data in self.ws:
                frame = decode_frame(data)
                hp = self.docs.get(frame.address)
                if hp is None:
                    self.stray.append((frame.address, frame.message))
                else:
                    hp._receive(frame.message)
                self.changed.set()
        except websockets.ConnectionClosed:
            pass
        finally:
            self.close_code = self.ws.close_code
            self.close_reason = self.ws.close_reason
            self.closed.set()
            self.changed.set()

    async def close(self) -> None:
        for hp in self.docs.values():
            hp.forget()
        if self.ws is not None:
            await self.ws.close()
        for t in self._tasks:
            t.cancel()
        for t in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await t
        self.closed.set()

    async def __aenter__(self) -> HpClient:
        return await self.connect()

    async def __aexit__(self, *exc: object) -> None:
        await self.close()
