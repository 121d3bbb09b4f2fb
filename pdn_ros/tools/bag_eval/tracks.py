"""`pdn-bag-eval`, tracking: the node's tracker run over the bag's frames in order on what the
node would publish, scored with IDF1, MOTA and HOTA (`training.tracking_metrics`) on the
frames whose ground truth carries track ids (pdn-synth's does).

Ground-truth ids count within one stretch of the stream: where the temporal state resets (a
gap, time going backwards: in a pdn-synth bag, the next sequence) the tracks end, and an id
string seen again there is another object (pdn-synth numbers each sequence's objects anew)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from pdn_ros.tools.bag_eval.run import BagRun
from pdn_runtime.stream import select_detections
from pdn_runtime.tracking import Tracker, TrackerSettings
from training.tracking_metrics import TRACKING_KEYS, TrackedFrame, tracking_metrics


def track_run(
    run: BagRun, settings: TrackerSettings, score_threshold: float, max_detections: int
) -> dict[str, Any]:
    """Tracking metrics (TRACKING_KEYS, NaN without ground-truth ids; left out when the run
    has no ground truth at all) and `tracked_share`, the share of the detections the node
    would publish (score >= `score_threshold`, at most `max_detections`) that got a track id.
    A bad frame gives the tracker nothing, as in the node, and scores as a frame without
    detections; a frame of another resolution is not scored (as in frame_results)."""
    tracker = Tracker(settings)
    frames: list[TrackedFrame] = []
    numbering: dict[tuple[int, str], int] = {}  # (stretch, ground-truth id) -> number
    published = tracked = stretch = 0
    for row in run.rows:
        ids, boxes, labels = np.zeros(0, np.int64), np.zeros((0, 4)), np.zeros(0, np.int64)
        if row.result is not None:
            found = row.result.found
            stretch += found.reset is not None
            keep = select_detections(found.scores, score_threshold, max_detections)
            found = found.subset(keep)
            ids = tracker.track(found, row.stamp_ns, row.view_offset)
            boxes, labels = found.boxes, found.labels
            published += len(ids)
            tracked += int((ids >= 0).sum())
        scored = row.truth is not None and row.skipped != "resolution"
        if scored and row.truth_tracks is not None:
            keys = [(stretch, name) for name in row.truth_tracks]
            gt_ids = np.array([numbering.setdefault(k, len(numbering)) for k in keys], np.int64)
            frames.append(TrackedFrame(gt_ids, *row.truth, ids, boxes, labels))
    metrics: dict[str, Any] = {}
    if run.truth_source is not None:
        metrics = dict.fromkeys(TRACKING_KEYS, float("nan"))
        metrics.update(tracking_metrics(frames) if frames else {}, tracking_frames=len(frames))
    metrics.update(
        tracked_share=tracked / published if published else float("nan"),
        tracker=dataclasses.asdict(settings),
    )
    return metrics
