"""`pdn_node`: the PatchDriveNet perception node, a managed (lifecycle) node.

A thin shell over the modules of this package: per camera it subscribes to the images (raw
or compressed) and the camera info, keeps the newest frame in a slot for a worker thread
(`slots`), runs the frames through the model (`frame_processor`), gives the detections track
ids (`pdn_runtime.tracking`), and publishes detections, patches, patch markers, a debug image
while someone watches it, and /diagnostics at 1 Hz.

Several models, one per frame size, may serve cameras of several resolutions: each camera
gets the model of its first frame's size (`routing`).

Lifecycle: configure reads and checks the parameters, loads the models and creates the
publishers and each camera's reset service; activate subscribes and starts the workers;
deactivate stops them (the models stay loaded); cleanup frees the models. With the parameter
`autostart` (default true) the node configures and activates itself at start, and a failed
configure ends the process with one log line. See docs/ros_node.md and docs/parameters.md.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from diagnostic_msgs.msg import DiagnosticArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.exceptions import ParameterException
from rclpy.lifecycle import LifecycleNode, LifecycleState, TransitionCallbackReturn
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
from std_srvs.srv import Trigger
from visualization_msgs.msg import MarkerArray

from pdn_msgs.msg import DetectionArray, PatchArray
from pdn_ros.allocator import keep_large_buffers
from pdn_ros.debug_draw import draw
from pdn_ros.frame_processor import Arrival, CameraResult, FrameProcessor, SkippedFrame
from pdn_ros.image_convert import BadFrame, rgb_image_message
from pdn_ros.markers import build_markers, camera_info_matrix, fallback_matrix
from pdn_ros.messages import detection_array, patch_array, stamp_ns
from pdn_ros.params import PARAMETERS, RELOAD, SPECS, Settings, check_value
from pdn_ros.routing import Lane, LoadedModel, ModelSet, Router, model_paths
from pdn_ros.spin import run_node
from pdn_ros.stats import CameraStats, diagnostic_status
from pdn_runtime import (
    Backend,
    BackendError,
    FrameDetections,
    Stream,
    create_backend,
    options_for,
)
from pdn_runtime.camera_motion import CameraMotion
from pdn_runtime.onnx_file import DEMO_MODEL
from pdn_runtime.tracking import Tracker

NODE_NAME = "pdn_node"
LOG_THROTTLE_S = 5.0
RESULT_QOS = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)
DEBUG_QOS = QoSProfile(depth=1, reliability=QoSReliabilityPolicy.RELIABLE)


class StartupError(RuntimeError):
    """The node cannot start with these parameters; the message says why."""


@dataclass
class Camera:
    """One camera's publishers, counters, intrinsics, tracks, and a reset asked for by its
    service (done by the worker before the camera's next frame)."""

    name: str
    stats: CameraStats
    detections: Publisher
    patches: Publisher
    markers: Publisher
    debug: Publisher
    tracker: Tracker
    motion: CameraMotion = field(default_factory=CameraMotion)  # view offset for the tracker
    k: np.ndarray | None = None
    fallback_logged: bool = False
    unmatched: str = ""  # why its last frame found no model (while it has none)
    reset_requested: threading.Event = field(default_factory=threading.Event)

    def end_tracks(self) -> None:
        """End the camera's tracks (later objects get new ids) and its motion estimate."""
        self.tracker.reset()
        self.motion.reset()


class PdnNode(LifecycleNode):
    """Parameters, lifecycle, model, per-camera topics, services and workers; see the module
    docstring."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(NODE_NAME, **kwargs)
        self.models: ModelSet | None = None
        self.router: Router | None = None
        self.cameras: list[Camera] = []
        self.streams: list[Stream] = []  # each camera's temporal state, whichever its model
        self.failure: Exception | None = None  # why the last configure failed
        self.done = threading.Event()  # set at shutdown: the process then ends
        self._loaded: list[LoadedModel] = []
        self._batch_wait_s = 0.0
        self._image_subscriptions: list[Any] = []
        self._reset_services: list[Any] = []
        self._diagnostics: Publisher | None = None
        self._diagnostics_timer: Any = None
        self._starting = False
        self.add_on_set_parameters_callback(self._check_parameters)
        for spec in PARAMETERS:
            self.declare_parameter(spec.name, spec.default, spec.descriptor())
        self.settings = Settings.from_values(self._values())
        self.add_post_set_parameters_callback(self._apply_parameters)
        if self.get_parameter("autostart").value:
            self._starting = True
            if self.trigger_configure() != TransitionCallbackReturn.SUCCESS:
                raise self.failure or StartupError("configure failed")
            self._starting = False
            self.trigger_activate()

    def _values(self) -> dict[str, Any]:
        """Every parameter's current value by name."""
        return {name: self.get_parameter(name).value for name in SPECS}

    @property
    def backend(self) -> Backend | None:
        """The first model's backend (the only one with a single model); None unconfigured."""
        return self._loaded[0].backend if self._loaded else None

    # ---- lifecycle ----------------------------------------------------------------------

    def on_configure(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Check the parameters, load the model, create publishers, streams, trackers and
        reset services; a failure frees what was made, logs the reason and leaves the node
        unconfigured (at autostart, main() logs it as the one fatal line instead)."""
        try:
            self._configure(self._values())
        except (StartupError, BackendError) as err:
            self._release()
            self.failure = err
            if not self._starting:
                self.get_logger().error(f"configure failed: {err}")
            return TransitionCallbackReturn.FAILURE
        self.failure = None
        return TransitionCallbackReturn.SUCCESS

    def on_activate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Subscribe to every camera, start the workers of the cameras bound before (a camera
        is bound to a model and worker on its first frame) and the 1 Hz diagnostics."""
        values = self._values()
        self._batch_wait_s = values["batch_wait_s"]
        for lane in self.router.lanes:
            self._start_lane(lane)
        for index, camera in enumerate(self.cameras):
            self._subscribe(index, camera, values)
        self._diagnostics_timer = self.create_timer(1.0, self._publish_diagnostics)
        self.get_logger().info("active: subscribed, processing frames")
        return super().on_activate(state)

    def on_deactivate(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop subscribing and processing; the models stay loaded."""
        self._stop_processing()
        self.get_logger().info("inactive: unsubscribed, models kept")
        return super().on_deactivate(state)

    def on_cleanup(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Free the models, the publishers and the services."""
        self._release()
        return TransitionCallbackReturn.SUCCESS

    def on_shutdown(self, state: LifecycleState) -> TransitionCallbackReturn:
        """Stop and free everything, from whichever state; the process then ends."""
        self._release()
        self.done.set()
        return TransitionCallbackReturn.SUCCESS

    def on_error(self, state: LifecycleState) -> TransitionCallbackReturn:
        """A transition failed with an error: free everything, back to unconfigured."""
        self.get_logger().error("a lifecycle transition failed: everything released")
        self._release()
        return TransitionCallbackReturn.SUCCESS

    # ---- set-up and release -------------------------------------------------------------------

    def _configure(self, values: dict[str, Any]) -> None:
        """Models, checks against them, streams, the router, cameras and /diagnostics."""
        paths = model_paths(values["model_path"])
        if not paths:
            raise StartupError(
                "parameter model_path is empty: give the exported model, e.g. "
                f"--ros-args -p model_path:={DEMO_MODEL} (several, one per camera frame "
                "size: comma-separated)"
            )
        kind = values["backend"]
        options = options_for(kind, {"threads": values["threads"]})
        for path in paths:  # a model that cannot be loaded fails with its file named
            self._loaded.append(LoadedModel(path, create_backend(kind, path, **options)))
        info = self.backend.info
        reason = check_value(
            "memory_length", values["memory_length"], info.memory_shape[0]
        ) or check_value("publish_classes", values["publish_classes"], None, info.class_names)
        if reason is not None:
            raise StartupError(reason)
        names = list(values["cameras"])
        try:  # the other models: the same classes and memory, so the checks above hold
            self.models = ModelSet(self._loaded, len(names))
        except ValueError as err:
            raise StartupError(str(err)) from err
        self.settings = Settings.from_values(values)
        self.streams = [Stream(info) for _ in names]
        self.router = Router(self.models, self.streams, self._start_lane)
        self.cameras = [self._create_camera(name) for name in names]
        self._diagnostics = self.create_lifecycle_publisher(DiagnosticArray, "/diagnostics", 10)
        self.get_logger().info(
            f"configured: {self.backend.describe()}; models {self.models.describe()}; "
            f"cameras {names} ({values['transport']}, {values['qos_reliability']}); each "
            "camera gets the model of its first frame's size"
        )

    def _start_lane(self, lane: Lane) -> None:
        """Start a lane's worker (new lanes open while active, when a camera is bound)."""
        lane.start(self._handle, self._worker_failed, self._batch_wait_s)

    def _create_camera(self, name: str) -> Camera:
        """One camera's publishers, tracker and reset service."""
        camera = Camera(
            name=name,
            stats=CameraStats(),
            detections=self.create_lifecycle_publisher(
                DetectionArray, f"{name}/detections", RESULT_QOS
            ),
            patches=self.create_lifecycle_publisher(PatchArray, f"{name}/patches", RESULT_QOS),
            markers=self.create_lifecycle_publisher(
                MarkerArray, f"{name}/patch_markers", RESULT_QOS
            ),
            debug=self.create_lifecycle_publisher(Image, f"{name}/debug_image", DEBUG_QOS),
            tracker=Tracker(self.settings.tracker),
        )
        self._reset_services.append(
            self.create_service(
                Trigger,
                f"{name}/reset_state",
                lambda request, response: self._reset_camera(camera, response),
            )
        )
        return camera

    def _subscribe(self, index: int, camera: Camera, values: dict[str, Any]) -> None:
        """A camera's image and camera_info subscriptions (incompatible QoS logged); each
        image goes to the newest-frame slot of the camera's lane row."""
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
        name = camera.name
        image_topic = f"{name}/image/compressed" if compressed else f"{name}/image"

        def on_image(msg: Any) -> None:
            transport_s = (self.get_clock().now().nanoseconds - stamp_ns(msg.header)) / 1e9
            arrival = Arrival(msg, time.perf_counter(), transport_s)
            try:
                lane, row = self.router.route(index, msg)
            except BadFrame as err:
                camera.stats.received(False)
                self._unrouted(camera, err)
                return
            camera.unmatched = ""
            camera.stats.received(lane.put(row, arrival))

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
            self._image_subscriptions.append(
                self.create_subscription(msg_type, topic, callback, qos, event_callbacks=events)
            )

    def _stop_processing(self) -> None:
        """Unsubscribe, stop the workers (each finishes its frame) and the diagnostics."""
        for subscription in self._image_subscriptions:
            self.destroy_subscription(subscription)
        if self.router is not None:
            self.router.stop()
        if self._diagnostics_timer is not None:
            self.destroy_timer(self._diagnostics_timer)
        self._image_subscriptions, self._diagnostics_timer = [], None

    def _release(self) -> None:
        """Back to unconfigured from any state: stop processing, destroy the services and
        publishers, free the models."""
        self._stop_processing()
        for service in self._reset_services:
            self.destroy_service(service)
        publishers = [self._diagnostics] if self._diagnostics is not None else []
        for camera in self.cameras:
            publishers += [camera.detections, camera.patches, camera.markers, camera.debug]
        for publisher in publishers:
            self.destroy_lifecycle_publisher(publisher)
        for model in self._loaded:
            model.backend.close()
        self._loaded, self.models, self.router, self.cameras, self.streams = [], None, None, [], []
        self._reset_services, self._diagnostics = [], None

    # ---- parameters and services -------------------------------------------------------------

    def _check_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        """Refuse a value that cannot work, or a change the configured node cannot take
        without a reload, with the reason (the old value stays)."""
        info = self.models.info if self.models is not None else None
        for parameter in parameters:
            if parameter.name in RELOAD and info is not None:
                return SetParametersResult(
                    successful=False,
                    reason=f"{parameter.name} is read when the node is configured (it needs "
                    "the model and topics set up again): deactivate and clean up the node, "
                    "set it, then configure it",
                )
            reason = check_value(
                parameter.name,
                parameter.value,
                info.memory_shape[0] if info is not None else None,
                info.class_names if info is not None else None,
            )
            if reason is not None:
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    def _apply_parameters(self, parameters: list[Parameter]) -> None:
        """Give the workers the new settings (one object swap, read per frame)."""
        self.settings = Settings.from_values(self._values())
        changed = ", ".join(f"{p.name}={p.value!r}" for p in parameters)
        self.get_logger().info(f"parameters changed: {changed}")

    def _reset_camera(self, camera: Camera, response: Trigger.Response) -> Trigger.Response:
        """The camera's reset service: its worker forgets the temporal memory and ends the
        tracks before the camera's next frame."""
        camera.reset_requested.set()
        response.success = True
        response.message = f"{camera.name}: temporal memory and tracks reset before its next frame"
        self.get_logger().info(response.message)
        return response

    # ---- per frame -----------------------------------------------------------------------

    def _handle(self, processor: FrameProcessor, frames: list[tuple[int, Any]]) -> None:
        """Run one batch of frames and publish what came out (worker thread)."""
        settings = self.settings
        for index in processor.cameras:
            camera = self.cameras[index]
            if camera.reset_requested.is_set():
                camera.reset_requested.clear()
                self.streams[index].restart()
                camera.end_tracks()
        for outcome in processor.process(frames, settings):
            camera = self.cameras[outcome.camera]
            if isinstance(outcome, SkippedFrame):
                self._bad_frame(camera, outcome.error)
                continue
            if outcome.found.reset is not None:
                camera.stats.reset(outcome.found.reset)
                self.get_logger().info(
                    f"{camera.name}: temporal state reset ({outcome.found.reset})",
                    throttle_duration_sec=LOG_THROTTLE_S,
                )
            self._publish(camera, processor, outcome, settings)

    def _bad_frame(self, camera: Camera, error: BadFrame) -> None:
        """Count a skipped bad frame and log why (throttled)."""
        camera.stats.bad_frame(error.kind)
        self.get_logger().warning(
            f"{camera.name}: bad frame skipped ({error.kind}): {error}",
            throttle_duration_sec=LOG_THROTTLE_S,
        )

    def _unrouted(self, camera: Camera, error: BadFrame) -> None:
        """A frame of a camera without a model that could not get one: its size matches no
        model (an error, counted as a bad frame of kind resolution, the reason kept for
        /diagnostics) or its size cannot be read (a bad frame like any other)."""
        if error.size is None:
            self._bad_frame(camera, error)
            return
        camera.stats.bad_frame(error.kind)
        camera.unmatched = str(error)
        self.get_logger().error(
            f"{camera.name}: frame skipped, no model for its size: {error}",
            throttle_duration_sec=LOG_THROTTLE_S,
        )

    def _published(self, found: FrameDetections, settings: Settings) -> FrameDetections:
        """The detections of the classes in `publish_classes` (all when it is empty)."""
        if not settings.publish_classes:
            return found
        names = self.models.info.class_names
        wanted = [i for i, name in enumerate(names) if name in settings.publish_classes]
        return found.subset(np.isin(found.labels, wanted))

    def _track(
        self,
        camera: Camera,
        found: FrameDetections,
        header: Header,
        settings: Settings,
        image: np.ndarray,
    ) -> np.ndarray | None:
        """Track ids of the published detections of frame `image` (planar RGB; None with
        tracking off, which ends the tracks); new tracking settings end the tracks too."""
        if not settings.tracking:
            camera.end_tracks()
            return None
        if camera.tracker.settings != settings.tracker:
            camera.tracker.set_settings(settings.tracker)
            camera.motion.reset()
        offset = camera.motion.update(image) if settings.tracker.camera_motion else (0.0, 0.0)
        return camera.tracker.track(found, stamp_ns(header), offset)

    def _publish(
        self, camera: Camera, processor: FrameProcessor, result: CameraResult, settings: Settings
    ) -> None:
        """Detections and patches always; markers and the debug image when subscribed."""
        frame_id = settings.frame_id.replace("{camera}", camera.name) or result.header.frame_id
        header = Header(stamp=result.header.stamp, frame_id=frame_id)
        names = self.models.info.class_names
        found = self._published(result.found, settings)
        image = processor.runner.image[processor.cameras.index(result.camera)]
        tracks = self._track(camera, found, result.header, settings, image)
        camera.detections.publish(detection_array(found, names, header, tracks))
        latency_s = (self.get_clock().now().nanoseconds - stamp_ns(result.header)) / 1e9
        camera.patches.publish(patch_array(found, header))
        camera.stats.processed(len(found.scores), latency=latency_s, **result.timings)
        if camera.markers.get_subscription_count():
            k = self._intrinsics(camera, found)
            markers = build_markers(found, header, k, settings.marker_depth, names, tracks)
            camera.markers.publish(markers)
        if settings.debug_image and camera.debug.get_subscription_count():
            picture = draw(image, found, settings.debug_image_scale, names, tracks)
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
        message = DiagnosticArray(
            status=[
                diagnostic_status(
                    f"{self.get_name()}: {camera.name}",
                    camera.name,
                    camera.stats.snapshot(),
                    self._model_values(index, camera),
                )
                for index, camera in enumerate(self.cameras)
            ]
        )
        message.header.stamp = self.get_clock().now().to_msg()
        self._diagnostics.publish(message)

    def _model_values(self, index: int, camera: Camera) -> dict[str, str]:
        """The diagnostics values naming a camera's model: file, size and batch, or why it
        has none yet."""
        model = self.router.model_of(index)
        if model is None:
            why = camera.unmatched or "no frame yet; its first frame's size chooses"
            return {"backend": self.backend.describe(), "model": f"none: {why}"}
        info = model.backend.info
        return {
            "backend": model.backend.describe(),
            "model": model.path,
            "model_size": f"{info.width}x{info.height}",
            "model_batch": str(info.batch),
        }

    def close(self) -> None:
        """Stop the workers (each finishes its frame), free the models, destroy the node."""
        self._release()
        self.destroy_node()


def main(args: list[str] | None = None) -> int:
    """Run the node until shut down; exit status 1, with one log line, when it cannot start."""
    keep_large_buffers()
    return run_node(NODE_NAME, PdnNode, (StartupError, BackendError, ParameterException), args)


if __name__ == "__main__":
    sys.exit(main())
