"""Config validation, patch budgets, checkpoints, decoding and NMS."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pdn_tiny import random_inputs, tiny_config, tiny_model

from pdn_model import build
from pdn_model.checkpoint import load_checkpoint, save_checkpoint
from pdn_model.config import ModelConfig, default_patches, preset_config
from pdn_model.heads import decode_boxes
from pdn_model.postprocess import box_iou_matrix, matrix_nms


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"height": 190}, "multiples of global_downsample"),
        ({"patch_scales": (64, 256)}, "does not fit"),
        ({"patches_per_scale": (3,)}, "same length"),
        ({"pre_nms_topk": 4000}, "TopK limit"),
        ({"patch_scales": (96, 128)}, "multiple of patch_size"),
        ({"class_names": ()}, "class_names"),
        ({"global_sample_stride": 3}, "must divide"),
    ],
)
def test_bad_configs_are_refused_with_a_reason(overrides, message):
    with pytest.raises(ValueError, match=message):
        tiny_config().replace(**overrides)


def test_presets_and_config_round_trip():
    with pytest.raises(ValueError, match="unknown preset"):
        preset_config("pdn-xl", 2160, 3840)
    cfg = preset_config("pdn-m", 2160, 3840, max_detections=100)
    assert cfg.patches_per_scale == (24, 8) and cfg.max_detections == 100
    assert ModelConfig.from_dict(cfg.to_dict()) == cfg
    four_k = build("pdn-s").config
    assert (four_k.height, four_k.width, four_k.global_input_size) == (2160, 3840, (270, 480))
    assert four_k.saliency_grid == (68, 120) and four_k.crop_chunk == 16


def test_patch_budget_from_zero_to_every_window():
    model = tiny_model()
    inputs = random_inputs(model)
    with torch.no_grad():
        model.set_patches((0, 0))
        none = model(*inputs)
        model.set_patches("all")
        dense = model(*inputs)
        model.set_patches((2, 1))
        some = model(*inputs)
    assert none["patch_boxes"].shape == (1, 0, 4)
    assert (none["scores"] > 0).any()
    # Every window: 5x3 tiles of 64 px and 3x2 of 128 px cover the 320x192 frame.
    assert model.window_counts() == (2, 1)
    assert dense["patch_boxes"].shape == (1, 15 + 6, 4)
    assert some["patch_boxes"].shape == (1, 3, 4)
    with pytest.raises(ValueError, match="patch counts"):
        model.set_patches((1,))


def test_checkpoint_round_trip_and_bad_files(tmp_path):
    model = tiny_model(seed=2)
    path = save_checkpoint(model, tmp_path / "m.pt", epoch=3)
    loaded = load_checkpoint(path)
    inputs = random_inputs(model, seed=1)
    with torch.no_grad():
        a, b = model(*inputs), loaded(*inputs)
    assert torch.equal(a["boxes"], b["boxes"]) and torch.equal(a["scores"], b["scores"])
    with pytest.raises(FileNotFoundError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "nope.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(ValueError, match="corrupt.pt is not a readable"):
        load_checkpoint(corrupt)


def test_decode_places_boxes_in_full_resolution_pixels():
    sides = torch.zeros(1, 4, 2, 3)
    sides[0, :, 1, 2] = torch.tensor([1.0, 0.5, 2.0, 0.25])
    boxes, centers = decode_boxes(
        sides, torch.tensor([8.0]), torch.tensor([[100.0, 50.0]]), height=1000, width=1000
    )
    # Cell (row 1, col 2): centre (100 + 2.5*8, 50 + 1.5*8) = (120, 62).
    assert centers[0, 5].tolist() == [120.0, 62.0]
    assert boxes[0, 5].tolist() == [112.0, 58.0, 136.0, 64.0]
    clipped, _ = decode_boxes(
        torch.full((1, 4, 1, 1), 100.0), torch.tensor([1.0]), torch.zeros(1, 2), 20, 30
    )
    assert clipped[0, 0].tolist() == [0.0, 0.0, 30.0, 20.0]


def greedy_nms(boxes: np.ndarray, labels: np.ndarray, thr: float) -> np.ndarray:
    """Reference: the textbook greedy loop over score-sorted boxes."""
    iou = box_iou_matrix(torch.from_numpy(boxes)[None])[0].numpy()
    keep = np.ones(len(boxes), dtype=bool)
    for i in range(len(boxes)):
        if keep[i]:
            keep[i + 1 :] &= ~((iou[i, i + 1 :] > thr) & (labels[i + 1 :] == labels[i]))
    return keep


def test_matrix_nms_reproduces_greedy_nms():
    rng = np.random.default_rng(0)
    for _ in range(20):
        xy = rng.uniform(0, 100, (60, 2))
        wh = rng.uniform(5, 30, (60, 2))
        boxes = np.concatenate([xy, xy + wh], 1).astype(np.float32)
        labels = rng.integers(0, 2, 60)
        keep = (
            matrix_nms(
                torch.from_numpy(boxes)[None], torch.from_numpy(labels)[None], 0.3, 60, 1000.0
            )[0]
            .numpy()
            .astype(bool)
        )
        np.testing.assert_array_equal(keep, greedy_nms(boxes, labels, 0.3))


def test_matrix_nms_chain_needs_the_second_pass():
    # A overlaps B, B overlaps C, A does not overlap C: greedy keeps A and C.
    boxes = torch.tensor([[[0.0, 0, 10, 10], [5, 0, 15, 10], [10, 0, 20, 10]]])
    labels = torch.zeros(1, 3, dtype=torch.long)
    assert matrix_nms(boxes, labels, 0.3, 1, 1e3).tolist() == [[1.0, 0.0, 0.0]]
    assert matrix_nms(boxes, labels, 0.3, 2, 1e3).tolist() == [[1.0, 0.0, 1.0]]
    # Other classes never suppress each other.
    assert matrix_nms(boxes, torch.tensor([[0, 1, 0]]), 0.3, 2, 1e3).tolist() == [[1.0, 1.0, 1.0]]


def test_default_window_budget_grows_with_the_frame_above_4k_only():
    at = {
        size: default_patches(preset_config("pdn-s", *size))
        for size in [(1080, 1920), (2160, 3840), (4320, 7680)]
    }
    assert at[(1080, 1920)] == at[(2160, 3840)] == (12, 4)
    assert at[(4320, 7680)] == (24, 8)  # twice the linear size: twice the windows
    small = preset_config("pdn-s", 4320, 7680, patches_per_scale=(1, 1))
    assert default_patches(small) == (2, 2)
