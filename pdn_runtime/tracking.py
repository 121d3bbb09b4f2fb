"""Track ids for one camera's detections: ByteTrack (the `trackers` library) run per class.

`Tracker.update` takes one frame's boxes, scores and class labels with the frame's stamp and
returns an id per detection (-1 where it has none yet): the same id for the same object from
frame to frame, kept while the object is missed for up to `TrackerSettings.max_gap_s`, and a
new id for a new object. Association is ByteTrack's: detections scoring at least
`high_score` are matched first to the tracks' Kalman-predicted boxes, the lower ones then
only to tracks left over. The match score is buffered IoU (the C-BIoU tracker's: both boxes
grown by `buffer` times their width and height on each side), because a small far object
often moves more than its own size between frames, where plain IoU is 0. A track gets its id
on its second matched frame, so a one-frame false positive never gets one. Each class has its
own ByteTrack, so a box never takes over the id of an object of another class; ids are unique
per camera over all classes.

With `camera_motion` on, the caller passes each frame's view offset (`CameraMotion`): boxes
are matched where they would be seen by a camera that did not pan, so a pan between two
processed frames does not look like every object jumping (the ids are the same; the boxes
returned and published are the frame's own).

Stamps are the frames' capture times: the Kalman filters step by the time that passed, so
frames the node dropped do not break a track. A stamp earlier than the last one (a bag
restarted, a clock reset) starts the tracks afresh, like the model's temporal memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import supervision as sv
from trackers import BIoU, ByteTrackTracker

from pdn_runtime.stream import FrameDetections

# trackers counts its lost-track buffer in frames of a 30 Hz video and, given stamps, prunes
# by buffer / 30 seconds; its Kalman step is elapsed seconds x this rate.
_LIBRARY_RATE_HZ = 30.0
_DUPLICATE_STEP_S = 1e-6


@dataclass(frozen=True)
class TrackerSettings:
    """How tracks are kept and matched (see the module docstring)."""

    max_gap_s: float = 1.0  # a lost track waits this long for its object, in seconds
    high_score: float = 0.3  # detections >= this are matched first and may start tracks
    match_iou: float = 0.1  # least (buffered) IoU between a detection and a track's prediction
    buffer: float = 1.0  # boxes grow by this share of their size on each side for matching
    camera_motion: bool = True  # match in the view offset the caller estimates (CameraMotion)

    def __post_init__(self) -> None:
        if not 0.0 < self.max_gap_s <= 3600.0:
            raise ValueError(f"max_gap_s must be in (0, 3600], got {self.max_gap_s}")
        if not 0.0 <= self.buffer <= 10.0:
            raise ValueError(f"buffer must be in [0, 10], got {self.buffer}")
        for name in ("high_score", "match_iou"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")


class Tracker:
    """Track ids of one camera (or one video); not thread-safe: one caller at a time."""

    def __init__(self, settings: TrackerSettings | None = None) -> None:
        self.settings = settings or TrackerSettings()
        self._by_class: dict[int, ByteTrackTracker] = {}
        self._ids: dict[tuple[int, int], int] = {}  # (class, library id) -> our id
        self._next_id = 1
        self._origin_ns: int | None = None
        self._last_ns: int | None = None
        self._last_s = 0.0

    def update(
        self,
        boxes: np.ndarray,
        scores: np.ndarray,
        labels: np.ndarray,
        stamp_ns: int,
        offset: tuple[float, float] = (0.0, 0.0),
    ) -> np.ndarray:
        """Ids [n] int64 (>= 1, or -1 for none yet) of one frame's detections: boxes [n, 4]
        xyxy, scores [n], class labels [n], the frame's stamp in nanoseconds, and the view
        offset (x, y) pixels of the frame (`CameraMotion.offset`; used with `camera_motion`)."""
        boxes = np.asarray(boxes, np.float32).reshape(-1, 4)
        if self.settings.camera_motion:
            boxes = boxes + np.array([*offset, *offset], np.float32)
        scores = np.asarray(scores, np.float32).reshape(-1)
        labels = np.asarray(labels, np.int64).reshape(-1)
        if not len(boxes) == len(scores) == len(labels):
            raise ValueError(
                f"boxes, scores and labels differ in length: {len(boxes)}, {len(scores)}, "
                f"{len(labels)}"
            )
        when = self._seconds(int(stamp_ns))
        ids = np.full(len(boxes), -1, np.int64)
        for label in sorted(set(self._by_class) | set(labels.tolist())):
            rows = np.flatnonzero(labels == label)
            tracker = self._by_class.get(label) or self._new_class_tracker(label)
            found = tracker.update(
                sv.Detections(
                    xyxy=boxes[rows],
                    confidence=scores[rows],
                    class_id=labels[rows],
                    data={"row": rows},
                ),
                timestamp=when,
            )
            if len(found):
                for row, library_id in zip(found.data["row"], found.tracker_id, strict=True):
                    if library_id >= 0:
                        ids[row] = self._our_id(label, int(library_id))
            self._forget_ended(label, tracker)
        return ids

    def track(
        self, found: FrameDetections, stamp_ns: int, offset: tuple[float, float] = (0.0, 0.0)
    ) -> np.ndarray:
        """Ids of one processed frame's detections (`update`); when the model's temporal
        state was reset before this frame (`found.reset`: the stream broke), the tracks end
        first, so ids never bridge a break either."""
        if found.reset is not None:
            self.reset()
        return self.update(found.boxes, found.scores, found.labels, stamp_ns, offset)

    def reset(self) -> None:
        """End every track (the next ids are new ones) and forget the last stamp."""
        self._by_class.clear()
        self._ids.clear()
        self._origin_ns = None
        self._last_ns = None

    def set_settings(self, settings: TrackerSettings) -> None:
        """New settings: the tracks end and later objects get new ids."""
        self.settings = settings
        self.reset()

    def _seconds(self, stamp_ns: int) -> float:
        """The stamp as seconds since the first frame; time going backwards resets the
        tracks, and a repeated stamp counts as a microsecond later (association only)."""
        if self._last_ns is not None and stamp_ns < self._last_ns:
            self.reset()
        if self._origin_ns is None:
            self._origin_ns = stamp_ns
        when = (stamp_ns - self._origin_ns) / 1e9
        if stamp_ns == self._last_ns:
            when = self._last_s + _DUPLICATE_STEP_S
        self._last_ns, self._last_s = stamp_ns, when
        return when

    def _new_class_tracker(self, label: int) -> ByteTrackTracker:
        """A ByteTrack for class `label` with the current settings."""
        s = self.settings
        tracker = ByteTrackTracker(
            lost_track_buffer=max(1, round(s.max_gap_s * _LIBRARY_RATE_HZ)),
            frame_rate=_LIBRARY_RATE_HZ,
            track_activation_threshold=s.high_score,
            minimum_consecutive_frames=1,
            minimum_iou_threshold=s.match_iou,
            high_conf_det_threshold=s.high_score,
            iou=BIoU(buffer_ratio=s.buffer),
        )
        self._by_class[label] = tracker
        return tracker

    def _our_id(self, label: int, library_id: int) -> int:
        """This camera's id for class `label`'s library id (a new one the first time)."""
        key = (label, library_id)
        if key not in self._ids:
            self._ids[key] = self._next_id
            self._next_id += 1
        return self._ids[key]

    def _forget_ended(self, label: int, tracker: ByteTrackTracker) -> None:
        """Drop the id mapping of class `label`'s tracks that the library has ended."""
        alive = {track.tracker_id for track in tracker.tracks}
        for key in [k for k in self._ids if k[0] == label and k[1] not in alive]:
            del self._ids[key]
