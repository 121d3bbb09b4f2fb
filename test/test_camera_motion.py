"""Camera motion between frames (pdn_runtime.camera_motion): the offset a pan adds up to."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from pdn_runtime.camera_motion import CameraMotion


def scene(seed: int = 0, size: tuple[int, int] = (1300, 2200)) -> np.ndarray:
    """A smooth random texture (RGB) larger than the views cut from it."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (size[0] // 8, size[1] // 8, 3), dtype=np.uint8)
    return cv2.resize(coarse, (size[1], size[0]), interpolation=cv2.INTER_CUBIC)


def view(world: np.ndarray, x: int, y: int, height: int = 1080, width: int = 1920) -> np.ndarray:
    """The planar RGB frame [3, H, W] of a camera whose top-left corner is at (x, y)."""
    return np.ascontiguousarray(world[y : y + height, x : x + width].transpose(2, 0, 1))


def test_the_offset_follows_a_pan_and_tilt() -> None:
    """The camera moves right and down: content moves left and up, and the offset (added to
    a box to put it in the first frame's view) adds up the camera's own motion."""
    world, motion = scene(), CameraMotion()
    path = [(40, 60), (77, 60), (120, 48), (120, 48), (90, 70), (30, 100)]
    for x, y in path:
        offset = motion.update(view(world, x, y))
        expected = (x - path[0][0], y - path[0][1])
        assert np.allclose(offset, expected, atol=2.0), (offset, expected)


def test_a_featureless_or_resized_frame_adds_no_motion_and_reset_starts_at_zero() -> None:
    world, motion = scene(1), CameraMotion()
    motion.update(view(world, 0, 0))
    moved = motion.update(view(world, 50, 0))
    assert abs(moved[0] - 50) < 2.0
    flat = np.full((3, 1080, 1920), 128, np.uint8)
    assert motion.update(flat) == moved  # nothing to correlate: the offset stays
    assert motion.update(view(world, 60, 0, 720, 1280)) == moved  # another size: starts over
    motion.reset()
    assert motion.offset == (0.0, 0.0)
    assert motion.update(view(world, 10, 10)) == (0.0, 0.0)
    with pytest.raises(ValueError, match="planar RGB"):
        motion.update(np.zeros((1080, 1920, 3), np.uint8))
