"""patch_markers: the selected patches and the detections as RViz markers in the camera's
optical frame, placed so that RViz's Camera display draws them over the image.

A pixel is back-projected with the camera's intrinsics K to a point at a fixed depth along
the optical axis (x right, y down, z forward); seen from the camera, that point lies on the
pixel, whatever the depth. Boxes are in pixel-edge coordinates (the model's: x = 0 is the
left edge of the first column), while K follows the ROS convention that pixel centres are
integers, hence the half-pixel shift. Without CameraInfo the node falls back to a pinhole
with focal length = image width (about 53 degrees of horizontal view) and the principal point
at the image centre: the overlay is then right only for a camera that matches it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point
from std_msgs.msg import ColorRGBA, Header
from visualization_msgs.msg import Marker, MarkerArray

from pdn_ros.messages import track_list
from pdn_runtime import FrameDetections
from pdn_runtime.boxes import class_label

# RGB per patch scale and per class (cycled), 0..1.
SCALE_COLORS = ((0.0, 0.9, 1.0), (1.0, 0.85, 0.0), (1.0, 0.4, 1.0), (0.6, 1.0, 0.4))
CLASS_COLORS = (
    (1.0, 0.25, 0.25),
    (0.25, 0.6, 1.0),
    (0.25, 1.0, 0.25),
    (1.0, 0.8, 0.0),
    (1.0, 0.0, 1.0),
    (1.0, 1.0, 1.0),
)
LINE_PX = 3.0  # line width and
TEXT_PX = 28.0  # text height on screen, in image pixels


def camera_info_matrix(msg: Any) -> np.ndarray | None:
    """K of a sensor_msgs/CameraInfo as 3x3, or None when it is unset (all zeros)."""
    k = np.asarray(msg.k, dtype=np.float64).reshape(3, 3)
    return None if k[0, 0] <= 0 or k[1, 1] <= 0 else k


def fallback_matrix(width: int, height: int) -> np.ndarray:
    """The documented stand-in for a camera without CameraInfo: focal = width, centred."""
    return np.array(
        [[width, 0.0, (width - 1) / 2.0], [0.0, width, (height - 1) / 2.0], [0.0, 0.0, 1.0]]
    )


def back_project(k: np.ndarray, u: np.ndarray, v: np.ndarray, depth: float) -> np.ndarray:
    """Points [n, 3] in the optical frame at `depth` that project onto pixels (u, v)."""
    u = np.asarray(u, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    x = (u - k[0, 2] - k[0, 1] * (v - k[1, 2]) / k[1, 1]) * depth / k[0, 0]
    y = (v - k[1, 2]) * depth / k[1, 1]
    return np.stack([x, y, np.full_like(x, depth)], axis=-1)


def project(k: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Pixels [n, 2] of optical-frame points [n, 3] (the pinhole model)."""
    uvw = np.asarray(points, dtype=np.float64) @ k.T
    return uvw[:, :2] / uvw[:, 2:3]


def rectangle_points(k: np.ndarray, box: Sequence[float], depth: float) -> list[Point]:
    """The closed outline (5 points) of an xyxy pixel-edge box at `depth`."""
    x1, y1, x2, y2 = (c - 0.5 for c in box)  # edges -> the ROS pixel-centre convention
    corners = back_project(k, [x1, x2, x2, x1, x1], [y1, y1, y2, y2, y1], depth)
    return [Point(x=x, y=y, z=z) for x, y, z in corners.tolist()]


def _marker(header: Header, ns: str, index: int, kind: int, rgb: Sequence[float]) -> Marker:
    """A marker with the common fields set (pose identity, fully opaque, lives one frame)."""
    marker = Marker(header=header, ns=ns, id=index, type=kind, action=Marker.ADD)
    marker.pose.orientation.w = 1.0
    marker.color = ColorRGBA(r=rgb[0], g=rgb[1], b=rgb[2], a=1.0)
    marker.lifetime = Duration(sec=1)
    return marker


def detection_caption(class_names: Sequence[str], label: int, score: float, track: int) -> str:
    """A detection's label in markers and the debug image: class, score, and `#id` when it
    has a track id (>= 0)."""
    text = f"{class_label(class_names, label)} {score:.2f}"
    return f"{text} #{track}" if track >= 0 else text


def build_markers(
    result: FrameDetections,
    header: Header,
    k: np.ndarray,
    depth: float,
    class_names: Sequence[str],
    track_ids: np.ndarray | None = None,
) -> MarkerArray:
    """DELETEALL, then per patch and per detection a LINE_STRIP rectangle and a text label
    above its top-left corner (namespaces patches, patch_labels, detections,
    detection_labels); detections with a track id (`track_ids`, -1 for none) show it."""
    markers = [Marker(header=header, action=Marker.DELETEALL)]
    line = LINE_PX * depth / k[0, 0]
    text = TEXT_PX * depth / k[1, 1]
    items = [
        (("patches", "patch_labels"), i, box, SCALE_COLORS[s % len(SCALE_COLORS)], f"p{i} s{s}")
        for i, (box, s) in enumerate(
            zip(result.patch_boxes.tolist(), result.patch_scale.tolist(), strict=True)
        )
    ]
    items += [
        (
            ("detections", "detection_labels"),
            i,
            box,
            CLASS_COLORS[label % len(CLASS_COLORS)],
            detection_caption(class_names, label, score, track),
        )
        for i, (box, label, score, track) in enumerate(
            zip(
                result.boxes.tolist(),
                result.labels.tolist(),
                result.scores.tolist(),
                track_list(track_ids, len(result.scores)),
                strict=True,
            )
        )
    ]
    for (outline_ns, label_ns), index, box, rgb, label in items:
        outline = _marker(header, outline_ns, index, Marker.LINE_STRIP, rgb)
        outline.scale.x = line
        outline.points = rectangle_points(k, box, depth)
        caption = _marker(header, label_ns, index, Marker.TEXT_VIEW_FACING, rgb)
        caption.scale.z = text
        caption.text = label
        anchor = back_project(k, [box[0] - 0.5], [box[1] - 0.5 - TEXT_PX], depth)[0].tolist()
        caption.pose.position = Point(x=anchor[0], y=anchor[1], z=anchor[2])
        markers += [outline, caption]
    return MarkerArray(markers=markers)
