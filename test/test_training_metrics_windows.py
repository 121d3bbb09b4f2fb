"""Window precision in pdn-eval's metrics: the share of chosen windows holding an object."""

from __future__ import annotations

import numpy as np
import pytest

from training.metrics import FrameResult, window_precision


def frame(patch_boxes: list[list[float]], gt_boxes: list[list[float]]) -> FrameResult:
    empty = np.zeros((0, 4), np.float32)
    return FrameResult(
        image_id=1,
        width=1024,
        height=1024,
        gt_boxes=np.array(gt_boxes, np.float32).reshape(-1, 4),
        gt_labels=np.zeros(len(gt_boxes), np.int64),
        boxes=empty,
        scores=np.zeros(0, np.float32),
        labels=np.zeros(0, np.int64),
        patch_boxes=np.array(patch_boxes, np.float32).reshape(-1, 4),
    )


def test_window_precision_counts_windows_that_wholly_hold_an_object_per_size():
    frames = [
        frame(
            [[0, 0, 256, 256], [300, 0, 556, 256], [0, 0, 512, 512]],
            [[10, 10, 30, 30], [540, 10, 570, 40]],  # the second sticks out of window 2
        ),
        frame([[0, 0, 256, 256], [0, 512, 512, 1024]], [[100, 600, 140, 700]]),
    ]
    stats = window_precision(frames)
    assert stats == {
        "window_precision_256px": pytest.approx(1 / 3),
        "window_precision_512px": pytest.approx(1.0),
    }


def test_window_precision_needs_the_model_run():
    bad = frame([], [])
    bad.patch_boxes = None
    with pytest.raises(ValueError, match="no patch boxes"):
        window_precision([bad])
