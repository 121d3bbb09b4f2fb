"""`python -m pdn_bench.echo`: the transport reference of `pdn-bench node`.

It subscribes to the benchmark's images as pdn_node does (same message type, sensor-data QoS,
same allocator setting) and publishes each image's header straight back, so the time from
the stamp to the echo is what moving one frame costs before any conversion or inference.
"""

from __future__ import annotations

import sys
from typing import Any

from rclpy.node import Node
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import Image
from std_msgs.msg import Header

from pdn_ros.allocator import keep_large_buffers
from pdn_ros.spin import run_node

NODE_NAME = "pdn_bench_echo"
IMAGE_TOPIC = "bench/image"
ECHO_TOPIC = "bench/echo"


class Echo(Node):
    """Image in, its header out; the image subscription has pdn_node's default QoS (best
    effort, depth 1)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        echo = self.create_publisher(
            Header, ECHO_TOPIC, QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)
        )
        self.create_subscription(
            Image,
            IMAGE_TOPIC,
            lambda msg: echo.publish(msg.header),
            QoSProfile(depth=1, reliability=QoSReliabilityPolicy.BEST_EFFORT),
        )

    def close(self) -> None:
        """Destroy the node."""
        self.destroy_node()


def main() -> int:
    """Echo until stopped."""
    keep_large_buffers()
    return run_node(NODE_NAME, Echo, ())


if __name__ == "__main__":
    sys.exit(main())
