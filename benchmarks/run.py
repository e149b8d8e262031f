"""Run the sync benchmarks against syncd and pycrdt-websocket; print a side-by-side table.

    python benchmarks/run.py [--scenarios canvas,crowd] [--quick] [--json out.json]

Each scenario runs against each server in turn, on a fresh server process (and, for syncd, a
fresh data directory), with the clients spread over load-generator worker processes
(`loadgen.py`). Figures are printed, never asserted: the table is ready to paste into
`benchmarks/RESULTS.md`. See `benchmarks/README.md` for what each figure means.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from measure import Context
from report import git_commit, machine, render
from scenarios import SCENARIOS, Scenario
from servers import (
    PEER_URL,
    SYNCD_URL,
    PycrdtWebsocket,
    ServerError,
    ServerProcess,
    Syncd,
    syncd_available,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = ", ".join(f"{s.number}={s.key}" for s in SCENARIOS)
    p.add_argument("--scenarios", default="all", help=f"comma-separated ({names}) or all")
    p.add_argument("--servers", default="pycrdt-websocket,syncd",
                   help="comma-separated: pycrdt-websocket, syncd")  # fmt: skip
    p.add_argument("--quick", action="store_true", help="shorter runs (5 s, smaller history)")
    p.add_argument("--json", type=Path, help="also write the raw figures here")
    p.add_argument("--duration", type=float, help="measurement seconds per scenario")
    p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1),
                   help="load-generator processes (default: cores - 1)")  # fmt: skip
    p.add_argument("--history", type=int, help="updates in the cold-load history (100000)")
    p.add_argument("--idle", type=int, default=2000, help="idle connections (2000)")
    p.add_argument(
        "--syncd-cmd",
        default=None,
        help='how to run syncd (default: "python -m syncd"); "serve ..." is appended',
    )
    p.add_argument("--syncd-url", default=SYNCD_URL, help=f"default {SYNCD_URL}")
    p.add_argument("--peer-url", default=PEER_URL, help=f"default {PEER_URL}")
    p.add_argument("--peer-ws", default="auto",
                   help="uvicorn --ws for pycrdt-websocket (auto: uvicorn's default; syncd "
                        "uses websockets-sansio)")  # fmt: skip
    p.add_argument("--keep", action="store_true", help="keep the work directory (logs, data)")
    p.add_argument("-v", "--verbose", action="store_true")
    return p.parse_args(argv)


def select_scenarios(spec: str) -> list[Scenario]:
    if spec == "all":
        return list(SCENARIOS)
    chosen = []
    for item in (s.strip() for s in spec.split(",") if s.strip()):
        match = [s for s in SCENARIOS if item in (s.key, str(s.number))]
        if not match:
            raise SystemExit(f"unknown scenario {item!r}; known: {[s.key for s in SCENARIOS]}")
        chosen.extend(m for m in match if m not in chosen)
    return chosen


def _terminate(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    scenarios = select_scenarios(args.scenarios)
    wanted = [s.strip() for s in args.servers.split(",") if s.strip()]
    duration = args.duration or (5.0 if args.quick else 15.0)
    history = args.history or (20_000 if args.quick else 100_000)
    workdir = Path(tempfile.mkdtemp(prefix="syncd-bench-"))
    ctx = Context(args.quick, duration, args.workers, history, args.idle, workdir, args.verbose)
    # Ctrl-C and SIGTERM both unwind through the finally blocks that stop servers and workers
    # (explicitly: a job started in the background of a script inherits SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _terminate)

    servers: list[str] = []
    skipped: dict[str, str] = {}
    for name in wanted:
        if name == "syncd":
            ok, why = syncd_available(args.syncd_cmd)
            if not ok:
                skipped[name] = why
                print(f"syncd not runnable, skipped: {why}", file=sys.stderr)
                continue
        elif name != "pycrdt-websocket":
            raise SystemExit(f"unknown server {name!r}")
        servers.append(name)

    results: dict[str, Any] = {
        "meta": {
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "commit": git_commit(),
            "quick": args.quick,
            "duration": duration,
            "workers": args.workers,
            "peer_ws": args.peer_ws,
            "history": history,
            "machine": machine(),
            "workdir": str(workdir),
        },
        "servers": servers,
        "skipped": skipped,
        "scenarios": [],
    }
    active: list[ServerProcess] = []
    interrupted = False
    try:
        for sc in scenarios:
            entry: dict[str, Any] = {"key": sc.key, "number": sc.number, "title": sc.title,
                                     "servers": {}}  # fmt: skip
            results["scenarios"].append(entry)
            for name in servers:
                print(f"== {sc.number}. {sc.title} — {name}", file=sys.stderr, flush=True)
                sdir = workdir / f"{sc.key}-{name}"
                sdir.mkdir()
                server: ServerProcess = (
                    Syncd(sdir, args.syncd_url, args.syncd_cmd)
                    if name == "syncd"
                    else PycrdtWebsocket(sdir, args.peer_url, args.peer_ws)
                )
                active.append(server)
                try:
                    server.start()
                    entry["servers"][name] = sc.run(ctx, server)
                except (ServerError, TimeoutError, RuntimeError, OSError) as exc:
                    print(f"   failed: {exc}", file=sys.stderr)
                    entry["servers"][name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
                except KeyboardInterrupt:
                    entry["servers"][name] = {"error": "interrupted"}
                    raise
                finally:
                    server.stop()
                    active.remove(server)
                if isinstance(server, Syncd) and server.token_source:
                    results["meta"]["syncd_token"] = server.token_source
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: stopping servers", file=sys.stderr)
    finally:
        for server in active:
            server.stop()
    table = render(results)
    print(table)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
    if args.keep or interrupted:
        print(f"\nwork directory (logs): {workdir}", file=sys.stderr)
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
