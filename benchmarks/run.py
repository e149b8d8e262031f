"""Run the sync benchmarks against syncd and its peers; print a side-by-side table.

    python benchmarks/run.py [--scenarios 1,3] [--servers syncd,hocuspocus] [--quick]

Each scenario runs against each server in turn, on a fresh server process (and, for syncd, a
fresh data directory or Postgres schema), with the clients, real Yjs replicas, spread over
Node load-generator processes (`node/loadgen.mjs`). Figures are printed, never asserted: the
summary table (rows = scenarios, columns = servers) and the detail table are ready to paste
into `benchmarks/RESULTS.md`. See `benchmarks/README.md` for what each figure means.
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
    POSTGRES_URL,
    SERVERS,
    SYNCD_URL,
    ServerError,
    ServerProcess,
    Syncd,
    available,
    make_server,
    node_ready,
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = ", ".join(f"{s.number}={s.key}" for s in SCENARIOS)
    p.add_argument("--scenarios", default="all", help=f"comma-separated ({names}) or all")
    p.add_argument("--servers", default=",".join(SERVERS),
                   help=f"comma-separated, of: {', '.join(SERVERS)} (default all)")  # fmt: skip
    p.add_argument("--quick", action="store_true", help="shorter runs (5 s, smaller history)")
    p.add_argument("--json", type=Path, help="also write the raw figures here")
    p.add_argument("--duration", type=float, help="measurement seconds per scenario")
    p.add_argument("--workers", type=int, default=max(2, (os.cpu_count() or 2) - 1),
                   help="load-generator processes (default: cores - 1, at least 2)")  # fmt: skip
    p.add_argument("--history", type=int, help="updates in the cold-load history (100000)")
    p.add_argument("--idle", type=int, default=2000, help="idle connections (2000)")
    p.add_argument(
        "--syncd-cmd",
        default=None,
        help='how to run syncd (default: "python -m syncd"); "serve ..." is appended',
    )
    p.add_argument("--syncd-url", default=SYNCD_URL, help=f"default {SYNCD_URL}")
    p.add_argument("--peer-url", default=PEER_URL, help=f"default {PEER_URL}")
    p.add_argument("--postgres-url", default=POSTGRES_URL,
                   help=f"syncd-postgres: a fresh schema there ({POSTGRES_URL})")  # fmt: skip
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

    ok, why = node_ready()
    if not ok:  # the load generator itself is Node
        raise SystemExit(f"the load generator cannot run: {why}")
    servers: list[str] = []
    labels: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for name in wanted:
        if name not in SERVERS:
            raise SystemExit(f"unknown server {name!r}; known: {', '.join(SERVERS)}")
        ok, why = available(name, args)
        if not ok:
            skipped[name] = why
            print(f"{name} not runnable, skipped: {why}", file=sys.stderr)
            continue
        servers.append(name)
        labels[name] = make_server(name, workdir, args).label

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
        "labels": labels,
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
                sdir = workdir / f"{sc.key}-{name}"
                sdir.mkdir()
                server: ServerProcess = make_server(name, sdir, args)
                if sc.durable_only and not server.persistent:
                    entry["servers"][name] = {
                        "_summary": {"": "n/a"},
                        "history after a restart": "n/a (in memory)",
                    }
                    continue
                print(f"== {sc.number}. {sc.title} — {name}", file=sys.stderr, flush=True)
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
                    server.cleanup()
                    active.remove(server)
                if isinstance(server, Syncd) and server.token_source:
                    results["meta"]["syncd_token"] = server.token_source
    except KeyboardInterrupt:
        interrupted = True
        print("\ninterrupted: stopping servers", file=sys.stderr)
    finally:
        for server in active:
            server.stop()
            server.cleanup()
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
