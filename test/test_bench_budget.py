"""The budget sweep's arithmetic: a total split across scales in the default ratio, and what
the sweep says against SAHI (met, best ratios, suggested budget)."""

from __future__ import annotations

import pytest

from pdn_bench.budget import parse_budgets, split_budget, sweep_verdict


@pytest.mark.parametrize(
    ("total", "default", "limits", "counts"),
    [
        (16, (12, 4), (135, 40), (12, 4)),
        (4, (12, 4), (135, 40), (3, 1)),
        (48, (12, 4), (135, 40), (36, 12)),
        (5, (12, 4), (135, 40), (4, 1)),  # 3.75 + 1.25: the larger remainder gets the 5th
        (8, (3, 2), (24, 6), (5, 3)),  # 4.8 + 3.2
        (0, (12, 4), (135, 40), (0, 0)),
        (45, (12, 4), (40, 8), (37, 8)),  # 34 + 11, the second scale full: its rest to the first
        (6, (4, 0), (3, 10), (3, 3)),  # the default's only scale full: the rest where room is
        (3, (0, 0), (5, 5), (2, 1)),  # no default windows: an even split
    ],
)
def test_split_budget(total: int, default: tuple, limits: tuple, counts: tuple) -> None:
    assert split_budget(total, default, limits) == counts


def test_split_budget_refuses_more_than_the_frame_holds() -> None:
    with pytest.raises(ValueError, match="more than the frame holds"):
        split_budget(50, (12, 4), (40, 8))


def test_parse_budgets() -> None:
    assert parse_budgets("16,0,4,4") == (0, 4, 16)
    assert parse_budgets("") == ()


def _row(budget: int, ms: float, ap: float) -> dict:
    return {"budget": budget, "latency_ms_p50": ms, "AP_small": ap}


def test_sweep_verdict_names_the_smallest_budget_that_meets_the_target() -> None:
    rows = [_row(0, 100, 0.0), _row(8, 200, 0.5), _row(16, 300, 0.92), _row(24, 400, 0.95)]
    rows.append(_row(32, 500, 0.97))
    verdict = sweep_verdict(rows, sahi_ap=1.0, sahi_ms=4000.0)
    assert [p["budget"] for p in verdict["met"]] == [16, 24]  # 32 is only 8x faster
    assert verdict["suggested"]["budget"] == 16
    assert verdict["points"][1] == {"budget": 8, "ap_share": 0.5, "speedup": 20.0}


def test_sweep_verdict_without_a_winner_gives_the_best_ratios() -> None:
    rows = [_row(4, 100, 0.3), _row(16, 300, 0.6), _row(48, 1000, 0.95)]
    verdict = sweep_verdict(rows, sahi_ap=1.0, sahi_ms=5000.0)
    assert verdict["met"] == []
    assert verdict["best_share_when_fast"]["budget"] == 16  # the best of those >= 10x faster
    assert verdict["best_speedup_when_accurate"] == {"budget": 48, "ap_share": 0.95, "speedup": 5.0}
    assert verdict["suggested"]["budget"] == 16
    assert sweep_verdict(rows, sahi_ap=1.0, sahi_ms=500.0)["suggested"] is None
