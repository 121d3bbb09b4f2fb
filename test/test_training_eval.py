"""Metrics and pdn-eval on a tiny synthetic dataset."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
from pdn_tiny import tiny_model

from pdn_model.checkpoint import save_checkpoint
from pdn_model.export import to_onnx
from pdn_runtime.boxes import in_any_patch
from training.evaluate import evaluate, main
from training.metrics import FrameResult, ap50_by_video, class_agnostic_ap50, summarize
from training.synth_cli import main as synth_main


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("evalset") / "data"
    assert (
        synth_main(
            [
                "--out",
                str(out),
                "--sequences",
                "2",
                "--frames",
                "2",
                "--height",
                "256",
                "--width",
                "384",
                "--seed",
                "8",
            ]
        )
        == 0
    )
    return out / "annotations.json"


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    folder = tmp_path_factory.mktemp("models")
    model = tiny_model(seed=3)
    checkpoint = save_checkpoint(model, folder / "tiny.pt")
    model = tiny_model(seed=3).__class__(model.config.replace(height=256, width=384))
    model.load_state_dict(tiny_model(seed=3).state_dict())
    onnx_path = to_onnx(model, folder / "tiny_256x384.onnx")
    return checkpoint, onnx_path


def oracle_frames(keep_every: int = 1) -> list[FrameResult]:
    rng = np.random.default_rng(0)
    frames = []
    for image_id in range(1, 4):
        xy = rng.uniform(0, 300, (12, 2))
        side = np.concatenate([rng.uniform(6, 20, (6, 1)), rng.uniform(40, 150, (6, 1))])
        gt = np.concatenate([xy, xy + side], axis=1).astype(np.float32)
        labels = rng.integers(0, 5, 12)
        det = slice(None, None, keep_every)
        frames.append(
            FrameResult(
                image_id,
                640,
                480,
                gt,
                labels,
                gt[det].copy(),
                np.linspace(0.9, 0.5, 12)[det],
                labels[det].copy(),
            )
        )
    return frames


def test_perfect_detections_score_one_and_missing_ones_lower_it():
    names = ["person", "vehicle", "bicycle", "animal", "sign"]
    perfect, _ = summarize(oracle_frames(), names)
    assert perfect["AP"] == pytest.approx(1.0) and perfect["AP50"] == pytest.approx(1.0)
    assert perfect["AP_small"] == pytest.approx(1.0)
    assert perfect["recall_0-16px"] == 1.0 and perfect["recall_96-infpx"] == 1.0
    half, _ = summarize(oracle_frames(keep_every=2), names)
    assert half["AP"] < 0.7 and 0.3 < half["recall_0-16px"] + half["recall_16-32px"] < 1.7


def test_class_agnostic_ap50_ignores_class_mistakes_and_ap50_splits_by_video():
    names = ["person", "vehicle", "bicycle", "animal", "sign"]
    frames = oracle_frames()
    wrong = [dataclasses.replace(f, labels=(f.labels + 1) % 5) for f in frames]
    assert summarize(wrong, names)[0]["AP50"] == pytest.approx(0.0)
    assert class_agnostic_ap50(wrong) == pytest.approx(1.0)
    assert class_agnostic_ap50(oracle_frames(keep_every=2)) < 0.7
    mixed = frames[:1] + wrong[1:]
    by_video = ap50_by_video(mixed, [7, 9, 9], names)
    assert by_video == {"7": pytest.approx(1.0), "9": pytest.approx(0.0)}
    assert ap50_by_video(mixed, [None] * 3, names) == {}


def test_patch_containment():
    patches = np.array([[0.0, 0.0, 64.0, 64.0]])
    boxes = np.array([[10.0, 10.0, 20.0, 20.0], [60.0, 10.0, 70.0, 20.0]])
    assert in_any_patch(boxes, patches).tolist() == [True, False]
    assert in_any_patch(boxes, np.zeros((0, 4))).tolist() == [False, False]


def test_checkpoint_and_onnx_evaluate_alike(dataset, models):
    checkpoint, onnx_path = models
    from_ckpt, _ = evaluate(checkpoint, dataset, backend="torch")
    from_onnx, _ = evaluate(onnx_path, dataset)
    for key in ("AP", "AP50", "AP_small", "patch_recall_small"):
        assert from_ckpt[key] == pytest.approx(from_onnx[key], abs=1e-3), key
    assert from_ckpt["frames"] == 4 and from_ckpt["patches"] == 5
    assert 0.0 <= from_ckpt["patch_recall_small"] <= 1.0
    none, _ = evaluate(checkpoint, dataset, patches=(0, 0), backend="torch")
    assert none["patches"] == 0 and none["patch_recall_small"] == 0.0


def test_pdn_eval_writes_metrics_and_explains_mistakes(dataset, models, tmp_path, capsys):
    checkpoint, onnx_path = models
    assert main(["--model", str(checkpoint), "--data", str(dataset), "--out", str(tmp_path)]) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large"):
        assert -1.0 <= metrics[key] <= 1.0
    assert (tmp_path / "pr_ap.png").stat().st_size > 1000
    capsys.readouterr()
    assert main(["--model", str(onnx_path), "--data", str(dataset), "--patches", "1,1"]) == 2
    assert "fixed patches" in capsys.readouterr().err
    assert main(["--model", str(tmp_path / "nope.onnx"), "--data", str(dataset)]) == 2
