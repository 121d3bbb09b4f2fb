"""SAHI around PatchDriveNet: `PdnSliceModel`, a `sahi.models.base.DetectionModel` that runs
the same weights on each slice through a pdn_runtime backend, SAHI's two recommended settings,
and `sliced_detections` (one frame through `get_sliced_prediction`). Imports no torch."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
from sahi.models.base import DetectionModel
from sahi.predict import get_sliced_prediction
from sahi.prediction import ObjectPrediction

from pdn_ros.image_convert import copy_planar
from pdn_runtime import Backend, StreamState
from pdn_runtime.boxes import class_label

SAHI, SAHI_GREEDY = "sahi", "sahi greedynmm"
# SAHI's two recommended settings (confidence threshold of the DetectionModel, and the
# postprocess arguments of get_sliced_prediction): NMS over IoU at confidence 0.01 for the
# highest mAP (benchmarks, papers), and its defaults for real-world use: GREEDYNMM over
# intersection-over-smaller at the DetectionModel's default confidence 0.3.
SAHI_SETTINGS: dict[str, dict[str, Any]] = {
    SAHI: {"confidence": 0.01, "type": "NMS", "match_metric": "IOU", "match_threshold": 0.5},
    SAHI_GREEDY: {
        "confidence": 0.3,
        "type": "GREEDYNMM",
        "match_metric": "IOS",
        "match_threshold": 0.5,
    },
}


class PdnSliceModel(DetectionModel):
    """SAHI's view of PatchDriveNet on one slice: a pdn_runtime backend (the model exported at
    the slice size, every window selected) run on each slice with a fresh temporal state,
    since slices are independent images; boxes come back in slice pixels and SAHI shifts
    them into the frame."""

    def __init__(
        self, backend: Backend, class_names: tuple[str, ...], confidence_threshold: float
    ) -> None:
        self.inference_s = 0.0  # model time over all slices so far (SAHI's loop excluded)
        self.class_names = class_names
        super().__init__(
            model=backend,
            confidence_threshold=confidence_threshold,
            category_mapping={str(i): name for i, name in enumerate(class_names)},
        )

    def set_device(self, device: str | None = None) -> None:
        """ONNX Runtime on the CPU; SAHI's own choice would import torch."""
        self.device = "cpu"

    def set_model(self, model: Backend, **kwargs: Any) -> None:
        """Take the backend, with a zero state and the planar input buffer of its size."""
        self.model = model
        self.state = StreamState(model.info)
        self.buffer = np.zeros(model.info.input_shapes["image"], np.uint8)

    def perform_inference(self, image: np.ndarray) -> None:
        """Run one H x W x 3 RGB slice (zero-padded at the right and bottom when smaller than
        the model) and keep the detections above the confidence threshold."""
        height, width = image.shape[:2]
        self.buffer.fill(0)
        copy_planar(image, "rgb8", self.buffer[0, :, :height, :width])
        start = time.perf_counter()
        out = self.model.run(self.buffer, **self.state.inputs())
        self.inference_s += time.perf_counter() - start
        keep = out["scores"][0] >= self.confidence_threshold
        boxes = out["boxes"][0][keep].copy()
        np.clip(boxes, 0, [width, height, width, height], out=boxes)
        self._original_predictions = (boxes, out["scores"][0][keep].copy(), out["labels"][0][keep])

    def _create_object_prediction_list_from_original_predictions(
        self,
        shift_amount_list: list[list[int | float]] | None = None,
        full_shape_list: list[list[int | float]] | None = None,
    ) -> None:
        """ObjectPredictions in slice pixels with the slice's shift and the frame's shape."""
        boxes, scores, labels = self._original_predictions
        shift = shift_amount_list[0] if shift_amount_list else [0, 0]
        full_shape = full_shape_list[0] if full_shape_list else None
        predictions = [
            ObjectPrediction(
                bbox=box,
                category_id=label,
                category_name=class_label(self.class_names, label),
                score=score,
                shift_amount=shift,
                full_shape=full_shape,
            )
            for box, score, label in zip(
                boxes.tolist(), scores.tolist(), labels.tolist(), strict=True
            )
            if box[2] > box[0] and box[3] > box[1]
        ]
        self._object_prediction_list_per_image = [predictions]


def sliced_detections(
    image: np.ndarray,
    model: PdnSliceModel,
    slice_size: int,
    overlap: float,
    setting: dict[str, Any],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """SAHI's sliced prediction of a frame with one of SAHI_SETTINGS' postprocesses (the
    confidence threshold is the model's), as boxes xyxy [N,4], scores [N], labels [N]."""
    result = get_sliced_prediction(
        image,
        model,
        slice_height=slice_size,
        slice_width=slice_size,
        overlap_height_ratio=overlap,
        overlap_width_ratio=overlap,
        perform_standard_pred=False,
        postprocess_type=setting["type"],
        postprocess_match_metric=setting["match_metric"],
        postprocess_match_threshold=setting["match_threshold"],
        verbose=0,
    )
    predictions = result.object_prediction_list
    boxes = np.array([p.bbox.to_xyxy() for p in predictions], np.float32).reshape(-1, 4)
    scores = np.array([p.score.value for p in predictions], np.float32)
    labels = np.array([p.category.id for p in predictions], np.int64)
    return boxes, scores, labels
