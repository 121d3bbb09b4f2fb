"""pdn-bench compare on tiny frames: every method and key is there, and the SAHI wrapper puts
a slice's detections back in full-frame pixels."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from pdn_tiny import tiny_model

from pdn_bench.cli import main as bench_main
from pdn_bench.compare import (
    METHODS,
    SAHI_SETTINGS,
    PdnSliceModel,
    sliced_detections,
)
from pdn_model.checkpoint import save_checkpoint
from pdn_model.contract import OUTPUT_NAMES
from pdn_runtime import ModelInfo
from training.synth_cli import main as synth_main

SLICE = 128
KEYS = {"gflops", "latency_ms_p50", "latency_ms_p99", "peak_rss_mb", "AP", "AP_small"}


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


def test_compare_on_tiny_frames_reports_every_method(tmp_path: Path) -> None:
    data = tmp_path / "data"
    args = ["--out", str(data), "--frames", "2", "--height", "256", "--width", "384"]
    assert synth_main([*args, "--seed", "3"]) == 0
    checkpoint = save_checkpoint(tiny_model(seed=3), tmp_path / "tiny.pt")
    command = [
        "compare",
        "--checkpoint",
        str(checkpoint),
        "--data",
        f"tiny={data}/annotations.json",
    ]
    command += ["--slice", str(SLICE), "--docs", str(tmp_path / "docs"), "--out", str(tmp_path)]
    assert bench_main(command) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    rows = results["sets"]["tiny"]["methods"]
    assert set(rows) == set(METHODS)
    for method, row in rows.items():
        assert set(row) >= KEYS, method
        assert row["latency_ms_p99"] >= row["latency_ms_p50"] > 0 and row["peak_rss_mb"] > 50
        assert row["gflops"] > 0 and -1 <= row["AP_small"] <= 1
    for method in SAHI_SETTINGS:
        assert rows[method]["slices"] == 12  # 384x256 in 128 px slices, overlap 0.2: 4 x 3
        assert rows[method]["gflops"] == pytest.approx(12 * results["sahi"]["slice_gflops"])
        assert rows[method]["inference_ms_p50"] <= rows[method]["latency_ms_p50"]
    assert results["targets"] == []  # no 4K or 8K set here
    report = (tmp_path / "docs" / "benchmarks.md").read_text()
    assert "get_sliced_prediction" in report and "| sahi |" in report
    for name in ("benchmarks_latency_ap.png", "benchmarks_cost.png"):
        assert (tmp_path / "docs" / name).stat().st_size > 1000
