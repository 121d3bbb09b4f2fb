"""Box helpers in NumPy, shared by the node's messages, the evaluations and the tools.

Boxes are xyxy in full-resolution pixel edges (x = 0 is the left edge of the first column),
as the model outputs them; the ROS messages carry a centre and a size instead.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def contains(outer: np.ndarray, inner: np.ndarray) -> np.ndarray:
    """[m, n] bool: box inner[j] [n, 4] lies entirely inside box outer[i] [m, 4]."""
    outer = np.asarray(outer).reshape(-1, 4)
    inner = np.asarray(inner).reshape(-1, 4)
    return (inner[None, :, :2] >= outer[:, None, :2]).all(axis=2) & (
        inner[None, :, 2:] <= outer[:, None, 2:]
    ).all(axis=2)


def containing_patch(boxes: np.ndarray, patch_boxes: np.ndarray) -> np.ndarray:
    """Per box [n, 4]: index of the first patch [P, 4] that contains it entirely, else -1."""
    inside = contains(patch_boxes, boxes)  # [P, n]
    if inside.size == 0:
        return np.full(inside.shape[1], -1, np.int64)
    return np.where(inside.any(axis=0), inside.argmax(axis=0), -1)


def in_any_patch(boxes: np.ndarray, patch_boxes: np.ndarray) -> np.ndarray:
    """Per box [n, 4]: whether some patch [P, 4] contains it entirely."""
    return containing_patch(boxes, patch_boxes) >= 0


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU [n, m] of xyxy boxes a [n, 4] and b [m, 4]."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.clip(rb - lt, 0, None).prod(axis=2)
    area_a = (a[:, 2:] - a[:, :2]).prod(axis=1)
    area_b = (b[:, 2:] - b[:, :2]).prod(axis=1)
    return inter / np.maximum(area_a[:, None] + area_b[None] - inter, 1e-9)


def xyxy_to_center_size(boxes: np.ndarray) -> np.ndarray:
    """[n, 4] xyxy -> [n, 4] centre x, centre y, width, height (sizes clipped at 0)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    center = (boxes[:, :2] + boxes[:, 2:]) / 2.0
    return np.concatenate([center, np.maximum(boxes[:, 2:] - boxes[:, :2], 0.0)], axis=1)


def center_size_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """[n, 4] centre x, centre y, width, height -> [n, 4] xyxy (inverse of the above)."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    half = boxes[:, 2:] / 2.0
    return np.concatenate([boxes[:, :2] - half, boxes[:, :2] + half], axis=1)


def longer_side(boxes: np.ndarray) -> np.ndarray:
    """[n] the longer side of each xyxy box [n, 4] (what "small" is measured by)."""
    boxes = np.asarray(boxes).reshape(-1, 4)
    return (boxes[:, 2:] - boxes[:, :2]).max(axis=1)


def class_label(class_names: Sequence[str], label: int) -> str:
    """The name of class index `label`, or the index as text when the model has no such
    class (the one fallback for messages, markers and pictures)."""
    return class_names[label] if 0 <= label < len(class_names) else str(label)
