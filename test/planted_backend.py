"""A stand-in backend that "detects" what a test planted: a JSON file maps the SHA-256 of each
frame's pixels to its detections, so metric code can be checked on results that are neither
empty nor perfect. Register it with `register(monkeypatch)`; the model path is the JSON file."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from pdn_runtime import Backend, ModelInfo
from pdn_runtime.factory import BACKENDS

KIND = "planted"
SLOTS = 100  # detections per frame, padded with score 0
PATCH_SIDE = 128
MEMORY = (2, 1, 4)


def frame_key(planar: np.ndarray) -> str:
    """The key of one frame: SHA-256 of its planar RGB pixels [3,H,W]."""
    return hashlib.sha256(np.ascontiguousarray(planar).tobytes()).hexdigest()


def write_planted(
    path: Path, size: tuple[int, int], class_names: list[str], found: dict[str, list]
) -> Path:
    """Store the planted detections (key -> [[x1, y1, x2, y2, score, label], ...])."""
    height, width = size
    record = {"height": height, "width": width, "class_names": class_names, "found": found}
    path.write_text(json.dumps(record))
    return path


def register(monkeypatch: Any) -> None:
    """Make backend kind "planted" known to create_backend for one test."""
    monkeypatch.setitem(BACKENDS, KIND, (__name__, "PlantedBackend"))


class PlantedBackend(Backend):
    """Returns the planted detections of the frame it is given (none for an unknown frame),
    two fixed patches in the top left, and a state that counts frames."""

    kind = KIND
    OPTIONS = frozenset()

    def __init__(self, model_path: str | Path) -> None:
        record = json.loads(Path(model_path).read_text())
        self.found = record["found"]
        height, width = record["height"], record["width"]
        self.info = ModelInfo(
            height, width, 1, tuple(record["class_names"]), MEMORY, 1, {"scores": (1, SLOTS)}
        )
        self.patches = np.array(
            [[0, 0, PATCH_SIDE, PATCH_SIDE], [PATCH_SIDE, 0, 2 * PATCH_SIDE, PATCH_SIDE]],
            np.float32,
        )

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        planted = np.array(self.found.get(frame_key(inputs["image"][0]), []), np.float32)
        planted = planted.reshape(-1, 6)[:SLOTS]
        boxes = np.zeros((1, SLOTS, 4), np.float32)
        scores = np.zeros((1, SLOTS), np.float32)
        labels = np.zeros((1, SLOTS), np.int32)
        n = len(planted)
        boxes[0, :n], scores[0, :n], labels[0, :n] = planted[:, :4], planted[:, 4], planted[:, 5]
        return {
            "boxes": boxes,
            "scores": scores,
            "labels": labels,
            "patch_boxes": self.patches[None].copy(),
            "patch_scores": np.full((1, 2), 0.5, np.float32),
            "patch_scale": np.zeros((1, 2), np.int32),
            "frame_tokens": np.ones((1, *MEMORY[1:]), np.float32),
            "next_controller_state": inputs["controller_state"] + 1.0,
        }

    def describe(self) -> str:
        return "planted detections"
