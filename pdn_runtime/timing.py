"""Latency summaries shared by the node's diagnostics, the evaluations and the benchmarks."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def percentiles_ms(seconds: Sequence[float], percents: Sequence[float] = (50, 99)) -> tuple:
    """The given percentiles (default p50 and p99) of durations in seconds, in milliseconds;
    NaN for each without samples."""
    if len(seconds) == 0:
        return tuple(float("nan") for _ in percents)
    values = np.percentile(np.asarray(seconds, np.float64) * 1000.0, list(percents))
    return tuple(float(v) for v in values)
