"""training.tracking_metrics on tiny hand-made sequences with values worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest

from training.tracking_metrics import TrackedFrame, tracking_metrics

A = [0.0, 0.0, 10.0, 10.0]  # ground truth 1, class 0
B = [100.0, 100.0, 120.0, 120.0]  # ground truth 2, class 1
B_SHIFTED = [101.0, 100.0, 121.0, 120.0]  # IoU 380 / 420 with B
C = [200.0, 0.0, 210.0, 10.0]  # ground truth 3, class 0, only in the last frame
FAR = [500.0, 500.0, 510.0, 510.0]


Rows = list[tuple[int, list[float], int]]


def frame(truth: Rows, found: Rows) -> TrackedFrame:
    """A TrackedFrame from (id, box, label) lists."""

    def arrays(rows: Rows) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ids = np.array([r[0] for r in rows], np.int64)
        boxes = np.array([r[1] for r in rows], np.float64).reshape(-1, 4)
        return ids, boxes, np.array([r[2] for r in rows], np.int64)

    gt_ids, gt_boxes, gt_labels = arrays(truth)
    track_ids, boxes, labels = arrays(found)
    return TrackedFrame(gt_ids, gt_boxes, gt_labels, track_ids, boxes, labels)


def test_perfect_tracking_scores_one() -> None:
    frames = [frame([(1, A, 0), (2, B, 1)], [(7, A, 0), (9, B, 1)]) for _ in range(3)]
    m = tracking_metrics(frames)
    assert m["IDF1"] == m["MOTA"] == pytest.approx(1.0)
    assert m["HOTA"] == pytest.approx(1.0)
    assert (m["IDSW"], m["gt_objects"], m["gt_tracks"], m["tracks"]) == (0, 6, 2, 2)


def test_switch_false_positives_and_a_miss_as_computed_by_hand() -> None:
    """A is tracked as 7 then 8 (one switch), B as 9 throughout (IoU 0.905), a false positive
    50 in frames 1 and 2, C missed in frame 3 (its detection has no id, so it does not count).

    9 ground-truth objects, 10 tracked detections. IDF1: the best id pairing is A-7 (or A-8,
    2 frames) and B-9 (4 frames), IDTP = 6, IDFN = 3, IDFP = 4, IDF1 = 12 / 19.
    MOTA: TP 8, FN 1, FP 2, IDSW 1: (8 - 2 - 1) / 9 = 5 / 9.
    """
    frames = []
    for t in range(4):
        truth = [(1, A, 0), (2, B, 1)] + ([(3, C, 0)] if t == 3 else [])
        found = [(7 if t < 2 else 8, A, 0), (9, B_SHIFTED, 1)]
        found += [(50, FAR, 0)] if t in (1, 2) else []
        found += [(-1, C, 0)] if t == 3 else []
        frames.append(frame(truth, found))
    m = tracking_metrics(frames)
    assert m["IDF1"] == pytest.approx(12 / 19)
    assert (m["IDP"], m["IDR"]) == (pytest.approx(6 / 10), pytest.approx(6 / 9))
    assert m["MOTA"] == pytest.approx(5 / 9)
    assert m["IDSW"] == 1
    assert 0.0 < m["HOTA"] < 1.0
    assert (m["gt_objects"], m["tracked_detections"], m["tracks"]) == (9, 10, 4)


def test_wrong_class_or_low_iou_is_no_match() -> None:
    wrong_class = tracking_metrics([frame([(1, A, 0)], [(7, A, 1)])])
    assert (wrong_class["IDF1"], wrong_class["MOTA"]) == (0.0, -1.0)
    shifted = [6.0, 0.0, 16.0, 10.0]  # IoU 40 / 160 = 0.25 with A
    low = tracking_metrics([frame([(1, A, 0)], [(7, shifted, 0)])])
    assert (low["IDF1"], low["MOTA"]) == (0.0, -1.0)
    assert tracking_metrics([frame([(1, A, 0)], [(7, shifted, 0)])], iou=0.2)["MOTA"] == 1.0
