"""One pdn_node, cameras of several resolutions: `pdn-export --sizes` writes a tiny model per
size from one checkpoint; the node loads both (model_path lists them) and gives each camera
the model of its first frame's size. Cameras of one size share a batch; a camera whose size
no model takes is counted, logged and named in /diagnostics while the others go on, and gets
a model once its frames fit one; a missing model fails configure with its file named. Across
processes, two synthetic cameras of different sizes each get detections from one node.

The choice by size and the lanes are also tested without ROS on stand-in backends."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from node_support import (
    diagnostics_values,
    installed,
    make_node,
    raw_message,
    spin_until,
    start_logged,
    stop_logged,
)
from pdn_tiny import tiny_model
from rclpy.executors import SingleThreadedExecutor
from rclpy.lifecycle import TransitionCallbackReturn
from rclpy.node import Node
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import CompressedImage, Image

from pdn_model.checkpoint import save_checkpoint
from pdn_model.onnx_graph import read_metadata
from pdn_msgs.msg import DetectionArray
from pdn_ros.image_convert import BadFrame
from pdn_ros.launcher import node_parameters, parse_arguments, ros_args
from pdn_ros.node import StartupError
from pdn_ros.routing import LoadedModel, ModelSet, Router, model_paths
from pdn_runtime import (
    BackendError,
    FrameDetections,
    FrameMark,
    ModelInfo,
    Stream,
    StreamPolicy,
    StreamRunner,
    create_backend,
)
from pdn_runtime.boxes import xyxy_to_center_size
from pdn_runtime.export_cli import main as export_main

WIDE, SMALL, ODD = (320, 192), (256, 160), (200, 120)  # (width, height)
BATCH = 2
S = 1_000_000_000
T0 = 1_700_000_000 * S
RELIABLE = QoSProfile(depth=50, reliability=QoSReliabilityPolicy.RELIABLE)


# ---- the choice by size and the lanes, on stand-in backends --------------------------------


class StandIn:
    """A backend stand-in: just a ModelInfo (state shapes as small as can be)."""

    def __init__(self, size: tuple[int, int], batch: int = 1, classes: tuple[str, ...] = ("a",)):
        self.info = ModelInfo(
            height=size[1],
            width=size[0],
            batch=batch,
            class_names=classes,
            memory_shape=(2, 2, 3),
            controller_dim=5,
            output_shapes={},
        )

    def describe(self) -> str:
        return "stand-in"


def image(size: tuple[int, int], stamp_ns: int = T0, encoding: str = "rgb8") -> Image:
    """A black raw frame of `size` (width, height)."""
    msg = raw_message(np.zeros((size[1], size[0], 3), np.uint8), "rgb8", stamp_ns)
    msg.encoding = encoding
    return msg


def test_model_path_lists_models_separated_by_commas():
    assert model_paths("a.onnx") == ["a.onnx"]
    assert model_paths(" m/a-320x192.onnx, m/a-256x160.onnx ,") == [
        "m/a-320x192.onnx",
        "m/a-256x160.onnx",
    ]
    assert model_paths("") == [] and model_paths(" , ") == []


def test_the_launchers_pass_several_models_on_as_one_model_path():
    values = parse_arguments(["model:=m-1920x1080.onnx,m-3840x2160.onnx", "cameras:=side,front"])
    words = ros_args(None, node_parameters(values))
    assert words[words.index('model_path:="m-1920x1080.onnx,m-3840x2160.onnx"') - 1] == "-p"


def test_the_model_is_chosen_by_frame_size_and_a_size_without_model_is_refused():
    wide = LoadedModel("wide.onnx", StandIn(WIDE))
    small = LoadedModel("small.onnx", StandIn(SMALL))
    models = ModelSet([wide, small], cameras=2)
    assert models.pick(*WIDE) is wide and models.pick(*SMALL) is small
    with pytest.raises(BadFrame) as refused:
        models.pick(*ODD)
    assert refused.value.kind == "resolution" and refused.value.size == ODD
    assert str(refused.value) == (
        "image is 200x120 but no model takes that size (models: 320x192 batch 1 (wide.onnx), "
        "256x160 batch 1 (small.onnx)): export one from the same checkpoint "
        "(pdn-export --sizes 200x120) and add it to model_path"
    )


@pytest.mark.parametrize(
    ("models", "cameras", "reason"),
    [
        ([StandIn(WIDE), StandIn(WIDE)], 2, "both take 320x192 frames"),
        ([StandIn(WIDE), StandIn(SMALL, classes=("b",))], 2, "must come from one checkpoint"),
        ([StandIn(WIDE, batch=2)], 3, "batch 2 but the node has 3 cameras"),
        ([StandIn(WIDE), StandIn(SMALL, batch=3)], 2, "takes batch 3 but the node has 2"),
    ],
)
def test_models_that_do_not_form_one_set_are_refused_with_the_reason(models, cameras, reason):
    loaded = [LoadedModel(f"m{i}.onnx", backend) for i, backend in enumerate(models)]
    with pytest.raises(ValueError, match=reason):
        ModelSet(loaded, cameras)


def test_two_models_of_batch_2_with_three_cameras_are_one_set():
    loaded = [LoadedModel("w", StandIn(WIDE, batch=2)), LoadedModel("s", StandIn(SMALL))]
    assert ModelSet(loaded, cameras=3).info.batch == 2


def test_cameras_are_bound_on_their_first_fitting_frame_and_share_lanes_by_size():
    wide = LoadedModel("wide.onnx", StandIn(WIDE, batch=BATCH))
    small = LoadedModel("small.onnx", StandIn(SMALL))
    models = ModelSet([wide, small], cameras=5)
    streams = [Stream(models.info) for _ in range(5)]
    started = []
    router = Router(models, streams, started.append)
    first, row0 = router.route(0, image(WIDE))
    small_lane, small_row = router.route(1, image(SMALL))
    assert router.route(2, image(WIDE)) == (first, 1)  # same size: the free row of its batch
    third, row3 = router.route(3, image(WIDE))  # that batch is full: another lane
    assert (row0, small_row, row3) == (0, 0, 0)
    assert (first.model, small_lane.model, third.model) == (wide, small, wide)
    assert started == [first, small_lane, third]
    assert first.processor.cameras == [0, 2]
    assert first.processor.runner.streams[:2] == [streams[0], streams[2]]
    assert router.route(0, image(SMALL)) == (first, 0)  # bound: its later frames stay there
    assert router.model_of(0) is wide and router.model_of(1) is small

    with pytest.raises(BadFrame, match="image is 200x120 but no model") as refused:
        router.route(4, image(ODD, T0 + 5))
    assert refused.value.kind == "resolution" and router.model_of(4) is None
    assert streams[4].last == FrameMark(T0 + 5, *ODD)  # its next fitting frame: a new resolution
    with pytest.raises(BadFrame) as unreadable:
        router.route(4, image(SMALL, encoding="yuv9"))
    assert unreadable.value.kind == "encoding" and router.model_of(4) is None
    jpeg = CompressedImage(format="jpeg")  # the size of a compressed frame is read from its header
    jpeg.data.frombytes(_jpeg(SMALL))
    lane, row = router.route(4, jpeg)
    assert (lane.model, row, lane.processor.cameras) == (small, 0, [4])
    assert lane is not small_lane and router.lanes[-1] is lane  # batch 1: a lane per camera


def _jpeg(size: tuple[int, int]) -> bytes:
    """A grey JPEG of `size` (width, height)."""
    import cv2

    ok, data = cv2.imencode(".jpg", np.full((size[1], size[0], 3), 128, np.uint8))
    assert ok
    return data.tobytes()


# ---- the node, with real tiny models of two sizes ------------------------------------------


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> dict[tuple[int, int], Path]:
    """`pdn-export --sizes 320x192,256x160 --batch 2` from one tiny checkpoint: size -> file."""
    folder = tmp_path_factory.mktemp("multires")
    checkpoint = save_checkpoint(tiny_model(seed=1), folder / "tiny.pt")
    sizes = ",".join(f"{w}x{h}" for w, h in (WIDE, SMALL))
    out = folder / "tiny.onnx"
    argv = ["--checkpoint", str(checkpoint), "--sizes", sizes, "--batch", str(BATCH)]
    assert export_main([*argv, "--out", str(out)]) == 0
    paths = {size: folder / f"tiny-{size[0]}x{size[1]}.onnx" for size in (WIDE, SMALL)}
    for (width, height), path in paths.items():
        metadata = read_metadata(onnx.load(path))
        assert (metadata["input_size"], metadata["batch"]) == ([height, width], BATCH)
    return paths


def model_list(models: dict[tuple[int, int], Path]) -> str:
    """The model_path value naming both models."""
    return ",".join(str(models[size]) for size in (WIDE, SMALL))


def frame(seed: int, size: tuple[int, int]) -> np.ndarray:
    """A random RGB frame of `size` (width, height)."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)


def offline(model: Path, pixels: np.ndarray, stamp: int) -> FrameDetections:
    """What the model finds in a first frame in row 0, with the node's defaults at score
    threshold 0 (rows of a batch are independent)."""
    runner = StreamRunner(create_backend("onnxruntime", model, device="cpu"))
    policy = StreamPolicy(max_detections=100)
    runner.image[0] = pixels.transpose(2, 0, 1)
    runner.begin(0, FrameMark(stamp, pixels.shape[1], pixels.shape[0]), policy)
    return runner.run([0], policy)[0]


def assert_published(message: DetectionArray, want: FrameDetections) -> None:
    """The message holds exactly the detections `want` (centre and size, scores)."""
    got = np.array([[d.center_x, d.center_y, d.size_x, d.size_y] for d in message.detections])
    assert len(message.detections) == len(want.scores) > 0
    np.testing.assert_allclose(got, xyxy_to_center_size(want.boxes), atol=1e-3)
    np.testing.assert_allclose([d.score for d in message.detections], want.scores, atol=1e-5)


def counted(run: Any, calls: list[tuple[int, ...]]) -> Any:
    """`run` (a backend's), noting the image shape of every call in `calls`."""

    def wrapper(pixels: np.ndarray, **state: np.ndarray) -> dict[str, np.ndarray]:
        calls.append(pixels.shape)
        return run(pixels, **state)

    return wrapper


class Recorder:
    """Stands in for the node's logger: keeps (level, message) of every call, throttled or
    not (passing them on from one place would trip rclpy's one-severity-per-call-site rule)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []

    def __getattr__(self, level: str) -> Any:
        return lambda message, **kwargs: self.lines.append((level, message))


def test_each_camera_gets_the_model_of_its_size_and_one_without_waits_for_a_fitting_frame(
    ros_context, models
):
    names = ("left", "right", "small", "odd")
    node = make_node(
        ros_context,
        model_list(models),
        cameras=list(names),
        score_threshold=0.0,
        batch_wait_s=0.5,  # the two wide frames surely meet in one batch on a busy machine
    )
    log = Recorder()
    node.get_logger = lambda: log
    calls: dict[tuple[int, int], list[tuple[int, ...]]] = {WIDE: [], SMALL: []}
    for model in node.models.models:
        model.backend.run = counted(model.backend.run, calls[model.size])
    helper = Node("pdn_multires_rig", context=ros_context)
    executor = SingleThreadedExecutor(context=ros_context)
    for each in (node, helper):
        executor.add_node(each)
    try:
        found = {name: [] for name in names}
        for name in names:
            helper.create_subscription(
                DetectionArray, f"{name}/detections", found[name].append, RELIABLE
            )
        diagnostics: list[DiagnosticArray] = []
        helper.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, RELIABLE)
        pubs = {name: helper.create_publisher(Image, f"{name}/image", RELIABLE) for name in names}
        assert spin_until(executor, lambda: all(p.get_subscription_count() for p in pubs.values()))
        sizes = {"left": WIDE, "right": WIDE, "small": SMALL, "odd": ODD}
        pixels = {name: frame(i, sizes[name]) for i, name in enumerate(names)}
        for name in names:
            pubs[name].publish(raw_message(pixels[name], "rgb8", T0))
        stats = node.cameras[3].stats
        assert spin_until(
            executor,
            lambda: all(found[n] for n in names[:3]) and stats.counts["bad_frames"] == 1,
            timeout_s=30,
        )
        assert calls == {WIDE: [(BATCH, 3, WIDE[1], WIDE[0])], SMALL: [(BATCH, 3, 160, 256)]}
        for name in names[:3]:
            assert_published(found[name][0], offline(models[sizes[name]], pixels[name], T0))
        assert node.router.model_of(0).path == node.router.model_of(1).path == str(models[WIDE])
        assert node.router.model_of(2).path == str(models[SMALL])

        assert node.router.model_of(3) is None and found["odd"] == []
        assert (stats.bad["resolution"], stats.counts["received"]) == (1, 1)
        errors = [text for level, text in log.lines if level == "error"]
        assert len(errors) == 1 and errors[0].startswith(
            "odd: frame skipped, no model for its size: image is 200x120 but no model"
        )
        assert "320x192 batch 2" in errors[0] and "256x160 batch 2" in errors[0]
        diagnostics.clear()
        assert spin_until(executor, lambda: len(diagnostics) > 0, timeout_s=3.0)
        odd, small = (
            diagnostics_values(diagnostics, "odd"),
            diagnostics_values(diagnostics, "small"),
        )
        assert odd["model"].startswith("none: image is 200x120") and odd["bad_resolution"] == "1"
        assert (small["model"], small["model_size"], small["model_batch"]) == (
            str(models[SMALL]),
            "256x160",
            "2",
        )

        later = frame(9, SMALL)  # the node went on: a fitting frame binds the camera
        pubs["odd"].publish(raw_message(later, "rgb8", T0 + S // 10))
        assert spin_until(executor, lambda: len(found["odd"]) == 1, timeout_s=30)
        assert node.router.model_of(3).path == str(models[SMALL])
        assert stats.reset_reasons["resolution"] == 1  # after a frame of another size
        assert_published(found["odd"][0], offline(models[SMALL], later, T0 + S // 10))
    finally:
        executor.shutdown()
        node.close()
        helper.destroy_node()


@pytest.mark.parametrize(
    ("second", "error", "message"),
    [
        ("/nonexistent/tiny-640x480.onnx", BackendError, "not found: /nonexistent/tiny-640x480"),
        (None, StartupError, "both take 320x192 frames"),
    ],
)
def test_a_model_that_cannot_join_fails_configure_with_the_reason(
    ros_context, models, second, error, message
):
    paths = f"{models[WIDE]},{second or models[WIDE]}"
    with pytest.raises(error, match=message):
        make_node(ros_context, paths, cameras=["a", "b"])
    node = make_node(ros_context, paths, cameras=["a", "b"], autostart=False)
    try:
        assert node.trigger_configure() == TransitionCallbackReturn.FAILURE
        assert message.split(": ")[-1] in str(node.failure) and node.backend is None
    finally:
        node.close()


# ---- across processes ------------------------------------------------------------------------

FRAMES = 4
RATE_HZ = 1.0
# Per camera. The node keeps up at 1 Hz (4 of 4 frames for both cameras on the 2-core
# machine), but starved of CPU (a nice-15 test beside a training job) it may only take the
# first frame it gets and the newest one after it: 2 still shows a camera served frame after
# frame.
MIN_FRAMES = 2


def test_two_cameras_of_different_sizes_get_detections_from_one_node_across_processes(
    ros_context, models, tmp_path
):
    cameras = {"wide": WIDE, "small": SMALL}
    listener = Node("pdn_multires_listener", context=ros_context)
    found: dict[str, dict[int, DetectionArray]] = {name: {} for name in cameras}
    frames: dict[str, dict[int, Image]] = {name: {} for name in cameras}
    diagnostics: list[DiagnosticArray] = []

    def keep(store: dict[int, Any]) -> Any:
        return lambda m: store.__setitem__(m.header.stamp.sec * S + m.header.stamp.nanosec, m)

    for name in cameras:
        listener.create_subscription(
            DetectionArray, f"{name}/detections", keep(found[name]), RELIABLE
        )
        listener.create_subscription(Image, f"{name}/image", keep(frames[name]), RELIABLE)
    listener.create_subscription(DiagnosticArray, "/diagnostics", diagnostics.append, RELIABLE)
    executor = SingleThreadedExecutor(context=ros_context)
    executor.add_node(listener)
    node_parameters = {
        "model_path": model_list(models),
        "cameras": list(cameras),
        "backend": "onnxruntime",
        "threads": 1,
        "score_threshold": 0.0,
    }
    children = {
        "node": start_logged(
            [sys.executable, str(installed("pdn_node")), *ros_args(None, node_parameters)],
            tmp_path / "node.log",
        )
    }
    for seed, (name, (width, height)) in enumerate(cameras.items()):
        parameters = {
            "cameras": [name],
            "width": width,
            "height": height,
            "rate_hz": RATE_HZ,
            "count": FRAMES,
            "frames": FRAMES,
            "seed": seed,
            "reliability": "reliable",  # the listener keeps every frame to check against
            "wait_for_subscribers": 2,  # the node and this listener
        }
        argv = [str(installed("pdn_synth_camera")), *ros_args(None, parameters)]
        children[name] = start_logged(
            [sys.executable, *argv, "-r", f"__node:=synth_{name}"], tmp_path / f"{name}.log"
        )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and children["node"].poll() is None:
            executor.spin_once(timeout_sec=0.1)
            cameras_done = all(children[name].poll() is not None for name in cameras)
            if all(len(found[n]) == FRAMES for n in cameras) or (
                cameras_done and all(len(found[n]) >= MIN_FRAMES for n in cameras)
            ):
                break
        until = time.monotonic() + 2.5  # the 1 Hz diagnostics after the last frames
        while time.monotonic() < until:
            executor.spin_once(timeout_sec=0.1)
    finally:
        logs = "\n".join(
            f"--- {name}:\n{stop_logged(child, tmp_path / f'{name}.log')}"
            for name, child in children.items()
        )
        executor.shutdown()
        listener.destroy_node()
    print(f"frames with detections: { {name: len(found[name]) for name in cameras} } of {FRAMES}")
    for name, (width, height) in cameras.items():
        values = diagnostics_values(diagnostics, name)
        assert len(found[name]) >= MIN_FRAMES, f"{name}: {len(found[name])}, {values}\n{logs}"
        assert set(found[name]) <= set(frames[name]), "detections carry their frame's stamp"
        first = min(found[name])
        pixels = np.frombuffer(frames[name][first].data, np.uint8).reshape(height, width, 3)
        assert_published(found[name][first], offline(models[(width, height)], pixels, first))
        for message in found[name].values():
            boxes = np.array([[d.center_x, d.center_y] for d in message.detections])
            assert ((boxes >= 0) & (boxes <= [width, height])).all(), name
        assert values["model_size"] == f"{width}x{height}", f"{values}\n{logs}"
