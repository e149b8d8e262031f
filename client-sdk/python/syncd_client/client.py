"""The SDK's client: many documents over one ``/v1/sync`` WebSocket, offline first.

Example::

    async with Client("ws://127.0.0.1:8787", token, store="journal.db") as client:
        doc = client.document("alice/journal")
        journal = doc.journal()
        journal.create_entry("Monday", "Wrote this on the train")   # stored locally at once
        await client.synced()                                        # the server holds it

The connection reconnects by itself with jittered exponential backoff while the server is
unreachable or restarting. A close in the permanent band (4400-4499: bad or expired token,
malformed data, …) stops reconnecting; ``closed_reason`` says why.

When a document's history was rewritten on the server (its epoch changed: ``epoch.py``), the
local replica is not merged into it; its unsent edits are kept in :attr:`Client.recovered`.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import websockets

from crdt.hocuspocus import HpMessage, decode_frame, encode_frame
from crdt.protocol import ProtocolError

from .document import Document, DocumentState, OnRecovered
from .epoch import RecoveredCopy
from .offline_store import OfflineStore

__all__ = ["Client", "PermanentClose"]

log = logging.getLogger("syncd_client")

# Frames waiting for the socket; past it the connection is dropped and re-synced.
OUTGOING_LIMIT = 10_000

TokenSource = str | Callable[[], str] | Callable[[], Awaitable[str]]


def backoff_delay(attempt: int, backoff: tuple[float, float]) -> float:
    """Seconds to wait before reconnection ``attempt`` (0-based): exponential, capped, with
    jitter so that clients cut off together do not all come back at the same instant."""
    first, longest = backoff
    return min(longest, first * 2**attempt) * random.uniform(0.5, 1.0)


class PermanentClose(ConnectionError):
    """The server closed the connection with a 44xx code: reconnecting would not help."""


class Client:
    """Args:
    url: the daemon's base URL (``ws://host:port``); documents sync over ``url/v1/sync``.
    token: a JWT, or a callable (sync or async) returning a fresh one at each (re)connect.
    store: path of the offline store (SQLite); ``None`` keeps it in memory (tests).
    backoff: (first delay, longest delay) in seconds between reconnection attempts.
    on_recovered: called with each :class:`RecoveredCopy` made when a document's epoch changed
        under unsent local edits (they are in :attr:`recovered` anyway).
    """

    def __init__(
        self,
        url: str,
        token: TokenSource,
        *,
        store: str | Path | None = None,
        backoff: tuple[float, float] = (0.2, 15.0),
        on_recovered: OnRecovered | None = None,
    ) -> None:
        self.url = url.rstrip("/") + "/v1/sync"
        self._token_source = token
        self.store = OfflineStore(store if store is not None else ":memory:")
        self.backoff = backoff
        self._on_recovered = on_recovered
        self.documents: dict[str, Document] = {}
        self.closed_reason: str | None = None
        self.connected = asyncio.Event()
        self._token: str | None = None
        self._ws: Any = None
        self._outgoing: asyncio.Queue[bytes] | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._changed = asyncio.Event()
        self._dropping: asyncio.Future[None] | None = None

    async def __aenter__(self) -> Client:
        self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="syncd-client")

    async def close(self) -> None:
        """Disconnect and save every document's state; the outbox keeps unsent edits."""
        self._stopping.set()
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for doc in self.documents.values():
            doc.save()
        self.store.close()

    def document(self, name: str) -> Document:
        """Open (or return) the document ``OWNER/NAME``; usable at once, even offline."""
        doc = self.documents.get(name)
        if doc is None:
            doc = Document(name, self.store, self._send, self._on_recovered)
            self.documents[name] = doc
            if self._ws is not None and self._token is not None:
                doc.connected(self._token)
        return doc

    @property
    def recovered(self) -> list[RecoveredCopy]:
        """Local replicas set aside because the server's history of their document was
        rewritten while they held unsent edits (oldest first; kept until discarded)."""
        return self.store.recovered()

    def discard_recovered(self, copy: RecoveredCopy | int) -> bool:
        """Erase a recovered copy from the offline store; ``False`` if it was not there."""
        return self.store.discard_recovered(copy if isinstance(copy, int) else copy.id)

    async def synced(self, timeout: float | None = None) -> None:
        """Wait until the server durably holds every open document as this replica has it.

        Raises:
            PermanentClose: the server refused the connection for good.
            PermissionError: a document was refused.
        """
        async with asyncio.timeout(timeout):
            while True:
                if self.closed_reason is not None:
                    raise PermanentClose(self.closed_reason)
                if all(d.state is DocumentState.SAVED for d in self.documents.values()):
                    return
                denied = [d for d in self.documents.values() if d.state is DocumentState.DENIED]
                if denied:
                    raise PermissionError(f"{denied[0].name}: {denied[0].denied_reason}")
                waits = [asyncio.ensure_future(d._changed.wait()) for d in self.documents.values()]
                waits.append(asyncio.ensure_future(self._changed.wait()))
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for w in waits:
                        w.cancel()
                self._changed.clear()
                for d in self.documents.values():
                    d._changed.clear()

    # -- connection ------------------------------------------------------------------------------

    async def _fresh_token(self) -> str:
        source = self._token_source
        if isinstance(source, str):
            return source
        value = source()
        if inspect.isawaitable(value):
            value = await value
        return value

    async def _run(self) -> None:
        attempt = 0
        while not self._stopping.is_set():
            code: int | None = None
            reason = ""
            try:
                self._token = await self._fresh_token()
                async with websockets.connect(self.url, max_size=None, open_timeout=10) as ws:
                    attempt = 0
                    await self._serve(ws)
                code, reason = ws.close_code, ws.close_reason or ""
            except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
                log.info("syncd_client: cannot connect to %s: %s", self.url, exc)
            except websockets.ConnectionClosed as exc:
                code = exc.rcvd.code if exc.rcvd else None
                reason = exc.rcvd.reason if exc.rcvd else ""
            finally:
                self._disconnected()
            if code is not None and 4400 <= code <= 4499:
                self.closed_reason = f"{code} {reason}".strip()
                log.warning("syncd_client: closed for good: %s", self.closed_reason)
                self._changed.set()
                return
            if self._stopping.is_set():
                return
            delay = backoff_delay(attempt, self.backoff)
            attempt += 1
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):
                    await self._stopping.wait()

    async def _serve(self, ws: Any) -> None:
        self._ws = ws
        self._outgoing = asyncio.Queue(maxsize=OUTGOING_LIMIT)
        writer = asyncio.create_task(self._write(ws, self._outgoing))
        self.connected.set()
        try:
            assert self._token is not None
            for doc in self.documents.values():
                doc.connected(self._token)
            async for frame in ws:
                if isinstance(frame, str):
                    continue
                try:
                    decoded = decode_frame(frame)
                except ProtocolError as exc:
                    log.warning("syncd_client: undecodable frame from the server: %s", exc)
                    continue
                doc = self.documents.get(decoded.address)
                if doc is not None:
                    doc.receive(decoded.message)
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def _write(self, ws: Any, queue: asyncio.Queue[bytes]) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            while True:
                await ws.send(await queue.get())

    def _disconnected(self) -> None:
        self._ws = None
        self._outgoing = None
        self.connected.clear()
        for doc in self.documents.values():
            doc.disconnected()
        self._changed.set()

    def _send(self, address: str, message: HpMessage) -> bool:
        """Queue a frame; ``False`` when offline (the outbox keeps edits for later)."""
        if self._outgoing is None:
            return False
        try:
            self._outgoing.put_nowait(encode_frame(address, message))
        except asyncio.QueueFull:
            # The server reads slower than we write. Edits are safe in the outbox: drop the
            # connection, and the reconnect's sync step 2 carries everything still unsent.
            log.warning("syncd_client: %d frames unsent; reconnecting", OUTGOING_LIMIT)
            if self._ws is not None:
                self._dropping = asyncio.ensure_future(self._ws.close(1013, "send queue full"))
            self._outgoing = None
            return False
        return True
