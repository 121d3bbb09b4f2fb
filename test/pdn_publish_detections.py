"""Helper process for test_msgs_cross_process: publish one pdn_msgs/DetectionArray repeatedly.

Usage: python pdn_publish_detections.py TOPIC TIMEOUT_S JSON

JSON holds {"stamp": [sec, nanosec], "frame_id": str, "detections": [{field: value}, ...]}.
Publishes every 50 ms until TIMEOUT_S seconds have passed, then exits on its own.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any

import rclpy
from rclpy.qos import QoSDurabilityPolicy, QoSProfile, QoSReliabilityPolicy

from pdn_msgs.msg import Detection, DetectionArray


def build_message(spec: dict[str, Any]) -> DetectionArray:
    """Build the DetectionArray described by the JSON spec."""
    msg = DetectionArray()
    msg.header.stamp.sec, msg.header.stamp.nanosec = spec["stamp"]
    msg.header.frame_id = spec["frame_id"]
    for fields in spec["detections"]:
        det = Detection()
        for name, value in fields.items():
            if not hasattr(det, name):
                raise AttributeError(f"pdn_msgs/Detection has no field {name!r}")
            setattr(det, name, value)
        msg.detections.append(det)
    return msg


def main(argv: list[str]) -> int:
    """Publish until the timeout; return the process exit code."""
    if not os.environ.get("FASTDDS_DEFAULT_PROFILES_FILE"):
        print("refusing to start: FASTDDS_DEFAULT_PROFILES_FILE is not set", file=sys.stderr)
        return 2
    topic, timeout_s, spec = argv[1], float(argv[2]), json.loads(argv[3])
    msg = build_message(spec)
    rclpy.init()
    node = rclpy.create_node("pdn_test_publisher")
    qos = QoSProfile(
        depth=10,
        reliability=QoSReliabilityPolicy.RELIABLE,
        durability=QoSDurabilityPolicy.VOLATILE,
    )
    pub = node.create_publisher(DetectionArray, topic, qos)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            pub.publish(msg)
            time.sleep(0.05)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
