"""The WebSocket stack alone, side by side: what one delivered frame costs the server in each
stack syncd could run on (issue 10, "The stack").

    python benchmarks/stack.py [--runs 3] [--duration 15] [--stacks syncd-uvicorn,uvicorn,...]

Each stack runs a minimal *relay* (no CRDT, no database): every binary message a client sends
goes to every other client connected on the same path (the path is the room). One stack at a
time, a fresh subprocess of this script (``--serve STACK``) on a free loopback port
(``server_process.ServerProcess``: its own session, killed with the orchestrator):

- ``syncd-uvicorn``: uvicorn on uvloop with syncd's own protocol classes
  (``syncd.server_protocols.protocols``, configured as ``syncd/server.py`` does), a bare ASGI
  app, and the relay writing through ``syncd.transport.binary_writer`` (syncd's pre-framed
  fan-out path), the ASGI ``send`` where that answers False;
- ``uvicorn``: plain uvicorn (``ws="websockets-sansio"``, uvloop), the same app relaying via
  ``send``;
- ``websockets``: the ``websockets`` library's own asyncio server on uvloop, fan-out with
  ``websockets.broadcast``;
- ``syncd-uvicorn-asyncio`` (only if named in ``--stacks``): the first on asyncio's own event
  loop, i.e. what uvloop is worth;
- ``picows``: picows on uvloop transports (``use_aiofastnet=False``), ``WSTransport.send``.
  picows is not one of syncd's dependencies (``pip install picows==2.3.1``); without it that
  stack is skipped with a line saying so.

The clients are Python ``websockets`` clients on uvloop, spread round-robin over ``--workers``
processes (many connections per loop). A message is 60 bytes: writer id, seq and the
``time.monotonic_ns()`` of its send (one clock for every process on Linux), so a receiver
records the latency. Shapes, all with fresh servers:

- **R1**: 50 clients on one path, 10 writing 20 messages/s each for ``--duration`` s (10,000
  deliveries/s);
- **R3**: 500 clients over 100 paths of 5, 2 writers per path at 5/s (4,000 deliveries/s);
- **idle**: 2,000 connections over 100 paths, opened 64 at a time per worker, then left idle.

Figures, printed, never asserted, medians over ``--runs`` (stacks interleaved within a run):
deliveries/s (messages received with a send time in the writing window, / its length), server
CPU µs per delivery and CPU % of one core (psutil, over writing + 1 s drain), latency p50/p95,
RSS per idle connection ((all - fresh) / n, KiB), server CPU ms per connection opened, and the
load generator's CPU % (its processes over the same window; 100 = one core).
"""

from __future__ import annotations

import argparse
import array
import asyncio
import contextlib
import multiprocessing as mp
import os
import random
import resource
import statistics
import struct
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import git_commit, machine
from server_process import ServerProcess

STACKS = ("syncd-uvicorn", "uvicorn", "websockets", "picows")
# Opt-in (--stacks): syncd's stack on asyncio's own event loop, what uvloop is worth.
EXTRA_STACKS = ("syncd-uvicorn-asyncio",)
HEADER = struct.Struct("!IIq")  # writer id, seq, send time (monotonic ns)
MESSAGE_BYTES = 60
PADDING = b"x" * (MESSAGE_BYTES - HEADER.size)
DRAIN_SECONDS = 1.0
CONNECT_IN_FLIGHT = 64  # per worker process
REPLY_TIMEOUT = 120.0  # seconds a worker may take to answer one command


def raise_open_files_limit() -> None:
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


# ---------------------------------------------------------------------------- the servers


def serve(stack: str, port: int) -> None:
    """The relay in ``stack`` on 127.0.0.1:``port`` until SIGTERM (runs in the subprocess)."""
    raise_open_files_limit()
    if stack in ("syncd-uvicorn", "uvicorn", "syncd-uvicorn-asyncio"):
        serve_uvicorn(
            port, syncd=stack != "uvicorn", loop="asyncio" if "asyncio" in stack else "uvloop"
        )
    elif stack == "websockets":
        serve_websockets(port)
    elif stack == "picows":
        serve_picows(port)
    else:
        raise SystemExit(f"unknown stack {stack!r}")


def serve_uvicorn(port: int, syncd: bool, loop: str) -> None:
    import uvicorn
    from starlette.requests import HTTPConnection

    rooms: dict[str, set[tuple[object, object]]] = {}

    async def app(scope, receive, send):
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 404, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            return
        if scope["type"] != "websocket":
            return
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        write = None
        if syncd:
            from syncd.transport import binary_writer

            write = binary_writer(HTTPConnection(scope))
        me = (send, write)
        room = rooms.setdefault(scope["path"], set())
        room.add(me)
        try:
            while True:
                message = await receive()
                if message["type"] != "websocket.receive":
                    break
                data = message.get("bytes")
                if data is None:
                    continue
                for peer in tuple(room):
                    if peer is me:
                        continue
                    peer_write = peer[1]
                    if peer_write is not None and peer_write(data):
                        continue
                    with contextlib.suppress(Exception):
                        await peer[0]({"type": "websocket.send", "bytes": data})
        finally:
            room.discard(me)

    options: dict[str, object] = {
        "host": "127.0.0.1",
        "port": port,
        "loop": loop,
        "ws_per_message_deflate": False,
        "ws_ping_interval": 20.0,
        "ws_ping_timeout": 20.0,
        "log_level": "warning",
        "access_log": False,
        "lifespan": "off",
        "timeout_graceful_shutdown": 1,
    }
    if syncd:
        from syncd import server_protocols
        from syncd.settings import Settings

        settings = Settings.from_env({})
        http, ws = server_protocols.protocols(settings)
        options.update(http=http, ws=ws, ws_max_size=settings.max_message_bytes)
    else:
        options.update(http="httptools", ws="websockets-sansio")
    uvicorn.Server(uvicorn.Config(app, **options)).run()  # type: ignore[arg-type]


def serve_websockets(port: int) -> None:
    import uvloop
    import websockets
    from websockets.asyncio.server import ServerConnection
    from websockets.asyncio.server import serve as ws_serve

    rooms: dict[str, set[ServerConnection]] = {}

    async def handler(ws: ServerConnection) -> None:
        room = rooms.setdefault(ws.request.path if ws.request else "/", set())
        room.add(ws)
        try:
            async for message in ws:
                if isinstance(message, bytes):
                    websockets.broadcast([p for p in room if p is not ws], message)
        finally:
            room.discard(ws)

    async def main() -> None:
        async with ws_serve(handler, "127.0.0.1", port, compression=None, max_size=8 << 20):
            await asyncio.Event().wait()

    uvloop.run(main())


def serve_picows(port: int) -> None:
    import picows
    import uvloop

    rooms: dict[str, set[picows.WSTransport]] = {}

    class Relay(picows.WSListener):
        def __init__(self, path: str) -> None:
            self.room = rooms.setdefault(path, set())

        def on_ws_connected(self, transport: picows.WSTransport) -> None:
            self.transport = transport
            self.room.add(transport)

        def on_ws_disconnected(self, transport: picows.WSTransport) -> None:
            self.room.discard(transport)

        def on_ws_frame(self, transport: picows.WSTransport, frame: picows.WSFrame) -> None:
            kind = frame.msg_type
            if kind == picows.WSMsgType.BINARY:
                data = frame.get_payload_as_bytes()
                for peer in self.room:
                    if peer is not transport:
                        peer.send(picows.WSMsgType.BINARY, data)
            elif kind == picows.WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()

    async def main() -> None:
        server = await picows.ws_create_server(
            lambda request: Relay(str(request.path)),
            "127.0.0.1",
            port,
            use_aiofastnet=False,
            websocket_handshake_timeout=10,
        )
        async with server:
            await server.serve_forever()

    uvloop.run(main())


class RelayServer(ServerProcess):
    def __init__(self, stack: str, workdir: Path) -> None:
        self.name = self.label = stack
        super().__init__(workdir, "ws://127.0.0.1:{port}/{name}")
        self.stack = stack

    def command(self) -> list[str]:
        return [sys.executable, str(Path(__file__).resolve()), "--serve", self.stack]

    def env(self) -> dict[str, str]:
        return {**os.environ, "STACK_PORT": str(self.port)}


def stack_available(stack: str) -> str | None:
    """Why ``stack`` cannot run here, or None."""
    if stack == "picows":
        try:
            import picows  # noqa: F401
        except ImportError:
            return "picows is not importable here (pip install picows==2.3.1): skipped"
    return None


# ---------------------------------------------------------------------------- the clients


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
        total = 0.0
        for p in self.ps:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def stop(self) -> None:
        for pipe in self.pipes:
            with contextlib.suppress(Exception):
                pipe.send(("quit",))
        for proc in self.procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join(5)


# ---------------------------------------------------------------------------- the shapes


@dataclass(frozen=True)
class Shape:
    name: str
    rooms: int
    per_room: int
    writers_per_room: int
    rate: float  # messages/s per writer


SHAPES = {
    "R1": Shape("R1", 1, 50, 10, 20.0),
    "R3": Shape("R3", 100, 5, 2, 5.0),
}


def plan(server: ServerProcess, rooms: int, per_room: int, writers: int, workers: int) -> list:
    """Each worker's list of (writer id, url, writes?), clients spread round-robin."""
    per_worker: list[list[tuple[int, str, bool]]] = [[] for _ in range(workers)]
    cid = 0
    for room in range(rooms):
        for k in range(per_room):
            url = server.url(f"room-{room}")
            per_worker[cid % workers].append((cid, url, k < writers))
            cid += 1
    return per_worker


def settled_rss(server: ServerProcess) -> int:
    samples = []
    for _ in range(5):
        time.sleep(0.2)
        samples.append(server.rss())
    return int(statistics.median(samples))


def percentile(values: list[int], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def measure_load(
    stack: str, shape: Shape, workdir: Path, load: LoadGen, duration: float
) -> dict[str, float]:
    server = RelayServer(stack, workdir)
    server.start()
    try:
        n = len(load.pipes)
        lists = plan(server, shape.rooms, shape.per_room, shape.writers_per_room, n)
        replies = load.ask([("connect", items) for items in lists])
        failed = sum(r[1] for r in replies)  # type: ignore[index]
        time.sleep(0.5)
        t0 = time.monotonic_ns() + 300_000_000
        # The windows: send "run" first (the workers wait for t0), then sample at t0.
        for pipe in load.pipes:
            pipe.send(("run", t0, shape.rate, duration))
        time.sleep(max(0.0, (t0 - time.monotonic_ns()) / 1e9))
        cpu0, gen0 = server.cpu_seconds(), load.cpu_seconds()
        time.sleep(
            max(0.0, (t0 + int((duration + DRAIN_SECONDS) * 1e9) - time.monotonic_ns()) / 1e9)
        )
        cpu1, gen1 = server.cpu_seconds(), load.cpu_seconds()
        results = []
        for pipe in load.pipes:
            if not pipe.poll(REPLY_TIMEOUT):
                raise RuntimeError("a load-generator process did not answer in time")
            results.append(pipe.recv())
        load.ask([("close",)] * n)
    finally:
        server.stop()
    window = duration + DRAIN_SECONDS
    sent = sum(r[0] for r in results)
    delivered = sum(r[1] for r in results)
    lat: list[int] = []
    for r in results:
        lat.extend(array.array("q", r[2]))
    expected = sent * (shape.per_room - 1)
    return {
        "deliveries/s": delivered / duration,
        "delivered %": 100.0 * delivered / expected if expected else float("nan"),
        "CPU µs/delivery": (cpu1 - cpu0) * 1e6 / delivered if delivered else float("nan"),
        "server CPU %": 100.0 * (cpu1 - cpu0) / window,
        "p50 ms": percentile(lat, 0.50) / 1e6,
        "p95 ms": percentile(lat, 0.95) / 1e6,
        "load gen CPU %": 100.0 * (gen1 - gen0) / window,
        "failed connects": float(failed),
    }


def measure_idle(stack: str, workdir: Path, load: LoadGen, connections: int) -> dict[str, float]:
    server = RelayServer(stack, workdir)
    server.start()
    try:
        n = len(load.pipes)
        rooms = 100
        lists = plan(server, rooms, connections // rooms, 0, n)
        fresh = settled_rss(server)
        cpu0 = server.cpu_seconds()
        started = time.monotonic()
        replies = load.ask([("connect", items) for items in lists])
        took = time.monotonic() - started
        cpu1 = server.cpu_seconds()
        opened = sum(r[0] for r in replies)  # type: ignore[index]
        after = settled_rss(server)
        load.ask([("close",)] * n)
    finally:
        server.stop()
    return {
        "KiB/idle conn": (after - fresh) / max(opened, 1) / 1024,
        "CPU ms/conn opened": (cpu1 - cpu0) * 1e3 / max(opened, 1),
        "connect s": took,
        "opened": float(opened),
    }


# ---------------------------------------------------------------------------- the report


def fmt(value: float, digits: int = 1) -> str:
    if value != value:  # nan
        return "-"
    return f"{value:,.{digits}f}"


def median_of(runs: list[dict[str, float]], key: str) -> float:
    values = [r[key] for r in runs if key in r and r[key] == r[key]]
    return statistics.median(values) if values else float("nan")


def print_table(stacks: list[str], figures: dict[str, dict[str, list[dict[str, float]]]]) -> None:
    head = "| stack | " + " | ".join(
        [
            "R1 deliveries/s",
            "R1 server CPU µs/delivery",
            "R1 server CPU %",
            "R1 p50 / p95 ms",
            "R3 deliveries/s",
            "R3 CPU µs/delivery",
            "R3 CPU %",
            "R3 p50 / p95 ms",
            "KiB per idle conn",
            "CPU ms per conn opened",
            "load gen CPU % (R1 / R3)",
        ]
    )
    print(head + " |")
    print("|" + "---|" * (head.count("|")))
    for stack in stacks:
        r1 = figures[stack].get("R1", [])
        r3 = figures[stack].get("R3", [])
        idle = figures[stack].get("idle", [])
        cells = [stack]
        for runs in (r1, r3):
            cells += [
                fmt(median_of(runs, "deliveries/s"), 0),
                fmt(median_of(runs, "CPU µs/delivery")),
                fmt(median_of(runs, "server CPU %")),
                f"{fmt(median_of(runs, 'p50 ms'), 2)} / {fmt(median_of(runs, 'p95 ms'), 2)}",
            ]
        cells += [
            fmt(median_of(idle, "KiB/idle conn")),
            fmt(median_of(idle, "CPU ms/conn opened"), 3),
            f"{fmt(median_of(r1, 'load gen CPU %'))} / {fmt(median_of(r3, 'load gen CPU %'))}",
        ]
        print("| " + " | ".join(cells) + " |")


def print_detail(stacks: list[str], figures: dict[str, dict[str, list[dict[str, float]]]]) -> None:
    print("\nEvery run (stack, shape: figure = values per run):")
    for stack in stacks:
        for shape, runs in figures[stack].items():
            if not runs:
                continue
            keys = list(runs[0])
            parts = [f"{k} " + "/".join(fmt(r[k], 2) for r in runs) for k in keys]
            print(f"- {stack} {shape}: " + "; ".join(parts))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    parser.add_argument("--stacks", default=",".join(STACKS))
    parser.add_argument("--shapes", default="R1,R3,idle", help="of R1,R3,idle")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of writing")
    parser.add_argument("--idle", type=int, default=2000, help="idle connections")
    parser.add_argument("--workers", type=int, default=2, help="load-generator processes")
    args = parser.parse_args()
    if args.serve:
        serve(args.serve, int(os.environ["STACK_PORT"]))
        return
    raise_open_files_limit()
    wanted = [s for s in args.stacks.split(",") if s]
    shapes = [s for s in args.shapes.split(",") if s]
    stacks = []
    for stack in wanted:
        if stack not in STACKS + EXTRA_STACKS:
            raise SystemExit(f"unknown stack {stack!r} (of {', '.join(STACKS + EXTRA_STACKS)})")
        reason = stack_available(stack)
        if reason:
            print(f"{stack}: {reason}")
        else:
            stacks.append(stack)
    info = machine()
    with contextlib.suppress(Exception):
        from importlib import metadata

        info["packages"] += f", picows {metadata.version('picows')}"
    print(
        f"Machine: {info['cpu']}, {info['memory']}, {info['os']}, Python {info['python']}; "
        f"{info['packages']}. Commit {git_commit()}."
    )
    print(
        f"{args.runs} runs, stacks interleaved; {args.duration:g} s of writing per shape; "
        f"{args.workers} load-generator processes; {args.idle} idle connections.\n"
    )
    figures: dict[str, dict[str, list[dict[str, float]]]] = {
        s: {k: [] for k in shapes} for s in stacks
    }
    load = LoadGen(args.workers)
    workdir = Path(tempfile.mkdtemp(prefix="stack-bench-"))
    try:
        for run in range(args.runs):
            for stack in stacks:
                for shape in shapes:
                    try:
                        if shape == "idle":
                            fig = measure_idle(stack, workdir, load, args.idle)
                        else:
                            fig = measure_load(stack, SHAPES[shape], workdir, load, args.duration)
                    except Exception as exc:  # a figure missing, said so, not a crash
                        print(f"run {run + 1} {stack} {shape}: failed: {exc!r}")
                        continue
                    figures[stack][shape].append(fig)
                    summary = ", ".join(f"{k} {fmt(v, 2)}" for k, v in fig.items())
                    print(f"run {run + 1} {stack} {shape}: {summary}", flush=True)
    except KeyboardInterrupt:
        print("interrupted: the figures so far")
    finally:
        load.stop()
    print()
    print_table(stacks, figures)
    print_detail(stacks, figures)
    print(f"\nServer logs: {workdir}")


if __name__ == "__main__":
    main()
