"""pdn-bag-eval on a bag recorded by another tool: a camera's raw and compressed topics and
camera_info, uneven stamps, a resolution change mid-bag, no ground truth. The raw topic is
picked, nothing is scored, and the figures that need no annotations are right."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from pdn_tiny import HEIGHT, WIDTH
from planted_backend import frame_key, register, write_planted
from rosbags.rosbag2 import Reader, Writer

from pdn_ros.frame_processor import CameraResult
from pdn_ros.tools.bag_eval.cli import main
from pdn_ros.tools.bag_eval.figures import covered_share
from pdn_ros.tools.bag_eval.run import BagRun, FrameRow, frame_results
from pdn_runtime import FrameDetections
from training.metrics import METRIC_KEYS
from training.rosbag_io import typestore, write_camera_bag
from training.tracking_metrics import TRACKING_KEYS

RAW = "/front_cam/color/image_raw"
COMPRESSED = f"{RAW}/compressed"
CLASSES = ["car", "person", "sign"]
# Header stamps (seconds): uneven steps, a 1.6 s gap before frame 7.
STAMPS_S = np.cumsum([0.0, 0.033, 0.050, 0.021, 0.040, 0.033, 0.045, 1.6, 0.030])
SMALL = {4, 5}  # frames of another resolution (the camera switched, then switched back)
SMALL_SIZE = (144, 256)  # height, width


def _picture(index: int) -> np.ndarray:
    """A smooth RGB frame that differs from frame to frame (the planted key is its hash)."""
    height, width = SMALL_SIZE if index in SMALL else (HEIGHT, WIDTH)
    y, x = np.mgrid[:height, :width]
    rgb = np.stack([x * 255 // width, y * 255 // height, np.full_like(x, 40 + index)], axis=-1)
    rgb = rgb.astype(np.uint8)
    cv2.rectangle(rgb, (20 + 10 * index, 30), (60 + 10 * index, 70), (250, 30, 30), -1)
    return rgb


def _planted(index: int) -> list[list[float]]:
    """What the planted model finds in frame `index`: (index % 3) + 1 cars at score 0.8, a
    person at 0.5 on even frames, and a sign at 0.2 (below the node's threshold, never
    published)."""
    found = [[10.0 + 30 * k, 20.0, 30.0 + 30 * k, 40.0, 0.8, 0] for k in range(index % 3 + 1)]
    if index % 2 == 0:
        found.append([100.0, 100.0, 120.0, 140.0, 0.5, 1])
    return [*found, [200.0, 50.0, 210.0, 60.0, 0.2, 2]]


@pytest.fixture(scope="module")
def foreign_bag(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Nine frames as a camera driver records them; log times lag the stamps unevenly."""
    start = 1_750_000_000 * 10**9
    latency_ms = [7, 12, 5, 19, 8, 6, 15, 9, 11]
    frames = [
        (_picture(i), start + round(s * 1e9), start + round(s * 1e9) + lag * 10**6)
        for i, (s, lag) in enumerate(zip(STAMPS_S, latency_ms, strict=True))
    ]
    return write_camera_bag(tmp_path_factory.mktemp("foreign") / "bag", frames)


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The planted "model" at the camera's main resolution."""
    found = {
        frame_key(_picture(i).transpose(2, 0, 1)): _planted(i)
        for i in range(len(STAMPS_S))
        if i not in SMALL
    }
    path = tmp_path_factory.mktemp("planted") / "planted.json"
    return write_planted(path, (HEIGHT, WIDTH), CLASSES, found)


def test_covered_share_is_the_union_clipped_to_the_frame() -> None:
    boxes = np.array([[0, 0, 100, 100], [50, 50, 150, 150], [-50, 150, 50, 250]], np.float32)
    # 100^2 + 100^2 - 50^2 overlap + the 50 x 50 part of the third box inside the frame
    assert covered_share(boxes, 200, 200) == pytest.approx(20000 / 40000)
    assert covered_share(boxes[:0], 200, 200) == 0.0
    assert covered_share(np.array([[0, 0, 400, 400]]), 200, 100) == 1.0


def test_foreign_bag_without_ground_truth(
    foreign_bag: Path,
    planted: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    register(monkeypatch)
    out = tmp_path / "eval"
    args = [str(foreign_bag), "--model", str(planted), "--backend", "planted"]
    assert main([*args, "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert f"images from {RAW}: raw" in err and COMPRESSED in err and "no ground truth" in err
    metrics = json.loads((out / "metrics.json").read_text())

    assert metrics["ground_truth"] is False and metrics["ground_truth_source"] is None
    scored = {*METRIC_KEYS, *TRACKING_KEYS, "frames", "objects", "patch_recall_small"}
    assert not scored & metrics.keys()
    assert not [k for k in metrics if k.startswith(("AP", "recall_"))]
    assert metrics["image_topic"] == RAW and COMPRESSED in metrics["image_topic_choice"]

    # the node's rule: frames of another size are skipped, and the state resets when the
    # model's size comes back; the 1.6 s gap resets it too
    assert metrics["frames_read"] == 9 and metrics["frames_processed"] == 7
    assert metrics["frames_skipped"] == {"resolution": 2} and metrics["bad_frames"] == 2
    assert metrics["resets_by_reason"] == {"resolution": 1, "gap": 1}
    assert metrics["resets"] == 2
    assert metrics["complete"] is True

    processed = [i for i in range(9) if i not in SMALL]
    cars = sum(i % 3 + 1 for i in processed)
    people = sum(i % 2 == 0 for i in processed)
    assert metrics["detections_per_frame_by_class"] == pytest.approx(
        {"car": cars / 7, "person": people / 7, "sign": 0.0}
    )
    assert metrics["detections_per_frame"] == pytest.approx((cars + people) / 7)
    assert metrics["frames_with_detections"] == 7
    # the planted windows: two 128 px squares side by side in the top left
    assert metrics["windows_per_frame"] == 2.0
    assert metrics["windows_by_scale"] == {"0": {"per_frame": 2.0, "side_px_median": 128.0}}
    share = 2 * 128 * 128 / (WIDTH * HEIGHT)
    for key in ("window_coverage_mean", "window_coverage_min", "window_coverage_max"):
        assert metrics[key] == pytest.approx(share), key
    assert 0.0 < metrics["latency_ms_p50"] <= metrics["latency_ms_p99"]

    report = (out / "report.md").read_text()
    assert "**no ground truth**" in report and "nothing is scored" in report
    assert f"`{RAW}`: raw" in report and COMPRESSED in report
    assert "| resolution | 2 | 4 | 5 | skipped resolution: image is 256x144" in report
    assert "| 6 | resolution |" in report and "| 7 | gap |" in report
    assert "| car | " in report and "| AP |" not in report
    rows = (out / "frames.csv").read_text().splitlines()
    assert len(rows) == 10
    assert [r.split(",")[2].split(":")[0] for r in rows[5:7]] == ["skipped resolution"] * 2
    assert len(list((out / "samples").glob("*.jpg"))) == 4

    # one video frame per image, the model's size (under 960 px wide, so not downscaled)
    video = cv2.VideoCapture(str(out / "run.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == 9
    assert (video.get(cv2.CAP_PROP_FRAME_WIDTH), video.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (
        WIDTH,
        HEIGHT,
    )
    assert metrics["video"].startswith("run.mp4: 9 frames")
    video.release()


def test_only_frames_of_the_models_size_are_scored() -> None:
    """With ground truth, a corrupt frame scores as a frame without detections (the node
    publishes none), a frame of another resolution is not scored."""
    box = np.array([[10, 10, 30, 30]], np.float32)
    one = np.ones(1, np.float32)
    found = FrameDetections(
        boxes=box,
        scores=one,
        labels=np.zeros(1, np.int64),
        patch_boxes=box,
        patch_scores=one,
        patch_scale=np.zeros(1, np.int64),
        width=WIDTH,
        height=HEIGHT,
        reset=None,
        inference_s=0.0,
    )
    truth = (box, np.zeros(1, np.int64))
    rows = [
        FrameRow(0, 0, "ok", CameraResult(0, None, found, {}), 0.0, None, truth),
        FrameRow(1, 1, "skipped resolution: ...", None, 0.0, "resolution", truth),
        FrameRow(2, 2, "skipped corrupt: ...", None, 0.0, "corrupt", truth),
        FrameRow(3, 3, "ok", CameraResult(0, None, found, {}), 0.0),  # no ground truth
    ]
    run = BagRun(rows, (WIDTH, HEIGHT), tuple(CLASSES), "", RAW, "", "t", {}, 1.0, None, None, None)
    results = frame_results(run)
    assert sorted(results) == [0, 2]
    assert len(results[0].boxes) == 1 and len(results[2].boxes) == 0


def _with_second_camera(bag: Path, copy: Path) -> Path:
    """The bag plus a second camera: its raw images again on /rear_cam/color/image_raw."""
    with Reader(bag) as reader, Writer(copy, version=9) as writer:
        connections = {
            c.id: writer.add_connection(c.topic, c.msgtype, typestore=typestore())
            for c in reader.connections
        }
        rear = writer.add_connection(
            "/rear_cam/color/image_raw", "sensor_msgs/msg/Image", typestore=typestore()
        )
        for connection, log_time, raw in reader.messages():
            writer.write(connections[connection.id], log_time, raw)
            if connection.topic == RAW:
                writer.write(rear, log_time + 1, raw)
    return copy


def test_missing_and_ambiguous_topics_are_named(
    foreign_bag: Path,
    planted: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    register(monkeypatch)
    model = ["--model", str(planted), "--backend", "planted", "--out", str(tmp_path / "out")]
    two = _with_second_camera(foreign_bag, tmp_path / "two_cameras")
    assert main([str(two), *model]) == 2
    err = capsys.readouterr().err
    assert "2 different streams" in err and "--image-topic" in err
    assert f"{RAW} (sensor_msgs/msg/Image) + {COMPRESSED}" in err
    assert "/rear_cam/color/image_raw (sensor_msgs/msg/Image)" in err

    assert main([str(two), *model, "--image-topic", "/rear_cam/color/image_raw"]) == 0
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["image_topic"] == "/rear_cam/color/image_raw"
    assert metrics["image_topic_choice"].startswith("named with --image-topic")
    assert metrics["frames_processed"] == 7 and metrics["detections_per_frame"] > 0
    capsys.readouterr()

    for extra, message in (
        (["--image-topic", "/front_cam/depth"], "no topic '/front_cam/depth' in this bag"),
        (
            ["--gt-topic", "/front_cam/color/camera_info"],
            "is a sensor_msgs/msg/CameraInfo, not a ground-truth topic",
        ),
    ):
        assert main([str(foreign_bag), *model, *extra]) == 2, extra
        err = capsys.readouterr().err
        assert message in err and str(foreign_bag) in err, extra


def test_truncated_foreign_bag_keeps_the_frames_before_the_damage(
    foreign_bag: Path,
    planted: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    register(monkeypatch)
    cut = tmp_path / "cut"
    shutil.copytree(foreign_bag, cut)
    mcap = cut / "bag.mcap"
    data = mcap.read_bytes()
    mcap.write_bytes(data[: len(data) * 4 // 5])  # inside the second mcap chunk
    out = tmp_path / "eval"
    args = [str(cut), "--model", str(planted), "--backend", "planted", "--out", str(out)]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert str(cut) in err and "frames read before it" in err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["complete"] is False and metrics["ground_truth"] is False
    read = metrics["frames_read"]
    assert 0 < read < 9
    assert metrics["frames_processed"] == len([i for i in range(read) if i not in SMALL])
    assert "INCOMPLETE" in (out / "report.md").read_text()
    video = cv2.VideoCapture(str(out / "run.mp4"))
    assert int(video.get(cv2.CAP_PROP_FRAME_COUNT)) == read
    video.release()


def test_a_model_of_another_size_gets_the_nodes_reason(
    foreign_bag: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Every frame of another size than the model's: nothing to run, exit 2 with the node's
    reason; the skipped frames are still written out."""
    register(monkeypatch)
    other = write_planted(tmp_path / "other.json", (96, 160), CLASSES, {})
    out = tmp_path / "eval"
    args = [str(foreign_bag), "--model", str(other), "--backend", "planted", "--out", str(out)]
    assert main([*args, "--no-video"]) == 2
    assert "export one for this camera" in capsys.readouterr().err
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["frames_skipped"] == {"resolution": 9} and metrics["frames_processed"] == 0
