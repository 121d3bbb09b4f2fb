"""Tracking metrics of a sequence: IDF1, MOTA and HOTA from the `trackers` library (its
TrackEval-derived implementations), on per-frame ground truth and tracks with ids.

A detection and a ground-truth object can match only when their classes agree; their
similarity is the box IoU. IDF1 and MOTA count a match at IoU >= `iou` (0.5, as in MOT
benchmarks); HOTA averages over IoU thresholds 0.05..0.95 by itself. Detections without a
track id are not tracker output and are left out (they count neither as hits nor as false
positives). Imports no torch.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from trackers.eval import compute_clear_metrics, compute_hota_metrics, compute_identity_metrics

from pdn_runtime.boxes import box_iou

TRACKING_IOU = 0.5
TRACKING_KEYS = ("IDF1", "IDP", "IDR", "MOTA", "IDSW", "HOTA", "DetA", "AssA")


@dataclass(frozen=True)
class TrackedFrame:
    """One frame: ground-truth objects and tracked detections (boxes xyxy pixels, labels
    0-based, ids integers; a track id < 0 means "no id")."""

    gt_ids: np.ndarray
    gt_boxes: np.ndarray
    gt_labels: np.ndarray
    track_ids: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray


def _class_aware_iou(frame: TrackedFrame, tracked: np.ndarray) -> np.ndarray:
    """[gt, tracked detections] IoU, 0 where the classes differ."""
    gt_boxes = np.asarray(frame.gt_boxes, np.float64).reshape(-1, 4)
    boxes = np.asarray(frame.boxes, np.float64).reshape(-1, 4)[tracked]
    same = np.asarray(frame.gt_labels)[:, None] == np.asarray(frame.labels)[tracked][None, :]
    return np.where(same, box_iou(gt_boxes, boxes), 0.0)


def tracking_metrics(frames: Sequence[TrackedFrame], iou: float = TRACKING_IOU) -> dict[str, float]:
    """IDF1 (with IDP, IDR), MOTA (with ID switches), HOTA (with DetA, AssA) of one sequence
    of frames in time order, plus the counts they come from."""
    gt_ids, track_ids, similarity = [], [], []
    for frame in frames:
        tracked = np.flatnonzero(np.asarray(frame.track_ids) >= 0)
        gt_ids.append(np.asarray(frame.gt_ids, np.int64).reshape(-1))
        track_ids.append(np.asarray(frame.track_ids, np.int64)[tracked])
        similarity.append(_class_aware_iou(frame, tracked))
    identity = compute_identity_metrics(gt_ids, track_ids, similarity, threshold=iou)
    clear = compute_clear_metrics(gt_ids, track_ids, similarity, threshold=iou)
    hota = compute_hota_metrics(gt_ids, track_ids, similarity)
    return {
        "IDF1": float(identity["IDF1"]),
        "IDP": float(identity["IDP"]),
        "IDR": float(identity["IDR"]),
        "MOTA": float(clear["MOTA"]),
        "IDSW": int(clear["IDSW"]),
        "HOTA": float(hota["HOTA"]),
        "DetA": float(hota["DetA"]),
        "AssA": float(hota["AssA"]),
        "gt_objects": sum(len(ids) for ids in gt_ids),
        "gt_tracks": len(np.unique(np.concatenate(gt_ids))) if gt_ids else 0,
        "tracked_detections": sum(len(ids) for ids in track_ids),
        "tracks": len(np.unique(np.concatenate(track_ids))) if track_ids else 0,
    }
