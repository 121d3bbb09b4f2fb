"""pdn-bench node: the transport reference process and the report's reading of the floor."""

from __future__ import annotations

from typing import Any

import numpy as np
from node_support import raw_message, spin_until

from pdn_bench.node_report import report_stem, where_time_goes


def results(
    transport_ms: float, model_ms: float, latency_ms: float, rate: float = 15.0
) -> dict[str, Any]:
    """The parts of a results dict that where_time_goes reads."""
    return {
        "node_p50_ms": {"transport": 30.0, "wait": 10.0, "convert": 3.0, "inference": 80.0},
        "rate_hz": rate,
        "processed_hz": 11.0,
        "model_alone_p50_ms": model_ms,
        "transport_alone": {"median_ms": transport_ms},
        "latency": {"median_ms": latency_ms},
        "targets": {"latency": (latency_ms, model_ms + 20.0)},
    }


def test_report_says_when_transport_and_model_alone_exceed_the_limit() -> None:
    text = where_time_goes(results(transport_ms=25.0, model_ms=66.0, latency_ms=150.0))
    assert "come to 91 ms, 5 ms above the latency limit of 86 ms" in text
    assert "the node adds 59 ms to that." in text
    assert "processes 11.0 of 15 frames per second and drops the rest" in text


def test_report_gives_the_node_share_when_the_floor_is_below_the_limit() -> None:
    text = where_time_goes(results(transport_ms=5.0, model_ms=66.0, latency_ms=80.0, rate=10.0))
    assert "come to 71 ms; the node adds 9 ms to that." in text
    assert "so it keeps up with the camera." in text


def test_reports_at_other_rates_do_not_replace_the_15_hz_one() -> None:
    assert report_stem(15.0) == "bench_node"
    assert report_stem(10.0) == "bench_node_10hz"
    assert report_stem(7.5) == "bench_node_7.5hz"


def test_echo_sends_each_image_header_back(ros_context: Any) -> None:
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from pdn_bench.echo import ECHO_TOPIC, IMAGE_TOPIC, Echo

    echo = Echo(context=ros_context)
    probe = Node("echo_probe", context=ros_context)
    got: list[Header] = []
    probe.create_subscription(Header, ECHO_TOPIC, got.append, 10)
    camera = probe.create_publisher(Image, IMAGE_TOPIC, qos_profile_sensor_data)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(echo)
    executor.add_node(probe)
    try:
        assert spin_until(executor, lambda: camera.get_subscription_count() > 0)
        pixels = np.zeros((4, 6, 3), np.uint8)
        for count, stamp_ns in enumerate((1_000_000_123, 2_000_000_456), start=1):
            camera.publish(raw_message(pixels, "rgb8", stamp_ns))
            assert spin_until(executor, lambda count=count: len(got) == count)
    finally:
        executor.shutdown()
        echo.close()
        probe.destroy_node()
    assert [(h.stamp.sec, h.stamp.nanosec, h.frame_id) for h in got] == [
        (1, 123, "test_optical_frame"),
        (2, 456, "test_optical_frame"),
    ]
