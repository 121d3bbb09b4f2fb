"""`pdn-bag-eval`, the figures of a run that need no annotations: detections per frame by
class (what the node would publish), the windows the model chose and the share of the frame
they cover, temporal-state resets by reason and frames skipped by reason. They are reported
for every bag, with or without ground truth."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import numpy as np

from pdn_ros.tools.bag_eval.run import BagRun
from pdn_runtime import FrameDetections
from pdn_runtime.stream import select_detections


def covered_share(boxes: np.ndarray, width: int, height: int) -> float:
    """Share of a width x height frame inside the union of `boxes` (xyxy pixels), exactly:
    the boxes' edges cut the frame into cells, each cell is in or out."""
    frame = np.array([width, height, width, height], np.float64)
    clipped = np.clip(np.asarray(boxes, np.float64).reshape(-1, 4), 0.0, frame)
    clipped = clipped[(clipped[:, 2] > clipped[:, 0]) & (clipped[:, 3] > clipped[:, 1])]
    if not len(clipped):
        return 0.0
    xs, ys = np.unique(clipped[:, 0::2]), np.unique(clipped[:, 1::2])
    cx, cy = (xs[:-1] + xs[1:]) / 2, (ys[:-1] + ys[1:]) / 2
    inside_x = (clipped[:, 0, None] <= cx) & (cx < clipped[:, 2, None])  # [n, cells x]
    inside_y = (clipped[:, 1, None] <= cy) & (cy < clipped[:, 3, None])  # [n, cells y]
    covered = (inside_y[:, :, None] & inside_x[:, None, :]).any(axis=0)
    area = np.outer(np.diff(ys), np.diff(xs))[covered].sum()
    return float(area / (width * height))


def window_coverage(found: FrameDetections) -> float:
    """Share of one frame that the model's selected windows cover."""
    return covered_share(found.patch_boxes, found.width, found.height)


@dataclass(frozen=True)
class SkipSummary:
    """Frames skipped for one reason: how many, the first and last frame, one message."""

    kind: str
    count: int
    first: int
    last: int
    message: str


def skip_summaries(run: BagRun) -> list[SkipSummary]:
    """The frames the node's path skipped, grouped by reason, in order of first occurrence."""
    groups: dict[str, list[int]] = {}
    for row in run.rows:
        if row.skipped is not None:
            groups.setdefault(row.skipped, []).append(row.index)
    return [
        SkipSummary(kind, len(frames), frames[0], frames[-1], run.rows[frames[0]].status)
        for kind, frames in groups.items()
    ]


def run_figures(run: BagRun, score_threshold: float, max_detections: int) -> dict[str, Any]:
    """Figures that need no annotations, for metrics.json: detections the node would publish
    (score >= `score_threshold`, at most `max_detections`) per processed frame, overall and
    by class; windows per frame (by scale index, with their median side in pixels) and the
    share of the frame they cover; resets and skipped frames counted by reason."""
    ok = [row.result.found for row in run.rows if row.result is not None]
    names = run.class_names
    by_class = np.zeros(len(names), np.int64)
    with_detections = 0
    for found in ok:
        labels = found.labels[select_detections(found.scores, score_threshold, max_detections)]
        by_class += np.bincount(labels, minlength=len(names))[: len(names)]
        with_detections += bool(len(labels))
    frames = max(len(ok), 1)
    coverage = [window_coverage(found) for found in ok]
    window_scale = np.concatenate([f.patch_scale for f in ok] or [np.zeros(0, np.int64)])
    window_side = np.concatenate(
        [np.max(f.patch_boxes[:, 2:] - f.patch_boxes[:, :2], axis=1) for f in ok] or [np.zeros(0)]
    )
    scales = {
        str(scale): {
            "per_frame": int((window_scale == scale).sum()) / frames,
            "side_px_median": float(np.median(window_side[window_scale == scale])),
        }
        for scale in np.unique(window_scale).tolist()
    }
    nan = float("nan")
    return {
        "frames_processed": len(ok),
        "frames_skipped": dict(Counter(row.skipped for row in run.rows if row.skipped)),
        "resets_by_reason": dict(Counter(found.reset for found in ok if found.reset)),
        "published_detections": {
            "score_threshold": score_threshold,
            "max_detections": max_detections,
        },
        "detections_per_frame": float(by_class.sum() / frames) if ok else nan,
        "detections_per_frame_by_class": {
            name: float(count / frames) for name, count in zip(names, by_class, strict=True)
        },
        "frames_with_detections": with_detections,
        "windows_per_frame": sum(len(f.patch_boxes) for f in ok) / frames if ok else nan,
        "windows_by_scale": scales,
        "window_coverage_mean": float(np.mean(coverage)) if ok else nan,
        "window_coverage_min": float(np.min(coverage)) if ok else nan,
        "window_coverage_max": float(np.max(coverage)) if ok else nan,
        "video": run.video,
    }
