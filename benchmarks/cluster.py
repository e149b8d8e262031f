"""Many nodes (issue 9): cross-node fan-out, idle connections across two nodes, the broker's cost.

A script, not a test: it starts its own ``redis-server`` on a free port (never the machine's
shared one), a fresh schema in the local Postgres, and ``syncd serve`` nodes as subprocesses,
then prints one markdown block ready to paste into RESULTS.md::

    python benchmarks/cluster.py                    # all three, ~3 min on 2 cores
    python benchmarks/cluster.py --only fanout --seconds 10
    python benchmarks/cluster.py --only idle --idle 20000

- **fanout**: ``--writers`` writers at ``--rate`` updates/s each, ``--readers`` readers, one
  document. *one node*: everyone on node A, no Redis (the single-node deployment). *two nodes*:
  writers on A, readers on B, through Redis. *two nodes, Redis faults*: the same, with
  ``redis-server`` SIGKILLed and restarted a third of the way in, and ``FLUSHALL`` at two
  thirds. Latency is a writer's send to a reader's applying it (one process, one clock); "lost"
  counts what a reader still lacks 15 s after the last send.
- **idle**: ``--idle`` synced connections, half on each node, over 200 documents, from source
  addresses 127.0.0.2… (one address runs out of ports near 28,000). Memory per connection is
  the growth of each node's RSS divided by its connections.
- **broker**: the same write load on one node, with and without ``--redis-url`` (nobody on the
  other node listens): server CPU time per delivered update, i.e. what publishing costs.

The clients are bare y-protocols over ``websockets`` (no replica for idle ones, a pycrdt replica
for fan-out readers), all in this process: at the default sizes it stays far from saturation;
its own CPU is reported.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import psutil
import pycrdt
import websockets

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crdt.protocol import Decoder, MessageType, SyncStep, encode_sync
from syncd.tokens import TokenKeys
from tests.support.redis_server import RedisServer
from tests.support.servers import SECRET, DaemonProcess

POSTGRES = os.environ.get("SYNCD_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
TOKEN = TokenKeys(secret=SECRET).mint("bench", ttl=24 * 3600)
EMPTY_UPDATE = b"\x00\x00"


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q / 100 * len(ordered)))]


# -- the topology ------------------------------------------------------------------------------


@contextlib.contextmanager
def fresh_schema() -> Iterator[str]:
    import psycopg

    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(POSTGRES, autocommit=True) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
    try:
        yield f"{POSTGRES}?options=-csearch_path%3D{schema}"
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA {schema} CASCADE")


@dataclass
class Node:
    proc: DaemonProcess

    @property
    def ps(self) -> psutil.Process:
        assert self.proc.proc is not None
        return psutil.Process(self.proc.proc.pid)

    def url(self, doc: str) -> str:
        return self.proc.ws_url(doc, TOKEN)

    def cpu(self) -> float:
        times = self.ps.cpu_times()
        return times.user + times.system

    def rss(self) -> int:
        return self.ps.memory_info().rss


@contextlib.contextmanager
def nodes(work: Path, database_url: str, redis_url: str | None, count: int) -> Iterator[list[Node]]:
    started: list[Node] = []
    env = {"SYNCD_LOG_LEVEL": "warning", "SYNCD_MAX_PENDING_PER_ADDRESS": "0"}
    if redis_url:
        env["SYNCD_REDIS_URL"] = redis_url
    try:
        for i in range(count):
            proc = DaemonProcess(work / f"node-{i}-{uuid.uuid4().hex[:6]}", database_url, env=env)
            started.append(Node(proc.start()))
        if redis_url:
            for node in started:
                wait_broker(node.proc.port)
        yield started
    finally:
        for node in started:
            with contextlib.suppress(Exception):
                node.proc.terminate()


def wait_broker(port: int, timeout: float = 20) -> None:
    import json
    import urllib.request

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            if json.loads(r.read()).get("broker") == "ok":
                return
        time.sleep(0.05)  # another process's state: nothing to await
    raise TimeoutError(f"node {port}: broker not ok")


# -- clients -----------------------------------------------------------------------------------


def read_sync(frame: bytes) -> tuple[int, bytes] | None:
    """(step, payload) of a sync message, ``None`` for anything else."""
    d = Decoder(frame)
    if d.read_var_uint() != MessageType.SYNC:
        return None
    return d.read_var_uint(), d.read_var_uint8array()


class Reader:
    """A replica that records, for every writer's key it applies, the latency from its send."""

    def __init__(self) -> None:
        self.doc = pycrdt.Doc()
        self.map = self.doc.get("m", type=pycrdt.Map)
        self.latencies: list[float] = []
        self.seen: set[str] = set()
        self.map.observe(self._observe)
        self.synced = asyncio.Event()
        self.expected: int | None = None  # set once the writers are done
        self.complete = asyncio.Event()

    def expect(self, count: int) -> None:
        self.expected = count
        if len(self.seen) >= count:
            self.complete.set()

    def _observe(self, event: pycrdt.MapEvent) -> None:
        now = time.monotonic()
        for key, change in event.keys.items():
            if key not in self.seen and "newValue" in change:
                self.seen.add(key)
                self.latencies.append((now - change["newValue"]) * 1000)
        if self.expected is not None and len(self.seen) >= self.expected:
            self.complete.set()

    async def run(self, url: str) -> None:
        async with websockets.connect(url, max_size=None, compression=None) as ws:
            await ws.send(encode_sync(SyncStep.STEP1, self.doc.get_state()))
            async for frame in ws:
                msg = read_sync(frame)
                if msg is None:
                    continue
                step, payload = msg
                if step == SyncStep.STEP1:
                    await ws.send(encode_sync(SyncStep.STEP2, self.doc.get_update(payload)))
                else:
                    self.doc.apply_update(payload)
                    if step == SyncStep.STEP2:
                        self.synced.set()


class Writer:
    def __init__(self, wid: int) -> None:
        self.wid = wid
        self.doc = pycrdt.Doc()
        self.map = self.doc.get("m", type=pycrdt.Map)
        self.sent = 0

    async def run(self, url: str, rate: float, seconds: float, ready: asyncio.Event) -> None:
        async with websockets.connect(url, max_size=None, compression=None) as ws:
            await ws.send(encode_sync(SyncStep.STEP1, self.doc.get_state()))
            drain = asyncio.create_task(self._drain(ws))
            await ready.wait()
            period = 1 / rate
            start = time.monotonic()
            for n in range(int(rate * seconds)):
                delay = start + n * period - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                before = self.doc.get_state()
                self.map[f"{self.wid}:{n}"] = time.monotonic()
                await ws.send(encode_sync(SyncStep.UPDATE, self.doc.get_update(before)))
                self.sent += 1
            await asyncio.sleep(0.5)  # let the last frames leave before closing
            drain.cancel()

    async def _drain(self, ws) -> None:  # type: ignore[no-untyped-def]
        with contextlib.suppress(websockets.ConnectionClosed):
            async for frame in ws:
                msg = read_sync(frame)
                if msg and msg[0] == SyncStep.STEP1:
                    await ws.send(encode_sync(SyncStep.STEP2, EMPTY_UPDATE))


@dataclass
class FanoutResult:
    name: str
    latencies: list[float] = field(default_factory=list)
    sent: int = 0
    lost: int = 0
    server_cpu_s: float = 0.0
    deliveries: int = 0
    client_cpu: float = 0.0

    def row(self) -> str:
        lat = self.latencies
        per = self.server_cpu_s / self.deliveries * 1e6 if self.deliveries else float("nan")
        return (
            f"| {self.name} | {pct(lat, 50):.1f} / {pct(lat, 95):.1f} / {pct(lat, 99):.1f} ms "
            f"| {max(lat, default=float('nan')):.0f} ms | {self.sent} | {self.lost} "
            f"| {per:.0f} µs | {self.client_cpu:.0f} % |"
        )


async def fanout(
    name: str,
    write_to: Node,
    read_from: Node,
    servers: list[Node],
    args: argparse.Namespace,
    faults: RedisServer | None = None,
) -> FanoutResult:
    doc = f"bench/fanout-{uuid.uuid4().hex[:8]}"
    readers = [Reader() for _ in range(args.readers)]
    reading = [asyncio.create_task(r.run(read_from.url(doc))) for r in readers]
    await asyncio.wait_for(asyncio.gather(*(r.synced.wait() for r in readers)), 30)
    writers = [Writer(i) for i in range(args.writers)]
    ready = asyncio.Event()
    writing = [
        asyncio.create_task(w.run(write_to.url(doc), args.rate, args.seconds, ready))
        for w in writers
    ]
    await asyncio.sleep(1)  # writers' handshakes
    me = psutil.Process()
    cpu0 = [s.cpu() for s in servers]
    me.cpu_percent()
    ready.set()
    if faults is not None:
        await asyncio.sleep(args.seconds / 3)
        faults.kill()
        await asyncio.sleep(1)
        faults.start()
        await asyncio.sleep(args.seconds / 3 - 1)
        faults.flushall()
    await asyncio.gather(*writing)
    sent = sum(w.sent for w in writers)
    for r in readers:
        r.expect(sent)
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(asyncio.gather(*(r.complete.wait() for r in readers)), 15)
    result = FanoutResult(name, sent=sent, client_cpu=me.cpu_percent())
    result.server_cpu_s = sum(s.cpu() - c for s, c in zip(servers, cpu0, strict=True))
    for r in readers:
        result.latencies += r.latencies
        result.lost += sent - len(r.seen)
    result.deliveries = sent * len(readers)
    for task in reading:
        task.cancel()
    await asyncio.gather(*reading, return_exceptions=True)
    return result


# -- idle connections --------------------------------------------------------------------------


async def idle_client(url: str, local: str, hold: list) -> None:  # type: ignore[type-arg]
    ws = await websockets.connect(
        url, max_size=None, compression=None, local_addr=(local, 0), open_timeout=60,
        ping_interval=None,
    )  # fmt: skip
    await ws.send(encode_sync(SyncStep.STEP1, b"\x00"))
    while True:
        msg = read_sync(await ws.recv())
        if msg is None:
            continue
        if msg[0] == SyncStep.STEP1:
            await ws.send(encode_sync(SyncStep.STEP2, EMPTY_UPDATE))
        elif msg[0] == SyncStep.STEP2:
            break
    hold.append(ws)


def idle_worker(pipe: Connection, targets: list[tuple[str, str]]) -> None:
    """One client process (the fd limit, 20,000 here, bounds one process): open ``targets``
    (url, source address), report, hold them until told, close."""

    async def run() -> None:
        hold: list = []  # type: ignore[type-arg]
        gate = asyncio.Semaphore(100)
        failures = 0

        async def one(url: str, local: str) -> None:
            nonlocal failures
            async with gate:
                try:
                    await idle_client(url, local, hold)
                except (OSError, websockets.WebSocketException, TimeoutError):
                    failures += 1

        await asyncio.gather(*(one(url, local) for url, local in targets))
        pipe.send((len(hold), failures, psutil.Process().memory_info().rss))
        await asyncio.to_thread(pipe.recv)
        await asyncio.gather(*(ws.close() for ws in hold), return_exceptions=True)

    asyncio.run(run())


async def idle(servers: list[Node], count: int, processes: int) -> str:
    base = [s.rss() for s in servers]
    targets = [
        (servers[i % len(servers)].url(f"bench/idle-{i % 200}"), f"127.0.0.{2 + i // 20000}")
        for i in range(count)
    ]
    context = multiprocessing.get_context("spawn")
    pipes, workers = [], []
    for k in range(processes):
        ours, theirs = context.Pipe()
        worker = context.Process(target=idle_worker, args=(theirs, targets[k::processes]))
        pipes.append(ours)
        workers.append(worker)
    start = time.monotonic()
    for worker in workers:
        worker.start()
    reports = [await asyncio.to_thread(p.recv) for p in pipes]
    took = time.monotonic() - start
    synced = sum(r[0] for r in reports)
    failures = sum(r[1] for r in reports)
    client_kib = sum(r[2] for r in reports) / max(synced, 1) / 1024
    await asyncio.sleep(2)  # let the nodes settle (allocations freed after the handshakes)
    grown = [s.rss() - b for s, b in zip(servers, base, strict=True)]
    per_node = synced / len(servers)
    kib = [g / per_node / 1024 for g in grown]
    lines = [
        f"| connections synced | {synced} of {count} ({failures} failed) |",
        f"| time to connect all (incl. {processes} client processes starting) | {took:.1f} s"
        f" ({synced / took:.0f}/s) |",
        "| server KiB per idle connection | "
        + ", ".join(f"node {i}: {k:.1f}" for i, k in enumerate(kib))
        + " |",
        f"| server RSS with them | {', '.join(f'{s.rss() / 2**20:.0f} MiB' for s in servers)} |",
        f"| client processes' KiB per connection | {client_kib:.1f} |",
    ]
    for p in pipes:
        p.send("close")
    for worker in workers:
        await asyncio.to_thread(worker.join, 60)
    return "\n".join(lines)


# -- the run -----------------------------------------------------------------------------------


async def main(args: argparse.Namespace) -> None:
    git = await asyncio.create_subprocess_exec(
        "git", "rev-parse", "--short", "HEAD", stdout=asyncio.subprocess.PIPE
    )
    commit = (await git.communicate())[0].decode().strip()
    print(f"### Many nodes — `python benchmarks/cluster.py`, commit `{commit}`\n")
    print(
        f"2-core machine, load {os.getloadavg()[0]:.1f} at start; syncd on Postgres; "
        f"{args.writers} writers x {args.rate}/s for {args.seconds} s, {args.readers} readers.\n"
    )
    with tempfile.TemporaryDirectory(prefix="syncd-cluster-bench-") as tmp:
        work = Path(tmp)
        redis = RedisServer(work / "redis").start()
        try:
            with fresh_schema() as db:
                if "fanout" in args.only:
                    rows = []
                    with nodes(work, db, None, 1) as (one,):
                        rows.append(await fanout("one node", one, one, [one], args))
                    with nodes(work, db, redis.url, 2) as (a, b):
                        rows.append(await fanout("two nodes (A → B)", a, b, [a, b], args))
                        faulty = "two nodes, Redis killed + flushed"
                        rows.append(await fanout(faulty, a, b, [a, b], args, faults=redis))
                    print("| fan-out | p50 / p95 / p99 | max | sent | lost | server CPU per "
                          "delivery | client CPU |")  # fmt: skip
                    print("|---|---|---|---|---|---|---|")
                    for row in rows:
                        print(row.row())
                    print()
                if "broker" in args.only:
                    rows = []
                    with nodes(work, db, None, 1) as (one,):
                        rows.append(await fanout("one node, LocalBroker", one, one, [one], args))
                    with nodes(work, db, redis.url, 1) as (one,):
                        rows.append(await fanout("one node, RedisBroker", one, one, [one], args))
                    print("| broker cost | p50 / p95 / p99 | max | sent | lost | server CPU per "
                          "delivery | client CPU |")  # fmt: skip
                    print("|---|---|---|---|---|---|---|")
                    for row in rows:
                        print(row.row())
                    print()
                if "idle" in args.only:
                    with nodes(work, db, redis.url, 2) as pair:
                        print(f"| {args.idle} idle connections, two nodes | |")
                        print("|---|---|")
                        print(await idle(pair, args.idle, args.processes))
                    print()
        finally:
            redis.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="fanout,broker,idle")
    parser.add_argument("--writers", type=int, default=5)
    parser.add_argument("--readers", type=int, default=20)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--idle", type=int, default=20000)
    parser.add_argument("--processes", type=int, default=3, help="idle client processes")
    asyncio.run(main(parser.parse_args()))
