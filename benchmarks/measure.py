"""The phases every scenario is made of (connect, write, quiesce, snapshot) and their figures."""

from __future__ import annotations

import math
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pool import LoadGen, Sampler, fetch
from server_process import ClientSpec, ServerProcess
from stats import fmt_ms, merge_latencies, pct

Figures = dict[str, Any]

# Above this event-loop lag (p99, ms) in the load generator, its own delay is a visible part
# of the latencies it measures: say so next to the figures.
LAG_LIMIT_MS = 20.0
# Above this CPU use (% of one core) by processes outside the benchmark, the machine was shared.
OTHERS_LIMIT_PCT = 15.0


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


def run_fetch(specs: list[ClientSpec], timeout: float) -> list[dict[str, Any]]:
    """Fresh clients sync once each: ``ok``, ``error``, ``synced_ms``, ``digest``, ...

    (the ``fetch`` command of ``node/loadgen.mjs``)
    """
    return fetch(specs, timeout)


def doc_names(n: int, prefix: str = "doc") -> list[str]:
    return [f"{prefix}-{i + 1}" for i in range(n)]


def build_specs(
    server: ServerProcess, docs: list[str], per_doc: int, writers_per_doc: int, cid0: int = 1
) -> list[ClientSpec]:
    specs = []
    cid = cid0
    for name in docs:
        for j in range(per_doc):
            specs.append(server.client_spec(cid, name, writer=j < writers_per_doc))
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
    missing: int
    late: int
    server_cpu: float
    server_cpu_s: float
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
        return cls(
            0, 0, 0, 0, 0, 0, [], [], 1.0, 0, 0, 0, 0, 0, 0, 0, 0, Counter(), Counter(), [], {}
        )

    @property
    def ratio(self) -> float:
        return self.delivered / self.expected if self.expected else math.nan

    @property
    def p95(self) -> float:
        return pct(self.latencies, 0.95)

    @property
    def cpu_us_per_delivery(self) -> float:
        return 1e6 * self.server_cpu_s / self.delivered if self.delivered else math.nan


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
    last_recv = max((s["last_recv_s"] for s in stats), default=0)
    window = (last_recv - start_at) if last_recv else duration
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
        loop_lag=merge_latencies(stats, "loop_lag_ms"),
        window_s=max(window, 1e-3),
        incomplete=sum(s["incomplete_replicas"] for s in stats),
        missing=sum(s["missing_updates"] for s in stats),
        late=sum(r["late"] for r in runs),
        server_cpu=sampler.server_cpu_pct,
        server_cpu_s=sampler.cpu,
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
    fresh = run_fetch([server.client_spec(10**6 + i, d) for i, d in enumerate(docs)], timeout)
    replicas = sum(sum(c.values()) for c in digests.values())
    bad_docs = []
    for name, probe in zip(docs, fresh, strict=True):
        seen = digests.get(name, Counter())
        if not probe["ok"]:
            bad_docs.append(f"{name}: fresh client failed ({probe['error']})")
        elif len(seen) > 1 or (seen and probe["digest"] not in seen):
            bad_docs.append(f"{name}: {len(seen) + (probe['digest'] not in seen)} distinct states")
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
        "lost updates (missing from a replica at the end)": (
            f"{step.missing} ({step.incomplete} replicas incomplete)" if step.missing else 0
        ),
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
        "server CPU µs per delivered update": round(step.cpu_us_per_delivery, 1),
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
