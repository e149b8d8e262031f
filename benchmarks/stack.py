"""The WebSocket stack alone, side by side: what one delivered frame costs the server in each
stack syncd could run on (issue 10, "The stack").

    python benchmarks/stack.py [--runs 3] [--duration 15] [--stacks syncd-uvicorn,uvicorn,...]

Each stack runs a minimal *relay* (no CRDT, no database): every binary message a client sends
goes to every other client connected on the same path (the path is the room). One stack at a
time, a fresh subprocess (``stack_relays.py``) on a free loopback port
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

The clients (``stack_clients.py``) are Python ``websockets`` clients on uvloop, spread
round-robin over ``--workers`` processes (many connections per loop). A message is 60 bytes:
writer id, seq and the ``time.monotonic_ns()`` of its send (one clock for every process on
Linux), so a receiver records the latency. Shapes, all with fresh servers:

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
import contextlib
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from report import git_commit, machine
from server_process import ServerProcess, settled_rss
from stack_clients import DRAIN_SECONDS, REPLY_TIMEOUT, LoadGen
from stack_relays import EXTRA_STACKS, STACKS, RelayServer, raise_open_files_limit, stack_available

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
    parser.add_argument("--stacks", default=",".join(STACKS))
    parser.add_argument("--shapes", default="R1,R3,idle", help="of R1,R3,idle")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of writing")
    parser.add_argument("--idle", type=int, default=2000, help="idle connections")
    parser.add_argument("--workers", type=int, default=2, help="load-generator processes")
    args = parser.parse_args()
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
