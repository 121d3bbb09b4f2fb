"""The committed demo model: its ONNX export and checkpoint agree through the deployment
backends (ONNX Runtime vs PyTorch) on fresh synthetic 4K frames."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
from parity import assert_same_detections

from pdn_model.checkpoint import load_checkpoint
from pdn_model.onnx_graph import read_metadata
from pdn_runtime import StreamState, create_backend
from training.synth import SceneConfig, SceneSequence

MODELS = Path(__file__).resolve().parent.parent / "models"
CHECKPOINT = MODELS / "pdn-s-synth4k.pt"
ONNX_4K = MODELS / "pdn-s-synth4k-3840x2160.onnx"


def require(path: Path) -> Path:
    if not path.is_file():
        pytest.fail(f"{path} is missing: see docs/results.md for the commands that make it")
    return path


def test_export_carries_the_checkpoints_classes_and_geometry():
    model = load_checkpoint(require(CHECKPOINT))
    meta = read_metadata(onnx.load(require(ONNX_4K), load_external_data=False))
    assert meta["class_names"] == list(model.config.class_names)
    assert meta["input_size"] == [2160, 3840]
    assert meta["patch_counts"] == list(model.config.patches_per_scale)


def test_onnxruntime_and_pytorch_agree_on_the_demo_model():
    ort_backend = create_backend("onnxruntime", require(ONNX_4K))
    torch_backend = create_backend("torch", require(CHECKPOINT), input_size=(2160, 3840))
    states = StreamState(ort_backend.info), StreamState(torch_backend.info)
    scene = SceneSequence((4242, 0), SceneConfig(frames=2))
    detections = 0
    for t in range(2):
        image = np.ascontiguousarray(scene.render(t).image.transpose(2, 0, 1)[None])
        a = {k: v.copy() for k, v in ort_backend.run(image, **states[0].inputs()).items()}
        b = torch_backend.run(image, **states[1].inputs())
        states[0].update(a)
        states[1].update(b)
        np.testing.assert_array_equal(a["patch_boxes"], b["patch_boxes"])
        np.testing.assert_allclose(a["patch_scores"], b["patch_scores"], atol=1e-4)
        detections += assert_same_detections(a, b, score_gap=1e-3, min_score=0.3, box_atol=0.05)
    assert detections >= 20
