"""Load generator: many lightweight y-websocket clients, each keeping a pycrdt replica.

A client is one TCP socket driven by the sans-I/O `websockets.client.ClientProtocol` from an
`asyncio.Protocol` callback, so an idle client costs no task and a received update costs one
callback, not a future per frame: the load generator should not be what saturates first. It
speaks the y-protocols messages of the `/v1/docs/...` (y-websocket) endpoint, one message per
frame:

- on open it sends sync step 1 (its state vector) and answers the server's step 1 with step 2;
- it is *synced* once it has applied the server's step 2;
- a writer edits its replica in its own transaction and sends the update as a sync update.

Fan-out latency is measured from the content of the updates: every writer transaction sets the
root map key ``bench["w{cid}"] = "{seq}:{monotonic_ns}"`` next to the edit itself, and every
other replica, when it applies an update that changes that key, records ``now - ts``.
``time.monotonic_ns()`` is CLOCK_MONOTONIC, one clock for every process of the machine, so
writers and readers may live in different worker processes.

`run.py` starts `worker_main` in N processes and drives them over a pipe with the small command
set handled by `Worker.handle` (connect, run, quiesce, snapshot, stats, close). The same
`YClient` also serves one-off probes (a fresh client's state, time to sync) via `fetch`.

Every wait here is bounded by a timeout; every loop is bounded by a count or a deadline.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import random
import signal
import time
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from pycrdt import Doc, Map, Text, write_var_uint
from websockets.client import ClientProtocol
from websockets.frames import Frame, Opcode
from websockets.http11 import Response
from websockets.protocol import State
from websockets.uri import parse_uri

MSG_SYNC, MSG_AWARENESS, MSG_AUTH, MSG_QUERY_AWARENESS = 0, 1, 2, 3
SYNC_STEP1, SYNC_STEP2, SYNC_UPDATE = 0, 1, 2
EMPTY_UPDATE = b"\x00\x00"
MAX_ERRORS_KEPT = 50


def sync_message(subtype: int, payload: bytes) -> bytes:
    """A y-protocols sync message: ``[0][subtype][varUint len][payload]``."""
    return bytes((MSG_SYNC, subtype)) + write_var_uint(len(payload)) + payload


def create_update_message(update: bytes) -> bytes:
    """Wrap a Yjs update as a sync update message."""
    return sync_message(SYNC_UPDATE, update)


def read_var_uint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode a lib0 varUint at ``pos``; return ``(value, next_pos)``.

    Raises:
        ValueError: if the buffer ends inside the number or the number is absurdly long.
    """
    value = 0
    shift = 0
    for _ in range(10):
        if pos >= len(buf):
            raise ValueError("truncated varUint")
        byte = buf[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
    raise ValueError("varUint longer than 10 bytes")


def doc_digest(doc_json: str) -> str:
    return hashlib.sha1(doc_json.encode()).hexdigest()[:16]


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


@dataclass
class Stats:
    """Counters shared by the clients of one worker process; reset at the start of a run."""

    latencies_ns: array = field(default_factory=lambda: array("q"))
    loop_lag_ns: array = field(default_factory=lambda: array("q"))  # event-loop oversleep
    delivered: int = 0  # writer updates that reached a replica (merged ones included)
    merged: int = 0  # of those, updates that arrived merged into a later one (no latency sample)
    update_frames: int = 0  # sync step 2 / update frames received
    awareness_frames: int = 0
    first_recv_ns: int = 0
    last_recv_ns: int = 0
    deviations: Counter = field(default_factory=Counter)  # protocol deviations seen
    closes: Counter = field(default_factory=Counter)  # close codes of unexpected closes
    errors: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(text)

    def reset(self) -> None:
        self.latencies_ns = array("q")
        self.loop_lag_ns = array("q")
        self.delivered = self.merged = self.update_frames = self.awareness_frames = 0
        self.first_recv_ns = self.last_recv_ns = 0

    def export(self) -> dict[str, Any]:
        return {
            "latencies_ns": self.latencies_ns.tobytes(),
            "loop_lag_ns": self.loop_lag_ns.tobytes(),
            "delivered": self.delivered,
            "merged": self.merged,
            "update_frames": self.update_frames,
            "awareness_frames": self.awareness_frames,
            "first_recv_ns": self.first_recv_ns,
            "last_recv_ns": self.last_recv_ns,
            "deviations": dict(self.deviations),
            "closes": dict(self.closes),
            "errors": list(self.errors),
        }


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


# -------------------------------------------------------------------- one-off probes


@dataclass
class FetchResult:
    url: str
    ok: bool
    error: str = ""
    open_ms: float = 0.0  # connect start -> WebSocket open
    step2_ms: float = 0.0  # connect start -> step 2 frame received
    synced_ms: float = 0.0  # connect start -> step 2 applied (the client is synced)
    step2_bytes: int = 0
    got_server_step1: bool = False
    digest: str = ""
    json_bytes: int = 0
    marker_seqs: dict[str, int] = field(default_factory=dict)


async def fetch(url: str, timeout: float, cid: int = 10**6) -> FetchResult:
    """Connect a fresh client, sync, and report its timings and the document's digest."""
    stats = Stats()
    client = YClient(ClientSpec(cid, "probe", url), stats)
    try:
        await client.open(timeout)
    except (ClientClosed, TimeoutError, OSError) as exc:
        client.close()
        detail = f"{type(exc).__name__}: {exc}"
        if client.auth_denied:
            detail += f" (auth: {client.auth_denied!r})"
        if client.close_code:
            detail += f" (close code {client.close_code})"
        return FetchResult(url, False, error=detail)
    # A server step 1 may arrive right after step 2: give it a moment, bounded.
    for _ in range(20):
        if client.got_server_step1:
            break
        await asyncio.sleep(0.01)
    body = client.doc_json()
    markers = {
        key: int(value.partition(":")[0])
        for key, value in client.bench.to_py().items()
        if isinstance(value, str)
    }
    result = FetchResult(
        url,
        True,
        open_ms=(client.t_open_ns - client.t_start_ns) / 1e6,
        step2_ms=(client.t_step2_ns - client.t_start_ns) / 1e6,
        synced_ms=(client.t_synced_ns - client.t_start_ns) / 1e6,
        step2_bytes=client.step2_bytes,
        got_server_step1=client.got_server_step1,
        digest=doc_digest(body),
        json_bytes=len(body),
        marker_seqs=markers,
    )
    if stats.deviations:
        result.error = f"deviations: {dict(stats.deviations)}"
    client.close()
    await client.wait_closed(2.0)
    return result


async def fetch_many(urls: list[str], timeout: float, concurrency: int = 32) -> list[FetchResult]:
    sem = asyncio.Semaphore(concurrency)

    async def one(i: int, url: str) -> FetchResult:
        async with sem:
            return await fetch(url, timeout, cid=10**6 + i)

    return list(await asyncio.gather(*(one(i, u) for i, u in enumerate(urls))))


# -------------------------------------------------------------------- worker process


class Worker:
    """The clients of one load-generator process and the commands that drive them."""

    def __init__(self, index: int) -> None:
        self.index = index
        self.stats = Stats()
        self.clients: list[YClient] = []
        self.connect_ms: list[float] = []
        self._lag_task: asyncio.Task[None] | None = None

    async def handle(self, cmd: dict[str, Any]) -> dict[str, Any]:
        op = cmd["op"]
        if op == "connect":
            return await self.connect(cmd)
        if op == "run":
            return await self.run(cmd)
        if op == "quiesce":
            return await self.quiesce(cmd)
        if op == "snapshot":
            return self.snapshot()
        if op == "stats":
            return self.export_stats()
        if op == "close":
            return await self.close()
        raise ValueError(f"unknown op {op!r}")

    async def connect(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Open ``cmd["specs"]`` clients, at most ``concurrency`` handshakes at a time."""
        specs: list[ClientSpec] = cmd["specs"]
        timeout: float = cmd.get("timeout", 20.0)
        sem = asyncio.Semaphore(cmd.get("concurrency", 64))
        failures: Counter = Counter()
        durations: list[float] = []
        no_step1 = 0

        async def one(spec: ClientSpec) -> None:
            nonlocal no_step1
            async with sem:
                client = YClient(spec, self.stats)
                try:
                    await client.open(timeout)
                except (ClientClosed, TimeoutError, OSError) as exc:
                    failures[type(exc).__name__] += 1
                    self.stats.error(f"{spec.doc} client {spec.cid}: open failed: {exc}")
                    client.close()
                    return
                durations.append((client.t_synced_ns - client.t_start_ns) / 1e6)
                self.clients.append(client)

        started = time.monotonic()
        await asyncio.gather(*(one(s) for s in specs))
        # Server step 1 normally arrives with (or right before) step 2; bounded grace.
        for _ in range(50):
            if all(c.got_server_step1 for c in self.clients):
                break
            await asyncio.sleep(0.02)
        no_step1 = sum(1 for c in self.clients if not c.got_server_step1)
        self.connect_ms.extend(durations)
        return {
            "connected": len(durations),
            "failed": dict(failures),
            "elapsed_s": time.monotonic() - started,
            "connect_ms": durations,
            "no_server_step1": no_step1,
        }

    async def run(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Writers write from ``start_at`` for ``duration`` s at ``rate`` updates/s each.

        ``rate`` None means as fast as the socket takes them; ``max_updates`` bounds each
        writer's count for this run. Stats are reset first.
        """
        self.stats.reset()
        start_at: float = cmd["start_at"]
        duration: float = cmd["duration"]
        rate: float | None = cmd.get("rate")
        max_updates: int | None = cmd.get("max_updates")
        kind: str = cmd.get("kind", "canvas")
        writers = [c for c in self.clients if c.spec.writer]
        late = 0
        max_lag = 0.0
        first_seq = {c.wkey: c.seq for c in writers}

        async def write(client: YClient) -> None:
            nonlocal late, max_lag
            interval = 1.0 / rate if rate else 0.0
            next_t = start_at + random.uniform(0, interval)  # de-synchronise the writers
            deadline = start_at + duration
            count = 0
            delay = start_at - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            while client.is_open:
                now = time.monotonic()
                if max_updates is not None and count >= max_updates:
                    break
                if now >= deadline or (rate and next_t >= deadline):
                    break  # a schedule, not a loop: duration x rate updates on average
                if rate:
                    if next_t > now:
                        await asyncio.sleep(next_t - now)
                    else:
                        lag = now - next_t
                        max_lag = max(max_lag, lag)
                        if lag > 0.25:  # open loop, but never a burst of more than 250 ms
                            late += 1
                            next_t = now
                    next_t += interval
                elif count % 16 == 15:
                    await asyncio.sleep(0)  # let the replicas' callbacks run
                count += 1
                update = client.make_update(client.seq + 1, kind)
                try:
                    await client.send_drain(create_update_message(update))
                except (ClientClosed, TimeoutError) as exc:
                    self.stats.error(f"{client.spec.doc} writer {client.spec.cid}: {exc}")
                    break
                client.seq += 1

        t0 = time.monotonic()
        self._start_lag_monitor()
        await asyncio.gather(*(write(c) for c in writers))
        t1 = time.monotonic()
        last_seq: dict[str, dict[str, int]] = {}
        for c in writers:
            last_seq.setdefault(c.spec.doc, {})[c.wkey] = c.seq
        return {
            "sent": sum(c.seq - first_seq[c.wkey] for c in writers),
            "last_seq": last_seq,
            "late": late,
            "max_lag_s": max_lag,
            "write_s": t1 - max(t0, start_at),
            "writers_closed": sum(1 for c in writers if not c.is_open),
        }

    def _start_lag_monitor(self) -> None:
        """Measure this process's event-loop lag: if it is high, latencies are ours."""

        async def monitor() -> None:
            lags = self.stats.loop_lag_ns
            for _ in range(100_000):  # bounded: ~17 min at 10 ms
                t = time.monotonic_ns()
                await asyncio.sleep(0.01)
                lags.append(time.monotonic_ns() - t - 10_000_000)

        self._lag_task = asyncio.get_running_loop().create_task(monitor())

    async def _stop_lag_monitor(self) -> None:
        task, self._lag_task = self._lag_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def quiesce(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Wait until every replica here holds every writer's last seq (bounded)."""
        expect: dict[str, dict[str, int]] = cmd["expect"]
        deadline = time.monotonic() + cmd.get("timeout", 10.0)

        def missing() -> int:
            n = 0
            for c in self.clients:
                if c.spec.sink or not c.is_open:
                    continue
                for wkey, seq in expect.get(c.spec.doc, {}).items():
                    if wkey != c.wkey and c.seen.get(wkey, 0) < seq:
                        n += 1
                        break
            return n

        stall: float | None = cmd.get("stall")  # give up after this long without any update
        started_ns = time.monotonic_ns()
        stalled = False
        left = missing()
        while left and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            left = missing()
            quiet_ns = time.monotonic_ns() - max(self.stats.last_recv_ns, started_ns)
            if left and stall is not None and quiet_ns > stall * 1e9:
                stalled = True
                break
        await self._stop_lag_monitor()
        result = self.export_stats()
        result["incomplete_replicas"] = left
        result["stalled"] = stalled
        return result

    def snapshot(self) -> dict[str, Any]:
        digests: dict[str, Counter] = {}
        for c in self.clients:
            if c.spec.sink:
                continue
            digests.setdefault(c.spec.doc, Counter())[doc_digest(c.doc_json())] += 1
        return {"digests": {doc: dict(cnt) for doc, cnt in digests.items()}}

    def export_stats(self) -> dict[str, Any]:
        result = self.stats.export()
        result["open_clients"] = sum(1 for c in self.clients if c.is_open)
        result["open_by_doc"] = dict(
            Counter(c.spec.doc for c in self.clients if c.is_open and not c.spec.sink)
        )
        result["clients"] = len(self.clients)
        return result

    async def close(self) -> dict[str, Any]:
        for c in self.clients:
            c.close()
        await asyncio.gather(*(c.wait_closed(3.0) for c in self.clients))
        return {"closed": len(self.clients)}


async def _serve(conn: Any, index: int) -> None:
    loop = asyncio.get_running_loop()
    worker = Worker(index)
    while True:
        try:
            cmd = await loop.run_in_executor(None, conn.recv)
        except (EOFError, OSError):
            return  # the orchestrator went away: exit, the sockets close with us
        try:
            reply = await worker.handle(cmd)
        except Exception as exc:  # report to the orchestrator, which prints it
            reply = {"error": f"{type(exc).__name__}: {exc}"}
        try:
            conn.send(reply)
        except (BrokenPipeError, OSError):
            return
        if cmd["op"] == "close":
            return


def worker_main(conn: Any, index: int) -> None:
    """Entry point of a load-generator process (started by run.py)."""
    # Ctrl-C goes to the whole process group: the orchestrator handles it and closes us.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(ImportError, ValueError, OSError):
        import resource

        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(conn, index))
    else:
        uvloop.run(_serve(conn, index))
