"""The patch budget sweep of `pdn-bench compare`: a total window count per frame split across
the scales, and what the sweep says against SAHI (does a budget reach the 8K target, which
budget the curve suggests)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

DEFAULT_BUDGETS = (0, 4, 8, 16, 24, 32, 48)
# Issue 11's 8K target: a budget with at least this share of SAHI's AP_small, at least this
# many times faster than SAHI.
AP_SMALL_SHARE = 0.9
SPEEDUP_8K = 10.0


def parse_budgets(text: str) -> tuple[int, ...]:
    """'0,4,16' -> (0, 4, 16): total windows per frame, each >= 0; '' -> no sweep."""
    if not text.strip():
        return ()
    try:
        budgets = tuple(int(k) for k in text.split(","))
    except ValueError as err:
        raise argparse.ArgumentTypeError(
            f"--budgets takes total window counts like 0,8,16, got {text!r}"
        ) from err
    if any(k < 0 for k in budgets):
        raise argparse.ArgumentTypeError(f"--budgets must be >= 0, got {text!r}")
    return tuple(sorted(set(budgets)))


def split_budget(total: int, default: Sequence[int], limits: Sequence[int]) -> tuple[int, ...]:
    """`total` windows split across the scales in the ratio of the model's `default` counts
    (largest remainder, ties to the earlier scale), no scale above its `limits` (windows
    that scale can choose; a scale's surplus goes to the others). ValueError if `total` is
    more than all scales hold together."""
    if total > sum(limits):
        raise ValueError(
            f"a budget of {total} windows is more than the frame holds ({sum(limits)})"
        )
    weights = list(default) if sum(default) > 0 else [1] * len(default)
    counts = [0] * len(weights)
    left, open_scales = total, [i for i, w in enumerate(weights) if w > 0 and limits[i] > 0]
    while left > 0:
        if not open_scales:  # only scales the default ratio leaves out have room
            open_scales = [i for i in range(len(weights)) if counts[i] < limits[i]]
            weights = [1] * len(weights)
        share = sum(weights[i] for i in open_scales)
        exact = {i: left * weights[i] / share for i in open_scales}
        add = {i: int(exact[i]) for i in open_scales}
        by_remainder = sorted(open_scales, key=lambda i: (-(exact[i] - add[i]), i))
        for i in by_remainder[: left - sum(add.values())]:
            add[i] += 1
        for i in open_scales:
            counts[i] += min(add[i], limits[i] - counts[i])
        left = total - sum(counts)
        open_scales = [i for i in open_scales if counts[i] < limits[i]]
    return tuple(counts)


def _point(row: dict[str, Any], sahi_ap: float, sahi_ms: float) -> dict[str, Any]:
    """One budget against SAHI: its AP_small share and speed-up."""
    return {
        "budget": row["budget"],
        "ap_share": row["AP_small"] / max(sahi_ap, 1e-9),
        "speedup": sahi_ms / row["latency_ms_p50"],
    }


def sweep_verdict(
    budgets: list[dict[str, Any]], sahi_ap: float, sahi_ms: float, speedup: float = SPEEDUP_8K
) -> dict[str, Any]:
    """The sweep against SAHI (its better AP_small, its lower latency): the budgets that
    reach AP_SMALL_SHARE of its AP_small at >= `speedup`x lower latency (`met`, smallest
    first), the best share among budgets that fast and the best speed-up among budgets that
    accurate, and the suggested budget: the smallest that meets the target, else the one
    with the highest AP_small among those at least `speedup`x faster (None if none is)."""
    points = [_point(row, sahi_ap, sahi_ms) for row in budgets]
    fast = [p for p in points if p["speedup"] >= speedup]
    accurate = [p for p in points if p["ap_share"] >= AP_SMALL_SHARE]
    met = [p for p in fast if p["ap_share"] >= AP_SMALL_SHARE]
    if met:
        suggested = met[0]
    elif fast:
        suggested = max(fast, key=lambda p: (p["ap_share"], -p["budget"]))
    else:
        suggested = None
    return {
        "points": points,
        "met": met,
        "best_share_when_fast": max(fast, key=lambda p: p["ap_share"]) if fast else None,
        "best_speedup_when_accurate": max(accurate, key=lambda p: p["speedup"])
        if accurate
        else None,
        "suggested": suggested,
    }
