"""`pdn_node`: the PatchDriveNet perception node.

A thin shell over the modules of this package: per camera it subscribes to the images (raw
or compressed) and the camera info, keeps the newest frame in a slot for a worker thread
(`slots`), runs the frames through the model (`frame_processor`), and publishes detections,
patches, patch markers, a debug image while someone watches it, and /diagnostics at 1 Hz.
See docs/ros_node.md and docs/parameters.md.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.exceptions import ParameterException
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.publisher import Publisher
from rclpy.qos import (
    QoSDurabilityPolicy,
    QoSHistoryPolicy,
    QoSPolicyKind,
    QoSProfile,
    QoSReliabilityPolicy,
)
from sensor_msgs.msg import CameraInfo, CompressedImage, Image
from std_msgs.msg import Header
from visualization_msgs.msg import MarkerArray

from pdn_msgs.msg import DetectionArray, PatchArray
from pdn_ros.allocator import keep_large_buffers
from pdn_ros.debug_draw import draw
from pdn_ros.frame_processor import Arrival, CameraResult, FrameProcessor, SkippedFrame
from pdn_ros.image_convert import rgb_image_message
from pdn_ros.markers import build_markers, camera_info_matrix, fallback_matrix
from pdn_ros.messages import detection_array, patch_array, stamp_ns
from pdn_ros.params import PARAMETERS, SPECS, Settings, check_value
from pdn_ros.slots import FrameSlots, Worker
from pdn_ros.spin import run_node
from pdn_ros.stats import CameraStats, diagnostic_status
from pdn_runtime import BackendError, FrameDetections, Stream, create_backend, options_for
from pdn_runtime.onnx_file import DEMO_MODEL

NODE_NAME = "pdn_node"
LOG_THROTTLE_S = 5.0
RESULT_QOS = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)
DEBUG_QOS = QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE)


class StartupError(RuntimeError):
    """The node cannot start with these parameters; the message says why."""


@dataclass
class Camera:
    """One camera's publishers, counters and intrinsics."""

    name: str
    stats: CameraStats
    detections: Publisher
    patches: Publisher
    markers: Publisher
    debug: Publisher
    k: np.ndarray | None = None
    fallback_logged: bool = False


class PdnNode(Node):
    """Parameters, model, per-camera topics and workers; see the module docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.memory_slots: int | None = None
        self.add_on_set_parameters_callback(self._check_parameters)
        for spec in PARAMETERS:
            self.declare_parameter(spec.name, spec.default, spec.descriptor())
        values = {name: self.get_parameter(name).value for name in SPECS}
        if not values["model_path"]:
            raise StartupError(
                "parameter model_path is empty: give the exported model, e.g. "
                f"--ros-args -p model_path:={DEMO_MODEL}"
            )
        kind = values["backend"]
        options = options_for(kind, {"threads": values["threads"]})
        self.backend = create_backend(kind, values["model_path"], **options)
        info = self.backend.info
        self.memory_slots = info.memory_shape[0]
        reason = check_value("memory_length", values["memory_length"], self.memory_slots)
        names = list(values["cameras"])
        if reason is None and info.batch not in (1, len(names)):
            reason = (
                f"the model takes batch {info.batch} but the node has {len(names)} cameras: "
                f"export it with --batch {len(names)} (cameras run together) or --batch 1"
            )
        if reason is not None:
            self.backend.close()
            raise StartupError(reason)
        self.settings = Settings.from_values(values)
        self.add_post_set_parameters_callback(self._apply_parameters)
        self.streams = [Stream(info) for _ in names]
        self.cameras, self.workers = self._create_cameras(names, values)
        self._diagnostics = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self.create_timer(1.0, self._publish_diagnostics)
        for worker in self.workers:
            worker.start()
        self.get_logger().info(
            f"{self.backend.describe()}; model {values['model_path']} "
            f"({info.width}x{info.height}, batch {info.batch}); cameras {names} "
            f"({values['transport']}, {values['qos_reliability']})"
        )

    # ---- set-up --------------------------------------------------------------------------

    def _create_cameras(
        self, names: list[str], values: dict[str, Any]
    ) -> tuple[list[Camera], list[Worker[Any]]]:
        """Slots, workers, subscriptions and publishers of every camera."""
        info = self.backend.info
        lock = threading.Lock()
        # batch 1: a worker per camera; batch = cameras: one worker runs them together
        groups = [[i] for i in range(len(names))] if info.batch == 1 else [list(range(len(names)))]
        cameras: list[Camera | None] = [None] * len(names)
        workers: list[Worker[Any]] = []
        for group in groups:
            slots: FrameSlots[Any] = FrameSlots(len(group))
            processor = FrameProcessor(self.backend, lock, group, [self.streams[i] for i in group])
            for slot, index in enumerate(group):
                cameras[index] = self._create_camera(names[index], slots, slot, values)
            workers.append(
                Worker(
                    f"pdn-{'+'.join(names[i] for i in group)}",
                    slots,
                    lambda frames, p=processor: self._handle(p, frames),
                    self._worker_failed,
                    values["batch_wait_s"],
                )
            )
        return cameras, workers

    def _create_camera(
        self, name: str, slots: FrameSlots[Any], slot: int, values: dict[str, Any]
    ) -> Camera:
        """One camera's subscriptions (with incompatible-QoS logging) and publishers."""
        camera = Camera(
            name=name,
            stats=CameraStats(),
            detections=self.create_publisher(DetectionArray, f"{name}/detections", RESULT_QOS),
            patches=self.create_publisher(PatchArray, f"{name}/patches", RESULT_QOS),
            markers=self.create_publisher(MarkerArray, f"{name}/patch_markers", RESULT_QOS),
            debug=self.create_publisher(Image, f"{name}/debug_image", DEBUG_QOS),
        )
        reliability = values["qos_reliability"]
        qos = QoSProfile(
            history=QoSHistoryPolicy.KEEP_LAST,
            depth=values["qos_depth"],
            reliability=QoSReliabilityPolicy.BEST_EFFORT
            if reliability == "best_effort"
            else QoSReliabilityPolicy.RELIABLE,
            durability=QoSDurabilityPolicy.VOLATILE,
        )
        compressed = values["transport"] == "compressed"
        image_type = CompressedImage if compressed else Image
        image_topic = f"{name}/image/compressed" if compressed else f"{name}/image"

        def on_image(msg: Any) -> None:
            transport_s = (self.get_clock().now().nanoseconds - stamp_ns(msg.header)) / 1e9
            arrival = Arrival(msg, time.perf_counter(), transport_s)
            camera.stats.received(slots.put(slot, arrival))

        def on_info(msg: CameraInfo) -> None:
            camera.k = camera_info_matrix(msg)

        for msg_type, topic, callback in (
            (image_type, image_topic, on_image),
            (CameraInfo, f"{name}/camera_info", on_info),
        ):
            events = SubscriptionEventCallbacks(
                incompatible_qos=lambda event, t=topic: self._incompatible_qos(
                    camera, t, reliability, event
                )
            )
            self.create_subscription(msg_type, topic, callback, qos, event_callbacks=events)
        return camera

    # ---- parameters --------------------------------------------------------------------

    def _check_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        """Refuse a value that cannot work, with the reason (the old value stays)."""
        for parameter in parameters:
            reason = check_value(parameter.name, parameter.value, self.memory_slots)
            if reason is not None:
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    def _apply_parameters(self, parameters: list[Parameter]) -> None:
        """Give the workers the new settings (one object swap, read per frame)."""
        self.settings = Settings.from_values(
            {name: self.get_parameter(name).value for name in SPECS}
        )
        changed = ", ".join(f"{p.name}={p.value!r}" for p in parameters)
        self.get_logger().info(f"parameters changed: {changed}")

    # ---- per frame -----------------------------------------------------------------------

    def _handle(self, processor: FrameProcessor, frames: list[tuple[int, Any]]) -> None:
        """Run one batch of frames and publish what came out (worker thread)."""
        settings = self.settings
        for outcome in processor.process(frames, settings):
            camera = self.cameras[outcome.camera]
            if isinstance(outcome, SkippedFrame):
                camera.stats.bad_frame(outcome.error.kind)
                self.get_logger().warning(
                    f"{camera.name}: bad frame skipped ({outcome.error.kind}): {outcome.error}",
                    throttle_duration_sec=LOG_THROTTLE_S,
                )
                continue
            if outcome.found.reset is not None:
                camera.stats.reset(outcome.found.reset)
                self.get_logger().info(
                    f"{camera.name}: temporal state reset ({outcome.found.reset})",
                    throttle_duration_sec=LOG_THROTTLE_S,
                )
            self._publish(camera, processor, outcome, settings)

    def _publish(
        self, camera: Camera, processor: FrameProcessor, result: CameraResult, settings: Settings
    ) -> None:
        """Detections and patches always; markers and the debug image when subscribed."""
        frame_id = settings.frame_id.replace("{camera}", camera.name) or result.header.frame_id
        header = Header(stamp=result.header.stamp, frame_id=frame_id)
        names = self.backend.info.class_names
        found = result.found
        camera.detections.publish(detection_array(found, names, header))
        latency_s = (self.get_clock().now().nanoseconds - stamp_ns(result.header)) / 1e9
        camera.patches.publish(patch_array(found, header))
        camera.stats.processed(len(found.scores), latency=latency_s, **result.timings)
        if camera.markers.get_subscription_count():
            k = self._intrinsics(camera, found)
            camera.markers.publish(build_markers(found, header, k, settings.marker_depth, names))
        if settings.debug_image and camera.debug.get_subscription_count():
            row = processor.cameras.index(result.camera)
            image = processor.runner.image[row]
            picture = draw(image, found, settings.debug_image_scale, names)
            camera.debug.publish(rgb_image_message(picture, header))

    def _intrinsics(self, camera: Camera, found: FrameDetections) -> np.ndarray:
        """The camera's K from CameraInfo, else the documented fallback (logged once)."""
        if camera.k is not None:
            return camera.k
        if not camera.fallback_logged:
            camera.fallback_logged = True
            self.get_logger().warning(
                f"{camera.name}: no CameraInfo on {camera.name}/camera_info yet; patch_markers "
                f"use a pinhole with focal length {found.width} px (the image width) and the "
                "principal point at the image centre"
            )
        return fallback_matrix(found.width, found.height)

    # ---- events and diagnostics ------------------------------------------------------------

    def _incompatible_qos(self, camera: Camera, topic: str, reliability: str, event: Any) -> None:
        """Log the classic silent failure: a publisher this subscription cannot hear."""
        camera.stats.qos_incompatible()
        policy = QoSPolicyKind(event.last_policy_kind).name
        self.get_logger().error(
            f"{camera.name}: a publisher on {self.resolve_topic_name(topic)} has a QoS "
            f"incompatible with this node's {reliability} subscription (offending policy: "
            f"{policy}). Nothing will arrive from it: set the qos_reliability parameter to "
            "match the publisher.",
            throttle_duration_sec=LOG_THROTTLE_S,
        )

    def _worker_failed(self, trace: str) -> None:
        """An unexpected error in a worker: log it (throttled); the worker goes on. Not while
        shutting down, when publishing from a worker fails by design."""
        if self.context.ok():
            self.get_logger().error(f"worker error:\n{trace}", throttle_duration_sec=LOG_THROTTLE_S)

    def _publish_diagnostics(self) -> None:
        """One DiagnosticStatus per camera on /diagnostics (1 Hz timer)."""
        info = self.backend.info
        extra = {
            "backend": self.backend.describe(),
            "model": str(self.get_parameter("model_path").value),
            "model_size": f"{info.width}x{info.height}",
            "model_batch": str(info.batch),
        }
        message = DiagnosticArray(
            status=[
                diagnostic_status(
                    f"{self.get_name()}: {camera.name}", camera.name, camera.stats.snapshot(), extra
                )
                for camera in self.cameras
            ]
        )
        message.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics.publish(message)

    def close(self) -> None:
        """Stop the workers (each finishes its frame), free the model, destroy the node."""
        for worker in self.workers:
            worker.stop()
        self.backend.close()
        self.destroy_node()


def main(args: list[str] | None = None) -> int:
    """Run the node until shut down; exit status 1, with one log line, when it cannot start."""
    keep_large_buffers()
    return run_node(NODE_NAME, PdnNode, (StartupError, BackendError, ParameterException), args)


if __name__ == "__main__":
    sys.exit(main())
