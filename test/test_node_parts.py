"""The node's plain parts: reset policy, newest-frame slots, counters, messages, markers,
parameter checks and the debug drawing."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
from diagnostic_msgs.msg import DiagnosticArray
from sensor_msgs.msg import CameraInfo
from std_msgs.msg import Header
from visualization_msgs.msg import Marker

from pdn_ros.debug_draw import draw
from pdn_ros.markers import (
    back_project,
    build_markers,
    camera_info_matrix,
    fallback_matrix,
    project,
)
from pdn_ros.messages import detection_array, patch_array
from pdn_ros.params import PARAMETERS, check_value
from pdn_ros.slots import FrameSlots, Worker
from pdn_ros.stats import CameraStats, diagnostic_status, status_values
from pdn_runtime import FrameDetections, FrameMark, ModelInfo, Stream
from pdn_runtime.boxes import containing_patch
from pdn_runtime.stream import reset_reason
from training.rosbag_io import pinhole_matrix

S = 1_000_000_000
GAP = S  # 1 s reset gap


# ---- reset policy ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("previous", "current", "reason"),
    [
        (None, FrameMark(5 * S, 64, 32), None),
        (FrameMark(5 * S, 64, 32), FrameMark(5 * S + S // 15, 64, 32), None),
        (FrameMark(5 * S, 64, 32), FrameMark(5 * S, 64, 32), None),  # repeated stamp
        (FrameMark(5 * S, 64, 32), FrameMark(6 * S, 64, 32), None),  # exactly the gap
        (FrameMark(5 * S, 64, 32), FrameMark(6 * S + 1, 64, 32), "gap"),
        (FrameMark(5 * S, 64, 32), FrameMark(5 * S - 1, 64, 32), "time_backwards"),
        (FrameMark(5 * S, 64, 32), FrameMark(5 * S + 1, 32, 32), "resolution"),
        (FrameMark(5 * S, 64, 32), FrameMark(2 * S, 32, 64), "resolution"),
    ],
)
def test_reset_reason(previous, current, reason):
    assert reset_reason(previous, current, GAP) == reason


def model_info(memory_slots: int = 4) -> ModelInfo:
    """A ModelInfo of batch 2 with small state shapes."""
    return ModelInfo(
        height=32,
        width=64,
        batch=2,
        class_names=("a", "b"),
        memory_shape=(memory_slots, 2, 3),
        controller_dim=5,
        output_shapes={},
    )


def state_outputs(value: float) -> dict[str, np.ndarray]:
    """Batch-1 state outputs filled with `value`."""
    return {
        "frame_tokens": np.full((1, 2, 3), value, np.float32),
        "next_controller_state": np.full((1, 5), value, np.float32),
    }


def test_stream_resets_on_a_jump_back_and_keeps_memory_length():
    stream = Stream(model_info())
    assert stream.state.memory.shape == (1, 4, 2, 3)  # batch 1 whatever the model's batch
    assert stream.begin(FrameMark(10 * S, 64, 32), GAP) is None
    for i in range(3):
        stream.push(state_outputs(i + 1.0), memory_length=2)
    np.testing.assert_array_equal(stream.state.memory_valid, [[1, 1, 0, 0]])
    assert stream.state.memory[0, 0, 0, 0] == 3.0
    assert stream.begin(FrameMark(9 * S, 64, 32), GAP) == "time_backwards"
    assert not stream.state.memory_valid.any() and not stream.state.controller_state.any()
    stream.push(state_outputs(1.0), memory_length=-1)
    stream.push(state_outputs(2.0), memory_length=-1)
    np.testing.assert_array_equal(stream.state.memory_valid, [[1, 1, 0, 0]])


def test_a_skipped_frame_of_another_size_makes_the_next_one_a_resolution_change():
    stream = Stream(model_info())
    stream.begin(FrameMark(1 * S, 64, 32), GAP)
    stream.push(state_outputs(1.0), -1)
    stream.skip(FrameMark(1 * S + 10, 128, 64))
    assert stream.begin(FrameMark(1 * S + 20, 64, 32), GAP) == "resolution"
    assert not stream.state.memory_valid.any()


# ---- slots -------------------------------------------------------------------------------


def test_a_slot_keeps_only_the_newest_frame_and_reports_the_drop():
    slots: FrameSlots[str] = FrameSlots(1)
    assert slots.put(0, "a") is False
    assert slots.put(0, "b") is True
    assert slots.put(0, "c") is True
    assert slots.take() == [(0, "c")]
    assert slots.put(0, "d") is False


def test_a_batch_take_waits_for_the_other_slots_but_not_forever():
    slots: FrameSlots[str] = FrameSlots(2)
    slots.put(0, "left")
    threading.Timer(0.05, slots.put, (1, "right")).start()
    assert slots.take(wait_all_s=2.0) == [(0, "left"), (1, "right")]
    slots.put(1, "alone")
    start = time.monotonic()
    assert slots.take(wait_all_s=0.1) == [(1, "alone")]
    assert 0.08 < time.monotonic() - start < 1.0


def test_a_worker_survives_an_error_and_stops_when_the_slots_close():
    slots: FrameSlots[int] = FrameSlots(1)
    seen, errors = [], []

    def handle(batch: list[tuple[int, int]]) -> None:
        if batch[0][1] == 1:
            raise RuntimeError("boom")
        seen.append(batch[0][1])

    worker = Worker("test", slots, handle, errors.append)
    worker.start()
    slots.put(0, 1)
    deadline = time.monotonic() + 5
    while not errors and time.monotonic() < deadline:
        time.sleep(0.01)
    slots.put(0, 2)
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    worker.stop()
    assert seen == [2] and "RuntimeError: boom" in errors[0]
    assert not worker.is_alive()
    assert slots.take() is None


# ---- counters ------------------------------------------------------------------------------


def test_stats_count_rates_and_latency_percentiles():
    now = [100.0]
    stats = CameraStats(window_s=10.0, clock=lambda: now[0])
    for i in range(10):
        stats.received(dropped=i % 2 == 1)
    for ms in range(1, 101):
        timings = {"transport": 0.01, "wait": ms / 2000, "convert": 0.005, "inference": 0.05}
        stats.processed(2, latency=ms / 1000, **timings)
    stats.bad_frame("truncated")
    stats.reset("gap")
    now[0] = 102.0
    snap = stats.snapshot()
    assert (snap["received"], snap["dropped"], snap["processed"]) == (10, 5, 100)
    assert (snap["bad_frames"], snap["bad_truncated"], snap["resets"], snap["reset_gap"]) == (
        1,
        1,
        1,
        1,
    )
    assert snap["detections"] == 200 and snap["received_hz"] == pytest.approx(5.0)
    assert snap["latency_p50_ms"] == pytest.approx(50.5)
    assert snap["latency_p99_ms"] == pytest.approx(99.01)
    assert snap["inference_p50_ms"] == pytest.approx(50.0)
    assert snap["wait_p50_ms"] == pytest.approx(25.25) and snap["transport_p99_ms"] == 10.0
    status = diagnostic_status("pdn_node: cam", "cam", snap, {"backend": "x"})
    other = diagnostic_status("pdn_node: other", "other", snap, {"backend": "y"})
    message = DiagnosticArray(status=[status, other])
    assert status_values(message, "absent") is None
    assert status_values(message, "other")["backend"] == "y"
    values = status_values(message, "cam")
    assert values["latency_p50_ms"] == "50.50" and values["dropped"] == "5"
    assert values["backend"] == "x" and "bad frames" in status.message
    now[0] = 103.0
    quiet = stats.snapshot()
    assert quiet["received_hz"] == 0 and quiet["processed"] == 100
    assert diagnostic_status("n", "cam", quiet, {}).message == "no images received"


# ---- messages ----------------------------------------------------------------------------


def result(
    boxes: list[list[float]], patches: list[list[float]], scales: list[int]
) -> FrameDetections:
    """FrameDetections with scores 0.9, 0.8, ... and labels 0, 1, 0, ..."""
    n = len(boxes)
    return FrameDetections(
        width=640,
        height=480,
        boxes=np.array(boxes, np.float32).reshape(n, 4),
        scores=np.array([0.9 - 0.1 * i for i in range(n)], np.float32),
        labels=np.array([i % 2 for i in range(n)], np.int64),
        patch_boxes=np.array(patches, np.float32).reshape(len(patches), 4),
        patch_scores=np.array([0.5, 0.880797] + [0.1] * (len(patches) - 2), np.float32),
        patch_scale=np.array(scales, np.int64),
        reset=None,
        inference_s=0.01,
    )


PATCHES = [[0, 0, 64, 64], [32, 0, 160, 128], [300, 300, 428, 428]]


def test_boxes_become_center_and_size_and_patches_are_credited_by_containment():
    res = result([[10, 20, 30, 60], [40, 10, 100, 60], [150, 150, 170, 200]], PATCHES, [0, 1, 1])
    np.testing.assert_array_equal(containing_patch(res.boxes, res.patch_boxes), [0, 1, -1])
    msg = detection_array(res, ("person", "vehicle"), Header(frame_id="out"))
    first = msg.detections[0]
    assert (first.center_x, first.center_y, first.size_x, first.size_y) == (20, 40, 20, 40)
    assert (first.label, first.class_id, first.patch_index, first.patch_scale) == (
        "person",
        0,
        0,
        0,
    )
    assert (msg.detections[1].patch_index, msg.detections[1].patch_scale) == (1, 1)
    assert (msg.detections[2].patch_index, msg.detections[2].patch_scale) == (-1, -1)
    assert msg.detections[1].label == "vehicle" and msg.header.frame_id == "out"


def test_patches_become_pixel_rectangles_with_their_logit_priority():
    msg = patch_array(result([], PATCHES, [0, 1, 1]), Header())
    assert (msg.image_width, msg.image_height) == (640, 480)
    second = msg.patches[1]
    assert (second.x_offset, second.y_offset, second.width, second.height) == (32, 0, 128, 128)
    assert second.scale_index == 1
    assert msg.patches[0].priority == pytest.approx(0.0, abs=1e-5)
    assert second.priority == pytest.approx(2.0, abs=1e-4)


# ---- markers -------------------------------------------------------------------------------


@pytest.mark.parametrize("k", [pinhole_matrix(3840, 2160), fallback_matrix(640, 480)])
def test_a_back_projected_pixel_projects_onto_the_same_pixel(k):
    u = np.array([0.0, 100.5, 1919.5, 3839.0, -20.0])
    v = np.array([0.0, 50.25, 1079.5, 2159.0, 30.0])
    for depth in (0.5, 1.0, 25.0):
        points = back_project(k, u, v, depth)
        np.testing.assert_allclose(points[:, 2], depth)
        np.testing.assert_allclose(project(k, points), np.stack([u, v], axis=1), atol=1e-9)


def test_back_projection_with_skew_round_trips():
    k = np.array([[800.0, 3.0, 320.0], [0.0, 790.0, 240.0], [0, 0, 1]])
    points = back_project(k, [10.0, 600.0], [400.0, 7.0], 2.0)
    np.testing.assert_allclose(project(k, points), [[10, 400], [600, 7]], atol=1e-9)


def test_camera_info_matrix_and_unset_intrinsics():
    info = CameraInfo(k=pinhole_matrix(64, 32).reshape(-1).tolist())
    np.testing.assert_allclose(camera_info_matrix(info), pinhole_matrix(64, 32))
    assert camera_info_matrix(CameraInfo()) is None
    np.testing.assert_allclose(fallback_matrix(640, 480)[:2, 2], [319.5, 239.5])


def test_marker_rectangles_project_onto_the_box_edges():
    k = pinhole_matrix(640, 480)
    res = result([[10, 20, 30, 60]], PATCHES, [0, 1, 1])
    header = Header(frame_id="cam_optical")
    markers = build_markers(res, header, k, 2.0, ("person", "vehicle")).markers
    assert markers[0].action == Marker.DELETEALL
    by_ns = {}
    for m in markers[1:]:
        by_ns.setdefault(m.ns, []).append(m)
    assert {ns: len(ms) for ns, ms in by_ns.items()} == {
        "patches": 3,
        "patch_labels": 3,
        "detections": 1,
        "detection_labels": 1,
    }
    outline = by_ns["detections"][0]
    assert outline.type == Marker.LINE_STRIP and outline.header.frame_id == "cam_optical"
    corners = np.array([[p.x, p.y, p.z] for p in outline.points])
    np.testing.assert_allclose(corners[:, 2], 2.0)
    pixels = project(k, corners) + 0.5  # back to pixel-edge coordinates
    np.testing.assert_allclose(
        pixels, [[10, 20], [30, 20], [30, 60], [10, 60], [10, 20]], atol=1e-9
    )
    assert by_ns["detection_labels"][0].text == "person 0.90"
    np.testing.assert_allclose(outline.scale.x, 3.0 * 2.0 / k[0, 0])


# ---- parameters ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "memory_slots", "problem"),
    [
        ("score_threshold", 0.5, None, None),
        ("score_threshold", 1.5, None, "score_threshold must be in 0.0..1.0"),
        ("backend", "openvino", None, "backend must be one of auto, onnxruntime"),
        ("transport", "compressed", None, None),
        ("memory_length", 3, 4, None),
        ("memory_length", 5, 4, "more than the model's 4 memory slots"),
        ("memory_length", 5, None, None),
        ("cameras", [], None, "at least one camera"),
        ("cameras", ["a", "a"], None, "must not repeat"),
        ("cameras", ["front cam"], None, "valid topic name"),
        ("cameras", ["front", "rear/left"], None, None),
        ("use_sim_time", True, None, None),
    ],
)
def test_check_value(name, value, memory_slots, problem):
    reason = check_value(name, value, memory_slots)
    if problem is None:
        assert reason is None
    else:
        assert problem in reason


def test_every_default_passes_its_own_check():
    for spec in PARAMETERS:
        assert check_value(spec.name, spec.default, 4) is None, spec.name


# ---- debug drawing -------------------------------------------------------------------------


def test_debug_image_is_the_downscaled_frame_with_boxes_drawn():
    planar = np.zeros((3, 480, 640), np.uint8)
    planar[1] = 100
    res = result([[100, 100, 200, 180]], PATCHES, [0, 1, 1])
    image = draw(planar, res, 0.5, ("person", "vehicle"))
    assert image.shape == (240, 320, 3) and image.flags.c_contiguous
    np.testing.assert_array_equal(image[120, 150], [0, 100, 0])  # inside the box: the frame
    np.testing.assert_array_equal(image[50, 75], [255, 64, 64])  # on its top edge: person red


# ---- synthetic camera ------------------------------------------------------------------------


def test_synthetic_camera_messages_carry_the_frame_and_its_truth():
    from pdn_ros.tools.synth_camera import camera_info_message, image_message, truth_message
    from training.synth import SceneConfig, SceneSequence

    frame = SceneSequence(3, SceneConfig(height=96, width=160, frames=1)).render(0)
    truth = truth_message(frame)
    keep = ~frame.ignore
    assert len(truth.detections) == int(keep.sum()) > 0
    first, box = truth.detections[0], frame.boxes[keep][0]
    assert (first.center_x, first.size_x) == ((box[0] + box[2]) / 2, box[2] - box[0])
    assert first.label == ("person", "vehicle", "bicycle", "animal", "sign")[first.class_id]
    raw = image_message(frame, "raw")
    np.testing.assert_array_equal(
        np.frombuffer(raw.data, np.uint8).reshape(96, 160, 3), frame.image
    )
    assert image_message(frame, "compressed").data[:3].tobytes() == b"\xff\xd8\xff"
    info = camera_info_message(160, 96)
    np.testing.assert_allclose(np.reshape(info.k, (3, 3)), pinhole_matrix(160, 96))
