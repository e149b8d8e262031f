"""Saturation: a ramp of send rates on one document until p95 or delivery fails."""

from __future__ import annotations

from measure import (
    LAG_LIMIT_MS,
    Context,
    Figures,
    Step,
    build_specs,
    check_convergence,
    connect_all,
    measure_step,
    new_loadgen,
    open_by_doc,
    problems,
    resource_figures,
)
from server_process import ServerProcess
from stats import pct


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
    figures["_summary"] = {
        "": f"{best.delivered / best.window_s / 1000:.1f}k deliveries/s (p95 {best.p95:.0f} ms)"
        if best
        else "none"
    }
    figures["_steps"] = [
        {"target_sent_per_s": s.target_rate, "sent": s.sent, "delivered": s.delivered,
         "expected": s.expected, "delivered_per_s": s.delivered / s.window_s,
         "p50_ms": pct(s.latencies, 0.5), "p95_ms": s.p95, "p99_ms": pct(s.latencies, 0.99),
         "server_cpu_pct": s.server_cpu, "loadgen_cpu_pct": s.lg_cpu,
         "loadgen_loop_lag_p99_ms": pct(s.loop_lag, 0.99), "others_cpu_pct": s.others_cpu}
        for s in steps
    ]  # fmt: skip
    return figures
