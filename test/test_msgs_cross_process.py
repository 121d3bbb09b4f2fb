"""pdn_msgs/DetectionArray crosses a process boundary over the SHM-only DDS profile intact."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from rclpy.context import Context

HELPER = Path(__file__).resolve().parent / "pdn_publish_detections.py"
PUBLISHER_TIMEOUT_S = 60.0
RECEIVE_TIMEOUT_S = 30.0

# Float32 values are exactly representable so they compare exactly after the round trip.
EXPECTED: dict[str, Any] = {
    "stamp": [1_700_000_123, 456_789_012],
    "frame_id": "front_camera_optical_frame",
    "detections": [
        {
            "class_id": 0,
            "label": "person",
            "score": 0.875,
            "center_x": 1920.25,
            "center_y": 1080.5,
            "size_x": 12.75,
            "size_y": 30.125,
            "patch_index": 3,
            "patch_scale": 0,
            "track_id": "",
        },
        {
            "class_id": 2,
            "label": "car",
            "score": 0.5,
            "center_x": 3500.0,
            "center_y": 200.0625,
            "size_x": 640.5,
            "size_y": 320.25,
            "patch_index": -1,
            "patch_scale": -1,
            "track_id": "track-42",
        },
        {
            "class_id": 7,
            "label": "traffic light \u00e4",
            "score": 0.0625,
            "center_x": 0.5,
            "center_y": 2159.5,
            "size_x": 1.0,
            "size_y": 2.0,
            "patch_index": 15,
            "patch_scale": 1,
            "track_id": "7f3c",
        },
    ],
}


def _receive_one(context: Context, topic: str, timeout_s: float) -> Any:
    """Spin a subscriber node until one DetectionArray arrives on topic, or return None."""
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy

    from pdn_msgs.msg import DetectionArray

    received: list[DetectionArray] = []
    node = Node("pdn_test_subscriber", context=context)
    qos = QoSProfile(
        depth=10,
        reliability=QoSReliabilityPolicy.RELIABLE,
        durability=QoSDurabilityPolicy.VOLATILE,
    )
    node.create_subscription(DetectionArray, topic, received.append, qos)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        deadline = time.monotonic() + timeout_s
        while not received and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
    finally:
        executor.shutdown()
        node.destroy_node()
    return received[0] if received else None


def test_detection_array_round_trip_across_processes(ros_context: Context) -> None:
    """A DetectionArray published by another process arrives with every field intact."""
    topic = f"/pdn_test_detections_{uuid.uuid4().hex[:12]}"
    publisher = subprocess.Popen(
        [sys.executable, str(HELPER), topic, str(PUBLISHER_TIMEOUT_S), json.dumps(EXPECTED)],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        msg = _receive_one(ros_context, topic, RECEIVE_TIMEOUT_S)
        if msg is None:
            publisher.kill()
            output, _ = publisher.communicate(timeout=10)
            raise AssertionError(
                f"no DetectionArray within {RECEIVE_TIMEOUT_S} s; publisher exit code "
                f"{publisher.returncode}, output:\n{output}"
            )
    finally:
        if publisher.poll() is None:
            publisher.terminate()
            try:
                publisher.wait(timeout=10)
            except subprocess.TimeoutExpired:
                publisher.kill()
                publisher.wait(timeout=10)
        if publisher.stdout is not None:
            publisher.stdout.close()

    assert [msg.header.stamp.sec, msg.header.stamp.nanosec] == EXPECTED["stamp"]
    assert msg.header.frame_id == EXPECTED["frame_id"]
    assert len(msg.detections) == len(EXPECTED["detections"])
    for index, (det, fields) in enumerate(zip(msg.detections, EXPECTED["detections"], strict=True)):
        for name, value in fields.items():
            assert getattr(det, name) == value, f"detections[{index}].{name}"
