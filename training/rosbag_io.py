"""Synthetic frames as a rosbag2 (mcap) bag: camera image, camera info and ground truth.

Uses `rosbags`, so no ROS installation is needed to write (or read) bags. The pdn_msgs types
are registered from their `.msg` files, which gives them the same type hashes as the colcon
build. Per frame, on one header stamp:

- `/camera/image_raw` (sensor_msgs/Image, rgb8), or with `image_format="jpeg"`
  `/camera/image_raw/compressed` (sensor_msgs/CompressedImage, format "jpeg");
- `/camera/camera_info` (sensor_msgs/CameraInfo: an ideal pinhole, 70 degree horizontal view);
- `/camera/ground_truth` (pdn_msgs/DetectionArray): every object that is not `ignore`.

`write_camera_bag` writes images as a camera driver with image_transport records them
instead (raw bgr8 and JPEG of the same frames, camera info, no ground truth): the kind of bag
users bring from other tools.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
from rosbags.rosbag2 import StoragePlugin, Writer
from rosbags.typesys import Stores, get_types_from_msg, get_typestore

from pdn_model.config import DEFAULT_CLASSES
from pdn_runtime.boxes import class_label, xyxy_to_center_size
from training.coco import JPEG_QUALITY

if TYPE_CHECKING:
    from rosbags.typesys.store import Typestore

    from training.synth import Frame

IMAGE_TOPIC = "/camera/image_raw"
COMPRESSED_TOPIC = "/camera/image_raw/compressed"
CAMERA_INFO_TOPIC = "/camera/camera_info"
GROUND_TRUTH_TOPIC = "/camera/ground_truth"
CAMERA_FRAME = "camera_optical_frame"
IMAGE_FORMATS = ("raw", "jpeg")
HORIZONTAL_FOV_DEG = 70.0
# Stamps start at a fixed time (2023-11-14T22:13:20Z) so that bags are reproducible byte for
# byte; sequences are separated by a gap, so a consumer sees where one ends.
EPOCH_NS = 1_700_000_000 * 1_000_000_000
SEQUENCE_GAP_S = 1.0
_ROSBAG2_VERSION = 9


def pdn_msgs_dir() -> Path:
    """Folder of the pdn_msgs `.msg` files: the installed share folder, else the source tree's."""
    try:
        from ament_index_python.packages import get_package_share_directory

        installed = Path(get_package_share_directory("pdn_msgs", print_warning=False)) / "msg"
    except (ImportError, LookupError, OSError, ValueError):
        installed = None
    for folder in (installed, Path(__file__).resolve().parent.parent / "msg" / "msg"):
        if folder is not None and any(folder.glob("*.msg")):
            return folder
    raise FileNotFoundError(
        "pdn_msgs message files not found: source install/setup.bash or run from the repository"
    )


@functools.cache
def typestore() -> Typestore:
    """ROS 2 Kilted types plus pdn_msgs, for writing and reading bags (one shared instance)."""
    store = get_typestore(Stores.ROS2_KILTED)
    types: dict[str, Any] = {}
    for msg in sorted(pdn_msgs_dir().glob("*.msg")):
        types.update(get_types_from_msg(msg.read_text(), f"pdn_msgs/msg/{msg.stem}"))
    store.register(types)
    return store


def frame_stamp_ns(
    frame_index: int, fps: float, sequence_index: int = 0, frames_per_sequence: int = 0
) -> int:
    """Capture stamp of a frame: EPOCH_NS, frames at `fps`, SEQUENCE_GAP_S between sequences."""
    seconds = sequence_index * (frames_per_sequence / fps + SEQUENCE_GAP_S) + frame_index / fps
    return EPOCH_NS + round(seconds * 1e9)


def rgb_jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    """An H x W x 3 RGB image as JPEG bytes (uint8 array), the data of a CompressedImage."""
    ok, jpeg = cv2.imencode(
        ".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise RuntimeError(f"JPEG encoding failed for an image of shape {rgb.shape}")
    return jpeg


def frame_jpeg(frame: Frame, quality: int) -> np.ndarray:
    """A synthetic frame's image as JPEG bytes (uint8 array), the data of a CompressedImage."""
    return rgb_jpeg(frame.image, quality)


def truth_detection_fields(frame: Frame, class_names: Sequence[str]) -> list[dict[str, Any]]:
    """pdn_msgs/Detection field values of a frame's ground truth (objects not `ignore`):
    centre and size in pixels, score 1, no patch. Bags (rosbags types) and the synthetic
    camera (rclpy types) build their messages from the same values."""
    keep = ~frame.ignore
    return [
        {
            "class_id": label,
            "label": class_label(class_names, label),
            "score": 1.0,
            "center_x": center_x,
            "center_y": center_y,
            "size_x": size_x,
            "size_y": size_y,
            "patch_index": -1,
            "patch_scale": -1,
            "track_id": str(track),
        }
        for (center_x, center_y, size_x, size_y), label, track in zip(
            xyxy_to_center_size(frame.boxes[keep]).tolist(),
            frame.labels[keep].tolist(),
            frame.track_ids[keep].tolist(),
            strict=True,
        )
    ]


def pinhole_matrix(width: int, height: int) -> np.ndarray:
    """3x3 intrinsics of an ideal camera with a 70 degree horizontal view, centred."""
    focal = width / (2.0 * math.tan(math.radians(HORIZONTAL_FOV_DEG) / 2.0))
    return np.array([[focal, 0.0, (width - 1) / 2], [0.0, focal, (height - 1) / 2], [0, 0, 1]])


def camera_info(types: Any, header: Any, width: int, height: int) -> Any:
    """sensor_msgs/CameraInfo (rosbags type) of the ideal pinhole camera for a frame size."""
    k = pinhole_matrix(width, height)
    projection = np.concatenate([k, np.zeros((3, 1))], axis=1)
    return types["sensor_msgs/msg/CameraInfo"](
        header=header,
        height=height,
        width=width,
        distortion_model="plumb_bob",
        d=np.zeros(5),
        k=k.reshape(-1),
        r=np.eye(3).reshape(-1),
        p=projection.reshape(-1),
        binning_x=0,
        binning_y=0,
        roi=types["sensor_msgs/msg/RegionOfInterest"](
            x_offset=0, y_offset=0, height=0, width=0, do_rectify=False
        ),
    )


def image_message(types: Any, header: Any, pixels: np.ndarray, encoding: str) -> Any:
    """sensor_msgs/Image (rosbags type) of an H x W x 3 uint8 array in `encoding` (rgb8, bgr8)."""
    height, width = pixels.shape[:2]
    return types["sensor_msgs/msg/Image"](
        header=header,
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=0,
        step=3 * width,
        data=np.ascontiguousarray(pixels).reshape(-1),
    )


def _header(types: Any, stamp_ns: int, frame_id: str) -> Any:
    """std_msgs/Header (rosbags type) with a stamp in nanoseconds."""
    stamp = types["builtin_interfaces/msg/Time"](
        sec=stamp_ns // 1_000_000_000, nanosec=stamp_ns % 1_000_000_000
    )
    return types["std_msgs/msg/Header"](stamp=stamp, frame_id=frame_id)


class BagWriter:
    """Writes frames into a new rosbag2 bag in mcap storage.

    `path` is the bag folder, as with `ros2 bag record -o`: it must not exist and will hold
    `<folder name>.mcap` and `metadata.yaml`. Use as a context manager (or call close()).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        image_format: str = "raw",
        class_names: Sequence[str] = DEFAULT_CLASSES,
    ) -> None:
        if image_format not in IMAGE_FORMATS:
            raise ValueError(f"image_format must be one of {IMAGE_FORMATS}, got {image_format!r}")
        self.path = Path(path)
        if self.path.exists():
            raise FileExistsError(
                f"bag {self.path} exists already; rosbag2 bags are not overwritten"
            )
        self.image_format = image_format
        self.class_names = tuple(class_names)
        self._store = typestore()
        self._writer = Writer(
            self.path, version=_ROSBAG2_VERSION, storage_plugin=StoragePlugin.MCAP
        )
        self._writer.open()
        image_topic, image_type = (
            (IMAGE_TOPIC, "sensor_msgs/msg/Image")
            if image_format == "raw"
            else (COMPRESSED_TOPIC, "sensor_msgs/msg/CompressedImage")
        )
        self._connections = {
            name: (self._writer.add_connection(topic, msgtype, typestore=self._store), msgtype)
            for name, topic, msgtype in (
                ("image", image_topic, image_type),
                ("info", CAMERA_INFO_TOPIC, "sensor_msgs/msg/CameraInfo"),
                ("truth", GROUND_TRUTH_TOPIC, "pdn_msgs/msg/DetectionArray"),
            )
        }

    def __enter__(self) -> BagWriter:
        """Use as a context manager."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """Finish the bag (also after an error: what was written stays readable)."""
        self.close()

    def close(self) -> None:
        """Write the bag's metadata and close its file."""
        self._writer.close()

    def _put(self, name: str, message: object, stamp_ns: int) -> None:
        """Serialize a message to CDR and write it on one of the three connections."""
        connection, msgtype = self._connections[name]
        self._writer.write(connection, stamp_ns, self._store.serialize_cdr(message, msgtype))

    def write(self, frame: Frame, stamp_ns: int) -> None:
        """Write a frame's image, camera info and ground truth, all stamped `stamp_ns`."""
        types = self._store.types
        header = _header(types, stamp_ns, CAMERA_FRAME)
        height, width = frame.image.shape[:2]
        if self.image_format == "raw":
            image = image_message(types, header, frame.image, "rgb8")
        else:
            image = types["sensor_msgs/msg/CompressedImage"](
                header=header, format="jpeg", data=frame_jpeg(frame, JPEG_QUALITY).reshape(-1)
            )
        self._put("image", image, stamp_ns)
        self._put("info", camera_info(types, header, width, height), stamp_ns)
        detection = types["pdn_msgs/msg/Detection"]
        detections = [detection(**f) for f in truth_detection_fields(frame, self.class_names)]
        truth = types["pdn_msgs/msg/DetectionArray"](header=header, detections=detections)
        self._put("truth", truth, stamp_ns)


def write_bag(
    path: str | os.PathLike[str],
    frames: Iterable[Frame],
    fps: float,
    image_format: str = "raw",
) -> Path:
    """Write the frames of one sequence as a bag, stamped at `fps` from EPOCH_NS."""
    with BagWriter(path, image_format) as writer:
        for frame in frames:
            writer.write(frame, frame_stamp_ns(frame.frame_index, fps))
    return Path(path)


def write_camera_bag(
    path: str | os.PathLike[str],
    frames: Iterable[tuple[np.ndarray, int, int]],
    namespace: str = "/front_cam/color",
) -> Path:
    """A bag (mcap) as a camera driver with image_transport records it: for each (RGB image
    H x W x 3, header stamp ns, log time ns), `NS/image_raw` (Image, bgr8), then
    `NS/image_raw/compressed` (JPEG of the same frame) and `NS/camera_info`, each logged a
    millisecond after the one before; no ground truth."""
    store = typestore()
    types = store.types
    with Writer(Path(path), version=_ROSBAG2_VERSION, storage_plugin=StoragePlugin.MCAP) as bag:
        topics = (
            ("image_raw", "sensor_msgs/msg/Image"),
            ("image_raw/compressed", "sensor_msgs/msg/CompressedImage"),
            ("camera_info", "sensor_msgs/msg/CameraInfo"),
        )
        connections = [
            (bag.add_connection(f"{namespace}/{name}", msgtype, typestore=store), msgtype)
            for name, msgtype in topics
        ]
        for rgb, stamp_ns, log_ns in frames:
            header = _header(types, stamp_ns, namespace.strip("/").replace("/", "_") + "_optical")
            height, width = rgb.shape[:2]
            jpeg = rgb_jpeg(rgb, JPEG_QUALITY)
            messages = (
                image_message(types, header, rgb[..., ::-1], "bgr8"),
                types["sensor_msgs/msg/CompressedImage"](
                    header=header, format="bgr8; jpeg compressed bgr8", data=jpeg.reshape(-1)
                ),
                camera_info(types, header, width, height),
            )
            for offset, ((connection, msgtype), message) in enumerate(
                zip(connections, messages, strict=True)
            ):
                raw = store.serialize_cdr(message, msgtype)
                bag.write(connection, log_ns + offset * 1_000_000, raw)
    return Path(path)
