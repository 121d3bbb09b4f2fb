"""pdn_runtime.tracking: ids of planted moving objects stay the same across frames, dropped
detections and crossings; new objects get new ids; the gap and reset rules hold."""

from __future__ import annotations

import numpy as np
import pytest

from pdn_runtime.stream import FrameDetections
from pdn_runtime.tracking import Tracker, TrackerSettings

STEP_NS = 100_000_000  # 10 Hz
START_NS = 1_700_000_000 * 10**9


def box(x: float, y: float, size: float) -> list[float]:
    """An xyxy box of side `size` with its top-left corner at (x, y)."""
    return [x, y, x + size, y + size]


def scene(t: int) -> list[tuple[str, list[float], float, int]]:
    """Frame t of the planted scene: (name, box, score, label) of each visible object.

    a: class 0 moving right 4 px a frame, detected with a low score at frame 5;
    b: class 1 moving down 3 px a frame, missed at frames 8 and 9;
    c: class 0, appears at frame 12 and stands still;
    d, e: class 2, cross each other (6 px a frame each way, 10 px apart vertically).
    """
    objects = [
        ("a", box(100 + 4 * t, 100, 20), 0.35 if t == 5 else 0.9, 0),
        ("d", box(1000 + 6 * t, 500, 30), 0.8, 2),
        ("e", box(1120 - 6 * t, 510, 30), 0.85, 2),
    ]
    if t not in (8, 9):
        objects.append(("b", box(400, 200 + 3 * t, 30), 0.9, 1))
    if t >= 12:
        objects.append(("c", box(800, 600, 24), 0.9, 0))
    return objects


def run(tracker: Tracker, frames: range, start_ns: int = START_NS) -> list[dict[str, int]]:
    """Each frame's id per object name (objects in a shuffled order each frame)."""
    rng = np.random.default_rng(0)
    seen = []
    for t in frames:
        objects = scene(t)
        order = rng.permutation(len(objects))
        names = [objects[i][0] for i in order]
        ids = tracker.update(
            np.array([objects[i][1] for i in order]),
            np.array([objects[i][2] for i in order]),
            np.array([objects[i][3] for i in order]),
            start_ns + t * STEP_NS,
        )
        assert ids.dtype == np.int64 and ids.shape == (len(objects),)
        seen.append(dict(zip(names, ids.tolist(), strict=True)))
    return seen


def test_ids_stay_with_their_objects() -> None:
    seen = run(Tracker(TrackerSettings(high_score=0.5)), range(25))
    assert all(v == -1 for v in seen[0].values())  # an id from an object's second frame on
    for name in "abde":
        ids = {frame[name] for frame in seen[1:] if name in frame}
        assert len(ids) == 1 and min(ids) >= 1, (name, ids)
    assert "b" not in seen[9] and seen[10]["b"] == seen[7]["b"]  # two missed frames
    assert seen[5]["a"] == seen[4]["a"]  # the low-score detection keeps its track
    assert seen[12]["c"] == -1 and seen[13]["c"] >= 1  # a new object: a new id
    earlier = {i for frame in seen[:13] for i in frame.values()}
    assert seen[13]["c"] not in earlier
    assert seen[24]["d"] != seen[24]["e"]  # crossed, each kept its own id
    later = [i for frame in seen[2:] for i in frame.values()]
    assert np.mean(np.array(later) >= 1) > 0.8


def test_small_objects_faster_than_their_size_keep_ids_with_the_buffer() -> None:
    """Two 8-px objects 40 px apart, each moving 12 px a frame (more than its size, so its
    boxes in consecutive frames do not overlap): buffered IoU keeps one id per object,
    plain IoU never gets past a first match."""

    def ids_over(settings: TrackerSettings) -> list[list[int]]:
        tracker = Tracker(settings)
        frames = []
        for t in range(8):
            boxes = np.array([box(100 + 12 * t, 300, 8), box(100 + 12 * t, 340, 8)])
            frames.append(
                tracker.update(boxes, np.array([0.9, 0.9]), np.array([0, 0]), t * STEP_NS).tolist()
            )
        return frames

    buffered = ids_over(TrackerSettings(buffer=1.0))
    assert buffered[0] == [-1, -1]
    assert all(frame == buffered[1] for frame in buffered[1:]) and min(buffered[1]) >= 1
    assert buffered[1][0] != buffered[1][1]
    plain = ids_over(TrackerSettings(buffer=0.0))
    assert all(frame == [-1, -1] for frame in plain)
    with pytest.raises(ValueError, match="buffer"):
        TrackerSettings(buffer=-1.0)


def test_a_gap_longer_than_max_gap_gives_a_new_id() -> None:
    seen = run(Tracker(TrackerSettings(max_gap_s=0.15, high_score=0.5)), range(12))
    assert seen[10]["b"] == -1 and seen[11]["b"] not in (-1, seen[7]["b"])
    assert seen[11]["a"] == seen[1]["a"]  # the others are unaffected


def test_classes_never_share_a_track() -> None:
    tracker = Tracker()
    place, score = np.array([box(10, 10, 20)]), np.array([0.9])
    ids = [tracker.update(place, score, np.array([0]), t * STEP_NS)[0] for t in range(3)]
    assert ids[1] >= 1 and ids[2] == ids[1]
    # another class at the same place: a new track (no id on its first frame), then a new id
    other = [tracker.update(place, score, np.array([3]), t * STEP_NS)[0] for t in (3, 4)]
    assert other[0] == -1 and other[1] not in (-1, ids[1])


def test_low_scores_only_continue_tracks() -> None:
    tracker = Tracker(TrackerSettings(high_score=0.5))
    place, labels = np.array([box(10, 10, 20)]), np.array([0])
    low = [tracker.update(place, np.array([0.4]), labels, t * STEP_NS)[0] for t in range(4)]
    assert low == [-1] * 4  # below high_score: never starts a track


def test_reset_and_time_going_back_start_new_ids() -> None:
    tracker = Tracker()
    before = run(tracker, range(4))
    old = {i for frame in before for i in frame.values()}
    tracker.reset()
    after = run(tracker, range(4, 6))
    assert all(v == -1 for v in after[0].values())
    assert not {i for i in after[1].values()} & old
    again = run(tracker, range(2), start_ns=START_NS - 10**9)  # a bag restarted
    assert all(v == -1 for v in again[0].values())
    assert not {i for i in again[1].values()} & (old | set(after[1].values()))


def test_a_stream_reset_ends_the_tracks() -> None:
    def found(reset: str | None) -> FrameDetections:
        return FrameDetections(
            boxes=np.array([box(50, 50, 20)], np.float32),
            scores=np.array([0.9], np.float32),
            labels=np.array([1]),
            patch_boxes=np.zeros((0, 4), np.float32),
            patch_scores=np.zeros(0, np.float32),
            patch_scale=np.zeros(0, np.int64),
            width=640,
            height=480,
            reset=reset,
            inference_s=0.0,
        )

    tracker = Tracker()
    kept = [tracker.track(found(None), t * STEP_NS)[0] for t in range(3)]
    assert kept[1] >= 1 and kept[2] == kept[1]
    after = [tracker.track(found(r), t * STEP_NS)[0] for t, r in ((3, "gap"), (4, None))]
    assert after[0] == -1 and after[1] not in (-1, kept[1])


def test_repeated_stamp_keeps_ids() -> None:
    tracker = Tracker()
    boxes, scores, labels = np.array([box(50, 50, 20)]), np.array([0.9]), np.array([1])
    ids = [tracker.update(boxes, scores, labels, stamp)[0] for stamp in (0, STEP_NS, STEP_NS)]
    assert ids[1] >= 1 and ids[2] == ids[1]


def test_no_detections_and_bad_input() -> None:
    tracker = Tracker()
    empty = tracker.update(np.zeros((0, 4)), np.zeros(0), np.zeros(0), 0)
    assert empty.shape == (0,) and empty.dtype == np.int64
    with pytest.raises(ValueError, match="differ in length"):
        tracker.update(np.zeros((2, 4)), np.zeros(1), np.zeros(2), STEP_NS)
    with pytest.raises(ValueError, match="max_gap_s"):
        TrackerSettings(max_gap_s=0.0)
    with pytest.raises(ValueError, match="match_iou"):
        TrackerSettings(match_iou=1.5)


def test_a_pan_faster_than_the_objects_size_keeps_ids_with_the_camera_motion() -> None:
    """Three 16-px objects standing still while the camera pans 60 px between processed
    frames (a node at a quarter of the camera's rate): with the view offset taken out they
    keep one id each; matched in raw image coordinates they never get past a first match."""
    world = np.array([box(600, 300, 16), box(900, 500, 16), box(1300, 420, 16)])

    def ids_over(settings: TrackerSettings) -> list[list[int]]:
        tracker, frames = Tracker(settings), []
        for t in range(8):
            pan = 60.0 * t  # camera x: the objects move left in the image
            boxes = world - np.array([pan, 0, pan, 0])
            scores, labels = np.full(3, 0.9), np.zeros(3, np.int64)
            frames.append(tracker.update(boxes, scores, labels, t * STEP_NS, (pan, 0.0)).tolist())
        return frames

    steady = ids_over(TrackerSettings(camera_motion=True))
    assert steady[0] == [-1, -1, -1]
    assert all(frame == steady[1] for frame in steady[1:]) and len(set(steady[1])) == 3
    assert min(steady[1]) >= 1
    raw = ids_over(TrackerSettings(camera_motion=False))
    assert all(frame == [-1, -1, -1] for frame in raw)
