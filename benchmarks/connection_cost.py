"""What one connection costs syncd: server memory per idle connection, server CPU per connection
opened, and the wall time to open them (issue 10, R5 without the whole table).

    python benchmarks/connection_cost.py [--connections 2000] [--docs 100] [--servers syncd]
    python benchmarks/connection_cost.py --tracemalloc 25      # where syncd's memory goes

Each server (syncd by default; ``y-websocket`` for the reference figure) runs as a fresh
process (``servers.py``); the connections are stock y-protocols clients (real Yjs replicas, the
Node load generator in ``node/``, over ``--workers`` processes). As R5 does: one client per
document first (the rooms load), then all the others at once; a connection counts once it has
synced. Figures, printed, never asserted:

- **RSS per connection**: (RSS after all - RSS with one client per document) / connections
  added, settled medians of five samples; and (all - fresh) / all, R5's own figure.
- **CPU per connection opened**: the server's CPU time while the others open, / their number.
- **wall time** to open all of them.

``--tracemalloc N`` runs syncd under ``tracemalloc`` (N frames) and prints, after the
connections are idle, the allocation sites that grew most since the rooms were loaded, per
connection. tracemalloc itself makes everything slower: its CPU figures mean nothing.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import build_specs, doc_names
from pool import LoadGen
from server_process import settled_rss
from servers import PEER_URL, SYNCD_URL, ServerProcess, Syncd, YWebsocket, node_ready

HERE = Path(__file__).resolve().parent


def make(name: str, workdir: Path, traced: int, syncd_cmd: str | None) -> ServerProcess:
    if name == "y-websocket":
        return YWebsocket(workdir, PEER_URL)
    if name != "syncd":
        raise SystemExit(f"unknown server {name!r} (syncd, y-websocket)")
    cmd = syncd_cmd
    if traced:
        cmd = f"{sys.executable} {Path(__file__).resolve()} --traced-daemon {traced}"
    return Syncd(workdir, SYNCD_URL, cmd)


def measure(
    name: str,
    n: int,
    n_docs: int,
    workers: int,
    traced: int = 0,
    py_spy: Path | None = None,
    syncd_cmd: str | None = None,
) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="conn-cost-") as tmp:
        workdir = Path(tmp)
        server = make(name, workdir, traced, syncd_cmd)
        server.start()
        lg = LoadGen(workers)
        try:
            per_doc = max(1, n // n_docs)
            specs = build_specs(server, doc_names(n_docs, "idle"), per_doc, 0)
            firsts = [s for i, s in enumerate(specs) if i % per_doc == 0]
            rest = [s for i, s in enumerate(specs) if i % per_doc != 0]
            rss_fresh = settled_rss(server)
            a = lg.connect(firsts, timeout=180)
            time.sleep(0.5)
            rss_rooms = settled_rss(server)
            if traced:
                snapshot(server, workdir / "before.snap")
            spy = start_py_spy(server, py_spy) if py_spy else None
            cpu0 = server.cpu_seconds()
            b = lg.connect(rest, timeout=180)
            cpu = server.cpu_seconds() - cpu0
            if spy is not None:
                spy.send_signal(signal.SIGINT)  # py-spy writes its profile on SIGINT
                spy.wait(60)
            time.sleep(1.0)
            rss_all = settled_rss(server)
            if traced:
                snapshot(server, workdir / "after.snap")
                top_growth(workdir / "before.snap", workdir / "after.snap", b["connected"])
        finally:
            lg.shutdown()
            server.stop()
            server.cleanup()
    added = b["connected"]
    total = a["connected"] + added
    failed = {**a["failed"], **b["failed"]}
    return {
        "connected": f"{total}/{len(specs)}" + (f" failed {failed}" if failed else ""),
        "RSS fresh → rooms → all MiB": (
            f"{rss_fresh / 2**20:.1f} → {rss_rooms / 2**20:.1f} → {rss_all / 2**20:.1f}"
        ),
        "KiB per connection added": round((rss_all - rss_rooms) / max(added, 1) / 1024, 1),
        "KiB per connection (all - fresh) / n": (
            round((rss_all - rss_fresh) / max(total, 1) / 1024, 1)
        ),
        "server CPU ms per connection opened": round(1000 * cpu / max(added, 1), 3),
        "time to connect all s": round(a["elapsed_s"] + b["elapsed_s"], 2),
        "connect→synced p50 ms": round(statistics.median(b["connect_ms"]), 1) if added else "—",
    }


def start_py_spy(server: ServerProcess, out: Path) -> subprocess.Popen[bytes]:
    """py-spy sampling the server while the connections open (``--py-spy OUT``: a flame graph,
    speedscope JSON for .json, collapsed stacks for .txt)."""
    fmt = {".json": "speedscope", ".txt": "raw"}.get(out.suffix, "flamegraph")
    spy = subprocess.Popen(
        [str(Path(sys.executable).with_name("py-spy")), "record", "--pid", str(server.pid),
         "--rate", "500", "--format", fmt, "--output", str(out), "--nonblocking"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    time.sleep(1.0)  # py-spy attaches before the connections start
    return spy


# -- tracemalloc, inside the daemon ------------------------------------------------------------


def snapshot(server: ServerProcess, path: Path) -> None:
    """Ask the traced daemon (SIGUSR1) to write a snapshot to ``path``; wait for it (bounded)."""
    trigger = path.parent / "snapshot-to"
    trigger.write_text(str(path))
    os.kill(server.pid, signal.SIGUSR1)
    deadline = time.monotonic() + 120
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError("the traced daemon wrote no snapshot")
        time.sleep(0.1)
    time.sleep(0.5)  # written under a temporary name, then renamed: complete once it exists


def top_growth(before: Path, after: Path, connections: int, limit: int = 25) -> None:
    import tracemalloc

    old = tracemalloc.Snapshot.load(str(before))
    new = tracemalloc.Snapshot.load(str(after))
    diff = new.compare_to(old, "traceback" if os.environ.get("TRACE_FULL") else "lineno")
    total = sum(d.size_diff for d in diff)
    print(f"\ntracemalloc: {total / max(connections, 1) / 1024:.1f} KiB of Python objects "
          f"per connection added ({connections}); biggest sites:")  # fmt: skip
    for stat in diff[:limit]:
        per = stat.size_diff / max(connections, 1)
        count = stat.count_diff / max(connections, 1)
        print(f"  {per:8.0f} B  {count:5.2f} blocks/conn")
        for line in stat.traceback.format()[-8:]:
            print(f"      {line.strip()}")


def traced_daemon(frames: int, argv: list[str]) -> None:
    """``syncd`` with tracemalloc on; SIGUSR1 writes a snapshot where ``snapshot-to`` (in the
    working directory) says."""
    import tracemalloc

    tracemalloc.start(frames)

    def write(*_: object) -> None:
        target = Path("snapshot-to").read_text().strip()
        tracemalloc.take_snapshot().dump(target + ".tmp")
        os.replace(target + ".tmp", target)

    signal.signal(signal.SIGUSR1, write)
    sys.path.insert(0, str(HERE.parent))
    from syncd.cli import main as syncd_main

    sys.exit(syncd_main(argv))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--connections", type=int, default=2000)
    p.add_argument("--docs", type=int, default=100)
    p.add_argument("--servers", default="syncd", help="comma-separated: syncd, y-websocket")
    p.add_argument("--workers", type=int, default=2, help="load-generator processes")
    p.add_argument("--runs", type=int, default=1, help="repeat each server's measurement")
    p.add_argument("--tracemalloc", type=int, default=0, metavar="FRAMES")
    p.add_argument("--syncd-cmd", help='how to run syncd (default "python -m syncd"), e.g. '
                   '"env PYTHONPATH=/tmp/old python -m syncd" for an older checkout')
    p.add_argument("--py-spy", type=Path, metavar="OUT", help="profile the opening (syncd)")
    args = p.parse_args()
    ok, why = node_ready()
    if not ok:
        raise SystemExit(why)
    for name in args.servers.split(","):
        for run in range(args.runs):
            figures = measure(
                name, args.connections, args.docs, args.workers, args.tracemalloc, args.py_spy,
                args.syncd_cmd,
            )
            print(f"\n{name} (run {run + 1}), {args.connections} connections over "
                  f"{args.docs} documents:")  # fmt: skip
            for key, value in figures.items():
                print(f"  {key:40} {value}")


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "--traced-daemon":
        traced_daemon(int(sys.argv[2]), sys.argv[3:])
    else:
        main()
