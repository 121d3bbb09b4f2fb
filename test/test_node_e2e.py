"""End to end across processes, with the trained demo model: the synthetic camera process
publishes 4K frames with ground truth, the pdn_node process detects, and this test listens to
both and matches them.

Recall of small objects (longer side < 32 px) at IoU 0.5 and score >= 0.3 (the node's
default threshold; `training.metrics.matched_ground_truth`) must reach RECALL_FLOOR, and more
than TRACKED_FLOOR of the detections published after the first frame must carry a track id.
The scene (seed 77) is not one of the training sequences (seed 1000).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from node_support import DEMO_MODEL, installed, start_logged, stop_logged
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, QoSReliabilityPolicy

from pdn_msgs.msg import DetectionArray
from pdn_ros.launcher import ros_args
from training.metrics import FrameResult, matched_ground_truth

CAMERA = "e2e"
FRAMES = 8
MIN_FRAMES = 6  # at 2 Hz the node keeps up; a frame may be dropped while it warms up
RATE_HZ = 2.0
SEED = 77
SMALL_PX = 32.0
SCORE = 0.3
# Measured: 0.434 (109 of 251 small objects in 8 frames) through the three processes, the
# same as running these frames in one process through the backend as pdn-eval does; 0.413 in
# a run on a busy machine where the node dropped a frame. The floor leaves room for such
# drops (they change the temporal state) and catches a broken pipeline: boxes off by 8 px
# give 0.0. (A red/blue swap only costs 0.04 with this model: the conversion tests check
# channel order.) See docs/ros_node.md, "End-to-end test".
RECALL_FLOOR = 0.35
# An object can have a track id from its second processed frame in a row on (docs/tracking.md),
# and a dropped frame at 2 Hz makes a 1 s gap, which resets the temporal state and ends the
# tracks: the share is counted over frames that follow a processed frame by one camera period.
# At 2 Hz the scene's objects move 7.5x farther per frame than at the camera's 15 Hz default;
# measured through the node: 0.772 (268 detections in 5 frames) with the buffered IoU match
# (track_buffer 1.0), 0.578 with plain IoU. The 15 Hz figure is `make demo`'s (docs/tracking.md).
# The floor guards the wiring and the buffered match (tracking off or ids lost: 0.0).
TRACKED_FLOOR = 0.65


def boxes_of(msg: DetectionArray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """xyxy boxes, scores and labels of a DetectionArray."""
    rows = [
        (
            d.center_x - d.size_x / 2,
            d.center_y - d.size_y / 2,
            d.center_x + d.size_x / 2,
            d.center_y + d.size_y / 2,
            d.score,
            d.class_id,
        )
        for d in msg.detections
    ]
    table = np.array(rows, np.float64).reshape(-1, 6)
    return table[:, :4], table[:, 4], table[:, 5].astype(np.int64)


def test_demo_model_finds_small_objects_across_processes(ros_context: Any, tmp_path: Path) -> None:
    if not DEMO_MODEL.is_file():
        pytest.fail(
            f"{DEMO_MODEL} is missing: train and export the demo model first "
            "(commands in docs/results.md and docs/training.md)"
        )
    listener = Node("pdn_e2e_listener", context=ros_context)
    qos = QoSProfile(depth=50, reliability=QoSReliabilityPolicy.RELIABLE)
    truth: dict[int, DetectionArray] = {}
    found: dict[int, DetectionArray] = {}

    def keep(store: dict[int, DetectionArray]) -> Any:
        return lambda m: store.__setitem__(m.header.stamp.sec * 10**9 + m.header.stamp.nanosec, m)

    listener.create_subscription(DetectionArray, f"{CAMERA}/ground_truth", keep(truth), qos)
    listener.create_subscription(DetectionArray, f"{CAMERA}/detections", keep(found), qos)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(listener)
    node_parameters = {
        "model_path": str(DEMO_MODEL),
        "cameras": [CAMERA],
        "backend": "onnxruntime",
        "score_threshold": SCORE,
        "max_detections": 300,
    }
    camera_parameters = {
        "cameras": [CAMERA],
        "rate_hz": RATE_HZ,
        "count": FRAMES,
        "frames": FRAMES,
        "seed": SEED,
        "wait_for_subscribers": 1,
    }
    # The camera first: it publishes nothing until the node subscribes, and by then this
    # listener has matched its ground-truth publisher, so no early frame's truth is lost.
    camera = start_logged(
        [sys.executable, str(installed("pdn_synth_camera")), *ros_args(None, camera_parameters)],
        tmp_path / "camera.log",
    )
    deadline = time.monotonic() + 30
    while listener.count_publishers(f"{CAMERA}/ground_truth") == 0 and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.1)
    node = start_logged(
        [sys.executable, str(installed("pdn_node")), *ros_args(None, node_parameters)],
        tmp_path / "node.log",
    )
    try:
        deadline, quiet_since = time.monotonic() + 90, time.monotonic()
        while len(found) < FRAMES and time.monotonic() < deadline and node.poll() is None:
            seen = len(found)
            executor.spin_once(timeout_sec=0.1)
            if len(found) > seen or camera.poll() is None:
                quiet_since = time.monotonic()
            elif time.monotonic() - quiet_since > 5.0:
                break  # the camera is done and nothing came for 5 s
    finally:
        outputs = {
            "camera": stop_logged(camera, tmp_path / "camera.log"),
            "node": stop_logged(node, tmp_path / "node.log"),
        }
        executor.shutdown()
        listener.destroy_node()
    logs = "\n".join(f"--- {name}:\n{text}" for name, text in outputs.items())
    assert len(found) >= MIN_FRAMES, f"{len(found)} of {FRAMES} frames detected\n{logs}"
    assert set(found) <= set(truth), "every detection stamp is a camera frame's stamp"

    hits = small = 0
    for stamp, detections in found.items():
        gt = truth[stamp]
        assert detections.header == gt.header  # stamp and frame id copied from the image
        gt_boxes, _, gt_labels = boxes_of(gt)
        boxes, scores, labels = boxes_of(detections)
        assert (scores >= SCORE).all() and all(
            -1 <= d.patch_index < 16 for d in detections.detections
        )
        matched = matched_ground_truth(
            FrameResult(0, 3840, 2160, gt_boxes, gt_labels, boxes, scores, labels), SCORE
        )
        is_small = (gt_boxes[:, 2:] - gt_boxes[:, :2]).max(axis=1) < SMALL_PX
        hits += int(matched[is_small].sum())
        small += int(is_small.sum())
    recall = hits / small
    print(f"small-object recall {recall:.3f} ({hits}/{small} over {len(found)} frames)")
    assert small > 100
    assert recall >= RECALL_FLOOR, f"small-object recall {recall:.3f} < {RECALL_FLOOR}\n{logs}"
    stamps = sorted(found)
    following = [b for a, b in zip(stamps, stamps[1:], strict=False) if b - a < 1.5e9 / RATE_HZ]
    later = [d.track_id for stamp in following for d in found[stamp].detections]
    tracked = sum(track != "" for track in later) / len(later)
    print(f"detections with a track id in {len(following)} frames: {tracked:.3f} of {len(later)}")
    assert all(track == "" or track.isdigit() for track in later)
    assert tracked > TRACKED_FLOOR, f"{tracked:.3f} of detections tracked\n{logs}"
