"""pdn-bench compare on tiny frames: every method, key and budget is there, --out leaves the
docs alone, a missed target is reported with exit status 0, and the SAHI wrapper puts a
slice's detections back in full-frame pixels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pdn_tiny import tiny_model

from pdn_bench.cli import main as bench_main
from pdn_bench.compare_sets import GLOBAL, METHODS, PDN
from pdn_bench.sahi_model import SAHI_SETTINGS, PdnSliceModel, sliced_detections
from pdn_model.checkpoint import save_checkpoint
from pdn_model.contract import OUTPUT_NAMES
from pdn_runtime import ModelInfo
from training.synth_cli import main as synth_main

SLICE = 128
KEYS = {"gflops", "latency_ms_p50", "latency_ms_p99", "peak_rss_mb", "AP", "AP_small"}
BUDGETS = (0, 5, 8)  # the tiny model's default is 3,2 = 5 windows; 0 and 5 reuse rows


class PlantedObjectFinder:
    """A stand-in backend for one 128x128 slice: "detects" the bright pixels of the slice as
    one box of class 1, in slice pixels, like the real model's outputs."""

    info = ModelInfo(
        height=SLICE,
        width=SLICE,
        batch=1,
        class_names=("person", "vehicle"),
        memory_shape=(1, 1, 1),
        controller_dim=1,
        output_shapes={name: (1,) for name in OUTPUT_NAMES},
    )

    def run(self, image: np.ndarray, **state: np.ndarray) -> dict[str, np.ndarray]:
        """Boxes [1,2,4], scores [1,2], labels [1,2]: the bright pixels' box, then padding."""
        boxes = np.zeros((1, 2, 4), np.float32)
        scores = np.zeros((1, 2), np.float32)
        rows, cols = np.nonzero(image[0, 0] > 200)
        if len(rows):
            boxes[0, 0] = [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]
            scores[0, 0] = 0.9
        return {"boxes": boxes, "scores": scores, "labels": np.ones((1, 2), np.int32)}


@pytest.mark.parametrize("setting", SAHI_SETTINGS.values())
def test_sahi_wrapper_returns_full_frame_coordinates(setting: dict) -> None:
    frame = np.zeros((256, 384, 3), np.uint8)
    frame[200:212, 300:310] = 255  # inside the bottom-right slices only
    names = PlantedObjectFinder.info.class_names
    model = PdnSliceModel(PlantedObjectFinder(), names, setting["confidence"])
    boxes, scores, labels = sliced_detections(frame, model, SLICE, 0.2, setting)
    np.testing.assert_array_equal(boxes, [[300, 200, 310, 212]])
    assert scores.tolist() == pytest.approx([0.9]) and labels.tolist() == [1]
    assert model.inference_s > 0

    frame[:] = 0
    frame[10:14, 20:26] = 255  # the first slice, no shift
    boxes, _, _ = sliced_detections(frame, model, SLICE, 0.2, setting)
    np.testing.assert_array_equal(boxes, [[20, 10, 26, 14]])


def _digest(folder: Path) -> dict[str, bytes]:
    """Every file under `folder` with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_compare_on_tiny_frames_sweeps_budgets_and_leaves_docs_alone(tmp_path: Path) -> None:
    data = tmp_path / "data"
    args = ["--out", str(data), "--frames", "2", "--height", "256", "--width", "384"]
    assert synth_main([*args, "--seed", "3"]) == 0
    checkpoint = save_checkpoint(tiny_model(seed=3), tmp_path / "tiny.pt")
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "benchmarks.md").write_text("the committed report\n")
    (docs / "benchmarks_cost.png").write_bytes(b"old plot")
    before = _digest(docs)
    out = tmp_path / "out"
    command = ["compare", "--checkpoint", str(checkpoint), "--data", f"8K={data}/annotations.json"]
    command += ["--slice", str(SLICE), "--budgets", ",".join(map(str, BUDGETS))]
    command += ["--docs", str(docs), "--out", str(out)]
    assert bench_main(command) == 0  # a missed target is no error

    assert _digest(docs) == before  # --out without --report: docs untouched
    results = json.loads((out / "results.json").read_text())
    tiny = results["sets"]["8K"]
    rows = tiny["methods"]
    assert set(rows) == set(METHODS)
    for method, row in rows.items():
        assert set(row) >= KEYS, method
        assert row["latency_ms_p99"] >= row["latency_ms_p50"] > 0 and row["peak_rss_mb"] > 50
        assert row["gflops"] > 0 and -1 <= row["AP_small"] <= 1
    for method in SAHI_SETTINGS:
        assert rows[method]["slices"] == 12  # 384x256 in 128 px slices, overlap 0.2: 4 x 3
        assert rows[method]["gflops"] == pytest.approx(12 * results["sahi"]["slice_gflops"])
        assert rows[method]["inference_ms_p50"] <= rows[method]["latency_ms_p50"]

    # One sweep row per budget, its windows split 3:2 like the default, each measured once.
    assert tiny["default_patches"] == [3, 2]
    sweep = tiny["budgets"]
    assert [row["budget"] for row in sweep] == list(BUDGETS)
    assert [row["patches"] for row in sweep] == [[0, 0], [3, 2], [5, 3]]
    for row in sweep:
        assert set(row) >= KEYS and row["latency_ms_p50"] > 0
    assert [row["measured_as"] for row in sweep] == [GLOBAL, PDN, "budget 8"]
    assert sweep[1]["AP_small"] == rows[PDN]["AP_small"]
    gflops = [row["gflops"] for row in sweep]
    assert gflops == sorted(gflops) and gflops[0] < gflops[-1]

    # Random weights miss the 8K budget target: reported as missed, with the figures.
    checks = {check["name"]: check for check in results["targets"]}
    budget_check = next(c for name, c in checks.items() if name.startswith("8K: a budget"))
    assert not budget_check["met"] and budget_check["measured"].startswith("no budget does")
    report = (out / "benchmarks.md").read_text()
    assert f"| {budget_check['name']} | {budget_check['measured']} | missed |" in report
    assert "**Missed:**" in report and "no budget of the sweep reaches" in report
    assert "get_sliced_prediction" in report and "| sahi |" in report
    assert "Budget sweep at 8K:" in report and "| 5 (default) | 3,2 |" in report
    for name in ("benchmarks_latency_ap.png", "benchmarks_cost.png"):
        assert (out / name).stat().st_size > 1000


def test_compare_missing_checkpoint_or_data_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "none.pt"
    assert bench_main(["compare", "--checkpoint", str(missing), "--out", str(tmp_path)]) == 2
    assert f"checkpoint not found: {missing}" in capsys.readouterr().err
    checkpoint = save_checkpoint(tiny_model(), tmp_path / "tiny.pt")
    command = ["compare", "--checkpoint", str(checkpoint), "--data", f"4K={tmp_path}/a.json"]
    assert bench_main([*command, "--out", str(tmp_path)]) == 2
    assert f"no annotations file at {tmp_path}/a.json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        bench_main(["compare", "--budgets", "4,-1"])
    assert "--budgets must be >= 0" in capsys.readouterr().err
