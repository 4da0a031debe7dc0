"""Latency statistics shared by the benchmarks (imported as ``_stats`` when a benchmark runs as a script)."""

from __future__ import annotations

import statistics
from typing import Any


def percentile(values: list[float], q: float) -> float:
    """The nearest-rank ``q`` quantile of ``values``."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(appends: list[float], turns: list[float]) -> dict[str, Any]:
    """append p50/p95 and turn p50/p95/mean (ms, 4 decimals) plus the number of timed turns."""
    out: dict[str, Any] = {}
    if appends:
        out |= {"append_p50_ms": round(percentile(appends, 0.5), 4), "append_p95_ms": round(percentile(appends, 0.95), 4)}
    if turns:
        out |= {
            "turn_p50_ms": round(percentile(turns, 0.5), 4),
            "turn_p95_ms": round(percentile(turns, 0.95), 4),
            "turn_mean_ms": round(statistics.fmean(turns), 4),
            "turns": len(turns),
        }
    return out
