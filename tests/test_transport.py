"""The transport's bounds (syncd/server_protocols.py, peer.py): what one connection can cost.

Slow request heads, too many connections being opened from one address, oversized frames (refused
with 4413 from their header), long upgrade requests, and readers that stop reading: each costs at
most its own connection, never the daemon's file descriptors or memory. Memory and descriptors
are measured on a daemon subprocess through /proc.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import pycrdt
import pytest
import websockets

from crdt.hocuspocus import Authenticated, Token, decode_frame, encode_frame
from crdt.protocol import SyncStep, decode_message, encode_sync
from syncd.tokens import TokenKeys
from tests.support.hpclient import HpClient
from tests.support.raw_websocket import RawWebSocket, frame, frame_header
from tests.support.servers import SECRET, free_port, start_daemon
from tests.support.yclient import YClient

pytestmark = pytest.mark.anyio

MiB = 1024 * 1024
WAIT = 10.0


# -- a daemon subprocess we can measure ------------------------------------------------------------


@dataclass
class MeasuredDaemon:
    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def token(self, sub: str) -> str:
        return TokenKeys(secret=SECRET).mint(sub, ttl=3600)

    def status_kib(self, field: str) -> int:
        """``VmRSS`` (now) or ``VmHWM`` (peak) from /proc/PID/status, in KiB."""
        text = Path(f"/proc/{self.proc.pid}/status").read_text()
        match = re.search(rf"^{field}:\s+(\d+) kB", text, re.M)
        assert match, text
        return int(match.group(1))

    def open_sockets(self) -> int:
        count = 0
        for entry in os.scandir(f"/proc/{self.proc.pid}/fd"):
            with contextlib.suppress(OSError):
                if os.readlink(entry.path).startswith("socket:"):
                    count += 1
        return count

    def closes(self, code: int) -> float:
        with urllib.request.urlopen(f"{self.http}/metrics", timeout=5) as r:
            text = r.read().decode()
        match = re.search(rf'^syncd_closes_total{{code="{code}"}} (\S+)$', text, re.M)
        return float(match.group(1)) if match else 0.0


@contextlib.contextmanager
def measured_daemon(
    data_dir: Path, env: dict[str, str], open_files: int | None = None
) -> Iterator[MeasuredDaemon]:
    """``syncd serve`` in a subprocess; ``open_files`` caps its RLIMIT_NOFILE (soft and hard)."""
    port = free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    full_env = dict(os.environ, SYNCD_SECRET=SECRET, SYNCD_PORT=str(port),
                    SYNCD_HOST="127.0.0.1", SYNCD_DATA_DIR=str(data_dir),
                    SYNCD_LOG_LEVEL="warning", **env)
    full_env.pop("SYNCD_DATABASE_URL", None)

    def cap_open_files() -> None:
        if open_files is not None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (open_files, open_files))

    log_path = data_dir / "daemon.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "serve"], env=full_env, stdout=log, stderr=log,
            preexec_fn=cap_open_files,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"daemon exited: {log_path.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)  # another process's port: nothing to await
        yield MeasuredDaemon(proc, port, log_path)
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


async def until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    """Poll another process's state (its /proc entries, its metrics): there is no event to wait
    on across processes."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.1)


def raise_own_open_files_limit(needed: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(needed, soft)), hard))
    assert resource.getrlimit(resource.RLIMIT_NOFILE)[0] >= needed


async def closed_by_server(reader: asyncio.StreamReader) -> None:
    """Return once the server closed (EOF) or reset the connection."""
    with contextlib.suppress(ConnectionError):
        while await reader.read(65536):
            pass


# -- request heads: slowloris, connections being opened per address ---------------------------


@pytest.mark.slow
async def test_slow_incomplete_requests_do_not_lock_out_other_clients(tmp_path):
    """1,100 connections trickling one header byte every 2 s from 127.0.0.1, against a daemon
    whose descriptors are capped at a common 1,024: a client from 127.0.0.2 still connects and
    syncs at once; the per-address bound closes most of the slow ones at once, the request
    timeout (10 s) the rest, although their bytes keep coming."""
    raise_own_open_files_limit(3000)
    slow_count, timeout = 1100, 10.0
    with measured_daemon(tmp_path / "d", {}, open_files=1024) as daemon:
        request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"y" * 64
        started = time.monotonic()
        closed_after: list[float] = []
        connected, all_connected = 0, asyncio.Event()

        async def slow_client() -> None:
            nonlocal connected
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", daemon.port)
            except OSError:
                closed_after.append(time.monotonic() - started)
                return
            finally:
                connected += 1
                if connected == slow_count:
                    all_connected.set()
            trickle = asyncio.create_task(_trickle(writer, request))
            try:
                await closed_by_server(reader)
                closed_after.append(time.monotonic() - started)
            finally:
                trickle.cancel()
                writer.transport.abort()

        clients = [asyncio.create_task(slow_client()) for _ in range(slow_count)]
        try:
            async with asyncio.timeout(WAIT):
                await all_connected.wait()
            # A newcomer from another address connects and syncs, well before the timeout.
            url = f"ws://127.0.0.1:{daemon.port}/v1/docs/carol/notes?token={daemon.token('carol')}"
            async with asyncio.timeout(5):
                async with websockets.connect(url, local_addr=("127.0.0.2", 0)) as ws:
                    first = decode_message(await ws.recv())
                    assert first.step is SyncStep.STEP1  # type: ignore[union-attr]
                    await ws.send(encode_sync(SyncStep.STEP1, b"\x00"))
                    answer = decode_message(await ws.recv())
                    assert answer.step is SyncStep.STEP2  # type: ignore[union-attr]
            async with asyncio.timeout(timeout + 15):
                await asyncio.gather(*clients)
        finally:
            for c in clients:
                c.cancel()
        assert len(closed_after) == slow_count
        # Past the per-address bound (256) connections are closed at once, not after 10 s.
        assert sum(1 for t in closed_after if t < timeout / 2) >= slow_count - 256
        assert daemon.proc.poll() is None


async def _trickle(writer: asyncio.StreamWriter, request: bytes) -> None:
    with contextlib.suppress(ConnectionError):
        for i in range(len(request)):
            writer.write(request[i : i + 1])
            await writer.drain()
            await asyncio.sleep(2.0)  # the client's pace, not synchronisation


async def test_request_head_must_arrive_in_time_and_pending_connections_are_bounded(settings):
    running = await start_daemon(
        replace(settings, request_timeout_seconds=30.0, max_pending_per_address=3)
    )
    try:
        held = [await asyncio.open_connection("127.0.0.1", running.port) for _ in range(3)]
        for _, writer in held:
            writer.write(b"GET /hea")
            await writer.drain()
        # A fourth connection from the same address is closed at once, long before 30 s.
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        async with asyncio.timeout(5):
            await closed_by_server(reader)
        writer.transport.abort()
        # Another address is not affected.
        async with httpx.AsyncClient(
            transport=httpx.AsyncHTTPTransport(local_address="127.0.0.2")
        ) as client:
            assert (await client.get(f"{running.http}/healthz")).status_code == 200
        # Finishing one request frees its slot: 127.0.0.1 is served again.
        held[0][1].write(b"lthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await held[0][0].readuntil(b"\r\n")).startswith(b"HTTP/1.1 200")
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{running.http}/healthz")).status_code == 200
        for _, w in held:
            w.transport.abort()
    finally:
        await running.stop()


async def test_trickling_request_head_closed_at_the_timeout(settings):
    running = await start_daemon(replace(settings, request_timeout_seconds=1.0))
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)

        async def trickle() -> None:  # a byte every 0.2 s: never idle, never complete
            with contextlib.suppress(ConnectionError):
                for byte in b"GET /healthz HTTP/1.1\r\nX-Slow: " + b"y" * 1000:
                    writer.write(bytes([byte]))
                    await writer.drain()
                    await asyncio.sleep(0.2)  # the client's pace

        task = asyncio.create_task(trickle())
        async with asyncio.timeout(WAIT):
            await closed_by_server(reader)
        assert not task.done()  # it was still sending when the server gave up on it
        task.cancel()
        writer.transport.abort()
    finally:
        await running.stop()


# -- long upgrade requests -----------------------------------------------------------------------


async def test_upgrade_with_a_16_kb_url_is_refused_4401_and_past_64_kib_431(daemon):
    client = YClient(daemon.ws_url("alice/journal", "t" * 16_000))
    await client.connect(wait_synced=False)
    await client.wait(client.closed)
    assert client.close_code == 4401
    assert client.denied  # the permission-denied message came first
    with pytest.raises(websockets.InvalidStatus) as refused:
        await websockets.connect(daemon.ws_url("alice/journal", "t" * 70_000))
    assert refused.value.response.status_code == 431


# -- oversized frames ------------------------------------------------------------------------------


async def _open_for_frames(running, endpoint: str) -> tuple[RawWebSocket, int]:  # type: ignore[no-untyped-def]
    """A raw socket on ``endpoint`` in the state under test, and the close code expected."""
    token = running.token("alice")
    if endpoint == "docs, token":
        ws = await RawWebSocket.connect(running.port, f"/v1/docs/alice/big?token={token}")
        await ws.receive()  # sync step 1: the connection was admitted (authenticated)
        return ws, 4413
    if endpoint == "docs, no token":
        # The refusal (4401) goes out on accept, before any frame is read: that is the answer.
        return await RawWebSocket.connect(running.port, "/v1/docs/alice/big"), 4401
    ws = await RawWebSocket.connect(running.port, "/v1/sync")
    if endpoint == "sync, token":
        await ws.send(frame(encode_frame("alice/big", Token(token, "4.8.0"))))
        while decode_frame((await ws.receive()).payload).message != Authenticated("read-write"):
            pass
    return ws, 4413


@pytest.mark.parametrize("size_mib", [9, 20, 64])
@pytest.mark.parametrize(
    "endpoint", ["docs, token", "docs, no token", "sync, token", "sync, no token"]
)
async def test_oversized_frame_closed_from_its_header(daemon, endpoint, size_mib):
    """The header and 64 KiB of the payload are sent; the close must come before the rest."""
    ws, expected = await _open_for_frames(daemon, endpoint)
    try:
        await ws.send(frame_header(size_mib * MiB) + b"\0" * 65536)
        async with asyncio.timeout(WAIT):
            assert await ws.close_code() == expected
            assert await ws.reader.read() == b""  # and the server closed its side
    finally:
        ws.abort()


async def test_fragments_together_over_the_limit_closed_4413(daemon):
    """Before authentication the limit is 256 KiB: two 200 KiB fragments pass it together."""
    ws = await RawWebSocket.connect(daemon.port, "/v1/sync")
    try:
        await ws.send(frame(b"\0" * 200 * 1024, fin=False))
        await ws.send(frame_header(200 * 1024, opcode=0x0) + b"\0" * 1024)
        async with asyncio.timeout(WAIT):
            assert await ws.close_code() == 4413
    finally:
        ws.abort()


async def test_sync_socket_accepts_large_frames_only_once_a_document_authenticated(daemon):
    ws = await RawWebSocket.connect(daemon.port, "/v1/sync")
    try:
        await ws.send(frame(encode_frame("alice/big", Token("x" * MiB, "4.8.0"))))
        async with asyncio.timeout(WAIT):
            assert await ws.close_code() == 4413
    finally:
        ws.abort()
    async with HpClient(f"ws://127.0.0.1:{daemon.port}/v1/sync") as client:
        doc = client.open("alice/big", daemon.token("alice"))
        await client.wait_until(lambda: doc.scopes == ["read-write"])
        doc.doc.get("m", type=pycrdt.Map)["blob"] = "x" * MiB  # one ~1 MiB update
        await client.wait_until(lambda: doc.statuses and doc.unsynced == 0, timeout=WAIT)
        assert doc.statuses[-1] is True and not client.closed.is_set()


@pytest.mark.slow
async def test_announced_frames_do_not_grow_the_daemons_memory(tmp_path):
    """30 unauthenticated /v1/sync sockets announcing 16 MiB frames and 5 authenticated /v1/docs
    sockets announcing 64 MiB: each is refused from the header; after the refusal the clients
    send the rest of their frames anyway. The daemon's peak RSS grows by far less than one
    buffered frame per socket would take (30 * 16 MiB + 5 * 64 MiB)."""
    with measured_daemon(tmp_path / "d", {}) as daemon:
        token = daemon.token("alice")
        warm = await RawWebSocket.connect(daemon.port, f"/v1/docs/alice/big?token={token}")
        await warm.receive()  # the document is loaded: what follows is only the frames' cost
        warm.abort()
        baseline = daemon.status_kib("VmHWM")

        async def refused(path: str, size: int, admitted: bool) -> None:
            ws = await RawWebSocket.connect(daemon.port, path)
            try:
                if admitted:
                    await ws.receive()
                await ws.send(frame_header(size) + b"\0" * 65536)
                async with asyncio.timeout(WAIT):
                    assert await ws.close_code() == 4413
                with contextlib.suppress(ConnectionError):  # the rest, as an attacker would
                    chunk = b"\0" * MiB
                    for _ in range(size // MiB):
                        await ws.send(chunk)
            finally:
                ws.abort()

        await asyncio.gather(
            *(refused("/v1/sync", 16 * MiB, False) for _ in range(30)),
            *(refused(f"/v1/docs/alice/big?token={token}", 64 * MiB, True) for _ in range(5)),
        )
        growth_mib = (daemon.status_kib("VmHWM") - baseline) / 1024
        assert growth_mib < 50, f"peak RSS grew by {growth_mib:.0f} MiB"


# -- readers that stop reading ----------------------------------------------------------------


@pytest.mark.slow
async def test_non_reading_clients_are_dropped_and_queues_bounded_globally(tmp_path):
    """20 clients each ask 40 times for a 512 KiB document and never read. Every socket's own
    bound (64 MiB) would allow 20 MiB each; the global bound (16 MiB) closes them with 1013, and
    since none takes its close frame, each TCP connection is dropped 2 s later: the daemon's
    sockets are gone while the clients still hold theirs, and its peak RSS stayed far below the
    400 MiB the queues asked for."""
    env = {"SYNCD_SEND_QUEUE_BYTES": str(64 * MiB), "SYNCD_SEND_QUEUE_TOTAL_BYTES": str(16 * MiB)}
    with measured_daemon(tmp_path / "d", env) as daemon:
        token = daemon.token("alice")
        writer = pycrdt.Doc()
        writer.get("m", type=pycrdt.Map)["blob"] = os.urandom(256 * 1024).hex()  # 512 KiB
        async with httpx.AsyncClient(base_url=daemon.http) as http:
            r = await http.post(
                "/v1/docs/alice/big/updates", content=writer.get_update(),
                headers={"authorization": f"Bearer {token}",
                         "content-type": "application/octet-stream"},
            )
            assert r.status_code == 200, r.text
        idle_sockets = daemon.open_sockets()
        baseline = daemon.status_kib("VmHWM")
        readers = []
        try:
            for _ in range(20):
                ws = await RawWebSocket.connect(
                    daemon.port, f"/v1/docs/alice/big?token={token}", receive_buffer=4096
                )
                await ws.receive()  # admitted; from now on it never reads
                readers.append(ws)
            ask = frame(encode_sync(SyncStep.STEP1, b"\x00"))  # "send me everything"
            for ws in readers:
                await ws.send(ask * 40)
            await until(lambda: daemon.closes(1013) >= 20, 30, "20 closes with 1013")
            # The close frames cannot be delivered: 2 s later the connections are aborted.
            await until(lambda: daemon.open_sockets() <= idle_sockets, 8,
                        f"daemon sockets back to {idle_sockets}")
            assert all(not ws.writer.is_closing() for ws in readers)  # we never let go
            growth_mib = (daemon.status_kib("VmHWM") - baseline) / 1024
            assert growth_mib < 120, f"peak RSS grew by {growth_mib:.0f} MiB"
        finally:
            for ws in readers:
                ws.abort()
