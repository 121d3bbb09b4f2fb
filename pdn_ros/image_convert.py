"""sensor_msgs Image and CompressedImage to the model's planar RGB uint8 [3,H,W], and RGB
arrays back to Image messages.

A raw frame is read through a zero-copy view of `msg.data` (respecting `step` padding) and
written once, channel by channel, into a buffer the caller allocated once. A compressed frame
is decoded by OpenCV and then copied once into that buffer. Every problem raises `BadFrame`,
whose `kind` is what the node counts in its diagnostics.
"""

from __future__ import annotations

from array import array
from typing import Any

import cv2
import numpy as np
from sensor_msgs.msg import Image
from std_msgs.msg import Header

# encoding -> (channels, bytes per channel, source channel for R, G, B)
RAW_ENCODINGS: dict[str, tuple[int, int, tuple[int, int, int]]] = {
    "rgb8": (3, 1, (0, 1, 2)),
    "bgr8": (3, 1, (2, 1, 0)),
    "rgba8": (4, 1, (0, 1, 2)),
    "bgra8": (4, 1, (2, 1, 0)),
    "mono8": (1, 1, (0, 0, 0)),
    "mono16": (1, 2, (0, 0, 0)),
}
# Quality of the JPEGs this package writes (the synthetic camera's CompressedImage, the
# samples of pdn-bag-eval); the datasets' own JPEGs use training.coco.JPEG_QUALITY.
JPEG_QUALITY = 90
JPEG_MAGIC = b"\xff\xd8\xff"
JPEG_END = b"\xff\xd9"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
PNG_END = b"IEND\xaeB`\x82"
# JPEG start-of-frame markers (every coding process), whose segment holds the image size.
JPEG_FRAME_MARKERS = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Kinds of bad frames, as counted in /diagnostics.
BAD_KINDS: tuple[str, ...] = ("encoding", "size", "step", "truncated", "corrupt", "resolution")


class BadFrame(ValueError):
    """A frame the node cannot use; `kind` (one of BAD_KINDS) names the problem, and `size`
    (width, height) is set for a frame that decoded but has the wrong resolution."""

    def __init__(self, kind: str, message: str, size: tuple[int, int] | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.size = size


def raw_view(
    encoding: str, height: int, width: int, step: int, is_bigendian: int, data: Any
) -> np.ndarray:
    """A zero-copy height x width x channels view of a raw image buffer, checked against its
    header; mono16 comes back as uint16 in the byte order the message declares."""
    if encoding not in RAW_ENCODINGS:
        raise BadFrame(
            "encoding",
            f"unsupported encoding {encoding!r}; the node reads {', '.join(RAW_ENCODINGS)}",
        )
    if height <= 0 or width <= 0:
        raise BadFrame("size", f"image has zero size ({width}x{height})")
    channels, depth, _ = RAW_ENCODINGS[encoding]
    row_bytes = width * channels * depth
    if step < row_bytes or step % depth:
        raise BadFrame(
            "step",
            f"step {step} does not fit a {encoding} row of {width} pixels "
            f"(needs >= {row_bytes} bytes and a multiple of {depth})",
        )
    buffer = np.frombuffer(data, np.uint8)
    if buffer.size < step * height:
        raise BadFrame(
            "truncated",
            f"image data holds {buffer.size} bytes, its header says {step} x {height} = "
            f"{step * height}",
        )
    rows = buffer[: step * height].reshape(height, step)[:, :row_bytes]
    if depth == 2:
        rows = rows.view(">u2" if is_bigendian else "<u2")
    return rows.reshape(height, width, channels)


def copy_planar(pixels: np.ndarray, encoding: str, out: np.ndarray) -> None:
    """Write an H x W x C view of a raw encoding into `out` [3,H,W] as RGB uint8 (one copy;
    mono16 keeps its high byte, so 0..65535 maps onto 0..255)."""
    _, depth, order = RAW_ENCODINGS[encoding]
    if depth == 2:
        np.right_shift(pixels[..., 0], 8, out=out[0], casting="unsafe")
        out[1] = out[0]
        out[2] = out[0]
        return
    if pixels.shape[2] == 3:
        # OpenCV's split writes each channel into its destination plane (several times
        # faster than a strided NumPy copy per channel)
        planes = [out[0], out[1], out[2]]
        cv2.split(pixels, [planes[order.index(c)] for c in range(3)])
        return
    cv2.mixChannels([pixels], [out[0], out[1], out[2]], [order[0], 0, order[1], 1, order[2], 2])


def check_resolution(width: int, height: int, out: np.ndarray) -> None:
    """BadFrame unless a width x height frame fits the model's [3,H,W] buffer."""
    want_h, want_w = out.shape[1:]
    if (width, height) != (want_w, want_h):
        raise BadFrame(
            "resolution",
            f"image is {width}x{height} but the model was exported for {want_w}x{want_h}: "
            f"export one for this camera (pdn-export --width {width} --height {height})",
            size=(width, height),
        )


def image_into(msg: Any, out: np.ndarray) -> None:
    """Convert a sensor_msgs/Image into `out` [3,H,W] RGB uint8, or raise BadFrame."""
    view = raw_view(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)
    check_resolution(msg.width, msg.height, out)
    copy_planar(view, msg.encoding, out)


def compressed_format(buffer: np.ndarray) -> str:
    """The format of compressed image data, JPEG or PNG, from its magic bytes (not the
    message's format string, which drivers fill inconsistently), or raise BadFrame."""
    if buffer.size == 0:
        raise BadFrame("size", "compressed image has no data")
    head = buffer[:8].tobytes()
    if head.startswith(JPEG_MAGIC):
        return "JPEG"
    if head.startswith(PNG_MAGIC):
        return "PNG"
    raise BadFrame("encoding", f"compressed data is neither JPEG nor PNG (starts {head!r})")


def compressed_size(data: Any) -> tuple[int, int]:
    """(width, height) of JPEG or PNG data read from its header alone (no decoding), or
    BadFrame when the header does not say."""
    buffer = np.frombuffer(data, np.uint8)
    name = compressed_format(buffer)
    view = memoryview(buffer)
    if name == "PNG":
        if len(view) >= 24 and view[12:16] == b"IHDR":
            return int.from_bytes(view[16:20], "big"), int.from_bytes(view[20:24], "big")
    else:
        at = 2  # after the start-of-image marker: segments FF <marker> <length> ...
        while at + 9 <= len(view) and view[at] == 0xFF:
            marker = view[at + 1]
            if marker in JPEG_FRAME_MARKERS:
                return (view[at + 7] << 8) | view[at + 8], (view[at + 5] << 8) | view[at + 6]
            if marker == 0xFF:  # fill byte
                at += 1
                continue
            at += 2 + ((view[at + 2] << 8) | view[at + 3])
    raise BadFrame("corrupt", f"{name} data of {buffer.size} bytes has no readable image size")


def frame_size(msg: Any) -> tuple[int, int]:
    """(width, height) of an Image or CompressedImage without converting it: the raw header
    checked as `image_into` checks it, or the JPEG/PNG header; BadFrame when unusable."""
    if not hasattr(msg, "encoding"):
        return compressed_size(msg.data)
    raw_view(msg.encoding, msg.height, msg.width, msg.step, msg.is_bigendian, msg.data)
    return msg.width, msg.height


def decode_compressed(data: Any) -> np.ndarray:
    """Decode JPEG or PNG bytes to H x W x 3 RGB uint8 (the format the magic bytes say), or
    raise BadFrame."""
    buffer = np.frombuffer(data, np.uint8)
    name = compressed_format(buffer)
    ending = JPEG_END if name == "JPEG" else PNG_END
    # A cut-off JPEG still decodes (libjpeg pads it with grey), so check the end marker.
    if not buffer[-16:].tobytes().rstrip(b"\x00").endswith(ending):
        raise BadFrame("truncated", f"{name} data of {buffer.size} bytes has no end marker")
    rgb = cv2.imdecode(buffer, cv2.IMREAD_COLOR_RGB)
    if rgb is None:
        raise BadFrame("corrupt", f"{name} data of {buffer.size} bytes does not decode")
    return rgb


def compressed_into(msg: Any, out: np.ndarray) -> None:
    """Decode a sensor_msgs/CompressedImage into `out` [3,H,W] RGB uint8, or raise BadFrame."""
    rgb = decode_compressed(msg.data)
    check_resolution(rgb.shape[1], rgb.shape[0], out)
    copy_planar(rgb, "rgb8", out)


def message_into(msg: Any, out: np.ndarray) -> None:
    """Convert an Image or a CompressedImage into `out` [3,H,W] RGB uint8."""
    if hasattr(msg, "encoding"):
        image_into(msg, out)
    else:
        compressed_into(msg, out)


def rgb_image_message(rgb: np.ndarray, header: Header) -> Image:
    """An rgb8 sensor_msgs/Image of an H x W x 3 uint8 array, with one copy into the
    message's array (assigning a NumPy array to `data` directly takes over a second at 4K)."""
    data = array("B")
    data.frombytes(np.ascontiguousarray(rgb).data)
    height, width = rgb.shape[:2]
    return Image(
        header=header,
        height=height,
        width=width,
        encoding="rgb8",
        is_bigendian=0,
        step=3 * width,
        data=data,
    )
