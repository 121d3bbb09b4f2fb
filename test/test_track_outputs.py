"""Track ids in the node's outputs: Detection.track_id, marker captions, the debug image."""

from __future__ import annotations

import cv2
import numpy as np
from std_msgs.msg import Header

from pdn_ros.debug_draw import draw
from pdn_ros.markers import build_markers, fallback_matrix
from pdn_ros.messages import detection_array
from pdn_runtime import FrameDetections

NAMES = ("car", "person")


def found() -> FrameDetections:
    """Two detections in a 320x240 frame, no patches."""
    return FrameDetections(
        boxes=np.array([[40, 60, 120, 100], [200, 30, 260, 200]], np.float32),
        scores=np.array([0.9, 0.6], np.float32),
        labels=np.array([0, 1]),
        patch_boxes=np.zeros((0, 4), np.float32),
        patch_scores=np.zeros(0, np.float32),
        patch_scale=np.zeros(0, np.int64),
        width=320,
        height=240,
        reset=None,
        inference_s=0.0,
    )


def test_detections_carry_their_track_ids() -> None:
    header = Header(frame_id="cam")
    tracked = detection_array(found(), NAMES, header, np.array([12, -1]))
    assert [d.track_id for d in tracked.detections] == ["12", ""]
    untracked = detection_array(found(), NAMES, header)
    assert [d.track_id for d in untracked.detections] == ["", ""]


def test_marker_captions_show_track_ids() -> None:
    k = fallback_matrix(320, 240)
    markers = build_markers(found(), Header(), k, 1.0, NAMES, np.array([7, -1]))
    captions = [m.text for m in markers.markers if m.ns == "detection_labels"]
    assert captions == ["car 0.90 #7", "person 0.60"]
    plain = build_markers(found(), Header(), k, 1.0, NAMES)
    assert [m.text for m in plain.markers if m.ns == "detection_labels"] == [
        "car 0.90",
        "person 0.60",
    ]


def test_debug_image_draws_the_track_id_after_the_label() -> None:
    planar = np.zeros((3, 240, 320), np.uint8)
    with_id = draw(planar, found(), 1.0, NAMES, np.array([7, -1]))
    without = draw(planar, found(), 1.0, NAMES)
    changed = np.argwhere((with_id != without).any(axis=2))
    assert len(changed) > 0
    # only right of the first detection's "car 0.90" caption (at x 40), in its text row
    (width, _), _ = cv2.getTextSize("car 0.90", cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1)
    rows, cols = changed[:, 0], changed[:, 1]
    assert rows.min() >= 40 and rows.max() < 60 and cols.min() >= 40 + width - 1
