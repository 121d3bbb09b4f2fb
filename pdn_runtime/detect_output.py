"""What `pdn-detect` writes: detections in COCO form (detections.json) and boxes drawn on
images, video frames and overviews of images too large to draw whole."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from pdn_runtime.boxes import class_label
from pdn_runtime.large_image import ImageDetections

# Longest side of the overview drawn for an image that is read tile by tile.
OVERVIEW_SIDE = 2048
# One colour per class (RGB), repeated for more classes.
_COLOURS = ((230, 60, 60), (60, 160, 240), (250, 200, 40), (90, 200, 90), (200, 90, 220))


class CocoResults:
    """Images and detections gathered for detections.json (COCO: bbox [x, y, w, h] in the
    source's full-resolution pixels, score, category_id = class index + 1)."""

    def __init__(self, class_names: Sequence[str]) -> None:
        self.categories = [{"id": i + 1, "name": n} for i, n in enumerate(class_names)]
        self.images: list[dict] = []
        self.annotations: list[dict] = []

    def add(self, file_name: str, found: ImageDetections, frame_index: int | None = None) -> int:
        """Record one image (or one video frame) and its detections; returns its image id."""
        image_id = len(self.images) + 1
        image = {"id": image_id, "file_name": file_name, "width": found.width}
        image["height"] = found.height
        if frame_index is not None:
            image["frame_index"] = frame_index
        self.images.append(image)
        for box, score, label in zip(
            found.boxes.tolist(), found.scores.tolist(), found.labels.tolist(), strict=True
        ):
            w, h = box[2] - box[0], box[3] - box[1]
            self.annotations.append(
                {
                    "id": len(self.annotations) + 1,
                    "image_id": image_id,
                    "category_id": int(label) + 1,
                    "bbox": [round(box[0], 2), round(box[1], 2), round(w, 2), round(h, 2)],
                    "area": round(w * h, 2),
                    "score": round(float(score), 5),
                    "iscrowd": 0,
                }
            )
        return image_id

    def write(self, path: Path, errors: Sequence[str]) -> None:
        """detections.json with what was done; `errors` lists the sources that failed."""
        document = {
            "info": {"description": "pdn-detect detections", "errors": list(errors)},
            "images": self.images,
            "annotations": self.annotations,
            "categories": self.categories,
        }
        path.write_text(json.dumps(document, indent=1))


def draw(
    image: np.ndarray, found: ImageDetections, class_names: Sequence[str], scale: float = 1.0
) -> np.ndarray:
    """`image` (RGB or BGR uint8 [h, w, 3], drawn in place and returned) with the boxes
    (times `scale`, for an overview), class and score; colours are RGB."""
    thick = max(1, round(max(image.shape[:2]) / 1500))
    for box, score, label in zip(found.boxes, found.scores, found.labels, strict=True):
        x0, y0, x1, y1 = (int(round(v * scale)) for v in box)
        colour = _COLOURS[int(label) % len(_COLOURS)]
        cv2.rectangle(image, (x0, y0), (x1, y1), colour, thick)
        text = f"{class_label(class_names, int(label))} {score:.2f}"
        cv2.putText(
            image, text, (x0, max(y0 - 3, 10)), cv2.FONT_HERSHEY_SIMPLEX, 0.4 * thick, colour, thick
        )
    return image


class Overview:
    """A point-sampled copy of a large image, longest side at most OVERVIEW_SIDE, built from
    the row bands the detector reads anyway (`TiledDetector.detect(on_rows=...)`)."""

    def __init__(self, height: int, width: int) -> None:
        self.step = max(1, -(-max(height, width) // OVERVIEW_SIDE))
        self.pixels = np.zeros((-(-height // self.step), -(-width // self.step), 3), np.uint8)
        self._width = width

    def add(self, y0: int, pixels: np.ndarray) -> None:
        """Take in rows y0.. of the image (rows past its end are ignored)."""
        first = -(-y0 // self.step) * self.step  # first sampled row at or after y0
        rows = pixels[first - y0 :: self.step, : self._width : self.step]
        start = first // self.step
        rows = rows[: max(0, self.pixels.shape[0] - start)]
        self.pixels[start : start + len(rows)] = rows
