"""Synthetic frames as rosbag2 (mcap) bags: what training.rosbag_io writes reads back intact,
with rosbags and with rclpy's own deserializer (proving the ROS build's layout and hashes)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from rosbags.rosbag2 import Reader

from training.rosbag_io import (
    CAMERA_FRAME,
    CAMERA_INFO_TOPIC,
    COMPRESSED_TOPIC,
    EPOCH_NS,
    GROUND_TRUTH_TOPIC,
    IMAGE_TOPIC,
    BagWriter,
    frame_stamp_ns,
    pdn_msgs_dir,
    typestore,
    write_bag,
)
from training.synth import CLASS_NAMES, Frame, SceneConfig, SceneSequence

CONFIG = SceneConfig(height=360, width=640, frames=3, fps=15.0)
PERIOD_NS = 66_666_667  # 1/15 s, rounded
STAMP_OFFSETS_NS = (0, 66_666_667, 133_333_333)  # frames 0..2 at 15 Hz, rounded to the ns


@pytest.fixture(scope="module")
def frames() -> list[Frame]:
    """Three small frames with some objects large enough to be kept in the ground truth."""
    return list(SceneSequence(21, CONFIG))


def _read(path: Path) -> dict[str, list[tuple[int, str, bytes]]]:
    """Messages of a bag by topic: (log time, message type, CDR bytes)."""
    by_topic: dict[str, list[tuple[int, str, bytes]]] = {}
    with Reader(path) as reader:
        for connection, stamp, raw in reader.messages():
            by_topic.setdefault(connection.topic, []).append(
                (stamp, connection.msgtype, bytes(raw))
            )
    return by_topic


def _check_truth(message, frame: Frame) -> None:
    """A DetectionArray holds exactly the frame's non-ignored boxes."""
    keep = ~frame.ignore
    detections = message.detections
    assert len(detections) == keep.sum() > 0
    for d, box, label, track in zip(
        detections, frame.boxes[keep], frame.labels[keep], frame.track_ids[keep], strict=True
    ):
        assert (d.class_id, d.label, d.track_id) == (label, CLASS_NAMES[label], str(track))
        assert (d.score, d.patch_index, d.patch_scale) == (1.0, -1, -1)
        half_x, half_y = d.size_x / 2, d.size_y / 2
        corners = [
            d.center_x - half_x,
            d.center_y - half_y,
            d.center_x + half_x,
            d.center_y + half_y,
        ]
        np.testing.assert_allclose(corners, box)


@pytest.mark.parametrize("image_format", ["raw", "jpeg"])
def test_bag_reads_back(tmp_path: Path, frames: list[Frame], image_format: str) -> None:
    path = write_bag(tmp_path / "bag", frames, CONFIG.fps, image_format)
    assert (path / "bag.mcap").is_file()
    assert "storage_identifier: mcap" in (path / "metadata.yaml").read_text()
    image_topic = IMAGE_TOPIC if image_format == "raw" else COMPRESSED_TOPIC
    messages = _read(path)
    assert set(messages) == {image_topic, CAMERA_INFO_TOPIC, GROUND_TRUTH_TOPIC}
    store = typestore()
    for topic, records in messages.items():
        assert len(records) == len(frames)
        for frame, (stamp, msgtype, raw) in zip(frames, records, strict=True):
            assert stamp == EPOCH_NS + STAMP_OFFSETS_NS[frame.frame_index]
            message = store.deserialize_cdr(raw, msgtype)
            header = message.header
            assert header.stamp.sec * 1_000_000_000 + header.stamp.nanosec == stamp
            assert header.frame_id == CAMERA_FRAME
            if topic == IMAGE_TOPIC:
                assert (message.encoding, message.height, message.width) == ("rgb8", 360, 640)
                assert message.step == 640 * 3
                np.testing.assert_array_equal(message.data.reshape(360, 640, 3), frame.image)
            elif topic == COMPRESSED_TOPIC:
                assert message.format == "jpeg"
                decoded = cv2.cvtColor(
                    cv2.imdecode(message.data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
                )
                assert np.abs(decoded.astype(int) - frame.image).mean() < 3.0
            elif topic == CAMERA_INFO_TOPIC:
                k = message.k.reshape(3, 3)
                assert (message.width, message.height) == (640, 360)
                assert k[0, 0] == k[1, 1] > 0 and k[2, 2] == 1
                assert abs(k[0, 2] - 319.5) < 1e-9 and abs(k[1, 2] - 179.5) < 1e-9
            else:
                _check_truth(message, frame)


def test_stamps_of_later_sequences_leave_a_gap() -> None:
    assert frame_stamp_ns(0, 15.0) == EPOCH_NS
    assert frame_stamp_ns(1, 15.0) - EPOCH_NS == PERIOD_NS
    last_of_first = frame_stamp_ns(29, 15.0, 0, 30)
    first_of_second = frame_stamp_ns(0, 15.0, 1, 30)
    assert first_of_second - last_of_first == PERIOD_NS + 1_000_000_000


def test_rclpy_deserializes_what_rosbags_wrote(tmp_path: Path, frames: list[Frame]) -> None:
    """The ROS build's own deserializer reads the bag's CDR bytes: same layout as pdn_msgs."""
    from rclpy.serialization import deserialize_message
    from sensor_msgs.msg import CameraInfo, Image

    from pdn_msgs.msg import DetectionArray

    messages = _read(write_bag(tmp_path / "bag", frames, CONFIG.fps))
    for frame, (_, _, raw) in zip(frames, messages[GROUND_TRUTH_TOPIC], strict=True):
        truth = deserialize_message(raw, DetectionArray)
        assert truth.header.frame_id == CAMERA_FRAME
        _check_truth(truth, frame)
    image = deserialize_message(messages[IMAGE_TOPIC][0][2], Image)
    np.testing.assert_array_equal(
        np.frombuffer(image.data, np.uint8).reshape(360, 640, 3), frames[0].image
    )
    info = deserialize_message(messages[CAMERA_INFO_TOPIC][0][2], CameraInfo)
    assert info.width == 640 and info.distortion_model == "plumb_bob"


def test_pdn_msgs_type_hashes_match_the_build() -> None:
    """Type hashes rosbags computes equal the ones rosidl generated for the installed build."""
    folder = pdn_msgs_dir()
    found = sorted(folder.glob("*.json"))
    assert found, f"no generated type descriptions in {folder}: is pdn_msgs built and sourced?"
    store = typestore()
    for description in found:
        name = f"pdn_msgs/msg/{description.stem}"
        hashes = {
            h["type_name"]: h["hash_string"]
            for h in json.loads(description.read_text())["type_hashes"]
        }
        assert store.hash_rihs01(name) == hashes[name]


def test_bag_writer_refuses_existing_paths_and_unknown_formats(tmp_path: Path) -> None:
    with pytest.raises(FileExistsError, match=str(tmp_path)):
        BagWriter(tmp_path)
    with pytest.raises(ValueError, match="image_format"):
        BagWriter(tmp_path / "new", image_format="png")
