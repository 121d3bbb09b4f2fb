"""Model results as pdn_msgs: DetectionArray and PatchArray of one image.

Boxes go from the model's xyxy (full-resolution pixel edges) to the center and size of
pdn_msgs/Detection (`pdn_runtime.boxes`). The model's outputs do not say which head found a
detection, so a detection is credited to the first selected patch (in selection order: the
smaller scale first, then by priority) that contains its box entirely; -1 when none does, as
for a detection that only the global stream can have made.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from std_msgs.msg import Header

from pdn_msgs.msg import Detection, DetectionArray, Patch, PatchArray
from pdn_runtime import FrameDetections
from pdn_runtime.boxes import class_label, containing_patch, xyxy_to_center_size


def stamp_ns(header: Header) -> int:
    """A header's stamp in nanoseconds."""
    return header.stamp.sec * 1_000_000_000 + header.stamp.nanosec


def priority_logit(scores: np.ndarray) -> np.ndarray:
    """The model's patch priority before its sigmoid (what Patch.priority documents)."""
    p = np.clip(scores.astype(np.float64), 1e-7, 1.0 - 1e-7)
    return np.log(p) - np.log1p(-p)


def track_list(track_ids: np.ndarray | None, count: int) -> list[int]:
    """Track ids as a list, all -1 when there are none."""
    return [-1] * count if track_ids is None else np.asarray(track_ids).tolist()


def detection_array(
    result: FrameDetections,
    class_names: Sequence[str],
    header: Header,
    track_ids: np.ndarray | None = None,
) -> DetectionArray:
    """The DetectionArray of one frame, stamped with `header` (the image's, or its frame id
    overridden); `track_id` is the decimal id from `track_ids` ('' for -1 or no tracking)."""
    patch = containing_patch(result.boxes, result.patch_boxes)
    detections = []
    for (center_x, center_y, size_x, size_y), score, label, index, track in zip(
        xyxy_to_center_size(result.boxes).tolist(),
        result.scores.tolist(),
        result.labels.tolist(),
        patch.tolist(),
        track_list(track_ids, len(result.scores)),
        strict=True,
    ):
        detections.append(
            Detection(
                class_id=label,
                label=class_label(class_names, label),
                score=score,
                center_x=center_x,
                center_y=center_y,
                size_x=size_x,
                size_y=size_y,
                patch_index=index,
                patch_scale=int(result.patch_scale[index]) if index >= 0 else -1,
                track_id=str(track) if track >= 0 else "",
            )
        )
    return DetectionArray(header=header, detections=detections)


def patch_array(result: FrameDetections, header: Header) -> PatchArray:
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
