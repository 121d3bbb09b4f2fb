"""pdn-bag-play publishes every message of a short bag, in order and byte-exact, to a
subscriber in another process (over the SHM-only DDS profile)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from rclpy.context import Context

from training.rosbag_io import GROUND_TRUTH_TOPIC, IMAGE_TOPIC, frame_stamp_ns
from training.synth_cli import main as synth_main

FRAMES, FPS = 6, 15.0
RECEIVE_TIMEOUT_S = 60.0


@pytest.fixture(scope="module")
def bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A six-frame raw-image bag written by pdn-synth."""
    folder = tmp_path_factory.mktemp("playbag")
    args = ["--out", str(folder / "data"), "--frames", str(FRAMES), "--height", "256"]
    args += ["--width", "384", "--seed", "5", "--fps", str(FPS), "--bag", str(folder / "bag")]
    assert synth_main(args) == 0
    return folder / "bag"


def _player(bag: Path, *extra: str) -> subprocess.Popen[str]:
    """Start pdn-bag-play in its own process with this session's DDS environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "pdn_ros.tools.bag_play", str(bag), *extra],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def test_player_delivers_every_frame_in_order(ros_context: Context, bag: Path) -> None:
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.node import Node
    from rclpy.qos import QoSProfile, QoSReliabilityPolicy
    from sensor_msgs.msg import Image

    from pdn_msgs.msg import DetectionArray

    node = Node(f"pdn_test_bag_play_{uuid.uuid4().hex[:8]}", context=ros_context)
    qos = QoSProfile(depth=FRAMES, reliability=QoSReliabilityPolicy.RELIABLE)
    images: list[Image] = []
    truths: list[DetectionArray] = []
    arrivals: list[float] = []
    node.create_subscription(
        Image, IMAGE_TOPIC, lambda m: (images.append(m), arrivals.append(time.monotonic())), qos
    )
    node.create_subscription(DetectionArray, GROUND_TRUTH_TOPIC, truths.append, qos)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(node)
    player = _player(bag, "--wait-for", IMAGE_TOPIC, GROUND_TRUTH_TOPIC)
    try:
        deadline = time.monotonic() + RECEIVE_TIMEOUT_S
        while (len(images) < FRAMES or len(truths) < FRAMES) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.05)
        output, _ = player.communicate(timeout=30)
    finally:
        if player.poll() is None:
            player.kill()
            player.communicate()
        executor.shutdown()
        node.destroy_node()
    assert player.returncode == 0, output
    assert "published 18 messages on 3 topics" in output
    expected = [frame_stamp_ns(i, FPS) for i in range(FRAMES)]
    got = [m.header.stamp.sec * 1_000_000_000 + m.header.stamp.nanosec for m in images]
    assert got == expected
    assert [t.header.stamp.sec * 1_000_000_000 + t.header.stamp.nanosec for t in truths] == expected
    assert all(m.encoding == "rgb8" and len(m.data) == 256 * 384 * 3 for m in images)
    # recorded timing: 15 Hz, so the six frames span about 5/15 s
    assert arrivals[-1] - arrivals[0] > 0.8 * (FRAMES - 1) / FPS


def test_player_refuses_unknown_topics_and_bad_rates(bag: Path) -> None:
    for extra, message in (
        (["--topics", "/nope"], "not in the bag"),
        (["--rate", "0"], "--rate must be positive"),
    ):
        player = _player(bag, *extra)
        output, _ = player.communicate(timeout=60)
        assert player.returncode == 2 and message in output, output
