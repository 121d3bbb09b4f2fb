"""pdn-bench compare's verdicts on measured figures (the run itself replaced by fixed rows):
targets met and missed with their figures, the 8K budget advice, exit status 0 when a target
is missed, and docs/ untouched by a run with --out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pdn_bench import compare
from pdn_bench.budget import sweep_verdict
from pdn_bench.cli import main as bench_main
from pdn_bench.compare_sets import DENSE_TILED, GLOBAL, PDN
from pdn_bench.sahi_model import SAHI, SAHI_GREEDY, SAHI_SETTINGS


def _row(ms: float, ap_small: float, gflops: float = 1.0) -> dict[str, Any]:
    return {
        "gflops": gflops,
        "latency_ms_p50": ms,
        "latency_ms_p99": ms * 1.1,
        "peak_rss_mb": 300.0,
        "AP": ap_small,
        "AP_small": ap_small,
        "AP50": ap_small,
        "objects": 100,
        "recall_0-16px": 0.1,
        "recall_16-32px": 0.2,
    }


def _set(rows: dict[str, dict], budgets: dict[int, tuple[list[int], dict]]) -> dict[str, Any]:
    for method in SAHI_SETTINGS:
        rows[method].update(slices=60, inference_ms_p50=1.0, inference_ms_p99=2.0)
    return {
        "width": 3840,
        "height": 2160,
        "frames": 2,
        "objects": 100,
        "data": "x/annotations.json",
        "default_patches": [12, 4],
        "methods": rows,
        "budgets": [
            {"budget": b, "patches": patches, "measured_as": f"budget {b}", **row}
            for b, (patches, row) in budgets.items()
        ],
    }


def measured() -> dict[str, Any]:
    """4K meets its targets; at 8K no budget reaches 0.9x SAHI's AP_small 10x faster."""
    k4 = {
        PDN: _row(90.0, 0.13),
        GLOBAL: _row(50.0, 0.0),
        DENSE_TILED: _row(500.0, 0.14),
        SAHI: _row(2400.0, 0.14),
        SAHI_GREEDY: _row(1900.0, 0.07),
    }
    k8 = {
        PDN: _row(400.0, 0.20),
        GLOBAL: _row(160.0, 0.0),
        DENSE_TILED: _row(2200.0, 0.25),
        SAHI: _row(8000.0, 0.26),
        SAHI_GREEDY: _row(6600.0, 0.2),
    }
    sets = {
        "4K": _set(k4, {16: ([12, 4], k4[PDN])}),
        "8K": _set(
            k8,
            {
                8: ([6, 2], _row(300.0, 0.10)),
                16: ([12, 4], k8[PDN]),
                48: ([36, 12], _row(900.0, 0.25)),
            },
        ),
    }
    sahi = {"slice": 512, "overlap": 0.2, "slice_gflops": 1.5, "settings": SAHI_SETTINGS}
    results = {
        "machine": "test CPU",
        "load_average_at_start": 0.5,
        "wall_s": 1500.0,
        "threads": 2,
        "onnxruntime": "1",
        "sahi_version": "0",
        "weights": "w.pt",
        "default_budget_source": compare.DEFAULT_BUDGET_SOURCE,
        "sahi": sahi,
        "sets": sets,
    }
    results["sweeps"] = {
        name: sweep_verdict(data["budgets"], *compare.sahi_reference(data["methods"]))
        for name, data in sets.items()
    }
    results["targets"] = compare.targets(results)
    return results


def test_targets_carry_their_figures() -> None:
    checks = {c["name"]: (c["measured"], c["met"]) for c in measured()["targets"]}
    assert checks == {
        "4K: SAHI (faster setting) / PatchDriveNet median latency >= 5": ("21.11", True),
        "4K: PatchDriveNet AP_small / SAHI (better setting) AP_small >= 0.9": ("0.93", True),
        "4K: PatchDriveNet AP_small / dense tiled AP_small >= 0.9": ("0.93", True),
        "4K: dense tiled / PatchDriveNet median latency >= 5": ("5.56", True),
        "8K: SAHI (faster setting) / PatchDriveNet median latency >= 10": ("16.50", True),
        "8K: a budget with AP_small >= 0.9x SAHI's at >= 10x lower latency": (
            "no budget does; best AP_small share at >= 10x: 0.77x (budget 16); "
            "best speed-up at >= 0.9x AP_small: 7.3x (budget 48)",
            False,
        ),
    }


def test_missed_target_is_reported_with_exit_status_0(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(compare, "run", lambda args, work: measured())
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "benchmarks.md").write_text("committed\n")
    out = tmp_path / "out"
    command = ["compare", "--random-weights", "--docs", str(docs), "--out", str(out)]
    assert bench_main(command) == 0
    assert [p.name for p in docs.iterdir()] == ["benchmarks.md"]
    assert (docs / "benchmarks.md").read_text() == "committed\n"
    report = (out / "benchmarks.md").read_text()
    assert "| 4K: dense tiled / PatchDriveNet median latency >= 5 | 5.56 | met |" in report
    assert "lower latency | no budget does; best AP_small share at >= 10x: 0.77x" in report
    assert "**Missed:** 8K: a budget with AP_small" in report
    assert "the whole run took 25 min" in report
    assert "At 8K, no budget of the sweep reaches" in report
    assert "Suggested 8K default budget: 16 windows" in report
    assert "today's default is 16 (12,4 per scale, pdn_model.config.default_patches" in report
    assert "| 48 | 36,12 | 1.0 | 900.0 | 990.0 | 0.250 | 0.250 | 0.96 | 7.3 |" in report
    assert json.loads((out / "results.json").read_text())["targets"][-1]["met"] is False

    monkeypatch.setattr(compare, "run", lambda args, work: _all_met())
    assert bench_main([*command, "--report"]) == 0
    assert "All targets met." in (docs / "benchmarks.md").read_text()
    assert (
        "budgets reaching >= 0.9x SAHI's AP_small at >= 10x lower latency: 16"
        in (docs / "benchmarks.md").read_text()
    )
    for name in ("benchmarks_latency_ap.png", "benchmarks_cost.png"):
        assert (docs / name).stat().st_size > 1000


def _all_met() -> dict[str, Any]:
    """The same run with the 8K default budget at 0.92x SAHI's AP_small."""
    results = measured()
    k8 = results["sets"]["8K"]
    for row in (k8["methods"][PDN], k8["budgets"][1]):
        row["AP_small"] = 0.24
    results["sweeps"]["8K"] = sweep_verdict(k8["budgets"], *compare.sahi_reference(k8["methods"]))
    results["targets"] = compare.targets(results)
    return results


def test_the_default_row_uses_the_budget_pdn_export_gives_each_size() -> None:
    """At 8K the PatchDriveNet row runs 24,8 windows (pdn-export's default there), not the
    checkpoint's 4K budget; the sweep's budgets map onto rows in the same ratio."""
    from pdn_model.config import preset_config
    from pdn_model.model import PatchDriveNet

    for (height, width), expected in (((2160, 3840), (12, 4)), ((4320, 7680), (24, 8))):
        model = PatchDriveNet(preset_config("pdn-s", height, width))
        modes, by_budget = compare._modes(model, (16, 32))
        assert modes["patchdrivenet"] == expected
        assert by_budget[sum(expected)] == "patchdrivenet"
