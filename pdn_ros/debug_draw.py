"""debug_image: the camera frame, downscaled, with the patches and detections drawn on it.

Drawn from the model's own input buffer (planar RGB), so it shows exactly what the model saw.
Only computed while someone subscribes.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

from pdn_ros.markers import CLASS_COLORS, SCALE_COLORS, detection_caption
from pdn_ros.messages import track_list
from pdn_runtime import FrameDetections


def downscale(planar: np.ndarray, scale: float) -> np.ndarray:
    """A [3,H,W] RGB frame as an H*scale x W*scale x 3 RGB image (area averaging)."""
    height, width = planar.shape[1:]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    planes = [cv2.resize(plane, size, interpolation=cv2.INTER_AREA) for plane in planar]
    return np.ascontiguousarray(np.stack(planes, axis=-1))


def _rgb255(rgb: Sequence[float]) -> tuple[int, int, int]:
    """A 0..1 colour as 0..255 integers."""
    return tuple(round(255 * c) for c in rgb)


def draw(
    planar: np.ndarray,
    result: FrameDetections,
    scale: float,
    class_names: Sequence[str],
    track_ids: np.ndarray | None = None,
) -> np.ndarray:
    """The downscaled frame with patches (thin, coloured by scale) and detections (thick,
    coloured by class, labelled with class, score and track id where `track_ids` has one)."""
    image = downscale(planar, scale)
    for box, s in zip(result.patch_boxes.tolist(), result.patch_scale.tolist(), strict=True):
        x1, y1, x2, y2 = (round(c * scale) for c in box)
        color = _rgb255(SCALE_COLORS[s % len(SCALE_COLORS)])
        cv2.rectangle(image, (x1, y1), (x2 - 1, y2 - 1), color, 1)
    for box, label, score, track in zip(
        result.boxes.tolist(),
        result.labels.tolist(),
        result.scores.tolist(),
        track_list(track_ids, len(result.scores)),
        strict=True,
    ):
        x1, y1, x2, y2 = (round(c * scale) for c in box)
        color = _rgb255(CLASS_COLORS[label % len(CLASS_COLORS)])
        cv2.rectangle(image, (x1 - 1, y1 - 1), (x2, y2), color, 2)
        cv2.putText(
            image,
            detection_caption(class_names, label, score, track),
            (x1, max(y1 - 4, 10)),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.4,
            color,
            1,
            cv2.LINE_AA,
        )
    return image
