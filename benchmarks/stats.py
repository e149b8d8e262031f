"""Percentiles and formatting of the samples the Node load-generator workers send back.

A worker exports its samples as base64 of a Float64Array of milliseconds
(``node/stats.mjs``); `merge_latencies` turns the workers' samples back into one sorted list
for `pct` and `fmt_ms`.
"""

from __future__ import annotations

import base64
import math
import statistics
from array import array
from typing import Any


def pct(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted sequence."""
    if not sorted_values:
        return math.nan
    k = max(0, min(len(sorted_values) - 1, math.ceil(q * len(sorted_values)) - 1))
    return sorted_values[k]


def merge_latencies(replies: list[dict[str, Any]], key: str = "latencies_ms") -> list[float]:
    """Merge the workers' samples (ms) into one sorted list."""
    out: list[float] = []
    for r in replies:
        samples = array("d")
        samples.frombytes(base64.b64decode(r[key]))
        out.extend(samples)
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
