"""Run the sync benchmarks against syncd and pycrdt-websocket; print a side-by-side table.

    python benchmarks/run.py [--scenarios canvas,crowd] [--quick] [--json out.json]

Each scenario runs against each server in turn, on a fresh server process (and, for syncd, a
fresh data directory), with the clients spread over load-generator worker processes
(`loadgen.py`). Figures are printed, never asserted: the table is ready to paste into
`benchmarks/RESULTS.md`. See `benchmarks/README.md` for what each figure means.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import math
import multiprocessing as mp
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from array import array
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))

from loadgen import ClientSpec, FetchResult, fetch_many, worker_main
from servers import (
    PEER_URL,
    REPO,
    SYNCD_URL,
    PycrdtWebsocket,
    ServerError,
    ServerProcess,
    Syncd,
    syncd_available,
)

Figures = dict[str, Any]

# Above this event-loop lag (p99) in a load-generator process, its own delay is a visible part
# of the latencies it measures: say so next to the figures.
LAG_LIMIT_MS = 20.0
# Above this CPU use (% of one core) by processes outside the benchmark, the machine was shared.
OTHERS_LIMIT_PCT = 15.0


# ====================================================================== scenarios


@dataclass(frozen=True)
class Scenario:
    key: str
    number: int
    title: str
    run: Callable[[Context, ServerProcess], Figures]


@dataclass
class Context:
    quick: bool
    duration: float
    workers: int
    history: int
    idle: int
    workdir: Path
    verbose: bool

    def log(self, text: str) -> None:
        stamp = time.strftime("%H:%M:%S")
        print(f"  [{stamp}] {text}", file=sys.stderr, flush=True)


# ====================================================================== load generator pool


class LoadGen:
    """N worker processes, each running `loadgen.Worker`; commands go over pipes."""

    def __init__(self, n: int) -> None:
        ctx = mp.get_context("spawn")
        self.conns = []
        self.procs = []
        for i in range(n):
            parent, child = ctx.Pipe()
            proc = ctx.Process(target=worker_main, args=(child, i), daemon=True)
            proc.start()
            child.close()
            self.conns.append(parent)
            self.procs.append(proc)
        self._ps = [psutil.Process(p.pid) for p in self.procs]

    @property
    def n(self) -> int:
        return len(self.procs)

    def call(self, cmds: list[dict[str, Any]], timeout: float) -> list[dict[str, Any]]:
        """Send one command to each worker; wait (bounded) for every reply."""
        for conn, cmd in zip(self.conns, cmds, strict=True):
            conn.send(cmd)
        deadline = time.monotonic() + timeout
        replies = []
        for i, conn in enumerate(self.conns):
            left = deadline - time.monotonic()
            if not conn.poll(max(left, 0.0)):
                raise TimeoutError(f"load-generator worker {i}: no reply to {cmds[i]['op']}")
            reply = conn.recv()
            if "error" in reply:
                raise RuntimeError(f"load-generator worker {i}: {reply['error']}")
            replies.append(reply)
        return replies

    def broadcast(self, cmd: dict[str, Any], timeout: float) -> list[dict[str, Any]]:
        return self.call([cmd] * self.n, timeout)

    def connect(self, specs: list[ClientSpec], timeout: float = 60.0) -> dict[str, Any]:
        """Spread ``specs`` round-robin over the workers and open them all."""
        parts = [specs[i :: self.n] for i in range(self.n)]
        replies = self.call(
            [{"op": "connect", "specs": p, "timeout": 20.0, "concurrency": 64} for p in parts],
            timeout,
        )
        failed: Counter = Counter()
        for r in replies:
            failed.update(r["failed"])
        return {
            "connected": sum(r["connected"] for r in replies),
            "failed": dict(failed),
            "elapsed_s": max(r["elapsed_s"] for r in replies),
            "connect_ms": [ms for r in replies for ms in r["connect_ms"]],
            "no_server_step1": sum(r["no_server_step1"] for r in replies),
        }

    def cpu_seconds(self) -> float:
        total = 0.0
        for p in self._ps:
            with contextlib.suppress(psutil.Error):
                t = p.cpu_times()
                total += t.user + t.system
        return total

    def shutdown(self) -> None:
        with contextlib.suppress(Exception):
            self.broadcast({"op": "close"}, timeout=10.0)
        for proc in self.procs:
            proc.join(3)
            if proc.is_alive():
                proc.terminate()
                proc.join(3)
            if proc.is_alive():
                proc.kill()
                proc.join(1)
        for conn in self.conns:
            conn.close()


class Sampler:
    """Samples the server's RSS every 200 ms in a thread; CPU from process times."""

    def __init__(self, server: ServerProcess, lg: LoadGen | None) -> None:
        self.server = server
        self.lg = lg
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> Sampler:
        self.t0 = time.monotonic()
        self.cpu0 = self.server.cpu_seconds()
        self.lg_cpu0 = self.lg.cpu_seconds() if self.lg else 0.0
        self.busy0 = machine_busy_seconds()
        self.self0 = own_cpu_seconds()
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(0.2):
            self.peak_rss = max(self.peak_rss, self.server.rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(2)
        self.peak_rss = max(self.peak_rss, self.server.rss())
        self.wall = time.monotonic() - self.t0
        self.cpu = self.server.cpu_seconds() - self.cpu0
        self.lg_cpu = (self.lg.cpu_seconds() - self.lg_cpu0) if self.lg else 0.0
        busy = machine_busy_seconds() - self.busy0
        self.others = max(0.0, busy - self.cpu - self.lg_cpu - (own_cpu_seconds() - self.self0))

    @property
    def server_cpu_pct(self) -> float:
        return 100.0 * self.cpu / self.wall if self.wall else 0.0

    @property
    def lg_cpu_pct(self) -> float:
        return 100.0 * self.lg_cpu / self.wall if self.wall else 0.0

    @property
    def others_pct(self) -> float:
        return 100.0 * self.others / self.wall if self.wall else 0.0


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine spent not idle, summed over cores."""
    t = psutil.cpu_times()
    return sum(t) - t.idle - getattr(t, "iowait", 0.0)


def own_cpu_seconds() -> float:
    t = psutil.Process().cpu_times()
    return t.user + t.system


# ====================================================================== helpers


def pct(sorted_values: list[float] | array, q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    if not sorted_values:
        return math.nan
    k = max(0, min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[k]


def merge_latencies(replies: list[dict[str, Any]], key: str = "latencies_ns") -> list[float]:
    """Merge the workers' samples (ns) into one sorted list in ms."""
    out: list[float] = []
    for r in replies:
        a = array("q")
        a.frombytes(r[key])
        out.extend(v / 1e6 for v in a)
    out.sort()
    return out


def fmt_ms(values: list[float]) -> str:
    if not values:
        return "—"
    return (
        " / ".join(f"{pct(values, q):.1f}" for q in (0.5, 0.95, 0.99)) + f" (max {values[-1]:.0f})"
    )


def run_fetch(urls: list[str], timeout: float) -> list[FetchResult]:
    return asyncio.run(fetch_many(urls, timeout))


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan


def doc_names(n: int, prefix: str = "doc") -> list[str]:
    return [f"{prefix}-{i + 1}" for i in range(n)]


def build_specs(
    server: ServerProcess, docs: list[str], per_doc: int, writers_per_doc: int, cid0: int = 1
) -> list[ClientSpec]:
    specs = []
    cid = cid0
    for name in docs:
        url = server.url(name)
        for j in range(per_doc):
            specs.append(ClientSpec(cid, name, url, writer=j < writers_per_doc))
            cid += 1
    return specs


def connect_all(lg: LoadGen, specs: list[ClientSpec], ctx: Context) -> dict[str, Any]:
    """First client of each document alone (room creation), then all the others at once.

    Opening a new room with many concurrent first joins is a known pycrdt-websocket hang, and
    it is not what this suite measures; both servers get the same treatment.
    """
    first: dict[str, ClientSpec] = {}
    for s in specs:
        first.setdefault(s.doc, s)
    firsts = list(first.values())
    rest = [s for s in specs if first[s.doc] is not s]
    a = lg.connect(firsts)
    b = lg.connect(rest) if rest else {"connected": 0, "failed": {}, "elapsed_s": 0.0,
                                         "connect_ms": [], "no_server_step1": 0}  # fmt: skip
    failed = Counter(a["failed"])
    failed.update(b["failed"])
    result = {
        "connected": a["connected"] + b["connected"],
        "failed": dict(failed),
        "elapsed_s": a["elapsed_s"] + b["elapsed_s"],
        "rest_elapsed_s": b["elapsed_s"],
        "rest_connected": b["connected"],
        "connect_ms": sorted(a["connect_ms"] + b["connect_ms"]),
        "no_server_step1": a["no_server_step1"] + b["no_server_step1"],
    }
    ctx.log(
        f"connected {result['connected']}/{len(specs)} in {result['elapsed_s']:.1f}s"
        + (f", failed {result['failed']}" if failed else "")
    )
    return result


def expected_deliveries(sent_by_writer: dict[str, dict[str, int]], clients_by_doc: Counter) -> int:
    return sum(
        n * max(clients_by_doc[doc] - 1, 0)
        for doc, writers in sent_by_writer.items()
        for n in writers.values()
    )


@dataclass
class Step:
    """One measured run of the writers: sent, delivered, latencies, resources."""

    target_rate: float
    sent: int
    expected: int
    delivered: int
    merged: int
    frames: int
    latencies: list[float]
    loop_lag: list[float]
    window_s: float
    incomplete: int
    late: int
    server_cpu: float
    lg_cpu: float
    others_cpu: float
    peak_rss: int
    deviations: Counter
    closes: Counter
    errors: list[str]
    last_seq: dict[str, dict[str, int]]

    @classmethod
    def empty(cls) -> Step:
        """A step with no traffic: a holder for closes, deviations and errors."""
        return cls(0, 0, 0, 0, 0, 0, [], [], 1.0, 0, 0, 0, 0, 0, 0, Counter(), Counter(), [], {})

    @property
    def ratio(self) -> float:
        return self.delivered / self.expected if self.expected else math.nan

    @property
    def p95(self) -> float:
        return pct(self.latencies, 0.95)


def measure_step(
    lg: LoadGen,
    server: ServerProcess,
    *,
    rate: float | None,
    duration: float,
    kind: str,
    prev_seq: dict[str, dict[str, int]],
    clients_by_doc: Counter,
    quiesce_timeout: float,
    max_updates: int | None = None,
    target_rate: float = 0.0,
) -> Step:
    with Sampler(server, lg) as sampler:
        start_at = time.monotonic() + 0.3
        runs = lg.broadcast(
            {"op": "run", "start_at": start_at, "duration": duration, "rate": rate,
             "max_updates": max_updates, "kind": kind},
            timeout=duration + 60,
        )  # fmt: skip
        last_seq: dict[str, dict[str, int]] = {}
        for r in runs:
            for doc, writers in r["last_seq"].items():
                last_seq.setdefault(doc, {}).update(writers)
        stats = lg.broadcast(
            {"op": "quiesce", "expect": last_seq, "timeout": quiesce_timeout},
            timeout=quiesce_timeout + 30,
        )
    sent_by_writer = {
        doc: {w: s - prev_seq.get(doc, {}).get(w, 0) for w, s in writers.items()}
        for doc, writers in last_seq.items()
    }
    last_recv = max((s["last_recv_ns"] for s in stats), default=0)
    window = (last_recv / 1e9 - start_at) if last_recv else duration
    deviations: Counter = Counter()
    closes: Counter = Counter()
    errors: list[str] = []
    for s in stats:
        deviations.update(s["deviations"])
        closes.update(s["closes"])
        errors.extend(s["errors"])
    return Step(
        target_rate=target_rate,
        sent=sum(r["sent"] for r in runs),
        expected=expected_deliveries(sent_by_writer, clients_by_doc),
        delivered=sum(s["delivered"] for s in stats),
        merged=sum(s["merged"] for s in stats),
        frames=sum(s["update_frames"] for s in stats),
        latencies=merge_latencies(stats),
        loop_lag=merge_latencies(stats, "loop_lag_ns"),
        window_s=max(window, 1e-3),
        incomplete=sum(s["incomplete_replicas"] for s in stats),
        late=sum(r["late"] for r in runs),
        server_cpu=sampler.server_cpu_pct,
        lg_cpu=sampler.lg_cpu_pct,
        others_cpu=sampler.others_pct,
        peak_rss=sampler.peak_rss,
        deviations=deviations,
        closes=closes,
        errors=errors,
        last_seq=last_seq,
    )


def check_convergence(
    lg: LoadGen, server: ServerProcess, docs: list[str], timeout: float = 30.0
) -> tuple[str, bool]:
    """Every replica of a document and a fresh client's copy must have equal content."""
    snaps = lg.broadcast({"op": "snapshot"}, timeout=60)
    digests: dict[str, Counter] = {}
    for s in snaps:
        for doc, cnt in s["digests"].items():
            digests.setdefault(doc, Counter()).update(cnt)
    fresh = run_fetch([server.url(d) for d in docs], timeout)
    replicas = sum(sum(c.values()) for c in digests.values())
    bad_docs = []
    for name, probe in zip(docs, fresh, strict=True):
        seen = digests.get(name, Counter())
        if not probe.ok:
            bad_docs.append(f"{name}: fresh client failed ({probe.error})")
        elif len(seen) > 1 or (seen and probe.digest not in seen):
            bad_docs.append(f"{name}: {len(seen) + (probe.digest not in seen)} distinct states")
    if not replicas:
        bad_docs.append("no replica connected")
    if bad_docs:
        more = f" (+{len(bad_docs) - 3} more)" if len(bad_docs) > 3 else ""
        return f"NO: {'; '.join(bad_docs[:3])}{more}", False
    return f"yes ({replicas} replicas + {len(docs)} fresh)", True


def step_figures(step: Step, duration: float) -> Figures:
    return {
        "updates sent (sent/s)": f"{step.sent} ({step.sent / duration:.0f}/s)",
        "delivered / expected": f"{step.delivered}/{step.expected} ({100 * step.ratio:.1f}%)",
        "delivered updates/s": round(step.delivered / step.window_s),
        "fan-out latency p50 / p95 / p99 ms": fmt_ms(step.latencies),
        "merged on arrival": step.merged,
        "update frames per delivery": (
            round(step.frames / step.delivered, 2) if step.delivered else "—"
        ),
    }


def resource_figures(step: Step) -> Figures:
    return {
        "server CPU % (of one core)": round(step.server_cpu),
        "server RSS peak MiB": round(step.peak_rss / 2**20, 1),
        "load generator CPU % / loop lag p99 ms": (
            f"{step.lg_cpu:.0f} / {pct(step.loop_lag, 0.99):.1f}"
        ),
        "other processes CPU %": round(step.others_cpu),
    }


def problems(
    server: ServerProcess,
    log_mark: int,
    connect: dict[str, Any] | None,
    step: Step | None,
) -> Figures:
    """Closes, protocol deviations and server log errors seen during the scenario."""
    out: Figures = {}
    bits = []
    if connect and connect["failed"]:
        bits.append(f"connect failed {connect['failed']}")
    if connect and connect["no_server_step1"]:
        bits.append(f"{connect['no_server_step1']} clients got no server sync step 1")
    if step and step.closes:
        bits.append(f"closes {dict(step.closes)}")
    if step and step.deviations:
        bits.append(f"protocol {dict(step.deviations)}")
    if step and step.late:
        bits.append(f"writers >250 ms late {step.late}x")
    if step and step.loop_lag and pct(step.loop_lag, 0.99) > LAG_LIMIT_MS:
        bits.append(
            f"load generator loop lag p99 {pct(step.loop_lag, 0.99):.0f} ms "
            "(latencies include client-side delay)"
        )
    if step and step.others_cpu > OTHERS_LIMIT_PCT:
        bits.append(f"other processes used {step.others_cpu:.0f}% CPU meanwhile")
    n_log, lines = server.log_findings(log_mark)
    if n_log:
        bits.append(f"{n_log} error lines in server log")
    if not server.alive():
        bits.append("SERVER DIED")
    out["problems"] = "; ".join(bits) if bits else "none"
    if lines or (step and step.errors):
        out["_details"] = {"log": lines, "client_errors": step.errors[:10] if step else []}
    return out


def open_by_doc(lg: LoadGen) -> Counter:
    """Connected replicas per document: the expected fan-out counts only those."""
    total: Counter = Counter()
    for s in lg.broadcast({"op": "stats"}, timeout=30):
        total.update(s["open_by_doc"])
    return total


def wait_server_idle(server: ServerProcess, max_wait: float, busy_pct: float = 10.0) -> float:
    """Wait until the server uses under ``busy_pct`` of a core over 0.5 s (bounded).

    Returns the seconds waited, or -1 if it was still busy after ``max_wait``.
    """
    started = time.monotonic()
    while time.monotonic() - started < max_wait:
        cpu0 = server.cpu_seconds()
        time.sleep(0.5)
        if 100 * (server.cpu_seconds() - cpu0) / 0.5 < busy_pct:
            return time.monotonic() - started
    return -1.0


def new_loadgen(ctx: Context, specs_count: int) -> LoadGen:
    return LoadGen(max(1, min(ctx.workers, specs_count)))


# ---------------------------------------------------------------------- fan-out scenarios


def fanout(
    docs: int, per_doc: int, writers: int, rate: float, kind: str
) -> Callable[[Context, ServerProcess], Figures]:
    def run(ctx: Context, server: ServerProcess) -> Figures:
        names = doc_names(docs)
        specs = build_specs(server, names, per_doc, writers)
        log_mark = server.log_size()
        lg = new_loadgen(ctx, len(specs))
        try:
            conn = connect_all(lg, specs, ctx)
            clients_by_doc = open_by_doc(lg)
            ctx.log(f"writing {ctx.duration:.0f}s: {docs}x{writers} writers at {rate}/s")
            step = measure_step(
                lg, server, rate=rate, duration=ctx.duration, kind=kind, prev_seq={},
                clients_by_doc=clients_by_doc, quiesce_timeout=8 if ctx.quick else 15,
            )  # fmt: skip
            converged, _ = check_convergence(lg, server, names)
        finally:
            lg.shutdown()
        figures: Figures = {
            "clients synced": f"{conn['connected']}/{len(specs)}",
            "connect→synced p50 / p99 ms": (
                f"{pct(conn['connect_ms'], 0.5):.1f} / {pct(conn['connect_ms'], 0.99):.1f}"
            ),
        }
        figures.update(step_figures(step, ctx.duration))
        figures["converged"] = converged
        figures.update(resource_figures(step))
        figures.update(problems(server, log_mark, conn, step))
        return figures

    return run


# ---------------------------------------------------------------------- saturation


def saturation(ctx: Context, server: ServerProcess) -> Figures:
    writers, readers = 50, 5
    specs = build_specs(server, ["sat-1"], writers + readers, writers)
    log_mark = server.log_size()
    step_s = min(ctx.duration, 3.0 if ctx.quick else 6.0)
    rate = 100.0
    steps: list[Step] = []
    lg = new_loadgen(ctx, len(specs))
    try:
        conn = connect_all(lg, specs, ctx)
        clients_by_doc = open_by_doc(lg)
        prev: dict[str, dict[str, int]] = {}
        for _ in range(10):
            ctx.log(f"saturation step: {rate:.0f} updates/s in total")
            step = measure_step(
                lg, server, rate=rate / writers, duration=step_s, kind="canvas",
                prev_seq=prev, clients_by_doc=clients_by_doc,
                quiesce_timeout=5 if ctx.quick else 10, target_rate=rate,
            )  # fmt: skip
            prev = step.last_seq
            steps.append(step)
            ok = step.p95 <= 100 and step.ratio >= 0.999 and not step.incomplete
            ctx.log(
                f"  sent {step.sent / step_s:.0f}/s, delivered {step.delivered / step.window_s:.0f}"
                f"/s, p95 {step.p95:.1f} ms, {100 * step.ratio:.1f}% delivered, "
                f"server CPU {step.server_cpu:.0f}%, loadgen CPU {step.lg_cpu:.0f}% "
                f"(lag p99 {pct(step.loop_lag, 0.99):.0f} ms), others {step.others_cpu:.0f}%"
            )
            if not ok or step.sent < 0.9 * rate * step_s:
                break
            rate *= 1.5
        converged, _ = check_convergence(lg, server, ["sat-1"])
    finally:
        lg.shutdown()
    good = [s for s in steps if s.p95 <= 100 and s.ratio >= 0.999 and not s.incomplete]
    best = max(good, key=lambda s: s.delivered / s.window_s, default=None)
    first_bad = next((s for s in steps if s not in good), None)
    figures: Figures = {
        "clients synced": f"{conn['connected']}/{len(specs)}",
        "max delivered updates/s with p95 ≤ 100 ms": (
            f"{best.delivered / best.window_s:.0f} ({best.sent / step_s:.0f} sent/s, "
            f"p95 {best.p95:.1f} ms)"
            if best
            else "none (even the first step failed)"
        ),
    }
    if first_bad is not None:
        limit = "p95 > 100 ms" if first_bad.p95 > 100 else "not all delivered"
        if first_bad.sent < 0.9 * first_bad.target_rate * step_s and first_bad.p95 <= 100:
            limit = "writers could not send at the target rate"
        lag = pct(first_bad.loop_lag, 0.99)
        if first_bad.lg_cpu >= 85 * ctx.workers or lag > LAG_LIMIT_MS:
            limit += (
                f"; load generator near saturation (CPU {first_bad.lg_cpu:.0f}%, loop lag p99 "
                f"{lag:.0f} ms): the server's own limit may be higher"
            )
        bad_rate = first_bad.delivered / first_bad.window_s
        figures["first failing step"] = (
            f"{first_bad.target_rate:.0f} sent/s target: {bad_rate:.0f} delivered/s, "
            f"p95 {first_bad.p95:.0f} ms, {100 * first_bad.ratio:.1f}% ({limit})"
        )
    else:
        figures["first failing step"] = "none within the ramp"
    figures["ramp (sent/s target: p95 ms)"] = ", ".join(
        f"{s.target_rate:.0f}: {s.p95:.0f}" for s in steps
    )
    figures["converged"] = converged
    if best:
        figures.update(resource_figures(best))
    all_steps = Step.empty()
    for s in steps:
        all_steps.deviations.update(s.deviations)
        all_steps.closes.update(s.closes)
        all_steps.errors.extend(s.errors)
        all_steps.late += s.late
        all_steps.others_cpu = max(all_steps.others_cpu, s.others_cpu)
    figures.update(problems(server, log_mark, conn, all_steps))
    figures["_steps"] = [
        {"target_sent_per_s": s.target_rate, "sent": s.sent, "delivered": s.delivered,
         "expected": s.expected, "delivered_per_s": s.delivered / s.window_s,
         "p50_ms": pct(s.latencies, 0.5), "p95_ms": s.p95, "p99_ms": pct(s.latencies, 0.99),
         "server_cpu_pct": s.server_cpu, "loadgen_cpu_pct": s.lg_cpu,
         "loadgen_loop_lag_p99_ms": pct(s.loop_lag, 0.99), "others_cpu_pct": s.others_cpu}
        for s in steps
    ]  # fmt: skip
    return figures


# ---------------------------------------------------------------------- idle connections


def idle(ctx: Context, server: ServerProcess) -> Figures:
    n_docs = 20
    names = doc_names(n_docs, "idle")
    per_doc = max(1, ctx.idle // n_docs)
    specs = build_specs(server, names, per_doc, 0)
    log_mark = server.log_size()
    lg = new_loadgen(ctx, len(specs))

    def settled_rss() -> int:
        samples = []
        for _ in range(5):
            time.sleep(0.2)
            samples.append(server.rss())
        return int(median(samples))

    try:
        firsts = [s for i, s in enumerate(specs) if i % per_doc == 0]
        rest = [s for i, s in enumerate(specs) if i % per_doc != 0]
        with Sampler(server, lg) as sampler:
            rss_empty = settled_rss()
            a = lg.connect(firsts)
            time.sleep(0.5)
            rss_before = settled_rss()
            cpu0 = server.cpu_seconds()
            ctx.log(f"opening {len(rest)} idle connections")
            b = lg.connect(rest, timeout=180)
            connect_cpu = server.cpu_seconds() - cpu0
            time.sleep(1.0)
            rss_after = settled_rss()
            hold = 3.0 if ctx.quick else 10.0
            cpu1 = server.cpu_seconds()
            time.sleep(hold)
            idle_cpu = 100 * (server.cpu_seconds() - cpu1) / hold
            stats = lg.broadcast({"op": "stats"}, timeout=30)
        still_open = sum(s["open_clients"] for s in stats)
        closes: Counter = Counter()
        errors: list[str] = []
        for s in stats:
            closes.update(s["closes"])
            errors.extend(s["errors"])
    finally:
        lg.shutdown()
    added = b["connected"]
    ms = sorted(b["connect_ms"])
    figures: Figures = {
        "connections synced": f"{a['connected'] + added}/{len(specs)} over {n_docs} documents",
        "server RSS: fresh → 1 client/doc → all, MiB": (
            f"{rss_empty / 2**20:.1f} → {rss_before / 2**20:.1f} → {rss_after / 2**20:.1f}"
        ),
        "RSS growth per connection KiB": (
            round((rss_after - rss_before) / added / 1024, 1) if added else "—"
        ),
        "connect rate (connections/s)": round(added / b["elapsed_s"]) if added else "—",
        "connect→synced p50 / p99 ms (while opening)": f"{pct(ms, 0.5):.1f} / {pct(ms, 0.99):.1f}",
        "server CPU ms per connection (open+sync)": (
            round(1000 * connect_cpu / added, 2) if added else "—"
        ),
        "server CPU % while idle": round(idle_cpu, 1),
        f"still open after {hold:.0f}s idle": f"{still_open}/{a['connected'] + added}",
    }
    step = Step.empty()
    step.closes.update(closes)
    step.errors.extend(errors)
    step.others_cpu = sampler.others_pct
    figures.update(problems(server, log_mark, {**b, "failed": b["failed"]}, step))
    return figures


# ---------------------------------------------------------------------- cold load


def cold_load(ctx: Context, server: ServerProcess) -> Figures:
    name = "history-1"
    n_writers = 10
    per_writer = max(1, ctx.history // n_writers)
    total = per_writer * n_writers
    url = server.url(name)
    specs = [ClientSpec(1, name, url)] + [
        ClientSpec(2 + i, name, url, writer=True, sink=True) for i in range(n_writers)
    ]
    log_mark = server.log_size()
    lg = new_loadgen(ctx, len(specs))
    figures: Figures = {}
    try:
        conn = connect_all(lg, specs, ctx)
        ctx.log(f"seeding {total} updates with {n_writers} writers")
        seed_cap = 120.0 if ctx.quick else 300.0
        with Sampler(server, lg) as sampler:
            start_at = time.monotonic() + 0.3
            runs = lg.broadcast(
                {"op": "run", "start_at": start_at, "duration": seed_cap, "rate": None,
                 "max_updates": per_writer, "kind": "text"},
                timeout=seed_cap + 60,
            )  # fmt: skip
            sent_done = time.monotonic()
            last_seq: dict[str, dict[str, int]] = {}
            for r in runs:
                for doc, writers in r["last_seq"].items():
                    last_seq.setdefault(doc, {}).update(writers)
            stats = lg.broadcast(
                {"op": "quiesce", "expect": last_seq, "timeout": seed_cap, "stall": 15.0},
                timeout=seed_cap + 30,
            )
        sent = sum(r["sent"] for r in runs)
        last_recv = max(s["last_recv_ns"] for s in stats) / 1e9
        seed_s = max(last_recv, sent_done) - start_at
        observed = sum(s["delivered"] for s in stats)
        lat = merge_latencies(stats)
        complete = not any(s["incomplete_replicas"] for s in stats)
        send_s = sent_done - start_at
        figures["history seeded"] = (
            f"{sent} updates in {seed_s:.1f}s ({sent / seed_s:.0f}/s)"
            if complete
            else f"{sent} updates sent in {send_s:.1f}s; the observer never got them all"
        )
        figures["live updates the observer received"] = (
            f"{observed}/{sent} ({100 * observed / sent:.1f}%)"
            + (", then nothing for 15 s" if any(s["stalled"] for s in stats) else "")
        )
        figures["observer latency p50 / p95 / p99 ms (burst)"] = fmt_ms(lat)
        figures["server CPU % while seeding"] = round(sampler.server_cpu_pct)
        figures["server RSS after seeding MiB"] = round(server.rss() / 2**20, 1)
        ctx.log(figures["history seeded"])
        idle_after = wait_server_idle(server, 60.0)
        figures["server busy after seeding s"] = (
            round(idle_after, 1) if idle_after >= 0 else "still busy after 60"
        )
        warm = [run_fetch([url], 120)[0] for _ in range(3)]  # one after the other
        ctx.log("warm: " + ", ".join(f"{w.synced_ms:.0f} ms" for w in warm))
        warm_ok = [w for w in warm if w.ok]
        reference = warm_ok[0] if warm_ok else None
        figures["warm: connect→synced ms (median of 3, one at a time)"] = (
            f"{median([w.synced_ms for w in warm_ok]):.0f}"
            if warm_ok
            else f"failed: {warm[0].error}"
        )
        if reference:
            markers_ok = reference.marker_seqs == {
                w: s for ws in last_seq.values() for w, s in ws.items()
            }
            figures["sync step 2 size KiB"] = round(reference.step2_bytes / 1024, 1)
            figures["state complete"] = "yes" if markers_ok else "NO (writer markers missing)"
            if len({w.digest for w in warm_ok}) > 1:
                figures["state complete"] += "; fresh clients disagree"
    finally:
        lg.shutdown()

    # With every client gone: does the server still hold the history?
    time.sleep(0.5)
    after = run_fetch([url], 60)[0]
    kept = reference is not None and after.ok and after.digest == reference.digest
    figures["history kept after the last client left"] = (
        "yes" if kept else "no (the room is dropped with its last client)"
    )
    if not server.persistent:
        na = "n/a (in-memory: no store, the history is lost on restart)"
        figures["cold: connect→synced ms after restart"] = na
        figures["restart: stop s / start-to-listening s"] = "n/a"
        figures["state after restart equals before"] = "n/a"
    else:
        cold_ms, stop_s, start_s, same = [], [], [], []
        restarts = 1 if ctx.quick else 3
        for i in range(restarts):
            stop_s.append(server.stop())
            t1 = time.monotonic()
            server.start(timeout=120, keep_port=True)
            start_s.append(time.monotonic() - t1)
            probe = run_fetch([url], 120)[0]
            ctx.log(
                f"restart {i + 1}: stop {stop_s[-1]:.1f}s, start {start_s[-1]:.1f}s, "
                f"cold sync {probe.synced_ms:.0f} ms"
                if probe.ok
                else f"cold: {probe.error}"
            )
            if probe.ok:
                cold_ms.append(probe.synced_ms)
                same.append(reference is not None and probe.digest == reference.digest)
            else:
                same.append(False)
                figures["cold error"] = probe.error
        figures["cold: connect→synced ms after restart"] = (
            f"{median(cold_ms):.0f} (median of {len(cold_ms)}, "
            f"min {min(cold_ms):.0f}, max {max(cold_ms):.0f})"
            if cold_ms
            else "failed"
        )
        figures["restart: stop s / start-to-listening s"] = (
            f"{median(stop_s):.1f} / {median(start_s):.1f}"
        )
        figures["state after restart equals before"] = (
            "yes" if same and all(same) else f"NO ({same.count(False)}/{len(same)} differ)"
        )
    step = Step.empty()
    step.others_cpu = sampler.others_pct
    for s in stats:
        step.deviations.update(s["deviations"])
        step.closes.update(s["closes"])
        step.errors.extend(s["errors"])
    figures.update(problems(server, log_mark, conn, step))
    return figures


SCENARIOS = [
    Scenario(
        "canvas", 1, "one canvas: 50 clients, 10 writers x 20/s", fanout(1, 50, 10, 20, "canvas")
    ),
    Scenario(
        "crowd", 2, "one document: 200 clients, 20 writers x 10/s",
        fanout(1, 200, 20, 10, "journal"),
    ),
    Scenario(
        "many-docs", 3, "100 documents x 5 clients, 1 writer x 5/s each",
        fanout(100, 5, 1, 5, "canvas"),
    ),
    Scenario("saturation", 4, "saturation: 50 writers + 5 readers on one document", saturation),
    Scenario("idle", 5, "idle connections: RSS per connection", idle),
    Scenario("cold-load", 6, "cold load of a document with a long history", cold_load),
]  # fmt: skip


# ====================================================================== output


def machine() -> dict[str, str]:
    cpu = platform.processor() or ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    versions = {}
    for pkg in ("pycrdt", "pycrdt-websocket", "websockets", "uvicorn", "uvloop"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[pkg] = metadata.version(pkg)
    return {
        "cpu": f"{cpu} x {os.cpu_count()} cores",
        "memory": f"{psutil.virtual_memory().total / 2**30:.1f} GiB",
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "packages": ", ".join(f"{k} {v}" for k, v in versions.items()),
    }


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True, timeout=10, check=False,
        )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return "uncommitted"
    commit = out.stdout.decode().strip()
    return commit if out.returncode == 0 and commit else "uncommitted"


def render(results: dict[str, Any]) -> str:
    servers: list[str] = results["servers"]
    meta = results["meta"]
    lines = [
        f"### {meta['date']} — syncd commit `{meta['commit']}`"
        + (" (--quick)" if meta["quick"] else ""),
        "",
        f"Machine: {meta['machine']['cpu']}, {meta['machine']['memory']}, "
        f"{meta['machine']['os']}, Python {meta['machine']['python']}; "
        f"{meta['machine']['packages']}. Load generator: {meta['workers']} process(es); "
        f"measurement {meta['duration']:.0f}s per scenario.",
        "",
        "| scenario | figure | " + " | ".join(servers) + " |",
        "|---|---|" + "---|" * len(servers),
    ]
    for sc in results["scenarios"]:
        per_server = sc["servers"]
        keys: list[str] = []
        for s in servers:
            for k in per_server.get(s, {}):
                if not k.startswith("_") and k not in keys:
                    keys.append(k)
        for i, key in enumerate(keys):
            label = f"{sc['number']}. {sc['title']}" if i == 0 else ""
            cells = []
            for s in servers:
                value = per_server.get(s, {}).get(key, "")
                cells.append(str(value).replace("|", "\\|"))
            lines.append(f"| {label} | {key} | " + " | ".join(cells) + " |")
    notes = []
    for sc in results["scenarios"]:
        for s in servers:
            details = sc["servers"].get(s, {}).get("_details")
            if details and (details.get("log") or details.get("client_errors")):
                notes.append(
                    f"- {sc['number']}. {s}: "
                    + "; ".join(
                        [*details.get("log", [])[:3], *details.get("client_errors", [])[:3]]
                    )
                )
    if notes:
        lines += ["", "Problems seen (first lines):", *notes]
    skipped = results.get("skipped")
    if skipped:
        lines += ["", *(f"- {name}: not run — {why}" for name, why in skipped.items())]
    return "\n".join(lines)


# ====================================================================== main


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
