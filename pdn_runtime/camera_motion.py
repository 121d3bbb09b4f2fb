"""Camera motion between a camera's processed frames, for tracking (global motion
compensation, as BoT-SORT does for a moving camera).

A panning camera moves every object in the image at once. At a processing rate well below
the camera's (the node drops frames when the model is slower than the camera), a small far
object can move several times its own size between processed frames, so a new track's box
never meets the object again and the object never gets an id. `CameraMotion.update` takes
each processed frame, estimates how far the image content moved since the previous one
(phase correlation, OpenCV's, on a small grey thumbnail) and keeps the running sum: boxes
plus `offset` are in the coordinates of a camera that did not move, where the tracker
associates them. Translation only: a pan or tilt, not a zoom or a roll.
"""

from __future__ import annotations

import cv2
import numpy as np

THUMBNAIL_WIDTH = 480  # columns of the grey thumbnail phase correlation runs on
# Below this peak response the estimate is noise (a uniform or changed scene): no motion.
MIN_RESPONSE = 0.05


class CameraMotion:
    """Running image offset of one camera; one caller at a time."""

    def __init__(self) -> None:
        self._previous: np.ndarray | None = None
        self._window: np.ndarray | None = None
        self.offset = (0.0, 0.0)  # add to a box (x, y) to put it in the first frame's view

    def update(self, image: np.ndarray) -> tuple[float, float]:
        """The offset after frame `image` (uint8 planar RGB [3, H, W], the model's input
        row): the previous offset minus how far the content moved since the last frame.
        The first frame, or one of another size, keeps the offset as it was."""
        if image.ndim != 3 or image.shape[0] != 3:
            raise ValueError(f"need a planar RGB image [3, H, W], got shape {image.shape}")
        factor = max(1.0, image.shape[2] / THUMBNAIL_WIDTH)  # image pixels per thumbnail pixel
        grey = self._thumbnail(image[1], factor)
        previous, self._previous = self._previous, grey
        if previous is None or previous.shape != grey.shape:
            return self.offset
        (dx, dy), response = cv2.phaseCorrelate(previous, grey, self._window)
        if response >= MIN_RESPONSE:
            x, y = self.offset
            self.offset = (x - dx * factor, y - dy * factor)
        return self.offset

    def reset(self) -> None:
        """Forget the previous frame and start the offset at zero."""
        self._previous = None
        self.offset = (0.0, 0.0)

    def _thumbnail(self, green: np.ndarray, factor: float) -> np.ndarray:
        """The green plane (the one nearest luma) shrunk by `factor`, float32."""
        height, width = green.shape
        size = (max(1, round(width / factor)), max(1, round(height / factor)))
        small = cv2.resize(green, size, interpolation=cv2.INTER_AREA).astype(np.float32)
        if self._window is None or self._window.shape != small.shape:
            self._window = cv2.createHanningWindow(size, cv2.CV_32F)
        return small
