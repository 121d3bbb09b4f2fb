"""Image conversion for the model: every raw encoding (step padding, BGR order, alpha, mono16
scaling and byte order), JPEG and PNG, each kind of bad frame, and the copies made."""

from __future__ import annotations

import tracemalloc
from array import array

import cv2
import numpy as np
import pytest
from node_support import raw_message
from sensor_msgs.msg import CompressedImage
from std_msgs.msg import Header

from pdn_ros.image_convert import BadFrame, message_into, raw_view, rgb_image_message

H, W = 6, 10


@pytest.fixture
def rgb() -> np.ndarray:
    """A small frame whose three channels all differ."""
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)


def planar(frame: np.ndarray) -> np.ndarray:
    """The expected [3,H,W] of an H x W x 3 RGB frame."""
    return frame.transpose(2, 0, 1)


def convert(msg: object, height: int = H, width: int = W) -> np.ndarray:
    """Convert into a fresh buffer filled with a marker value (to see what was written)."""
    out = np.full((3, height, width), 7, np.uint8)
    message_into(msg, out)
    return out


@pytest.mark.parametrize("padding", [0, 5])
def test_rgb8_and_bgr8_respect_step_padding_and_channel_order(rgb, padding):
    np.testing.assert_array_equal(convert(raw_message(rgb, "rgb8", padding=padding)), planar(rgb))
    bgr = np.ascontiguousarray(rgb[..., ::-1])
    np.testing.assert_array_equal(convert(raw_message(bgr, "bgr8", padding=padding)), planar(rgb))


@pytest.mark.parametrize("padding", [0, 3])
def test_alpha_is_dropped_for_rgba8_and_bgra8(rgb, padding):
    alpha = np.full((H, W, 1), 200, np.uint8)
    rgba = np.concatenate([rgb, alpha], axis=2)
    bgra = np.concatenate([rgb[..., ::-1], alpha], axis=2)
    np.testing.assert_array_equal(convert(raw_message(rgba, "rgba8", padding=padding)), planar(rgb))
    np.testing.assert_array_equal(convert(raw_message(bgra, "bgra8", padding=padding)), planar(rgb))


def test_mono8_fills_all_three_planes(rgb):
    mono = rgb[..., :1]
    out = convert(raw_message(mono, "mono8", padding=2))
    for plane in out:
        np.testing.assert_array_equal(plane, mono[..., 0])


@pytest.mark.parametrize("bigendian", [False, True])
def test_mono16_keeps_the_high_byte_in_either_byte_order(bigendian):
    values = np.array([0, 255, 256, 4095, 32768, 65535] * 10, np.uint16).reshape(H, W, 1)
    out = convert(raw_message(values, "mono16", padding=2, bigendian=bigendian))
    expected = np.array([0, 0, 1, 15, 128, 255] * 10, np.uint8).reshape(H, W)
    for plane in out:
        np.testing.assert_array_equal(plane, expected)


def test_raw_view_is_a_view_of_the_message_data(rgb):
    msg = raw_message(rgb, "rgb8", padding=4)
    view = raw_view(msg.encoding, msg.height, msg.width, msg.step, 0, msg.data)
    assert np.shares_memory(view, np.frombuffer(msg.data, np.uint8))
    np.testing.assert_array_equal(view, rgb)


def test_a_4k_conversion_allocates_no_frame_sized_buffer():
    """One copy into the caller's buffer: Python-side allocations stay far below a frame."""
    frame = np.random.default_rng(0).integers(0, 256, (2160, 3840, 3), dtype=np.uint8)
    msg = raw_message(frame[..., ::-1], "bgr8", padding=64)
    out = np.empty((3, 2160, 3840), np.uint8)
    message_into(msg, out)
    tracemalloc.start()
    message_into(msg, out)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak < frame.nbytes / 100
    np.testing.assert_array_equal(out[:, ::97, ::89], planar(frame)[:, ::97, ::89])


def compressed(frame: np.ndarray, ext: str) -> CompressedImage:
    """A CompressedImage of an RGB frame (OpenCV encodes BGR)."""
    ok, data = cv2.imencode(ext, cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    assert ok
    payload = array("B")
    payload.frombytes(data.tobytes())
    return CompressedImage(format=ext[1:], data=payload)


def test_png_decodes_exactly(rgb):
    np.testing.assert_array_equal(convert(compressed(rgb, ".png")), planar(rgb))


def test_jpeg_decodes_to_rgb_order():
    """Flat colour blocks survive JPEG closely, so the channel order is checked per block."""
    frame = np.zeros((16, 32, 3), np.uint8)
    frame[:, :16] = (220, 30, 30)  # red left
    frame[:, 16:] = (30, 30, 220)  # blue right
    out = convert(compressed(frame, ".jpg"), 16, 32).astype(int)
    assert out[0, 8, 4] > 180 and out[2, 8, 4] < 70
    assert out[2, 8, 28] > 180 and out[0, 8, 28] < 70


def test_rgb_image_message_round_trips(rgb):
    msg = rgb_image_message(rgb, Header(frame_id="f"))
    assert (msg.encoding, msg.step, msg.height, msg.width) == ("rgb8", 3 * W, H, W)
    np.testing.assert_array_equal(convert(msg), planar(rgb))


def bad_raw_messages(rgb: np.ndarray) -> dict[str, object]:
    """One broken raw message per kind."""
    unknown = raw_message(rgb, "rgb8")
    unknown.encoding = "yuv422"
    zero = raw_message(rgb, "rgb8")
    zero.height, zero.width = 0, W
    short_step = raw_message(rgb, "rgb8")
    short_step.step = 3 * W - 1
    odd_step = raw_message(rgb[..., :1].astype(np.uint16), "mono16", padding=1)
    truncated = raw_message(rgb, "rgb8")
    truncated.data = truncated.data[: len(truncated.data) - 7]
    wrong_size = raw_message(rgb[:, :-2], "rgb8")
    return {
        "encoding": unknown,
        "size": zero,
        "step": short_step,
        "step (odd mono16)": odd_step,
        "truncated": truncated,
        "resolution": wrong_size,
    }


@pytest.mark.parametrize(
    "case", ["encoding", "size", "step", "step (odd mono16)", "truncated", "resolution"]
)
def test_bad_raw_frames_raise_bad_frame_of_their_kind(rgb, case):
    with pytest.raises(BadFrame) as caught:
        convert(bad_raw_messages(rgb)[case])
    assert caught.value.kind == case.split()[0]
    assert str(caught.value)


def test_resolution_error_names_both_sizes_and_carries_the_frame_size(rgb):
    with pytest.raises(BadFrame, match=r"image is 8x6 but the model was exported for 10x6"):
        convert(raw_message(rgb[:, :8], "rgb8"))
    try:
        convert(raw_message(rgb[:, :8], "rgb8"))
    except BadFrame as err:
        assert err.size == (8, 6)


@pytest.mark.parametrize(
    ("mangle", "kind"),
    [
        (lambda b: b[: len(b) // 2], "truncated"),
        (lambda b: b[:8] + bytes(len(b) - 20) + b[-12:], "corrupt"),
        (lambda b: b"GIF89a" + b[6:], "encoding"),
        (lambda b: b"", "size"),
    ],
    ids=["cut-off", "garbage-inside", "not-jpeg-or-png", "empty"],
)
@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_bad_compressed_frames_raise_bad_frame_of_their_kind(mangle, kind, ext):
    frame = np.random.default_rng(1).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    msg = compressed(frame, ext)
    broken = array("B")
    broken.frombytes(mangle(msg.data.tobytes()))
    msg.data = broken
    with pytest.raises(BadFrame) as caught:
        convert(msg, 32, 48)
    assert caught.value.kind == kind


def test_compressed_frame_of_another_size_is_a_resolution_error(rgb):
    with pytest.raises(BadFrame) as caught:
        convert(compressed(rgb, ".png"), H, W + 2)
    assert caught.value.kind == "resolution" and caught.value.size == (W, H)
