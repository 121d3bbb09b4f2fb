"""The node's parameters: one table of names, defaults, ranges and descriptions, the checks
that refuse bad values with a reason (at start and on change), and the settings the worker
reads.

`docs/parameters.md` and `config/pdn.yaml` document this table; a test keeps them equal.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.exceptions import InvalidTopicNameException
from rclpy.validate_topic_name import validate_topic_name

from pdn_runtime import KINDS, StreamPolicy
from pdn_runtime.tracking import TrackerSettings

TRACKING = TrackerSettings()  # the tracking parameters' defaults
TRANSPORTS = ("raw", "compressed")
RELIABILITIES = ("best_effort", "reliable")


@dataclass(frozen=True)
class ParamSpec:
    """One parameter: default, description, and what values it takes."""

    name: str
    default: Any
    description: str
    read_only: bool = False  # read once when the node starts
    reload: bool = False  # read at configure: changes only while the node is unconfigured
    choices: tuple[str, ...] = ()
    int_range: tuple[int, int] | None = None
    float_range: tuple[float, float] | None = None

    def descriptor(self) -> ParameterDescriptor:
        """The ParameterDescriptor the node declares (ranges, read-only, constraints)."""
        description = self.description
        if self.reload:
            description += " Changes only while the node is unconfigured."
        descriptor = ParameterDescriptor(
            name=self.name, description=description, read_only=self.read_only
        )
        if self.choices:
            descriptor.additional_constraints = f"one of: {', '.join(self.choices)}"
        if self.int_range is not None:
            low, high = self.int_range
            descriptor.integer_range = [IntegerRange(from_value=low, to_value=high, step=1)]
        if self.float_range is not None:
            low, high = self.float_range
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=low, to_value=high, step=0.0)
            ]
        return descriptor


PARAMETERS: tuple[ParamSpec, ...] = (
    ParamSpec(
        "autostart",
        True,
        "Configure and activate at start, as a plain node would. false: the node starts "
        "unconfigured and waits for lifecycle transitions (a lifecycle manager, the launch "
        "file's events).",
        read_only=True,
    ),
    ParamSpec(
        "model_path",
        "",
        "Exported model (.onnx; .engine for tensorrt; a .pt checkpoint for torch). Its input "
        "size and batch are read from the file. Several, comma-separated, one per frame size "
        "(pdn-export --sizes): each camera gets the model of its first frame's size.",
        reload=True,
    ),
    ParamSpec("backend", "auto", "Inference backend.", reload=True, choices=KINDS),
    ParamSpec(
        "threads",
        0,
        "ONNX Runtime intra-op threads (0: one per core).",
        reload=True,
        int_range=(0, 256),
    ),
    ParamSpec(
        "cameras",
        ["camera"],
        "Camera names. Camera C reads C/image (or C/image/compressed) and C/camera_info and "
        "publishes C/detections, C/patches, C/patch_markers and C/debug_image.",
        reload=True,
    ),
    ParamSpec(
        "transport",
        "raw",
        "Image input: raw Image or CompressedImage (JPEG/PNG).",
        reload=True,
        choices=TRANSPORTS,
    ),
    ParamSpec(
        "qos_reliability",
        "best_effort",
        "Reliability of the image and camera_info subscriptions (best_effort: sensor-data "
        "QoS, which accepts both kinds of publisher).",
        reload=True,
        choices=RELIABILITIES,
    ),
    ParamSpec(
        "qos_depth",
        1,
        "History depth of the subscriptions (1: DDS keeps only the newest frame, which is "
        "all the node's newest-frame slot would use).",
        reload=True,
        int_range=(1, 1000),
    ),
    ParamSpec(
        "score_threshold",
        0.3,
        "Detections below this score are not published.",
        float_range=(0.0, 1.0),
    ),
    ParamSpec(
        "max_detections",
        100,
        "Most detections published per image (highest scores first; the model's own "
        "maximum caps it).",
        int_range=(1, 10000),
    ),
    ParamSpec(
        "memory_length",
        -1,
        "Earlier frames the model may attend to (-1: all its memory slots, 0: none).",
        int_range=(-1, 1024),
    ),
    ParamSpec(
        "reset_gap_s",
        1.0,
        "Forget a camera's temporal state after a gap between frames longer than this "
        "(seconds; it also resets on a new resolution or time going backwards).",
        float_range=(0.001, 3600.0),
    ),
    ParamSpec(
        "batch_wait_s",
        0.02,
        "With a model batch above 1: how long a ready frame waits for the frames of the "
        "other cameras of its batch before the batch runs without them (seconds).",
        reload=True,
        float_range=(0.0, 1.0),
    ),
    ParamSpec(
        "debug_image",
        True,
        "Publish C/debug_image (boxes and patches drawn) while someone subscribes to it.",
    ),
    ParamSpec(
        "debug_image_scale",
        0.25,
        "Size of the debug image relative to the camera image.",
        float_range=(0.05, 1.0),
    ),
    ParamSpec(
        "frame_id",
        "",
        "Frame id of the outputs ('': the image header's frame id). With several cameras "
        "'{camera}' is replaced by the camera name.",
    ),
    ParamSpec(
        "marker_depth",
        1.0,
        "Distance (m) along the optical axis at which patch_markers draw the image "
        "rectangles; any value overlays the same pixels in RViz's Camera display.",
        float_range=(0.01, 1000.0),
    ),
    ParamSpec(
        "publish_classes",
        "",
        "Comma-separated class names to publish ('': every class of the model); other "
        "classes are neither published nor tracked.",
    ),
    ParamSpec(
        "tracking",
        True,
        "Give each detection a track id (Detection.track_id): ByteTrack per camera and class.",
    ),
    ParamSpec(
        "track_max_gap_s",
        TRACKING.max_gap_s,
        "How long a lost track waits for its object (seconds) before a new id is given.",
        float_range=(0.01, 3600.0),
    ),
    ParamSpec(
        "track_high_score",
        TRACKING.high_score,
        "Detections at or above this score are matched to tracks first and may start "
        "tracks; lower ones only continue tracks.",
        float_range=(0.0, 1.0),
    ),
    ParamSpec(
        "track_match_iou",
        TRACKING.match_iou,
        "Least IoU between a detection and a track's predicted box for them to match "
        "(both boxes grown by track_buffer first).",
        float_range=(0.0, 1.0),
    ),
    ParamSpec(
        "track_buffer",
        TRACKING.buffer,
        "For matching, boxes grow by this share of their width and height on each side "
        "(buffered IoU), so small objects that move more than their size per frame keep "
        "their ids; 0 is plain IoU.",
        float_range=(0.0, 10.0),
    ),
    ParamSpec(
        "track_camera_motion",
        TRACKING.camera_motion,
        "Match detections to tracks with the camera's pan and tilt since the last processed "
        "frame taken out (estimated from the image), so ids survive a moving camera at a low "
        "processing rate.",
    ),
)
SPECS: dict[str, ParamSpec] = {spec.name: spec for spec in PARAMETERS}
RELOAD = frozenset(spec.name for spec in PARAMETERS if spec.reload)


def check_value(
    name: str,
    value: Any,
    memory_slots: int | None = None,
    class_names: Sequence[str] | None = None,
) -> str | None:
    """Why `value` cannot be parameter `name`, or None when it can. `memory_slots` is the
    loaded model's memory length T and `class_names` its classes (None before the model is
    loaded)."""
    spec = SPECS.get(name)
    if spec is None:
        return None  # not ours (use_sim_time and the like)
    if spec.choices and value not in spec.choices:
        return f"{name} must be one of {', '.join(spec.choices)}, got {value!r}"
    if spec.int_range is not None and not spec.int_range[0] <= value <= spec.int_range[1]:
        return f"{name} must be in {spec.int_range[0]}..{spec.int_range[1]}, got {value}"
    if spec.float_range is not None and not spec.float_range[0] <= value <= spec.float_range[1]:
        return f"{name} must be in {spec.float_range[0]}..{spec.float_range[1]}, got {value}"
    if name == "memory_length" and memory_slots is not None and value > memory_slots:
        return f"memory_length {value} is more than the model's {memory_slots} memory slots"
    if name == "cameras":
        return check_cameras(value)
    if name == "publish_classes" and class_names is not None:
        unknown = [n for n in class_list(value) if n not in class_names]
        if unknown:
            return (
                f"publish_classes names {', '.join(unknown)}, not a class of the model "
                f"(its classes: {', '.join(class_names)})"
            )
    return None


def class_list(text: str) -> list[str]:
    """'car, person' -> ['car', 'person'] (publish_classes)."""
    return [name.strip() for name in text.split(",") if name.strip()]


def check_cameras(names: Sequence[str]) -> str | None:
    """Why these camera names cannot work (empty, repeated, not a topic prefix), or None."""
    if not names:
        return "cameras must name at least one camera"
    if len(set(names)) != len(names):
        return f"cameras must not repeat a name: {list(names)}"
    for name in names:
        try:
            validate_topic_name(f"{name}/image")
        except InvalidTopicNameException as err:
            return f"camera name {name!r} does not make a valid topic name: {err}"
    return None


@dataclass(frozen=True)
class Settings:
    """The parameters the worker reads per frame (replaced as a whole on a change)."""

    score_threshold: float
    max_detections: int
    memory_length: int
    reset_gap_ns: int
    debug_image: bool
    debug_image_scale: float
    frame_id: str
    marker_depth: float
    publish_classes: tuple[str, ...]  # () = every class
    tracking: bool
    tracker: TrackerSettings

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> Settings:
        """Settings from parameter values by name."""
        return cls(
            score_threshold=float(values["score_threshold"]),
            max_detections=int(values["max_detections"]),
            memory_length=int(values["memory_length"]),
            reset_gap_ns=round(float(values["reset_gap_s"]) * 1e9),
            debug_image=bool(values["debug_image"]),
            debug_image_scale=float(values["debug_image_scale"]),
            frame_id=str(values["frame_id"]),
            marker_depth=float(values["marker_depth"]),
            publish_classes=tuple(class_list(values["publish_classes"])),
            tracking=bool(values["tracking"]),
            tracker=TrackerSettings(
                max_gap_s=float(values["track_max_gap_s"]),
                high_score=float(values["track_high_score"]),
                match_iou=float(values["track_match_iou"]),
                buffer=float(values["track_buffer"]),
                camera_motion=bool(values["track_camera_motion"]),
            ),
        )

    @property
    def policy(self) -> StreamPolicy:
        """The stream runner's share of the settings (reset, memory, which detections)."""
        return StreamPolicy(
            reset_gap_ns=self.reset_gap_ns,
            memory_length=self.memory_length,
            score_threshold=self.score_threshold,
            max_detections=self.max_detections,
        )
