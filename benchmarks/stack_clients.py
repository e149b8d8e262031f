"""The load generator of ``stack.py``: Python ``websockets`` clients on uvloop in worker processes.

Clients are spread round-robin over the workers, many connections per loop. A message is 60
bytes: writer id, seq and the ``time.monotonic_ns()`` of its send (one clock for every process
on Linux), so a receiver records the latency. The orchestrator talks to each worker over a pipe
(``LoadGen``); every reply has a deadline (``REPLY_TIMEOUT``).
"""

from __future__ import annotations

import array
import asyncio
import contextlib
import multiprocessing as mp
import random
import struct
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import psutil
from server_process import cpu_seconds
from stack_relays import raise_open_files_limit

HEADER = struct.Struct("!IIq")  # writer id, seq, send time (monotonic ns)
MESSAGE_BYTES = 60
PADDING = b"x" * (MESSAGE_BYTES - HEADER.size)
DRAIN_SECONDS = 1.0
CONNECT_IN_FLIGHT = 64  # per worker process
REPLY_TIMEOUT = 120.0  # seconds a worker may take to answer one command


@dataclass
class Client:
    wid: int
    url: str
    writer: bool
    ws: object = None
    task: asyncio.Task[None] | None = None


@dataclass
class Tally:
    since_ns: int = 1 << 62  # count only what was sent in the window
    delivered: int = 0
    latencies: array.array = field(default_factory=lambda: array.array("q"))


async def read_all(ws: object, tally: Tally) -> None:
    unpack = HEADER.unpack_from
    clock = time.monotonic_ns
    with contextlib.suppress(Exception):
        async for message in ws:  # type: ignore[attr-defined]
            now = clock()
            _, _, sent = unpack(message)
            if sent >= tally.since_ns:
                tally.delivered += 1
                tally.latencies.append(now - sent)


async def write_schedule(ws: object, wid: int, rate: float, t0: int, duration: float) -> int:
    period = int(1e9 / rate)
    end = t0 + int(duration * 1e9)
    due = t0 + random.randrange(period)
    seq = 0
    send = ws.send  # type: ignore[attr-defined]
    while due < end:
        now = time.monotonic_ns()
        if due > now:
            await asyncio.sleep((due - now) / 1e9)
        now = time.monotonic_ns()
        try:
            await send(HEADER.pack(wid, seq, now) + PADDING)
        except Exception:
            return seq
        seq += 1
        due += period
        if now - due > 250_000_000:  # fell behind: restart the schedule from now
            due = now + period
    return seq


async def connect_all(clients: list[Client], tally: Tally) -> tuple[int, int]:
    from websockets.asyncio.client import connect

    gate = asyncio.Semaphore(CONNECT_IN_FLIGHT)
    failed = 0

    async def one(client: Client) -> None:
        nonlocal failed
        async with gate:
            try:
                client.ws = await connect(
                    client.url, compression=None, max_size=None, ping_interval=None, open_timeout=20
                )
            except Exception:
                failed += 1
                return
        client.task = asyncio.create_task(read_all(client.ws, tally))

    await asyncio.gather(*(one(c) for c in clients))
    return len(clients) - failed, failed


async def run_writers(clients: list[Client], tally: Tally, t0: int, rate: float, d: float) -> int:
    tally.since_ns = t0
    writers = [c for c in clients if c.writer and c.ws is not None]
    sent = await asyncio.gather(*(write_schedule(c.ws, c.wid, rate, t0, d) for c in writers))
    end = t0 + int((d + DRAIN_SECONDS) * 1e9)
    await asyncio.sleep(max(0.0, (end - time.monotonic_ns()) / 1e9))
    return sum(sent)


async def close_all(clients: list[Client]) -> None:
    async def one(client: Client) -> None:
        if client.ws is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.ws.close(), 5)  # type: ignore[attr-defined]
        if client.task is not None:
            client.task.cancel()

    await asyncio.gather(*(one(c) for c in clients))


def worker(conn: Connection) -> None:
    """One load-generator process: commands from the orchestrator, one at a time."""
    import uvloop

    raise_open_files_limit()
    loop = uvloop.new_event_loop()
    asyncio.set_event_loop(loop)
    clients: list[Client] = []
    tally = Tally()
    try:
        while conn.poll(600):
            command, *args = conn.recv()
            if command == "connect":
                clients = [Client(wid, url, w) for wid, url, w in args[0]]
                tally = Tally()
                started = time.monotonic()
                ok, failed = loop.run_until_complete(connect_all(clients, tally))
                conn.send((ok, failed, time.monotonic() - started))
            elif command == "run":
                sent = loop.run_until_complete(run_writers(clients, tally, *args))
                conn.send((sent, tally.delivered, tally.latencies.tobytes()))
            elif command == "close":
                loop.run_until_complete(close_all(clients))
                clients = []
                conn.send(None)
            else:
                return
    finally:
        loop.close()


class LoadGen:
    def __init__(self, n: int) -> None:
        ctx = mp.get_context("fork")
        self.pipes: list[Connection] = []
        self.procs: list[mp.process.BaseProcess] = []
        for _ in range(n):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker, args=(child,), daemon=True)
            proc.start()
            self.pipes.append(parent)
            self.procs.append(proc)
        self.ps = [psutil.Process(p.pid) for p in self.procs]

    def ask(self, commands: list[tuple]) -> list[object]:
        for pipe, command in zip(self.pipes, commands, strict=True):
            pipe.send(command)
        replies = []
        for pipe in self.pipes:
            if not pipe.poll(REPLY_TIMEOUT):
                raise RuntimeError("a load-generator process did not answer in time")
            replies.append(pipe.recv())
        return replies

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.ps)

    def stop(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(Exception):
                pipe.send(("quit",))
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
