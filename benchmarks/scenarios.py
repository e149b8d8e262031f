"""The scenarios: fan-out, idle connections and cold load; the registry of all of them."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from measure import (
    Context,
    Figures,
    Sampler,
    Step,
    build_specs,
    check_convergence,
    connect_all,
    doc_names,
    measure_step,
    new_loadgen,
    open_by_doc,
    problems,
    resource_figures,
    run_fetch,
    step_figures,
    wait_server_idle,
)
from saturation import saturation
from server_process import ServerProcess
from stats import fmt_ms, median, merge_latencies, pct


@dataclass(frozen=True)
class Scenario:
    key: str
    number: int
    title: str
    run: Callable[[Context, ServerProcess], Figures]
    durable_only: bool = False  # measures what survives a restart: n/a for in-memory servers


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
        cell = (
            f"{step.p95:.1f} ms ({step.server_cpu:.0f}%, "
            f"{step.cpu_us_per_delivery:.0f} µs/delivery)"
        )
        if step.missing:
            cell += f", {step.missing} lost"
        figures["_summary"] = {"": cell}
        return figures

    return run


# ---------------------------------------------------------------------- idle connections


def idle(ctx: Context, server: ServerProcess) -> Figures:
    n_docs = 100
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
            a = lg.connect(firsts, timeout=180)
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
        f"time to connect all {len(specs)} s": round(a["elapsed_s"] + b["elapsed_s"], 2),
        "RSS per connection KiB (all - fresh) / n": (
            round((rss_after - rss_empty) / (a["connected"] + added) / 1024, 1)
            if a["connected"] + added
            else "—"
        ),
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
    n = a["connected"] + added
    figures["_summary"] = {
        f"R5: KiB per idle connection ({len(specs):,} over {n_docs} docs)": (
            figures["RSS per connection KiB (all - fresh) / n"]
        ),
        f"R5: time to connect {len(specs):,}": (
            f"{a['elapsed_s'] + b['elapsed_s']:.1f} s"
            + ("" if n == len(specs) else f" ({len(specs) - n} failed)")
        ),
    }
    return figures


# ---------------------------------------------------------------------- cold load


def cold_load(ctx: Context, server: ServerProcess) -> Figures:
    name = "history-1"
    n_writers = 10
    per_writer = max(1, ctx.history // n_writers)
    total = per_writer * n_writers
    specs = [server.client_spec(1, name)] + [
        server.client_spec(2 + i, name, writer=True, sink=True) for i in range(n_writers)
    ]

    def probe() -> dict[str, Any]:
        return run_fetch([server.client_spec(10**6, name)], 120)[0]

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
        last_recv = max(s["last_recv_s"] for s in stats)
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
        warm = [probe() for _ in range(3)]  # one after the other
        warm_ok = [w for w in warm if w["ok"]]
        ctx.log("warm: " + ", ".join(f"{w['synced_ms']:.0f} ms" for w in warm_ok))
        reference = warm_ok[0] if warm_ok else None
        figures["warm: connect→synced ms (median of 3, one at a time)"] = (
            f"{median([w['synced_ms'] for w in warm_ok]):.0f}"
            if warm_ok
            else f"failed: {warm[0]['error']}"
        )
        if reference:
            markers_ok = reference["marker_seqs"] == {
                w: s for ws in last_seq.values() for w, s in ws.items()
            }
            figures["sync step 2 size KiB"] = round(reference["step2_bytes"] / 1024, 1)
            figures["state complete"] = "yes" if markers_ok else "NO (writer markers missing)"
            if len({w["digest"] for w in warm_ok}) > 1:
                figures["state complete"] += "; fresh clients disagree"
    finally:
        lg.shutdown()

    # With every client gone: does the server still hold the history?
    time.sleep(0.5)
    after = probe()
    kept = reference is not None and after["ok"] and after["digest"] == reference["digest"]
    figures["history kept after the last client left"] = (
        "yes" if kept else "no (the room is dropped with its last client)"
    )
    cold_ms, stop_s, start_s, same = [], [], [], []
    # An in-memory server has nothing to restart from; its warm figure is the floor any server
    # meets here, the client applying the whole state.
    restarts = 0 if not server.persistent else 1 if ctx.quick else 3
    for i in range(restarts):
        stop_s.append(server.stop())
        t1 = time.monotonic()
        server.start(timeout=120, keep_port=True)
        start_s.append(time.monotonic() - t1)
        cold = probe()
        ctx.log(
            f"restart {i + 1}: stop {stop_s[-1]:.1f}s, start {start_s[-1]:.1f}s, "
            f"cold sync {cold['synced_ms']:.0f} ms"
            if cold["ok"]
            else f"cold: {cold['error']}"
        )
        if cold["ok"]:
            cold_ms.append(cold["synced_ms"])
            same.append(reference is not None and cold["digest"] == reference["digest"])
        else:
            same.append(False)
            figures["cold error"] = cold["error"]
    if not server.persistent:
        figures["cold: connect→synced ms after restart"] = "n/a (in memory)"
    else:
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
    if not server.persistent:
        warm_summary = figures["warm: connect→synced ms (median of 3, one at a time)"]
        figures["_summary"] = {"": f"warm {warm_summary} ms, no restart (in memory)"}
    else:
        figures["_summary"] = {
            "": (f"{median(cold_ms):.0f} ms ({total:,} updates)" if cold_ms else "failed")
            + ("" if all(same) else " (state differs after restart)")
        }
    return figures


SCENARIOS = [
    Scenario(
        "canvas", 1, "R1: 1 doc, 50 clients, 10 writers x 20/s", fanout(1, 50, 10, 20, "canvas")
    ),
    Scenario(
        "crowd", 2, "R2: 1 doc, 200 clients, 20 writers x 10/s", fanout(1, 200, 20, 10, "journal")
    ),
    Scenario(
        "many-docs", 3, "R3: 100 docs x 5 clients, 2 writers x 5 strokes/s",
        fanout(100, 5, 2, 5, "stroke"),
    ),
    Scenario("saturation", 4, "R4: 50 writers + 5 readers on 1 doc, stepped rate", saturation),
    Scenario("idle", 5, "R5: 2,000 idle connections over 100 docs", idle),
    Scenario(
        "cold-load", 6, "cold load of a long history (warm only for in-memory servers)",
        cold_load,
    ),
]  # fmt: skip
