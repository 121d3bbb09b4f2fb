"""`pdn_synth_camera`: a synthetic camera for demos, tests and benchmarks.

Publishes a `training.synth` scene sequence (4K by default) at a fixed rate, per camera C:
C/image (rgb8) or C/image/compressed (JPEG), C/camera_info (the ideal pinhole of
`training.rosbag_io.pinhole_matrix`) and C/ground_truth (pdn_msgs/DetectionArray of the
objects that are not `ignore`), all with the same header stamp, taken when published.

It imports `training`, so it is a demo and test tool, not robot runtime. A renderer thread
prepares the messages a few frames ahead (parameter `queue`), so the publishing timer only
stamps and publishes them and the rate holds as long as rendering keeps up on average.
"""

from __future__ import annotations

import queue
import sys
import threading
from array import array
from dataclasses import dataclass
from typing import Any

import numpy as np
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.publisher import Publisher
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header

from pdn_msgs.msg import Detection, DetectionArray
from pdn_ros.image_convert import JPEG_QUALITY, rgb_image_message
from pdn_ros.params import RELIABILITIES, TRANSPORTS, check_cameras
from pdn_ros.spin import run_node
from training.rosbag_io import frame_jpeg, pinhole_matrix, truth_detection_fields
from training.synth import CLASS_NAMES, Frame, SceneConfig, SceneSequence

NODE_NAME = "pdn_synth_camera"
DEFAULTS: dict[str, Any] = {
    "cameras": ["camera"],
    "width": 3840,
    "height": 2160,
    "rate_hz": 15.0,
    "transport": "raw",
    "reliability": "best_effort",
    "frames": 300,
    "seed": 0,
    "count": 0,
    "queue": 4,
    "wait_for_subscribers": 0,
    "frame_id": "{camera}_optical_frame",
}


@dataclass
class Bundle:
    """One camera frame's messages, ready but for their stamp."""

    image: Image | CompressedImage
    truth: DetectionArray


def truth_message(frame: Frame) -> DetectionArray:
    """The ground truth of a frame (objects not `ignore`) as pdn_msgs detections."""
    fields = truth_detection_fields(frame, CLASS_NAMES)
    return DetectionArray(detections=[Detection(**f) for f in fields])


def image_message(frame: Frame, transport: str) -> Image | CompressedImage:
    """The frame as an rgb8 Image or a JPEG CompressedImage (header left to the caller)."""
    if transport == "raw":
        return rgb_image_message(frame.image, Header())
    data = array("B")
    data.frombytes(frame_jpeg(frame, JPEG_QUALITY).data)
    return CompressedImage(format="jpeg", data=data)


def camera_info_message(width: int, height: int) -> CameraInfo:
    """CameraInfo of the synthetic pinhole (70 degrees of horizontal view, no distortion)."""
    k = pinhole_matrix(width, height)
    projection = np.concatenate([k, np.zeros((3, 1))], axis=1)
    return CameraInfo(
        width=width,
        height=height,
        distortion_model="plumb_bob",
        d=[0.0] * 5,
        k=k.reshape(-1).tolist(),
        r=np.eye(3).reshape(-1).tolist(),
        p=projection.reshape(-1).tolist(),
    )


class SynthCamera(Node):
    """Publishes pre-rendered synthetic frames of one sequence per camera at `rate_hz`."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        values = {
            name: self.declare_parameter(name, default).value for name, default in DEFAULTS.items()
        }
        problem = check_cameras(values["cameras"])
        if values["transport"] not in TRANSPORTS or values["reliability"] not in RELIABILITIES:
            problem = f"transport must be one of {TRANSPORTS}, reliability one of {RELIABILITIES}"
        if problem is not None or values["rate_hz"] <= 0 or values["queue"] < 1:
            raise ValueError(problem or "rate_hz must be > 0 and queue >= 1")
        self.values = values
        config = SceneConfig(
            height=values["height"],
            width=values["width"],
            frames=values["frames"],
            fps=values["rate_hz"],
        )
        self.names = list(values["cameras"])
        self.sequences = [
            SceneSequence((values["seed"], i), config) for i in range(len(self.names))
        ]
        image_qos = QoSProfile(
            depth=2,
            reliability=QoSReliabilityPolicy.BEST_EFFORT
            if values["reliability"] == "best_effort"
            else QoSReliabilityPolicy.RELIABLE,
        )
        reliable = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)
        compressed = values["transport"] == "compressed"
        self.outputs: list[tuple[Publisher, Publisher, Publisher]] = [
            (
                self.create_publisher(
                    CompressedImage if compressed else Image,
                    f"{name}/image/compressed" if compressed else f"{name}/image",
                    image_qos,
                ),
                self.create_publisher(CameraInfo, f"{name}/camera_info", reliable),
                self.create_publisher(DetectionArray, f"{name}/ground_truth", reliable),
            )
            for name in self.names
        ]
        self.info = camera_info_message(values["width"], values["height"])
        self.ready: queue.Queue[list[Bundle]] = queue.Queue(maxsize=values["queue"])
        self.published = 0
        self.late = 0
        self.done = threading.Event()
        self._renderer = threading.Thread(target=self._render, name="pdn-synth-render", daemon=True)
        self._renderer.start()
        self.create_timer(1.0 / values["rate_hz"], self._tick)
        self.get_logger().info(
            f"{len(self.names)} synthetic {values['width']}x{values['height']} camera(s) "
            f"{self.names} at {values['rate_hz']} Hz, {values['transport']}"
        )

    def _render(self) -> None:
        """Renderer thread: frames in sequence order, looping, into the bounded queue."""
        index = 0
        while not self.done.is_set():
            frame_index = index % self.values["frames"]
            bundles = []
            for sequence in self.sequences:
                frame = sequence.render(frame_index)
                image = image_message(frame, self.values["transport"])
                bundles.append(Bundle(image, truth_message(frame)))
            while not self.done.is_set():
                try:
                    self.ready.put(bundles, timeout=0.1)
                    break
                except queue.Full:
                    continue
            index += 1

    def _tick(self) -> None:
        """Timer: stamp and publish the next rendered frame of every camera."""
        if self.done.is_set():
            return
        wanted = self.values["wait_for_subscribers"]
        if wanted and any(pubs[0].get_subscription_count() < wanted for pubs in self.outputs):
            return
        try:
            bundles = self.ready.get_nowait()
        except queue.Empty:
            if self.published == 0:
                return  # the first frame is still being rendered: not late yet
            self.late += 1
            self.get_logger().warning(
                f"renderer behind: {self.late} ticks without a frame", throttle_duration_sec=5.0
            )
            return
        stamp = self.get_clock().now().to_msg()
        for name, bundle, (image_pub, info_pub, truth_pub) in zip(
            self.names, bundles, self.outputs, strict=True
        ):
            header = Header(stamp=stamp, frame_id=self.values["frame_id"].replace("{camera}", name))
            bundle.image.header = header
            bundle.truth.header = header
            self.info.header = header
            image_pub.publish(bundle.image)
            info_pub.publish(self.info)
            truth_pub.publish(bundle.truth)
        self.published += 1
        if self.values["count"] and self.published >= self.values["count"]:
            self.get_logger().info(f"published {self.published} frames per camera; done")
            self.done.set()

    def close(self) -> None:
        """Stop the renderer and destroy the node."""
        self.done.set()
        self._renderer.join(5.0)
        self.destroy_node()


def main(args: list[str] | None = None) -> int:
    """Publish until shut down, or until `count` frames per camera were published."""
    return run_node(NODE_NAME, SynthCamera, (ValueError, ParameterException), args)


if __name__ == "__main__":
    sys.exit(main())
