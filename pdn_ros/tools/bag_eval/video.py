"""`pdn-bag-eval`, the annotated video of a run: one MP4 frame per bag image, downscaled.

A processed frame is drawn like the node's debug image (`pdn_ros.debug_draw.draw`) with a
caption (frame index, time since the first image, a temporal-state reset); a frame the node
skipped repeats the last picture, dimmed, with the reason. The codec is MPEG-4 Part 2
(`mp4v`): the opencv-python-headless wheel's FFmpeg has no H.264 encoder, and its VP9
encoder takes seconds per frame.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

FOURCC = "mp4v"
VIDEO_NAME = "run.mp4"
VIDEO_WIDTH = 960  # the video is downscaled to at most this width
DEFAULT_FPS = 10.0  # when the bag does not tell its frame rate
FPS_RANGE = (1.0, 60.0)


class RunVideo:
    """Writes the run's MP4; `close()` finishes the file (also after a damaged bag)."""

    def __init__(self, path: Path, frame_size: tuple[int, int], fps: float | None) -> None:
        width, height = frame_size
        scale = min(1.0, VIDEO_WIDTH / width)
        # even sizes: what players and most MPEG-4 decoders expect
        self.size = (max(2, round(width * scale) // 2 * 2), max(2, round(height * scale) // 2 * 2))
        self.scale = scale
        self.fps = float(np.clip(fps or DEFAULT_FPS, *FPS_RANGE))
        self.path = path
        self.frames = 0
        self._last = np.zeros((self.size[1], self.size[0], 3), np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = cv2.VideoWriter(
            str(path), cv2.VideoWriter_fourcc(*FOURCC), self.fps, self.size
        )
        if not self._writer.isOpened():
            raise RuntimeError(f"OpenCV cannot write {FOURCC} video to {path}")

    def frame(self, picture: np.ndarray, caption: str) -> None:
        """Add a processed frame: `picture` is the annotated RGB image (any size, resized to
        the video's)."""
        if picture.shape[1::-1] != self.size:
            picture = cv2.resize(picture, self.size, interpolation=cv2.INTER_AREA)
        self._last = cv2.cvtColor(picture, cv2.COLOR_RGB2BGR)
        self._write(self._last.copy(), caption)

    def skipped(self, caption: str) -> None:
        """Add a frame the node skipped: the last picture, dimmed, with `caption`."""
        self._write(self._last // 3, caption)

    def _write(self, bgr: np.ndarray, caption: str) -> None:
        """Caption (white on a black band, top left) and append one frame."""
        font, size = cv2.FONT_HERSHEY_SIMPLEX, 0.5
        (width, height), base = cv2.getTextSize(caption, font, size, 1)
        cv2.rectangle(bgr, (0, 0), (width + 12, height + base + 10), (0, 0, 0), -1)
        cv2.putText(bgr, caption, (6, height + 5), font, size, (255, 255, 255), 1, cv2.LINE_AA)
        self._writer.write(bgr)
        self.frames += 1

    def close(self) -> None:
        """Finish the file."""
        self._writer.release()
