"""`pdn-bag-play`: publish a rosbag2 bag's topics over ROS 2 with the recorded timing.

For systems without `ros2 bag`; with `--measure` it also subscribes to the node's detections
and /diagnostics and reports the node's drops and stamp-to-detection latency.

Messages go out as the bag's own serialized CDR bytes (`Publisher.publish(bytes)`, rclpy's
raw publishing): nothing is deserialized or serialized again, so the replay is byte-exact
and a 4K frame costs no ~3.5 ms round trip through Python objects. The publisher's type
comes from the installed ROS interfaces (`pkg/msg/Name` -> `pkg.msg.Name`), and the first
message of every topic is deserialized once with `rclpy.serialization` into that class, so a
bag whose types differ from this installation is refused instead of sending garbage.
See docs/bag_evaluation.md.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import threading
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.duration import Duration
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import QoSDurabilityPolicy, QoSHistoryPolicy, QoSProfile, QoSReliabilityPolicy
from rclpy.serialization import deserialize_message

from pdn_msgs.msg import DetectionArray
from pdn_ros.messages import stamp_ns
from pdn_ros.tools.bag_reader import IMAGE_TYPES, Bag, BagReadError, Message, open_bag
from pdn_runtime.timing import percentiles_ms
from training.rosbag_io import typestore

MAX_DEFAULT_DEPTH = 100  # default history depth: the topic's message count, at most this
DIAGNOSTIC_KEYS = (
    "received",
    "processed",
    "dropped",
    "bad_frames",
    "resets",
    "inference_p50_ms",
    "inference_p99_ms",
)


class PlayError(RuntimeError):
    """The bag cannot be played (unknown type, type mismatch, no subscriber in time)."""


def message_class(msgtype: str) -> type:
    """The installed rclpy class of a type name like 'sensor_msgs/msg/Image'."""
    package, kind, name = msgtype.split("/")
    try:
        return getattr(importlib.import_module(f"{package}.{kind}"), name)
    except (ImportError, AttributeError) as err:
        raise PlayError(
            f"type {msgtype} is not installed here ({err}); source the workspace that "
            "provides it (source install/setup.bash for pdn_msgs)"
        ) from err


def publisher_qos(depth: int, best_effort: bool) -> QoSProfile:
    """Reliable (or best-effort) keep-last `depth`, volatile: a live camera's durability, so
    any subscriber matches, and deep enough that a reliable subscriber misses no message."""
    return QoSProfile(
        history=QoSHistoryPolicy.KEEP_LAST,
        depth=depth,
        reliability=QoSReliabilityPolicy.BEST_EFFORT
        if best_effort
        else QoSReliabilityPolicy.RELIABLE,
        durability=QoSDurabilityPolicy.VOLATILE,
    )


@dataclass
class Measurement:
    """Publish times of the image stamps and the detections that came back for them."""

    published: dict[int, float] = field(default_factory=dict)  # stamp -> monotonic time
    frames: int = 0
    latencies_s: list[float] = field(default_factory=list)
    answered: set[int] = field(default_factory=set)
    unknown: int = 0  # detections for a stamp this player did not publish
    diagnostics: dict[str, dict[str, str]] = field(default_factory=dict)
    diagnostics_at: float = 0.0  # monotonic time of the latest node diagnostics
    lock: threading.Lock = field(default_factory=threading.Lock)

    def sent(self, stamp: int) -> None:
        """An image with this header stamp is being published now."""
        with self.lock:
            self.published[stamp] = time.monotonic()
            self.frames += 1

    def on_detections(self, msg: DetectionArray) -> None:
        """Detections arrived: stamp-to-detection latency from this image's publication."""
        now = time.monotonic()
        stamp = stamp_ns(msg.header)
        with self.lock:
            if stamp not in self.published:
                self.unknown += 1
                return
            self.latencies_s.append(now - self.published[stamp])
            self.answered.add(stamp)

    def on_diagnostics(self, msg: DiagnosticArray) -> None:
        """Keep the latest values of each status that reports frame counters (the node's)."""
        with self.lock:
            for status in msg.status:
                values = {kv.key: kv.value for kv in status.values}
                if "dropped" in values:
                    self.diagnostics[status.name] = values
                    self.diagnostics_at = time.monotonic()

    def summary(self) -> dict[str, Any]:
        """Frames published, answered, missing, latency percentiles and the node's counters."""
        with self.lock:
            p50, p99 = percentiles_ms(self.latencies_s)
            return {
                "frames_published": self.frames,
                "detections_received": len(self.latencies_s),
                "frames_without_detections": self.frames - len(self.latencies_s),
                "latency_ms_p50": p50,
                "latency_ms_p99": p99,
                "detections_for_unknown_stamps": self.unknown,
                "node_diagnostics": {
                    name: {k: values[k] for k in DIAGNOSTIC_KEYS if k in values}
                    for name, values in self.diagnostics.items()
                },
            }


class Player:
    """Publishers of a bag's topics and the timed loop that feeds them."""

    def __init__(
        self, node: Node, bag: Bag, topics: Sequence[str], depth: int | None, best_effort: bool
    ) -> None:
        self.bag = bag
        self.topics = list(topics)
        self.publishers: dict[str, Publisher] = {}
        self.checked: set[str] = set()
        for topic in self.topics:
            msgtype = bag.topics[topic]
            topic_depth = depth or min(bag.count(topic) or MAX_DEFAULT_DEPTH, MAX_DEFAULT_DEPTH)
            self.publishers[topic] = node.create_publisher(
                message_class(msgtype), topic, publisher_qos(max(topic_depth, 1), best_effort)
            )

    def wait_for_subscribers(self, topics: Sequence[str], timeout_s: float) -> None:
        """Block until each of `topics` has a matched subscription, or PlayError."""
        deadline = time.monotonic() + timeout_s
        while missing := [t for t in topics if not self.publishers[t].get_subscription_count()]:
            if time.monotonic() > deadline:
                raise PlayError(f"no subscriber on {missing} within {timeout_s:.0f} s")
            time.sleep(0.05)

    def wait_for_acks(self, timeout_s: float) -> bool:
        """Wait until reliable subscribers have acknowledged everything published (so that
        exiting right after the last message loses none); False on timeout."""
        timeout = Duration(nanoseconds=round(timeout_s * 1e9))
        return all(p.wait_for_all_acked(timeout) for p in self.publishers.values())

    def _check(self, message: Message) -> None:
        """Deserialize a topic's first message with the installed class, or PlayError."""
        if message.topic in self.checked:
            return
        try:
            deserialize_message(message.raw, self.publishers[message.topic].msg_type)
        except Exception as err:  # rclpy raises several kinds for bytes of another layout
            raise PlayError(
                f"{message.topic}: the recorded {message.msgtype} does not deserialize as this "
                f"installation's type ({type(err).__name__}: {err}); not publishing it"
            ) from err
        self.checked.add(message.topic)

    def play(
        self, rate: float, loop: bool, image_topic: str | None, measure: Measurement | None
    ) -> int:
        """Publish every message at its recorded time divided by `rate` (again and again with
        `loop`); returns the number of messages published."""
        store = typestore()
        published, start_wall, offset_ns = 0, time.monotonic(), None
        while True:
            first = last = None
            in_pass = 0
            for message in self.bag.messages(self.topics):
                in_pass += 1
                if first is None:
                    first = message.log_time_ns
                    if offset_ns is None:
                        offset_ns = first
                last = message.log_time_ns
                due = start_wall + (message.log_time_ns - offset_ns) / 1e9 / rate
                time.sleep(max(0.0, due - time.monotonic()))
                self._check(message)
                if measure is not None and message.topic == image_topic:
                    header = store.deserialize_cdr(message.raw, message.msgtype).header
                    measure.sent(stamp_ns(header))  # latency counts from just before publish
                self.publishers[message.topic].publish(message.raw)
                published += 1
            if not loop or first is None:
                return published
            # the next pass starts one mean message interval after this one ended
            offset_ns -= last - first + (last - first) // max(in_pass - 1, 1)


def _parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="pdn-bag-play", description=__doc__.splitlines()[0])
    parser.add_argument("bag", type=Path, help="rosbag2 folder, or one .mcap / .db3 file")
    parser.add_argument("--rate", type=float, default=1.0, help="speed factor (default 1)")
    parser.add_argument("--loop", action="store_true", help="start again at the end")
    parser.add_argument("--topics", nargs="+", help="topics to publish (default: all)")
    parser.add_argument(
        "--qos-depth",
        type=int,
        help="history depth (default: the topic's message count in "
        f"the bag, at most {MAX_DEFAULT_DEPTH})",
    )
    parser.add_argument(
        "--best-effort", action="store_true", help="publish best effort instead of reliable"
    )
    parser.add_argument(
        "--wait-for",
        nargs="+",
        default=[],
        metavar="TOPIC",
        help="wait until these topics have a subscriber before playing",
    )
    parser.add_argument("--wait-timeout", type=float, default=30.0, help="seconds (default 30)")
    parser.add_argument(
        "--measure",
        action="store_true",
        help="subscribe to the node's detections and /diagnostics and report drops and latency",
    )
    parser.add_argument(
        "--image-topic",
        help="with --measure: the image topic whose stamps "
        "are matched (default: the bag's only one)",
    )
    parser.add_argument(
        "--detections-topic",
        default="/camera/detections",
        help="with --measure (default /camera/detections)",
    )
    parser.add_argument(
        "--drain-s",
        type=float,
        default=3.0,
        help="with --measure: wait this "
        "long after the last message for late detections (default 3)",
    )
    return parser


def _validate(args: argparse.Namespace, bag: Bag) -> list[str]:
    """The topics to play; PlayError for a rate, topic or depth that cannot work."""
    if args.rate <= 0:
        raise PlayError(f"--rate must be positive, got {args.rate}")
    if args.qos_depth is not None and args.qos_depth < 1:
        raise PlayError(f"--qos-depth must be at least 1, got {args.qos_depth}")
    topics = args.topics or sorted(bag.topics)
    unknown = [t for t in topics if t not in bag.topics]
    if unknown:
        raise PlayError(f"{unknown} not in the bag; its topics: {sorted(bag.topics)}")
    unplayed = [t for t in args.wait_for if t not in topics]
    if unplayed:
        raise PlayError(f"--wait-for {unplayed}: not among the played topics {topics}")
    return topics


def _run(args: argparse.Namespace, node: Node, bag: Bag) -> int:
    """Play the bag (and measure); 0 when it played to the end, 1 when it broke off."""
    topics = _validate(args, bag)
    player = Player(node, bag, topics, args.qos_depth, args.best_effort)
    measure, image_topic, wait_for = None, None, list(args.wait_for)
    if args.measure:
        image_topic = bag.topic_of_type(IMAGE_TYPES, args.image_topic, "image")
        if image_topic not in topics:
            raise PlayError(f"--measure: the image topic {image_topic} is not played")
        measure = Measurement()
        node.create_subscription(
            DetectionArray,
            args.detections_topic,
            measure.on_detections,
            publisher_qos(MAX_DEFAULT_DEPTH, best_effort=False),
        )
        node.create_subscription(DiagnosticArray, "/diagnostics", measure.on_diagnostics, 10)
        wait_for = wait_for or [image_topic]
    player.wait_for_subscribers(wait_for, args.wait_timeout)
    start, status = time.monotonic(), 0
    try:
        count = player.play(args.rate, args.loop, image_topic, measure)
        print(
            f"pdn-bag-play: published {count} messages on {len(topics)} topics in "
            f"{time.monotonic() - start:.1f} s (rate {args.rate})",
            file=sys.stderr,
        )
    except BagReadError as err:
        print(f"pdn-bag-play: {err}", file=sys.stderr)
        status = 1
    if not player.wait_for_acks(args.wait_timeout):
        print("pdn-bag-play: some subscriber did not acknowledge every message", file=sys.stderr)
    if measure is not None:
        # wait for the last detections, then for diagnostics that were sent after them
        deadline = time.monotonic() + args.drain_s
        while time.monotonic() < deadline and len(measure.answered) < len(measure.published):
            time.sleep(0.05)
        answered_at = time.monotonic()
        while time.monotonic() < deadline and measure.diagnostics_at < answered_at:
            time.sleep(0.05)
        print(json.dumps(measure.summary(), indent=2, allow_nan=True))
    return status


def main(argv: list[str] | None = None) -> int:
    """Run pdn-bag-play: 0 played, 1 the bag broke off while playing, 2 cannot play."""
    args = _parser().parse_args(sys.argv[1:] if argv is None else argv)
    rclpy.init()
    node = rclpy.create_node("pdn_bag_play")
    executor = SingleThreadedExecutor()
    executor.add_node(node)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    try:
        with ExitStack() as stack:
            return _run(args, node, open_bag(args.bag, stack))
    except (PlayError, BagReadError) as err:
        print(f"pdn-bag-play: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    finally:
        executor.shutdown()
        spinner.join()
        node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    sys.exit(main())
