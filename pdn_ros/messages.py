"""Model results as pdn_msgs: DetectionArray and PatchArray of one image.

Boxes go from the model's xyxy (full-resolution pixel edges) to the center and size of
pdn_msgs/Detection. The model's outputs do not say which head found a detection, so a
detection is credited to the first selected patch (in selection order: the smaller scale
first, then by priority) that contains its box entirely; -1 when none does, as for a
detection that only the global stream can have made.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from std_msgs.msg import Header

from pdn_msgs.msg import Detection, DetectionArray, Patch, PatchArray


@dataclass
class ModelResult:
    """What the model found in one camera frame (arrays copied out of the backend's buffers;
    detections already filtered by score and count)."""

    camera: int
    header: Header
    width: int
    height: int
    boxes: np.ndarray  # [n, 4] xyxy
    scores: np.ndarray  # [n]
    labels: np.ndarray  # [n]
    patch_boxes: np.ndarray  # [P, 4] xyxy
    patch_scores: np.ndarray  # [P] sigmoid priority
    patch_scale: np.ndarray  # [P] scale index
    timings: dict[str, float]  # seconds: transport, wait, convert, inference (stats.TIMINGS)
    reset: str | None = None


def stamp_ns(header: Header) -> int:
    """A header's stamp in nanoseconds."""
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def containing_patch(boxes: np.ndarray, patch_boxes: np.ndarray) -> np.ndarray:
    """Per box [n, 4]: index of the first patch [P, 4] that contains it entirely, else -1."""
    if len(boxes) == 0 or len(patch_boxes) == 0:
        return np.full(len(boxes), -1, np.int64)
    inside = (boxes[:, None, :2] >= patch_boxes[None, :, :2]).all(axis=2) & (
        boxes[:, None, 2:] <= patch_boxes[None, :, 2:]
    ).all(axis=2)
    return np.where(inside.any(axis=1), inside.argmax(axis=1), -1)


def priority_logit(scores: np.ndarray) -> np.ndarray:
    """The model's patch priority before its sigmoid (what Patch.priority documents)."""
    p = np.clip(scores.astype(np.float64), 1e-7, 1.0 - 1e-7)
    return np.log(p) - np.log1p(-p)


def detection_array(
    result: ModelResult, class_names: Sequence[str], header: Header
) -> DetectionArray:
    """The DetectionArray of one frame, stamped with `header` (the image's, or its frame id
    overridden)."""
    patch = containing_patch(result.boxes, result.patch_boxes)
    detections = []
    for (x1, y1, x2, y2), score, label, index in zip(
        result.boxes.tolist(),
        result.scores.tolist(),
        result.labels.tolist(),
        patch.tolist(),
        strict=True,
    ):
        detections.append(
            Detection(
                class_id=label,
                label=class_names[label] if 0 <= label < len(class_names) else "",
                score=score,
                center_x=(x1 + x2) / 2.0,
                center_y=(y1 + y2) / 2.0,
                size_x=max(x2 - x1, 0.0),
                size_y=max(y2 - y1, 0.0),
                patch_index=index,
                patch_scale=int(result.patch_scale[index]) if index >= 0 else -1,
            )
        )
    return DetectionArray(header=header, detections=detections)


def patch_array(result: ModelResult, header: Header) -> PatchArray:
    """The PatchArray of one frame: windows as integer pixel rectangles, selection order."""
    rects = np.rint(result.patch_boxes).astype(np.int64)
    patches = [
        Patch(
            x_offset=x1,
            y_offset=y1,
            width=x2 - x1,
            height=y2 - y1,
            scale_index=scale,
            priority=priority,
        )
        for (x1, y1, x2, y2), scale, priority in zip(
            rects.tolist(),
            result.patch_scale.tolist(),
            priority_logit(result.patch_scores).tolist(),
            strict=True,
        )
    ]
    return PatchArray(
        header=header, image_width=result.width, image_height=result.height, patches=patches
    )
