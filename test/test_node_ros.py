"""pdn_node in this process, on the tiny model, with publishers and subscribers in the same
ROS context: bad frames are counted and skipped, the temporal state resets on a time jump
and a gap, bad parameter values are refused, incompatible QoS is reported, two cameras run
as one batch, markers follow CameraInfo, the debug image is made only for a subscriber, and
the node refuses to start with a clear error. Two cameras get what batch-1 runs give them
(batch-1 and batch-2 models), the QoS-mismatch log names the fix, and max_detections,
debug_image off and the counting of dropped frames hold at node level."""

from __future__ import annotations

import subprocess
import sys
import threading
from array import array
from typing import Any

import cv2
import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from node_support import (
    TINY_SIZE,
    diagnostics_values,
    installed,
    make_node,
    raw_message,
    spin_until,
)
from rclpy.event_handler import PublisherEventCallbacks
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from visualization_msgs.msg import MarkerArray

from pdn_msgs.msg import DetectionArray
from pdn_ros.markers import project
from pdn_ros.node import StartupError
from pdn_runtime import BackendError, FrameMark, StreamPolicy, StreamRunner, create_backend
from pdn_runtime.boxes import xyxy_to_center_size
from training.rosbag_io import pinhole_matrix

H, W = TINY_SIZE
S = 1_000_000_000
T0 = 1_700_000_000 * S
RELIABLE = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from node_support import tiny_onnx

    return tiny_onnx(tmp_path_factory)


class Rig:
    """A node under test plus a helper node with publishers and recorders, one executor."""

    def __init__(self, context: Any, model: Any, **parameters: Any) -> None:
        self.node = make_node(context, model, **parameters)
        self.helper = Node("pdn_test_rig", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.executor.add_node(self.helper)
        self.received: dict[str, list[Any]] = {}

    def record(self, msg_type: type, topic: str) -> list[Any]:
        """Collect every message on `topic`."""
        store = self.received.setdefault(topic, [])
        self.helper.create_subscription(msg_type, topic, store.append, RELIABLE)
        return store

    def publisher(self, msg_type: type, topic: str, qos: QoSProfile = RELIABLE) -> Any:
        """A publisher, once the node's subscription has matched it."""
        pub = self.helper.create_publisher(msg_type, topic, qos)
        assert spin_until(self.executor, lambda: pub.get_subscription_count() > 0)
        return pub

    def spin_until(self, done: Any, timeout_s: float = 10.0) -> bool:
        """Spin both nodes until `done()`."""
        return spin_until(self.executor, done, timeout_s)

    def close(self) -> None:
        """Stop the node's workers and destroy everything."""
        self.executor.shutdown()
        self.node.close()
        self.helper.destroy_node()


@pytest.fixture
def rig_factory(ros_context):
    rigs: list[Rig] = []

    def build(model: Any, **parameters: Any) -> Rig:
        rigs.append(Rig(ros_context, model, **parameters))
        return rigs[-1]

    yield build
    for rig in rigs:
        rig.close()


def frame(seed: int, height: int = H, width: int = W) -> np.ndarray:
    """A random RGB frame."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def stamps(messages: list[Any]) -> list[int]:
    """Header stamps in nanoseconds."""
    return [m.header.stamp.sec * S + m.header.stamp.nanosec for m in messages]


def test_every_bad_raw_frame_is_counted_and_skipped_and_the_next_good_one_processed(
    rig_factory, tiny
):
    rig = rig_factory(tiny, score_threshold=0.0)
    detections = rig.record(DetectionArray, "camera/detections")
    diagnostics = rig.record(DiagnosticArray, "/diagnostics")
    pub = rig.publisher(Image, "camera/image")
    stats = rig.node.cameras[0].stats
    good = frame(0)
    unknown = raw_message(good, "rgb8", T0)
    unknown.encoding = "yuv422"
    zero = raw_message(good, "rgb8", T0)
    zero.height, zero.step, zero.data = 0, 0, array("B")
    wrong_step = raw_message(good, "rgb8", T0)
    wrong_step.step = 3 * W - 3
    truncated = raw_message(good, "rgb8", T0)
    truncated.data = truncated.data[:-100]
    wrong_size = raw_message(frame(1, H // 2, W // 2), "rgb8", T0)
    bad = {
        "encoding": unknown,
        "size": zero,
        "step": wrong_step,
        "truncated": truncated,
        "resolution": wrong_size,
    }
    for count, (kind, msg) in enumerate(bad.items(), start=1):
        pub.publish(msg)
        assert rig.spin_until(lambda c=count: stats.counts["bad_frames"] == c), kind
        assert stats.bad[kind] == 1
    pub.publish(raw_message(good, "bgr8", T0 + S // 10))
    assert rig.spin_until(lambda: len(detections) == 1)
    assert stamps(detections) == [T0 + S // 10]
    assert detections[0].header.frame_id == "test_optical_frame"
    assert len(detections[0].detections) > 0
    diagnostics.clear()
    assert rig.spin_until(lambda: len(diagnostics) > 0, timeout_s=3.0)
    values = diagnostics_values(diagnostics, "camera")
    assert values["bad_frames"] == "5" and values["processed"] == "1"
    assert all(values[f"bad_{kind}"] == "1" for kind in bad)
    assert values["model_size"] == f"{W}x{H}" and "onnxruntime" in values["backend"]


def jpeg_message(pixels: np.ndarray, stamp_ns: int, cut: int = 0) -> CompressedImage:
    """A JPEG CompressedImage, optionally with its last `cut` bytes missing."""
    ok, data = cv2.imencode(".jpg", cv2.cvtColor(pixels, cv2.COLOR_RGB2BGR))
    assert ok
    payload = array("B")
    payload.frombytes(data.tobytes()[: len(data) - cut])
    msg = CompressedImage(format="jpeg", data=payload)
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, S)
    return msg


def test_bad_compressed_frames_are_skipped_and_the_next_good_one_processed(rig_factory, tiny):
    rig = rig_factory(tiny, transport="compressed")
    detections = rig.record(DetectionArray, "camera/detections")
    pub = rig.publisher(CompressedImage, "camera/image/compressed")
    stats = rig.node.cameras[0].stats
    corrupt = jpeg_message(frame(2), T0)
    corrupt.data = corrupt.data[:8] + array("B", bytes(len(corrupt.data) - 20)) + corrupt.data[-12:]
    for count, msg in enumerate(
        [jpeg_message(frame(2), T0, cut=200), corrupt, jpeg_message(frame(3, 96, 160), T0)], 1
    ):
        pub.publish(msg)
        assert rig.spin_until(lambda c=count: stats.counts["bad_frames"] == c)
    assert (stats.bad["truncated"], stats.bad["corrupt"], stats.bad["resolution"]) == (1, 1, 1)
    pub.publish(jpeg_message(frame(4), T0 + S // 10))
    assert rig.spin_until(lambda: len(detections) == 1)
    assert stamps(detections) == [T0 + S // 10]


def test_time_going_backwards_and_a_long_gap_reset_the_temporal_state(rig_factory, tiny):
    rig = rig_factory(tiny, reset_gap_s=0.5, frame_id="{camera}_frame")
    detections = rig.record(DetectionArray, "camera/detections")
    pub = rig.publisher(Image, "camera/image")
    stats, stream = rig.node.cameras[0].stats, rig.node.streams[0]
    sequence = [T0, T0 + S // 10, T0 + 2 * S // 10, T0 - 5 * S, T0 - 5 * S + S // 10, T0 + 9 * S]
    valid = []
    for i, stamp in enumerate(sequence):
        pub.publish(raw_message(frame(i), "rgb8", stamp))
        assert rig.spin_until(lambda n=i + 1: len(detections) == n)
        valid.append(int(stream.state.memory_valid.sum()))
    assert valid == [1, 2, 3, 1, 2, 1]
    assert {d.header.frame_id for d in detections} == {"camera_frame"}
    assert (stats.reset_reasons["time_backwards"], stats.reset_reasons["gap"]) == (1, 1)
    assert stats.counts["resets"] == 2


def test_bad_parameter_values_are_refused_with_a_reason_and_the_old_value_stays(rig_factory, tiny):
    rig = rig_factory(tiny)
    node = rig.node
    refused = {
        "score_threshold": (1.5, "out of range"),
        "memory_length": (9, "more than the model's 4 memory slots"),
        "transport": ("compressed", "clean up the node"),
        "debug_image_scale": (0.0, "out of range"),
    }
    for name, (value, reason) in refused.items():
        before = node.get_parameter(name).value
        (result,) = node.set_parameters([Parameter(name, value=value)])
        assert not result.successful and reason in result.reason, name
        assert node.get_parameter(name).value == before
    assert node.settings.score_threshold == pytest.approx(0.3)
    (result,) = node.set_parameters([Parameter("score_threshold", value=0.9)])
    assert result.successful and node.settings.score_threshold == pytest.approx(0.9)
    (result,) = node.set_parameters([Parameter("memory_length", value=0)])
    assert result.successful and node.settings.memory_length == 0
    detections = rig.record(DetectionArray, "camera/detections")
    pub = rig.publisher(Image, "camera/image")
    pub.publish(raw_message(frame(5), "rgb8", T0))
    assert rig.spin_until(lambda: len(detections) == 1)
    assert all(d.score >= 0.9 for d in detections[0].detections)
    assert not rig.node.streams[0].state.memory_valid.any()  # memory_length 0


class LogRecorder:
    """Stands in for a node's logger: records (level, message) and passes the call on."""

    def __init__(self, logger: Any) -> None:
        self.logger, self.lines = logger, []

    def __getattr__(self, level: str) -> Any:
        def log(message: str, **kwargs: Any) -> Any:
            self.lines.append((level, message))
            return getattr(self.logger, level)(message, **kwargs)

        return log


def test_an_incompatible_publisher_is_reported(rig_factory, tiny):
    rig = rig_factory(tiny, qos_reliability="reliable")
    log = LogRecorder(rig.node.get_logger())
    rig.node.get_logger = lambda: log
    stats = rig.node.cameras[0].stats
    diagnostics = rig.record(DiagnosticArray, "/diagnostics")
    best_effort = QoSProfile(depth=1, reliability=QoSReliabilityPolicy.BEST_EFFORT)
    quiet = PublisherEventCallbacks(incompatible_qos=lambda event: None)
    rig.helper.create_publisher(Image, "camera/image", best_effort, event_callbacks=quiet)
    assert rig.spin_until(lambda: stats.counts["qos_incompatible"] > 0)
    diagnostics.clear()
    assert rig.spin_until(lambda: len(diagnostics) > 0, timeout_s=3.0)
    status = diagnostics[-1].status[0]
    assert "incompatible QoS" in status.message and status.level == b"\x01"  # WARN
    assert (
        "error",
        "camera: a publisher on /camera/image has a QoS incompatible with this node's reliable "
        "subscription (offending policy: RELIABILITY). Nothing will arrive from it: set the "
        "qos_reliability parameter to match the publisher.",
    ) in log.lines


def expected_detections(
    model: Any, images: list[np.ndarray], stamps: list[int]
) -> tuple[StreamRunner, list[Any]]:
    """A batch-1 stream runner and what it finds in one camera's frames with the node's
    defaults (score_threshold 0, as the rigs below set it)."""
    runner = StreamRunner(create_backend("onnxruntime", model, device="cpu"))
    policy = StreamPolicy(max_detections=100)
    found = [
        runner.step(image.transpose(2, 0, 1)[None], policy, FrameMark(stamp, W, H))
        for image, stamp in zip(images, stamps, strict=True)
    ]
    return runner, found


@pytest.mark.parametrize("batch", [1, 2])
def test_two_cameras_get_what_batch_1_runs_give_them(rig_factory, tmp_path_factory, batch):
    from node_support import tiny_onnx

    rig = rig_factory(
        tiny_onnx(tmp_path_factory, batch=batch), cameras=["left", "right"], score_threshold=0.0
    )
    names = ("left", "right")
    found = {name: rig.record(DetectionArray, f"{name}/detections") for name in names}
    pubs = {name: rig.publisher(Image, f"{name}/image") for name in names}
    images = {"left": [frame(11), frame(12), frame(13)], "right": [frame(21), frame(22)]}
    times = [T0, T0 + S // 10, T0 + 2 * S // 10]
    for i, stamp in enumerate(times):
        for name in names:
            if i < len(images[name]):
                pubs[name].publish(raw_message(images[name][i], "rgb8", stamp))
        want = {name: min(i + 1, len(images[name])) for name in names}
        assert rig.spin_until(lambda w=want: all(len(found[n]) == w[n] for n in names))
    reference = tiny_onnx(tmp_path_factory, batch=1)
    for index, name in enumerate(names):
        runner, expected = expected_detections(reference, images[name], times[: len(images[name])])
        assert len(found[name]) == len(expected)
        for message, want in zip(found[name], expected, strict=True):
            got = np.array(
                [[d.center_x, d.center_y, d.size_x, d.size_y] for d in message.detections]
            )
            assert len(message.detections) == len(want.scores) > 0
            np.testing.assert_allclose(got, xyxy_to_center_size(want.boxes), atol=1e-3)
            np.testing.assert_allclose(
                [d.score for d in message.detections], want.scores, atol=1e-5
            )
        state, want_state = rig.node.streams[index].state, runner.streams[0].state
        for key, values in want_state.inputs().items():
            np.testing.assert_allclose(state.inputs()[key], values, atol=1e-5, err_msg=key)
        assert state.memory_valid.sum() == len(images[name])
    left, right = (rig.node.streams[i].state.memory for i in range(2))
    assert not np.allclose(left, right)


def test_max_detections_caps_each_message_at_the_best_ones(rig_factory, tiny):
    rig = rig_factory(tiny, score_threshold=0.0)
    detections = rig.record(DetectionArray, "camera/detections")
    pub = rig.publisher(Image, "camera/image")
    pub.publish(raw_message(frame(30), "rgb8", T0))
    assert rig.spin_until(lambda: len(detections) == 1)
    rig.node.set_parameters([Parameter("max_detections", Parameter.Type.INTEGER, 3)])
    pub.publish(raw_message(frame(30), "rgb8", T0 - 5 * S))  # time back: same state, same frame
    assert rig.spin_until(lambda: len(detections) == 2)
    everything, capped = ([d.score for d in m.detections] for m in detections)
    assert len(everything) > 3 and everything == sorted(everything, reverse=True)
    assert capped == everything[:3]


def test_track_ids_the_reset_service_and_the_class_filter(rig_factory, tiny):
    from std_srvs.srv import Trigger

    rig = rig_factory(tiny, score_threshold=0.0, max_detections=5, track_high_score=0.0)
    detections = rig.record(DetectionArray, "camera/detections")
    pub = rig.publisher(Image, "camera/image")

    def send(t: int) -> list[Any]:
        count = len(detections)
        pub.publish(raw_message(frame(40), "rgb8", T0 + t * S // 10))
        assert rig.spin_until(lambda: len(detections) == count + 1)
        return detections[-1].detections

    first, second = send(0), send(1)
    assert len(first) == 5 and all(d.track_id == "" for d in first)  # no id on a first frame
    tracked = [d.track_id for d in second if d.track_id]  # the same boxes, matched again
    assert len(tracked) >= 3 and len(set(tracked)) == len(tracked)
    assert all(i.isdigit() for i in tracked)

    client = rig.helper.create_client(Trigger, "camera/reset_state")
    assert rig.spin_until(client.service_is_ready)
    future = client.call_async(Trigger.Request())
    assert rig.spin_until(future.done) and future.result().success
    after_reset = send(2)
    assert all(d.track_id == "" for d in after_reset)  # tracks ended
    assert rig.node.streams[0].state.memory_valid.sum() == 1  # memory: only this frame
    assert not {d.track_id for d in send(3)} & set(tracked)  # new ids

    names = rig.node.backend.info.class_names
    kept = second[0].label
    (refused,) = rig.node.set_parameters([Parameter("publish_classes", value=f"{kept}, nope")])
    assert not refused.successful and ", ".join(names) in refused.reason
    other = next(name for name in names if name != kept)
    (result,) = rig.node.set_parameters([Parameter("publish_classes", value=other)])
    assert result.successful
    assert {d.label for d in send(4)} <= {other}  # kept's detections are left out
    rig.node.set_parameters([Parameter("publish_classes", value="")])
    assert any(d.track_id for d in send(5))
    rig.node.set_parameters([Parameter("tracking", value=False)])
    untracked = send(6)
    assert untracked and all(d.track_id == "" for d in untracked)


def test_no_debug_image_is_drawn_when_the_parameter_is_off(rig_factory, tiny, monkeypatch):
    import pdn_ros.node

    drawn = []
    monkeypatch.setattr(pdn_ros.node, "draw", lambda *a: drawn.append(1))
    rig = rig_factory(tiny, debug_image=False)
    detections = rig.record(DetectionArray, "camera/detections")
    debug = rig.record(Image, "camera/debug_image")
    assert rig.spin_until(lambda: rig.node.cameras[0].debug.get_subscription_count() > 0)
    pub = rig.publisher(Image, "camera/image")
    for i in range(2):
        pub.publish(raw_message(frame(40 + i), "rgb8", T0 + i * S // 10))
        assert rig.spin_until(lambda n=i + 1: len(detections) == n)
    rig.spin_until(lambda: bool(debug), timeout_s=0.5)
    assert drawn == [] and debug == []


def test_frames_replaced_in_the_slot_while_the_model_runs_count_as_dropped(rig_factory, tiny):
    rig = rig_factory(tiny)
    detections = rig.record(DetectionArray, "camera/detections")
    diagnostics = rig.record(DiagnosticArray, "/diagnostics")
    pub = rig.publisher(Image, "camera/image")
    running, release = threading.Event(), threading.Event()
    run = rig.node.backend.run

    def held_run(image: np.ndarray, **state: np.ndarray) -> dict[str, np.ndarray]:
        running.set()
        assert release.wait(20.0)
        return run(image, **state)

    rig.node.backend.run = held_run
    pub.publish(raw_message(frame(50), "rgb8", T0))
    assert rig.spin_until(running.is_set)  # the worker holds frame 1 in the model
    stats = rig.node.cameras[0].stats
    for i in range(1, 4):
        pub.publish(raw_message(frame(50 + i), "rgb8", T0 + i * S // 10))
        assert rig.spin_until(lambda n=i + 1: stats.counts["received"] == n)
    release.set()
    assert rig.spin_until(lambda: len(detections) == 2)
    assert stamps(detections) == [T0, T0 + 3 * S // 10]  # the newest frame, not 2 or 3
    assert stats.counts["dropped"] == 2 and stats.counts["processed"] == 2
    diagnostics.clear()
    assert rig.spin_until(lambda: len(diagnostics) > 0, timeout_s=3.0)
    values = diagnostics_values(diagnostics, "camera")
    assert (values["received"], values["dropped"], values["processed"]) == ("4", "2", "2")


def test_two_cameras_run_together_through_a_batch_2_model(rig_factory, tmp_path_factory):
    from node_support import tiny_onnx

    rig = rig_factory(tiny_onnx(tmp_path_factory, batch=2), cameras=["left", "right"])
    calls = []
    run = rig.node.backend.run
    rig.node.backend.run = lambda image, **state: calls.append(image.shape) or run(image, **state)
    left = rig.record(DetectionArray, "left/detections")
    right = rig.record(DetectionArray, "right/detections")
    pubs = [rig.publisher(Image, "left/image"), rig.publisher(Image, "right/image")]
    for pub, seed in zip(pubs, (6, 7), strict=True):
        pub.publish(raw_message(frame(seed), "rgb8", T0))
    assert rig.spin_until(lambda: len(left) == 1 and len(right) == 1)
    assert calls == [(2, 3, H, W)]
    pubs[1].publish(raw_message(frame(8), "rgb8", T0 + S // 10))  # alone: runs after the wait
    assert rig.spin_until(lambda: len(right) == 2)
    assert len(left) == 1 and len(calls) == 2
    assert stamps(right) == [T0, T0 + S // 10]


def test_markers_are_placed_with_camera_info_and_debug_image_is_made_for_subscribers(
    rig_factory, tiny, monkeypatch
):
    import pdn_ros.node

    drawn = []
    real_draw = pdn_ros.node.draw
    monkeypatch.setattr(pdn_ros.node, "draw", lambda *a: drawn.append(1) or real_draw(*a))
    rig = rig_factory(tiny, score_threshold=0.0)
    detections = rig.record(DetectionArray, "camera/detections")
    pub = rig.publisher(Image, "camera/image")
    pub.publish(raw_message(frame(9), "rgb8", T0))
    assert rig.spin_until(lambda: len(detections) == 1)
    assert drawn == []  # nobody watches the debug image
    k = pinhole_matrix(W, H)
    info_pub = rig.publisher(CameraInfo, "camera/camera_info")
    info_pub.publish(CameraInfo(width=W, height=H, k=k.reshape(-1).tolist()))
    assert rig.spin_until(lambda: rig.node.cameras[0].k is not None)
    markers = rig.record(MarkerArray, "camera/patch_markers")
    debug = rig.record(Image, "camera/debug_image")
    assert rig.spin_until(lambda: rig.node.cameras[0].debug.get_subscription_count() > 0)
    pub.publish(raw_message(frame(10), "rgb8", T0 + S // 10))
    assert rig.spin_until(lambda: len(detections) == 2 and markers and debug)
    assert drawn == [1]
    assert (debug[0].width, debug[0].height, debug[0].encoding) == (W // 4, H // 4, "rgb8")
    outline = next(m for m in markers[0].markers if m.ns == "detections" and m.id == 0)
    first = detections[1].detections[0]
    corner = project(k, np.array([[outline.points[0].x, outline.points[0].y, outline.points[0].z]]))
    np.testing.assert_allclose(
        corner[0] + 0.5,
        [first.center_x - first.size_x / 2, first.center_y - first.size_y / 2],
        atol=1e-4,
    )
    assert len([m for m in markers[0].markers if m.ns == "patches"]) == 5  # tiny model: 3 + 2


@pytest.mark.parametrize(
    ("parameters", "error", "message"),
    [
        ({"model_path": ""}, StartupError, "model_path is empty"),
        ({"model_path": "/nonexistent/model.onnx"}, BackendError, "model file not found"),
        ({"cameras": ["a", "b", "c"]}, StartupError, "batch 2 but the node has 3 cameras"),
        ({"memory_length": 7}, StartupError, "more than the model's 4 memory slots"),
    ],
)
def test_the_node_refuses_to_start_with_a_reason(
    ros_context, tmp_path_factory, parameters, error, message
):
    from node_support import tiny_onnx

    model = parameters.pop("model_path", tiny_onnx(tmp_path_factory, batch=2))
    with pytest.raises(error, match=message):
        make_node(ros_context, model, **parameters)


def test_the_installed_executable_exits_1_with_one_line_for_a_missing_model(tmp_path):
    text = tmp_path / "model.onnx"
    text.write_text("not a model")
    done = subprocess.run(
        [sys.executable, str(installed("pdn_node")), "--ros-args", "-p", f"model_path:={text}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "cannot start" in done.stderr and "is not an ONNX model" in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
