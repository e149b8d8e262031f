"""One y-websocket client: a socket, a sans-I/O WebSocket and a pycrdt replica.

Driven by `websockets.client.ClientProtocol` from `asyncio.Protocol` callbacks, so an idle
client costs no task and a received update one callback. It sends sync step 1 on open, answers
the server's step 1 with step 2, and is *synced* once it has applied the server's step 2.

Fan-out latency comes from the updates' content: each writer transaction also sets
``bench["w{cid}"] = "{seq}:{monotonic_ns}"``; a replica applying it records ``now - ts``.
CLOCK_MONOTONIC is one clock for the whole machine, so writers and readers may live in
different worker processes. Every wait is bounded by a timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pycrdt import Doc, Map, Text
from stats import Stats
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri
from yprotocol import (
    EMPTY_UPDATE,
    MSG_AUTH,
    MSG_AWARENESS,
    MSG_QUERY_AWARENESS,
    MSG_SYNC,
    SYNC_STEP1,
    SYNC_STEP2,
    SYNC_UPDATE,
    read_var_uint,
    sync_message,
)


@dataclass(frozen=True)
class ClientSpec:
    """What one client is: its id, document, URL, and whether it writes.

    ``sink`` clients (history seeders) do not apply what they receive: they only send.
    """

    cid: int
    doc: str
    url: str
    writer: bool = False
    sink: bool = False


class ClientClosed(Exception):
    """The connection closed (or failed to open) before the client got what it waited for."""


class YClient(asyncio.Protocol):
    """One y-websocket client: a socket, a sans-I/O WebSocket and a pycrdt replica.

    Usage::

        client = YClient(ClientSpec(1, "doc-1", "ws://127.0.0.1:8787/doc-1"), Stats())
        await client.open(timeout=10)       # connected and synced
        await client.send_drain(create_update_message(client.make_update(1, "canvas")))
        client.close()
    """

    def __init__(self, spec: ClientSpec, stats: Stats) -> None:
        self.spec = spec
        self.stats = stats
        self.wkey = f"w{spec.cid}"
        self.eid = f"el-{spec.cid}"
        self.doc = Doc()
        self.bench = self.doc.get("bench", type=Map)
        self.elements = self.doc.get("elements", type=Map)
        self.body = self.doc.get("body", type=Text)
        self.seen: dict[str, int] = {}  # writer key -> highest seq applied
        self.seq = 0  # this client's own writes
        self._changes: list[tuple[str, int, int]] = []
        self._sub = None if spec.sink else self._observe_bench()
        self._captured: list[bytes] | None = None
        if spec.writer:
            self._doc_sub = self.doc.observe(self._on_transaction)
        self.ws = ClientProtocol(parse_uri(spec.url), max_size=None)
        self.transport: Any = None
        loop = asyncio.get_running_loop()
        self._opened: asyncio.Future[None] = loop.create_future()
        self._synced: asyncio.Future[None] = loop.create_future()
        self._lost: asyncio.Future[None] = loop.create_future()
        self._writable = asyncio.Event()
        self._writable.set()
        self._fragments: list[bytes] = []
        self.closing = False  # we started the close: a close is then expected
        self._abort_scheduled = False
        self.got_server_step1 = False
        self.t_start_ns = 0
        self.t_open_ns = 0
        self.t_step2_ns = 0  # step 2 frame received (before applying it)
        self.t_synced_ns = 0  # step 2 applied
        self.step2_bytes = 0
        self.auth_denied: str | None = None
        self.close_code: int | None = None

    # ---------------------------------------------------------------- lifecycle

    async def open(self, timeout: float) -> None:
        """Connect, do the handshake and the sync; return once synced.

        Raises:
            ClientClosed: the server refused or closed the connection first.
            TimeoutError: not synced within ``timeout`` seconds.
        """
        async with asyncio.timeout(timeout):
            loop = asyncio.get_running_loop()
            parts = urlsplit(self.spec.url)
            self.t_start_ns = time.monotonic_ns()
            await loop.create_connection(lambda: self, parts.hostname, parts.port or 80)
            await self._opened
            self.t_open_ns = time.monotonic_ns()
            self._send(sync_message(SYNC_STEP1, self.doc.get_state()))
            await self._synced

    def close(self) -> None:
        """Start a clean close (1000); the server closes the TCP connection."""
        if self.transport is None or self.transport.is_closing():
            return
        self.closing = True
        if self.ws.state is State.OPEN:
            self.ws.send_close(1000)
            self._flush()
        if not self._abort_scheduled:
            self._abort_scheduled = True
            asyncio.get_running_loop().call_later(2.0, self._abort)

    def _abort(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.close()

    async def wait_closed(self, timeout: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout):
                await asyncio.shield(self._lost)

    @property
    def is_open(self) -> bool:
        return self.ws.state is State.OPEN and not self._lost.done()

    # ---------------------------------------------------------------- asyncio.Protocol

    def connection_made(self, transport: Any) -> None:  # uvloop's is no asyncio.Transport
        self.transport = transport
        self.ws.send_request(self.ws.connect())
        self._flush()

    def data_received(self, data: bytes) -> None:
        ws = self.ws
        try:
            ws.receive_data(data)
        except EOFError:
            return
        for event in ws.events_received():
            if isinstance(event, Frame):
                self._on_frame(event)
            elif isinstance(event, Response):
                if ws.handshake_exc is not None:
                    self._fail_waiters(f"handshake refused: {ws.handshake_exc}")
                elif not self._opened.done():
                    self._opened.set_result(None)
        self._flush()
        if ws.close_expected() and not self._abort_scheduled:
            self._abort_scheduled = True
            asyncio.get_running_loop().call_later(2.0, self._abort)

    def eof_received(self) -> bool | None:
        self.ws.receive_eof()
        self._flush()
        return None  # let the transport close itself

    def connection_lost(self, exc: Exception | None) -> None:
        self.ws.receive_eof()
        code = self.ws.close_rcvd.code if self.ws.close_rcvd is not None else None
        self.close_code = code
        if not self.closing:
            self.stats.closes[str(code) if code is not None else "tcp-drop"] += 1
            reason = self.ws.close_rcvd.reason if self.ws.close_rcvd is not None else exc
            self.stats.error(f"{self.spec.doc} client {self.spec.cid}: closed {code} {reason}")
        self._fail_waiters(f"connection closed ({code})")
        if not self._lost.done():
            self._lost.set_result(None)
        self._writable.set()

    def pause_writing(self) -> None:
        self._writable.clear()

    def resume_writing(self) -> None:
        self._writable.set()

    def _fail_waiters(self, why: str) -> None:
        for fut in (self._opened, self._synced):
            if not fut.done():
                fut.set_exception(ClientClosed(why))
                fut.exception()  # mark retrieved: a waiter may have timed out already

    def _flush(self) -> None:
        transport = self.transport
        if transport is None:
            return
        for chunk in self.ws.data_to_send():
            if chunk:
                transport.write(chunk)
            elif transport.can_write_eof() and not transport.is_closing():
                transport.write_eof()

    # ---------------------------------------------------------------- sending

    def _send(self, message: bytes) -> None:
        if self.ws.state is not State.OPEN:
            raise ClientClosed(f"send on a {self.ws.state.name} connection")
        self.ws.send_binary(message)
        self._flush()

    async def send_drain(self, message: bytes) -> None:
        """Send one message (one frame); wait while the socket's write buffer is full."""
        self._send(message)
        if not self._writable.is_set():
            async with asyncio.timeout(30):
                await self._writable.wait()

    # ---------------------------------------------------------------- receiving

    def _on_frame(self, frame: Frame) -> None:
        opcode = frame.opcode
        if opcode is Opcode.BINARY or opcode is Opcode.TEXT or opcode is Opcode.CONT:
            if opcode is Opcode.TEXT:
                self.stats.deviations["text frame"] += 1
            if not frame.fin:
                self._fragments.append(frame.data)
                return
            if self._fragments:
                self._fragments.append(frame.data)
                data = b"".join(self._fragments)
                self._fragments = []
            else:
                data = frame.data
            self._on_message(bytes(data))

    def _on_message(self, msg: bytes) -> None:
        stats = self.stats
        if not msg:
            stats.deviations["empty frame"] += 1
            return
        kind = msg[0]
        if kind == MSG_SYNC:
            try:
                sub, pos = read_var_uint(msg, 1)
                length, pos = read_var_uint(msg, pos)
            except ValueError:
                stats.deviations["undecodable sync message"] += 1
                return
            end = pos + length
            if end > len(msg):
                stats.deviations["truncated sync message"] += 1
                return
            if end != len(msg):
                stats.deviations["more than one message in a frame"] += 1
            payload = msg[pos:end]
            if sub == SYNC_STEP1:
                self.got_server_step1 = True
                self._send(sync_message(SYNC_STEP2, self.doc.get_update(payload)))
            elif sub in (SYNC_STEP2, SYNC_UPDATE):
                self._on_update(sub, payload)
            else:
                stats.deviations[f"sync subtype {sub}"] += 1
        elif kind == MSG_AWARENESS:
            stats.awareness_frames += 1
        elif kind == MSG_AUTH:  # [2][varUint 0: permission denied][varString reason]
            try:
                _, pos = read_var_uint(msg, 1)
                length, pos = read_var_uint(msg, pos)
                reason = msg[pos : pos + length].decode("utf-8", "replace")
            except ValueError:
                reason = repr(msg[1:60])
            self.auth_denied = reason
            stats.error(f"{self.spec.doc} client {self.spec.cid}: auth message {reason!r}")
        elif kind == MSG_QUERY_AWARENESS:
            pass  # we publish no awareness state
        else:
            stats.deviations[f"message type {kind}"] += 1

    def _on_update(self, sub: int, payload: bytes) -> None:
        stats = self.stats
        now = time.monotonic_ns()
        stats.update_frames += 1
        if not stats.first_recv_ns:
            stats.first_recv_ns = now
        if sub == SYNC_STEP2:
            self.t_step2_ns = now
            self.step2_bytes = len(payload)
        if not self.spec.sink and payload != EMPTY_UPDATE:
            self._changes.clear()
            try:
                self.doc.apply_update(payload)
            except Exception as exc:  # a bad update from the server is a finding, not a crash
                stats.deviations["update pycrdt cannot apply"] += 1
                stats.error(f"{self.spec.doc} client {self.spec.cid}: apply_update: {exc}")
                return
            if self._changes:
                now = time.monotonic_ns()
                seen = self.seen
                for wkey, seq, ts in self._changes:
                    prev = seen.get(wkey, 0)
                    if seq <= prev:
                        continue
                    seen[wkey] = seq
                    if sub == SYNC_UPDATE:
                        stats.delivered += seq - prev
                        stats.merged += seq - prev - 1
                        stats.latencies_ns.append(now - ts)
        stats.last_recv_ns = now
        if sub == SYNC_STEP2 and not self._synced.done():
            self.t_synced_ns = time.monotonic_ns()
            self._synced.set_result(None)

    def _observe_bench(self) -> Any:
        """Observe the ``bench`` map with the fewest allocations per event.

        pycrdt's `Map.observe` wraps each event in a `MapEvent`, converting every attribute
        (target, path, delta); that costs more than applying the update. The integrated
        (Rust) map's observer hands over the raw event, of which only ``keys`` is read here,
        inside the transaction. Falls back to the public API if that attribute goes away.
        """
        integrated = getattr(self.bench, "integrated", None)
        if integrated is not None and hasattr(integrated, "observe"):
            return integrated.observe(self._on_bench)
        return self.bench.observe(self._on_bench)

    def _on_bench(self, event: Any) -> None:
        own = self.wkey
        for key, change in event.keys.items():
            if key == own:
                continue
            value = change.get("newValue")
            if isinstance(value, str):
                seq, _, ts = value.partition(":")
                self._changes.append((key, int(seq), int(ts)))

    # ---------------------------------------------------------------- writing

    def _on_transaction(self, event: Any) -> None:
        if self._captured is not None:
            self._captured.append(event.update)

    def make_update(self, seq: int, kind: str, marker: bool = True) -> bytes:
        """Make one small realistic edit in its own transaction; return its Yjs update.

        ``canvas``: move this writer's canvas element (create it on first use).
        ``journal``: append a few words to the shared Y.Text ``body``.
        ``text``: like journal (the history seeded for the cold-load scenario).
        ``marker`` false leaves ``bench`` alone (an edit that carries no timestamp).
        """
        self._captured = []
        ts = time.monotonic_ns()
        try:
            with self.doc.transaction():
                if kind == "canvas":
                    if self.eid not in self.elements:
                        self.elements[self.eid] = Map(
                            {
                                "kind": "card",
                                "x": 0.0,
                                "y": 0.0,
                                "w": 120.0,
                                "h": 80.0,
                                "rotation": 0.0,
                                "z": float(self.spec.cid),
                                "color": "#ffd166",
                                "author": self.wkey,
                            }
                        )
                    element = self.elements[self.eid]
                    element["x"] = round(random.uniform(0, 2000), 1)
                    element["y"] = round(random.uniform(0, 2000), 1)
                else:
                    body = self.body
                    body.insert(len(body), f"{self.wkey}.{seq} ")
                if marker:
                    self.bench[self.wkey] = f"{seq}:{ts}"
        finally:
            captured, self._captured = self._captured, None
        if len(captured) != 1:
            raise RuntimeError(f"expected one transaction update, got {len(captured)}")
        return captured[0]

    def doc_json(self) -> str:
        return json.dumps(
            {
                "bench": self.bench.to_py(),
                "elements": self.elements.to_py(),
                "body": str(self.body),
            },
            sort_keys=True,
        )
