"""Samples and counters: recorded in each load-generator worker, merged by the orchestrator.

`Stats` is what the clients of one worker count (latencies, loop lag, deliveries, closes);
`Stats.export()` crosses the pipe, and `merge_latencies` turns the workers' samples back into
one sorted list for `pct` and `fmt_ms`.
"""

from __future__ import annotations

import math
import statistics
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

MAX_ERRORS_KEPT = 50


@dataclass
class Stats:
    """Counters shared by the clients of one worker process; reset at the start of a run."""

    latencies_ns: array = field(default_factory=lambda: array("q"))
    loop_lag_ns: array = field(default_factory=lambda: array("q"))  # event-loop oversleep
    delivered: int = 0  # writer updates that reached a replica (merged ones included)
    merged: int = 0  # of those, updates that arrived merged into a later one (no latency sample)
    update_frames: int = 0  # sync step 2 / update frames received
    awareness_frames: int = 0
    first_recv_ns: int = 0
    last_recv_ns: int = 0
    deviations: Counter = field(default_factory=Counter)  # protocol deviations seen
    closes: Counter = field(default_factory=Counter)  # close codes of unexpected closes
    errors: list[str] = field(default_factory=list)

    def error(self, text: str) -> None:
        if len(self.errors) < MAX_ERRORS_KEPT:
            self.errors.append(text)

    def reset(self) -> None:
        self.latencies_ns = array("q")
        self.loop_lag_ns = array("q")
        self.delivered = self.merged = self.update_frames = self.awareness_frames = 0
        self.first_recv_ns = self.last_recv_ns = 0

    def export(self) -> dict[str, Any]:
        return {
            "latencies_ns": self.latencies_ns.tobytes(),
            "loop_lag_ns": self.loop_lag_ns.tobytes(),
            "delivered": self.delivered,
            "merged": self.merged,
            "update_frames": self.update_frames,
            "awareness_frames": self.awareness_frames,
            "first_recv_ns": self.first_recv_ns,
            "last_recv_ns": self.last_recv_ns,
            "deviations": dict(self.deviations),
            "closes": dict(self.closes),
            "errors": list(self.errors),
        }


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


def median(values: list[float]) -> float:
    return statistics.median(values) if values else math.nan
