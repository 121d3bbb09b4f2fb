"""Procedural high-resolution scenes for training and evaluating PatchDriveNet.

A sequence is a wide world (sky with clouds, hills, perspective-textured ground, clutter and
moving objects) seen through a camera that pans smoothly across it. Every object is drawn
into its own coverage mask with exactly the same calls as its pixels, so the ground truth is
the tight box of what was drawn. numpy + OpenCV only (no torch); every frame is a pure
function of (seed, config, frame index).

Pixel sizes are defined for a 2160-row frame and scale with height / 2160, so a 1080p scene
looks like a downsampled 4K one. Boxes are xyxy in pixel-edge coordinates: [x1, y1, x2, y2]
covers columns x1 .. x2-1 and rows y1 .. y2-1.
"""

from __future__ import annotations

import colorsys
import dataclasses
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from pdn_model.config import DEFAULT_CLASSES

CLASS_NAMES: tuple[str, ...] = DEFAULT_CLASSES
PERSON, VEHICLE, BICYCLE, ANIMAL, SIGN = range(len(CLASS_NAMES))

REFERENCE_HEIGHT = 2160
MIN_FRAME_SIDE = 16
# Longer side of objects (pixels at 2160 rows): far, medium and near objects, and the share of
# objects drawn in each tier. Far objects come in groups (mean 2.5), medium ones at times in
# pairs or threes.
SIZE_TIERS: tuple[tuple[float, float], ...] = ((6.0, 32.0), (32.0, 96.0), (100.0, 400.0))
TIER_SHARES = (0.73, 0.21, 0.06)
_TIER_EXTRA_MEMBERS = (1.5, 0.5, 0.0)  # Poisson mean of group members beyond the first
_TIER_MAX_EXTRA = (5, 2, 0)
_GROUP_TIER_P = np.array(
    [s / (1.0 + e) for s, e in zip(TIER_SHARES, _TIER_EXTRA_MEMBERS, strict=True)]
)
_GROUP_TIER_P /= _GROUP_TIER_P.sum()

# Ground-truth policy (see docs/synthetic_data.md): objects are always drawn; one is marked
# `ignore` (COCO iscrowd=1) when less than half of its pixels lie in the frame, when its
# clipped box is shorter than MIN_BOX_SIDE on its longer side, or when nearer objects cover
# more than MAX_OCCLUDED of its in-frame pixels.
MIN_BOX_SIDE = 4.0
MIN_IN_FRAME = 0.5
MAX_OCCLUDED = 0.7

_CLASS_P = np.array([0.32, 0.28, 0.13, 0.14, 0.13])
# Real-world longer side (m) and speed range (m/s): perspective links size, distance below the
# horizon and speed on screen.
_PHYSICAL_SIZE = np.array([1.75, 4.5, 1.75, 1.4, 2.4])
_SPEED = np.array([[0.0, 1.8], [0.0, 15.0], [1.5, 7.0], [0.0, 2.5], [0.0, 0.0]])
_SAME_CLASS_IN_GROUP = 0.7

_SHIFT = 4  # OpenCV drawing at 1/16 px precision: motion stays smooth for tiny objects
_FIXED = 1 << _SHIFT
_GRAIN_TILE = 128
_HAZE_LEVELS = 32

_Color = tuple[int, int, int]
# Per class, per variant: four colour slots, each a list of base colours (RGB).
_SKIN = [(250, 215, 180), (225, 175, 135), (185, 135, 95), (135, 90, 60), (90, 60, 42)]
_SHIRT = [
    (200, 40, 40),
    (40, 80, 170),
    (238, 238, 232),
    (30, 30, 35),
    (230, 200, 50),
    (60, 140, 70),
    (240, 120, 30),
    (130, 60, 150),
    (120, 120, 125),
    (150, 110, 70),
]
_PANTS = [(30, 35, 60), (25, 25, 28), (70, 90, 140), (150, 130, 95), (90, 90, 95)]
_HAIR = [(30, 25, 20), (90, 60, 30), (200, 170, 110), (70, 70, 70)]
_PAINT = [
    (235, 235, 235),
    (185, 185, 190),
    (30, 30, 32),
    (170, 30, 30),
    (40, 70, 150),
    (110, 115, 120),
    (200, 160, 40),
    (60, 100, 60),
    (120, 30, 40),
]
_GLASS = [(40, 55, 75), (60, 80, 100), (30, 35, 45)]
_TYRE = [(22, 22, 22), (35, 35, 38)]
_LAMP = [(245, 235, 175), (250, 250, 240)]
_FRAME = [
    (200, 30, 30),
    (30, 60, 180),
    (20, 20, 20),
    (240, 240, 240),
    (40, 150, 60),
    (240, 180, 20),
    (150, 150, 155),
]
_SADDLE = [(35, 30, 30), (90, 60, 40)]
_PALETTES: dict[int, list[tuple[list[_Color], ...]]] = {
    PERSON: [(_SKIN, _SHIRT, _PANTS, _HAIR)],
    VEHICLE: [(_PAINT, _GLASS, _TYRE, _LAMP)] * 2,  # car, van
    BICYCLE: [(_FRAME, _TYRE, _SADDLE, _FRAME)],
    ANIMAL: [  # dog, deer, cow: fur, legs, head, tail/ears
        (
            [(120, 80, 45), (60, 45, 35), (225, 220, 210), (35, 33, 30), (170, 140, 95)],
            [(80, 55, 35), (35, 30, 25)],
            [(120, 80, 45), (60, 45, 35), (200, 190, 175)],
            [(35, 30, 25), (225, 220, 210)],
        ),
        (
            [(165, 120, 75), (140, 100, 60), (180, 150, 110)],
            [(110, 80, 50)],
            [(165, 120, 75), (150, 110, 70)],
            [(240, 235, 225), (90, 65, 40)],
        ),
        (
            [(30, 30, 30), (240, 238, 232), (130, 80, 45), (200, 180, 150)],
            [(40, 35, 35), (200, 195, 190)],
            [(30, 30, 30), (240, 238, 232), (130, 80, 45)],
            [(220, 200, 190), (40, 35, 35)],
        ),
    ],
    SIGN: [  # warning triangle, diamond: border, panel, pole, symbol
        ([(200, 30, 30)], [(240, 240, 240), (245, 200, 30)], [(140, 140, 145)], [(20, 20, 20)]),
        ([(20, 20, 20)], [(245, 200, 20), (240, 130, 30)], [(140, 140, 145)], [(20, 20, 20)]),
    ],
}
# Width / height ranges per class and variant.
_ASPECT: dict[int, list[tuple[float, float]]] = {
    PERSON: [(0.34, 0.44)],
    VEHICLE: [(2.0, 2.6), (1.6, 1.9)],
    BICYCLE: [(1.6, 1.8)],
    ANIMAL: [(1.3, 1.5), (1.05, 1.25), (1.5, 1.7)],
    SIGN: [(0.38, 0.46), (0.38, 0.46)],
}

_SKIES = (  # top, horizon
    ((60, 110, 190), (190, 210, 230)),
    ((120, 150, 185), (215, 220, 225)),
    ((140, 145, 155), (200, 200, 205)),
    ((70, 80, 140), (230, 175, 130)),
)
_GROUNDS = (  # dark, mid, light
    ((40, 70, 30), (80, 120, 50), (140, 150, 80)),
    ((90, 80, 50), (150, 130, 80), (200, 180, 120)),
    ((60, 60, 60), (100, 100, 98), (140, 138, 130)),
    ((150, 130, 95), (190, 170, 125), (225, 205, 160)),
)
# Clutter kinds (not objects): rock, bush, stripe, post; their share and real size (m).
_CLUTTER_P = np.array([0.4, 0.3, 0.2, 0.1])
_CLUTTER_SIZE = np.array([0.8, 1.5, 4.0, 1.3])


@dataclass(frozen=True)
class SceneConfig:
    """Frame size, sequence length and content of generated sequences."""

    height: int = 2160
    width: int = 3840
    frames: int = 30
    # Objects in view per frame: the target is drawn per sequence from this range (inclusive).
    objects: tuple[int, int] = (40, 80)
    fps: float = 15.0
    # Largest camera pan speed, pixels per frame at 2160 rows (0: a static camera).
    pan_speed: float = 12.0
    # Sensor grain: uniform noise of this many grey levels added to every pixel (0: none).
    grain: int = 4
    # Domain randomisation: each sequence draws its own look (styles, horizon, band, colours,
    # lighting, blur, noise, JPEG quality, distractors); see docs/synthetic_data.md. False
    # keeps the fixed look (and its pixels) of earlier datasets.
    randomize: bool = False

    def __post_init__(self) -> None:
        """Reject values that cannot make a scene, saying which and why."""
        for name, least in (("height", MIN_FRAME_SIDE), ("width", MIN_FRAME_SIDE), ("frames", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        low, high = self.objects
        if not 0 <= low <= high:
            raise ValueError(f"objects must be a range 0 <= min <= max, got {self.objects!r}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps!r}")
        if not self.pan_speed >= 0:
            raise ValueError(f"pan_speed must be >= 0, got {self.pan_speed!r}")
        if not 0 <= self.grain <= 64:
            raise ValueError(f"grain must be in 0..64 grey levels, got {self.grain!r}")
        if not isinstance(self.randomize, bool):
            raise ValueError(f"randomize must be True or False, got {self.randomize!r}")

    @property
    def scale(self) -> float:
        """Pixel sizes are defined at 2160 rows; this factor maps them to this frame height."""
        return self.height / REFERENCE_HEIGHT


@dataclass(frozen=True)
class FrameTruth:
    """Ground truth of one frame, objects ordered far to near (drawing order)."""

    frame_index: int
    camera_x: int  # world column of the frame's left edge (the pan)
    boxes: np.ndarray  # float32 [N, 4] xyxy, pixel edges, clipped to the frame
    labels: np.ndarray  # int64 [N], index into CLASS_NAMES
    track_ids: np.ndarray  # int64 [N], constant while an object stays in the world
    ignore: np.ndarray  # bool [N]: drawn but mostly outside, tiny or occluded (COCO iscrowd)


@dataclass(frozen=True)
class Frame(FrameTruth):
    """One rendered frame and its ground truth."""

    image: np.ndarray  # uint8 [H, W, 3] RGB, C-contiguous


@dataclass(frozen=True)
class _Objects:
    """World state of a sequence's objects at frame 0 and how each one moves (per object)."""

    labels: np.ndarray  # class index; negative: an unannotated distractor
    variants: np.ndarray
    aspects: np.ndarray  # width / height
    colors: np.ndarray  # uint8 [N, 4, 3]
    styles: np.ndarray  # drawing style (0: as drawn)
    x: np.ndarray  # world x of the bottom centre at frame 0
    drop: np.ndarray  # rows below the horizon of the bottom at frame 0
    size: np.ndarray  # longer side (px) at frame 0
    speed: np.ndarray  # px per frame, signed
    sway: np.ndarray  # amplitude (px), angular frequency, phase of a smooth speed variation
    sway_freq: np.ndarray
    sway_phase: np.ndarray
    depth: np.ndarray  # log-amplitude, angular frequency, phase of a smooth distance change
    depth_freq: np.ndarray
    depth_phase: np.ndarray


@dataclass(frozen=True)
class _Raster:
    """An object's pixels: local patch (None when only the layout is wanted) and mask."""

    x: int  # frame column and row of mask[0, 0]
    y: int
    mask: np.ndarray  # bool [h, w]
    patch: np.ndarray | None


class _Painter:
    """Draws shapes at 1/16 px precision into an object's local patch and its coverage mask.

    Mask and patch get identical OpenCV calls (no anti-aliasing), so the mask is exactly the
    set of pixels whose colour the object sets: this is what makes the ground truth exact.
    """

    def __init__(self, x: int, y: int, rows: int, cols: int, with_pixels: bool) -> None:
        self.x, self.y = x, y
        self.mask = np.zeros((rows, cols), np.uint8)
        self.patch = np.zeros((rows, cols, 3), np.uint8) if with_pixels else None

    def _fixed(self, points: np.ndarray) -> np.ndarray:
        """Frame coordinates -> local fixed-point integer coordinates."""
        return _to_fixed(np.asarray(points, np.float64) - (self.x, self.y))

    def _point(self, point: np.ndarray) -> tuple[int, int]:
        """One point as the int tuple that OpenCV wants."""
        return _fixed_point(np.asarray(point, np.float64) - (self.x, self.y))

    def _both(self, draw: Callable[[np.ndarray, tuple[int, ...]], object], color) -> None:
        """Apply one drawing call to the mask (value 1) and to the patch (the colour)."""
        draw(self.mask, (1,))
        if self.patch is not None:
            draw(self.patch, _cv_color(color))

    def polygon(self, points: np.ndarray, color: np.ndarray) -> None:
        """Filled polygon."""
        pts = [self._fixed(points)]
        self._both(lambda img, c: cv2.fillPoly(img, pts, c, cv2.LINE_8, _SHIFT), color)

    def ellipse(
        self,
        center: np.ndarray,
        axes: tuple[float, float],
        color: np.ndarray,
        start: float = 0.0,
        end: float = 360.0,
    ) -> None:
        """Filled axis-aligned ellipse (or a sector of it, angles in degrees)."""
        c = self._point(center)
        a = (max(0, round(axes[0] * _FIXED)), max(0, round(axes[1] * _FIXED)))
        self._both(
            lambda img, col: cv2.ellipse(img, c, a, 0.0, start, end, col, -1, cv2.LINE_8, _SHIFT),
            color,
        )

    def circle(
        self, center: np.ndarray, radius: float, color: np.ndarray, thickness: int = -1
    ) -> None:
        """Filled disc, or a ring of the given thickness (whole pixels)."""
        c, r = self._point(center), max(0, round(radius * _FIXED))
        self._both(
            lambda img, col: cv2.circle(img, c, r, col, thickness, cv2.LINE_8, _SHIFT), color
        )

    def line(self, p0: np.ndarray, p1: np.ndarray, color: np.ndarray, thickness: int) -> None:
        """Straight line of the given thickness (whole pixels)."""
        a, b = self._point(p0), self._point(p1)
        self._both(lambda img, col: cv2.line(img, a, b, col, thickness, cv2.LINE_8, _SHIFT), color)


@dataclass(frozen=True)
class _Place:
    """An icon's box in frame pixels; maps unit coordinates (u right, v down) into it.

    u runs along the facing direction, so an icon facing left is mirrored.
    """

    x0: float
    y0: float
    w: float
    h: float
    facing: int

    def __call__(self, u: float, v: float) -> np.ndarray:
        """One point."""
        u = u if self.facing > 0 else 1.0 - u
        return np.array([self.x0 + u * self.w, self.y0 + v * self.h])

    def poly(self, *uv: tuple[float, float]) -> np.ndarray:
        """Polygon vertices."""
        return np.stack([self(u, v) for u, v in uv])

    def thick(self, fraction: float) -> int:
        """Line thickness in whole pixels: a fraction of the height, at least 1."""
        return max(1, round(fraction * self.h))


def _to_fixed(points: np.ndarray) -> np.ndarray:
    """Pixel coordinates -> the fixed-point integers that OpenCV draws with shift=_SHIFT."""
    return np.round(np.asarray(points, np.float64) * _FIXED).astype(np.int32)


def _fixed_point(point: np.ndarray) -> tuple[int, int]:
    """One point as the fixed-point int tuple that OpenCV wants."""
    x, y = _to_fixed(point)
    return int(x), int(y)


def _cv_color(color: np.ndarray, factor: float = 1.0) -> tuple[int, int, int]:
    """An OpenCV colour tuple from an RGB array, optionally scaled in brightness."""
    r, g, b = np.clip(np.asarray(color, np.float64) * factor, 0, 255)
    return int(r), int(g), int(b)


def _shade(color: np.ndarray, factor: float) -> np.ndarray:
    """Colour scaled in brightness (for simple shading of parts)."""
    return np.clip(color.astype(np.float64) * factor, 0, 255)


def _shrink(points: np.ndarray, factor: float) -> np.ndarray:
    """Polygon scaled about its vertex mean (inner panel of a sign)."""
    centre = points.mean(axis=0)
    return centre + (points - centre) * factor


def _draw_person(p: _Painter, b: _Place, colors: np.ndarray, variant: int) -> None:
    """Standing (variant 0), walking (1) or crouching (2) body: legs, torso, arms, head."""
    skin, shirt, pants, hair = colors
    sleeve = _shade(shirt, 0.8)
    if variant == 0:
        p.polygon(b.poly((0.28, 0.55), (0.49, 0.55), (0.44, 1.0), (0.24, 1.0)), pants)
        p.polygon(b.poly((0.51, 0.55), (0.72, 0.55), (0.76, 1.0), (0.56, 1.0)), pants)
        p.polygon(b.poly((0.22, 0.2), (0.78, 0.2), (0.73, 0.6), (0.27, 0.6)), shirt)
        p.polygon(b.poly((0.22, 0.21), (0.02, 0.55), (0.13, 0.57), (0.30, 0.30)), sleeve)
        p.polygon(b.poly((0.78, 0.21), (0.98, 0.55), (0.87, 0.57), (0.70, 0.30)), sleeve)
        p.polygon(b.poly((0.44, 0.14), (0.56, 0.14), (0.56, 0.21), (0.44, 0.21)), skin)
        head_u = 0.5
    elif variant == 1:  # stride: legs apart, arms swinging
        p.polygon(b.poly((0.36, 0.55), (0.54, 0.55), (0.16, 1.0), (0.0, 1.0)), pants)
        p.polygon(b.poly((0.46, 0.55), (0.64, 0.55), (1.0, 1.0), (0.82, 1.0)), pants)
        p.polygon(b.poly((0.30, 0.2), (0.72, 0.2), (0.68, 0.6), (0.34, 0.6)), shirt)
        p.polygon(b.poly((0.32, 0.22), (0.08, 0.50), (0.16, 0.55), (0.40, 0.30)), sleeve)
        p.polygon(b.poly((0.68, 0.22), (0.92, 0.50), (0.84, 0.55), (0.60, 0.30)), sleeve)
        p.polygon(b.poly((0.46, 0.14), (0.58, 0.14), (0.58, 0.21), (0.46, 0.21)), skin)
        head_u = 0.53
    else:  # crouching or seated: folded legs, leaning torso
        p.polygon(b.poly((0.10, 0.62), (0.30, 0.60), (0.34, 1.0), (0.08, 1.0)), pants)
        p.polygon(b.poly((0.18, 0.55), (0.88, 0.52), (0.90, 0.72), (0.20, 0.74)), pants)
        p.polygon(b.poly((0.74, 0.60), (0.92, 0.60), (1.0, 1.0), (0.78, 1.0)), pants)
        p.polygon(b.poly((0.22, 0.22), (0.62, 0.18), (0.55, 0.62), (0.15, 0.62)), shirt)
        p.polygon(b.poly((0.50, 0.22), (0.84, 0.48), (0.78, 0.56), (0.42, 0.34)), sleeve)
        p.polygon(b.poly((0.42, 0.13), (0.55, 0.13), (0.56, 0.22), (0.43, 0.22)), skin)
        head_u = 0.5
    radius = 0.085 * b.h if variant < 2 else 0.12 * b.h
    head = b(head_u, 0.0) + (0.0, radius)
    p.ellipse(head, (radius, radius), skin)
    p.ellipse(head, (radius, radius), hair, 180.0, 360.0)


def _draw_vehicle(p: _Painter, b: _Place, colors: np.ndarray, variant: int) -> None:
    """Side view of a car (variant 0), van (1), truck (2) or bus (3), or a car seen from the
    front or back (4): body, windows, wheels, lights."""
    paint, glass, tyre, lamp = colors
    if variant == 4:
        _draw_vehicle_front(p, b, colors)
        return
    radius = 0.19 * b.h
    if variant == 0:
        p.polygon(b.poly((0.0, 0.42), (0.93, 0.40), (1.0, 0.52), (1.0, 0.82), (0.0, 0.82)), paint)
        p.polygon(b.poly((0.18, 0.42), (0.30, 0.0), (0.68, 0.0), (0.84, 0.42)), paint)
        p.polygon(b.poly((0.24, 0.38), (0.33, 0.07), (0.48, 0.07), (0.48, 0.38)), glass)
        p.polygon(b.poly((0.52, 0.38), (0.52, 0.07), (0.66, 0.07), (0.77, 0.38)), glass)
        wheels = (0.2, 0.8)
    elif variant == 1:
        p.polygon(
            b.poly(
                (0.0, 0.0),
                (0.70, 0.0),
                (0.70, 0.12),
                (0.86, 0.12),
                (1.0, 0.45),
                (1.0, 0.82),
                (0.0, 0.82),
            ),
            paint,
        )
        p.polygon(b.poly((0.73, 0.18), (0.84, 0.18), (0.95, 0.44), (0.73, 0.44)), glass)
        p.polygon(
            b.poly((0.04, 0.06), (0.66, 0.06), (0.66, 0.09), (0.04, 0.09)), _shade(paint, 0.85)
        )
        wheels = (0.18, 0.82)
    elif variant == 2:  # truck: box body behind a cab
        p.polygon(b.poly((0.0, 0.0), (0.72, 0.0), (0.72, 0.84), (0.0, 0.84)), _shade(lamp, 0.9))
        p.polygon(b.poly((0.74, 0.16), (0.92, 0.16), (1.0, 0.46), (1.0, 0.84), (0.74, 0.84)), paint)
        p.polygon(b.poly((0.77, 0.21), (0.90, 0.21), (0.96, 0.44), (0.77, 0.44)), glass)
        wheels = (0.12, 0.30, 0.88)
        radius = 0.16 * b.h
    else:  # bus: long box with a row of windows
        p.polygon(b.poly((0.0, 0.02), (0.97, 0.02), (1.0, 0.12), (1.0, 0.86), (0.0, 0.86)), paint)
        for k in range(6):
            u0 = 0.04 + k * 0.155
            p.polygon(b.poly((u0, 0.14), (u0 + 0.13, 0.14), (u0 + 0.13, 0.42), (u0, 0.42)), glass)
        p.polygon(b.poly((0.0, 0.60), (1.0, 0.60), (1.0, 0.66), (0.0, 0.66)), _shade(paint, 0.7))
        wheels = (0.16, 0.80)
        radius = 0.14 * b.h
    p.polygon(b.poly((0.965, 0.52), (1.0, 0.52), (1.0, 0.6), (0.965, 0.6)), lamp)
    for u in wheels:
        centre = b(u, 1.0) - (0.0, radius)
        p.circle(centre, radius, tyre)
        p.circle(centre, 0.45 * radius, np.array([150, 150, 155]))


def _draw_vehicle_front(p: _Painter, b: _Place, colors: np.ndarray) -> None:
    """A car seen from the front or back: roof, windscreen, body, lights, two tyres."""
    paint, glass, tyre, lamp = colors
    p.polygon(b.poly((0.05, 0.78), (0.22, 0.78), (0.22, 1.0), (0.05, 1.0)), tyre)
    p.polygon(b.poly((0.78, 0.78), (0.95, 0.78), (0.95, 1.0), (0.78, 1.0)), tyre)
    p.polygon(b.poly((0.18, 0.0), (0.82, 0.0), (0.94, 0.42), (0.06, 0.42)), paint)
    p.polygon(b.poly((0.23, 0.06), (0.77, 0.06), (0.86, 0.38), (0.14, 0.38)), glass)
    p.polygon(b.poly((0.0, 0.40), (1.0, 0.40), (1.0, 0.86), (0.0, 0.86)), paint)
    for u in (0.14, 0.86):
        p.ellipse(b(u, 0.55), (0.08 * b.w, 0.06 * b.h), lamp)
    p.polygon(b.poly((0.32, 0.62), (0.68, 0.62), (0.68, 0.74), (0.32, 0.74)), _shade(paint, 0.5))


def _draw_bicycle(p: _Painter, b: _Place, colors: np.ndarray, variant: int) -> None:
    """Side view of a bicycle (variant 0) or a motorbike (1), or a bicycle seen end-on (2)."""
    if variant == 1:
        _draw_motorbike(p, b, colors)
        return
    if variant == 2:
        _draw_bicycle_end_on(p, b, colors)
        return
    frame, tyre, saddle, grips = colors
    ring = b.thick(0.07)
    radius = 0.37 * b.h
    hub_v = 1.0 - radius / b.h
    rear, front = b(radius / b.w, hub_v), b(1.0 - radius / b.w, hub_v)
    for hub in (rear, front):
        p.circle(hub, radius - ring / 2, tyre, ring)
    bracket, seat, head = b(0.45, hub_v + 0.04), b(0.36, 0.14), b(0.70, 0.16)
    tube = b.thick(0.05)
    for a, z in (
        (rear, bracket),
        (bracket, seat),
        (seat, rear),
        (seat, head),
        (bracket, head),
        (head, front),
    ):
        p.line(a, z, frame, tube)
    p.line(head, b(0.74, 0.03), frame, tube)
    p.line(b(0.74, 0.03), b(0.66, 0.05), grips, tube)
    p.line(b(0.30, 0.09), b(0.42, 0.09), saddle, b.thick(0.06))


def _draw_motorbike(p: _Painter, b: _Place, colors: np.ndarray) -> None:
    """Side view of a motorbike: thick tyres, engine block, tank, seat, fork and handlebar."""
    frame, tyre, saddle, grips = colors
    radius = 0.34 * b.h
    hub_v = 1.0 - radius / b.h
    rear, front = b(radius / b.w, hub_v), b(1.0 - radius / b.w, hub_v)
    for hub in (rear, front):
        p.circle(hub, radius, tyre)
        p.circle(hub, 0.45 * radius, np.array([150, 150, 155]))
    p.polygon(b.poly((0.35, 0.45), (0.60, 0.45), (0.62, 0.75), (0.38, 0.75)), _shade(tyre, 2.5))
    p.polygon(b.poly((0.22, 0.35), (0.70, 0.28), (0.74, 0.45), (0.25, 0.50)), frame)
    p.polygon(b.poly((0.12, 0.28), (0.45, 0.28), (0.45, 0.36), (0.12, 0.38)), saddle)
    p.line(b(0.70, 0.3), front, frame, b.thick(0.06))
    p.line(b(0.70, 0.3), b(0.74, 0.04), grips, b.thick(0.05))
    p.line(b(0.74, 0.04), b(0.64, 0.06), grips, b.thick(0.05))


def _draw_bicycle_end_on(p: _Painter, b: _Place, colors: np.ndarray) -> None:
    """A bicycle seen from the front or back: a narrow wheel, fork, stem and wide handlebar."""
    frame, tyre, saddle, grips = colors
    p.polygon(b.poly((0.42, 0.45), (0.58, 0.45), (0.58, 1.0), (0.42, 1.0)), tyre)
    p.polygon(b.poly((0.40, 0.12), (0.60, 0.12), (0.58, 0.60), (0.42, 0.60)), frame)
    p.polygon(b.poly((0.0, 0.04), (1.0, 0.04), (1.0, 0.12), (0.0, 0.12)), frame)
    p.polygon(b.poly((0.0, 0.0), (0.14, 0.0), (0.14, 0.14), (0.0, 0.14)), grips)
    p.polygon(b.poly((0.86, 0.0), (1.0, 0.0), (1.0, 0.14), (0.86, 0.14)), grips)
    p.polygon(b.poly((0.36, 0.22), (0.64, 0.22), (0.64, 0.30), (0.36, 0.30)), saddle)


# Per animal variant: body centre (u, v) and half axes (of w, h), leg top v, leg half-width,
# head centre (u, v) and half axes, neck base (u, v).
_ANIMAL_SHAPES = (
    ((0.46, 0.42), (0.32, 0.17), 0.48, 0.035, (0.86, 0.16), (0.11, 0.16), (0.72, 0.36)),
    ((0.44, 0.36), (0.30, 0.13), 0.40, 0.025, (0.88, 0.11), (0.09, 0.11), (0.70, 0.30)),
    ((0.45, 0.40), (0.38, 0.21), 0.55, 0.045, (0.90, 0.30), (0.09, 0.15), (0.78, 0.36)),
)


def _draw_animal(p: _Painter, b: _Place, colors: np.ndarray, variant: int) -> None:
    """Horizontal body, four legs, neck, head and tail (dog, deer or cow proportions)."""
    fur, legs, head_color, accent = colors
    body, axes, leg_top, leg, head, head_axes, neck = _ANIMAL_SHAPES[variant]
    p.line(
        b(body[0] - axes[0] * 0.9, body[1] - 0.02), b(0.02, body[1] + 0.2), accent, b.thick(0.05)
    )
    for top, bottom in ((0.22, 0.20), (0.33, 0.35), (0.60, 0.58), (0.70, 0.72)):
        p.polygon(
            b.poly(
                (top - leg, leg_top), (top + leg, leg_top), (bottom + leg, 1.0), (bottom - leg, 1.0)
            ),
            legs,
        )
    p.ellipse(b(*body), (axes[0] * b.w, axes[1] * b.h), fur)
    p.polygon(
        b.poly(
            neck,
            (head[0] - 0.02, head[1]),
            (head[0] + 0.06, head[1] + 0.08),
            (neck[0] + 0.08, neck[1] + 0.08),
        ),
        fur,
    )
    p.ellipse(b(*head), (head_axes[0] * b.w, head_axes[1] * b.h), head_color)


def _sign_panel(variant: int) -> tuple[list[tuple[float, float]], float]:
    """Outline (unit coordinates) and lower edge of a sign's panel: triangle, diamond, disc
    (a 16-gon), rectangle or octagon."""
    if variant == 0:
        return [(0.5, 0.0), (1.0, 0.37), (0.0, 0.37)], 0.37
    if variant == 1:
        return [(0.5, 0.0), (1.0, 0.21), (0.5, 0.42), (0.0, 0.21)], 0.42
    if variant == 3:
        return [(0.0, 0.0), (1.0, 0.0), (1.0, 0.30), (0.0, 0.30)], 0.30
    corners = 16 if variant == 2 else 8
    angles = (np.arange(corners) + 0.5) * 2 * np.pi / corners
    # The unit box is width x height; a round panel is 0.42 of the height tall.
    ring = [(0.5 + 0.5 * math.cos(a), 0.21 + 0.21 * math.sin(a)) for a in angles]
    return ring, 0.42


def _draw_sign(p: _Painter, b: _Place, colors: np.ndarray, variant: int) -> None:
    """Panel with a symbol on a pole: warning triangle (variant 0), diamond (1), disc (2),
    rectangle (3) or octagon (4)."""
    border, panel, pole, symbol = colors
    corners, bottom = _sign_panel(variant)
    outer = b.poly(*corners)
    p.polygon(b.poly((0.45, bottom - 0.02), (0.55, bottom - 0.02), (0.55, 1.0), (0.45, 1.0)), pole)
    p.polygon(outer, border)
    p.polygon(_shrink(outer, 0.68), panel)
    mid = 0.6 * bottom if variant == 0 else 0.5 * bottom + (0.03 if variant > 1 else 0.0)
    p.polygon(
        b.poly((0.47, mid - 0.08), (0.53, mid - 0.08), (0.52, mid + 0.02), (0.48, mid + 0.02)),
        symbol,
    )


_ICONS: dict[int, Callable[[_Painter, _Place, np.ndarray, int], None]] = {
    PERSON: _draw_person,
    VEHICLE: _draw_vehicle,
    BICYCLE: _draw_bicycle,
    ANIMAL: _draw_animal,
    SIGN: _draw_sign,
}


def _box_size(size: float, aspect: float) -> tuple[float, float]:
    """Width and height of an icon box from its longer side and its width/height ratio."""
    return (size, size / aspect) if aspect >= 1.0 else (size * aspect, size)


def _rasterize(
    label: int,
    variant: int,
    colors: np.ndarray,
    center_x: float,
    bottom_y: float,
    size: float,
    aspect: float,
    facing: int,
    with_pixels: bool,
    style: int = 0,
    lut: np.ndarray | None = None,
) -> _Raster | None:
    """Draw one object (or distractor: negative label) into a local patch and mask, in a
    drawing style and under a lighting lookup table; None when it covers no pixel at all."""
    w, h = _box_size(size, aspect)
    pad = 2 + math.ceil(0.06 * size)
    x, y = math.floor(center_x - w / 2) - pad, math.floor(bottom_y - h) - pad
    cols = math.ceil(center_x + w / 2) + pad + 1 - x
    rows = math.ceil(bottom_y) + pad + 1 - y
    painter = _Painter(x, y, rows, cols, with_pixels)
    _DRAWERS[label](painter, _Place(center_x - w / 2, bottom_y - h, w, h, facing), colors, variant)
    if not painter.mask.any():
        return None
    _apply_style(painter, style, colors, size)
    if lut is not None and painter.patch is not None:
        cv2.LUT(painter.patch, lut, dst=painter.patch)
    return _Raster(x, y, painter.mask.view(bool), painter.patch)


def _sample_appearance(rng: np.random.Generator, label: int) -> tuple[int, float, np.ndarray, int]:
    """Variant, width/height ratio, the four part colours and the style (0: as drawn) of one
    object instance of the fixed look.

    Colours vary per part (palette choice and jitter) and per instance (lighting), so colour
    alone does not give the class away.
    """
    variant = int(rng.integers(len(_PALETTES[label])))
    aspect = float(rng.uniform(*_ASPECT[label][variant]))
    light = rng.uniform(0.7, 1.15)
    colors = np.empty((4, 3), np.uint8)
    for slot, palette in enumerate(_PALETTES[label][variant]):
        base = np.array(palette[rng.integers(len(palette))], np.float64)
        colors[slot] = np.clip(base * light + rng.uniform(-12, 12, 3), 0, 255)
    return variant, aspect, colors, 0


def _tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Pixel-edge box (x1, y1, x2, y2) of the set pixels of a non-empty mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def _clip_to_frame(
    raster: _Raster, rows: int, cols: int
) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """Frame box (tight, pixel edges) of a raster's pixels inside a rows x cols frame, and its
    mask cropped to that box; None when no pixel is inside."""
    ox, oy = max(0, -raster.x), max(0, -raster.y)
    inside = raster.mask[oy : rows - raster.y, ox : cols - raster.x]
    if not inside.any():
        return None
    x1, y1, x2, y2 = _tight_box(inside)
    dx, dy = raster.x + ox, raster.y + oy
    return (x1 + dx, y1 + dy, x2 + dx, y2 + dy), inside[y1:y2, x1:x2]


def _ignored(boxes: np.ndarray, crops: list[np.ndarray], totals: list[int]) -> np.ndarray:
    """Ignore flags of objects listed far to near, from their in-frame boxes and masks.

    An object is ignored when less than MIN_IN_FRAME of its `totals` pixels are in the frame,
    when its box is shorter than MIN_BOX_SIDE, or when the masks of nearer objects or
    distractors (later in the list) cover more than MAX_OCCLUDED of its in-frame pixels.
    """
    ignore = np.zeros(len(crops), bool)
    for k, (crop, total) in enumerate(zip(crops, totals, strict=True)):
        bx1, by1, bx2, by2 = boxes[k]
        covered = np.zeros_like(crop)
        later = boxes[k + 1 :]
        hits = (later[:, 0] < bx2) & (later[:, 2] > bx1) & (later[:, 1] < by2) & (later[:, 3] > by1)
        for j in np.flatnonzero(hits) + k + 1:
            jx1, jy1, jx2, jy2 = boxes[j]
            ix1, iy1, ix2, iy2 = max(bx1, jx1), max(by1, jy1), min(bx2, jx2), min(by2, jy2)
            covered[iy1 - by1 : iy2 - by1, ix1 - bx1 : ix2 - bx1] |= crops[j][
                iy1 - jy1 : iy2 - jy1, ix1 - jx1 : ix2 - jx1
            ]
        visible = np.count_nonzero(crop)
        ignore[k] = (
            visible < MIN_IN_FRAME * total
            or max(bx2 - bx1, by2 - by1) < MIN_BOX_SIDE
            or np.count_nonzero(covered & crop) > MAX_OCCLUDED * visible
        )
    return ignore


def _composite(image: np.ndarray, raster: _Raster) -> None:
    """Copy a raster's masked pixels into the image, clipped to it."""
    assert raster.patch is not None
    rows, cols = image.shape[:2]
    x0, y0 = max(raster.x, 0), max(raster.y, 0)
    x1 = min(raster.x + raster.mask.shape[1], cols)
    y1 = min(raster.y + raster.mask.shape[0], rows)
    if x0 >= x1 or y0 >= y1:
        return
    local = np.s_[y0 - raster.y : y1 - raster.y, x0 - raster.x : x1 - raster.x]
    np.copyto(image[y0:y1, x0:x1], raster.patch[local], where=raster.mask[local][..., None])


def draw_object(
    image: np.ndarray,
    label: int,
    center_x: float,
    bottom_y: float,
    size: float,
    rng: np.random.Generator,
    facing: int = 1,
) -> np.ndarray | None:
    """Draw one object of a class with a random appearance into an RGB image, in place.

    The object stands on (center_x, bottom_y) with `size` pixels on its longer side. Returns
    its box clipped to the image (float32 xyxy, pixel edges), or None when nothing was drawn.
    This is the same drawing path that scenes use; it exists to test and show single icons.
    """
    variant, aspect, colors, _ = _sample_appearance(rng, label)
    raster = _rasterize(label, variant, colors, center_x, bottom_y, size, aspect, facing, True)
    if raster is None:
        return None
    _composite(image, raster)
    clipped = _clip_to_frame(raster, *image.shape[:2])
    return None if clipped is None else np.array(clipped[0], np.float32)


def _zigzag(laps: np.ndarray) -> np.ndarray:
    """Map lap counts 0, -1, 1, -2, ... to 0, 1, 2, 3, ... (distinct non-negative ints)."""
    return np.where(laps >= 0, 2 * laps, -2 * laps - 1)


def _sample_objects(
    rng: np.random.Generator, config: SceneConfig, cam_height: float, lo: float, span: float
) -> list[tuple]:
    """Objects of a world span, in groups stratified along it, with sizes by tier (one row of
    _Objects fields per object)."""
    appearance = _sample_random_appearance if config.randomize else _sample_appearance
    s = config.scale
    target = int(rng.integers(config.objects[0], config.objects[1] + 1))
    expected = target * span / config.width
    groups: list[tuple[int, int]] = []  # (tier, members)
    count = 0
    while count < expected:
        tier = int(rng.choice(len(SIZE_TIERS), p=_GROUP_TIER_P))
        extra = min(int(rng.poisson(_TIER_EXTRA_MEMBERS[tier])), _TIER_MAX_EXTRA[tier])
        groups.append((tier, 1 + extra))
        count += 1 + extra
    rows: list[tuple] = []
    for g, (tier, members) in enumerate(groups):
        low, high = SIZE_TIERS[tier]
        base_size = math.exp(rng.uniform(math.log(low), math.log(high)))
        main_label = int(rng.choice(len(CLASS_NAMES), p=_CLASS_P))
        direction = 1 if rng.random() < 0.5 else -1
        pace = rng.random()
        x = lo + (g + rng.random()) * span / len(groups)
        for _ in range(members):
            label = main_label
            if rng.random() > _SAME_CLASS_IN_GROUP:
                label = int(rng.choice(len(CLASS_NAMES), p=_CLASS_P))
            size = float(np.clip(base_size * rng.uniform(0.85, 1.15), low, high)) * s
            variant, aspect, colors, style = appearance(rng, label)
            drop = size * cam_height / _PHYSICAL_SIZE[label] * rng.uniform(0.92, 1.08)
            slow, fast = _SPEED[label]
            metres = (slow + pace * (fast - slow)) * rng.uniform(0.9, 1.1)
            speed = direction * metres / config.fps * size / _PHYSICAL_SIZE[label]
            moves = label != SIGN
            rows.append(
                (
                    label,
                    variant,
                    aspect,
                    colors,
                    style,
                    x,
                    drop,
                    size,
                    speed,
                    moves * size * rng.uniform(0.0, 0.1),
                    2 * math.pi / rng.uniform(20, 90),
                    rng.uniform(0, 2 * math.pi),
                    moves * rng.uniform(0.0, 0.06),
                    2 * math.pi / rng.uniform(40, 150),
                    rng.uniform(0, 2 * math.pi),
                )
            )
            x += size * rng.uniform(0.5, 1.6)
    return rows


def _objects_from_rows(rows: list[tuple]) -> _Objects:
    """Column arrays of per-object rows (label, variant, aspect, colours, style, x, ...)."""
    columns = list(zip(*rows, strict=True)) if rows else [[]] * 15
    return _Objects(
        labels=np.array(columns[0], np.int64),
        variants=np.array(columns[1], np.int64),
        aspects=np.array(columns[2], np.float64),
        colors=np.array(columns[3], np.uint8).reshape(-1, 4, 3),
        styles=np.array(columns[4], np.int64),
        **{
            name: np.array(values, np.float64)
            for name, values in zip(
                (
                    "x",
                    "drop",
                    "size",
                    "speed",
                    "sway",
                    "sway_freq",
                    "sway_phase",
                    "depth",
                    "depth_freq",
                    "depth_phase",
                ),
                columns[5:],
                strict=True,
            )
        },
    )


def _smooth_noise(
    rng: np.random.Generator, rows: int, cols: int, grid: tuple[int, int]
) -> np.ndarray:
    """Value noise in [0, 1]: a random grid of the given shape resized (cubic) to rows x cols."""
    coarse = rng.random((max(2, grid[0]), max(2, grid[1])), dtype=np.float32)
    return np.clip(cv2.resize(coarse, (cols, rows), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


def _jitter(rng: np.random.Generator, color: Sequence[int], amount: float) -> np.ndarray:
    """A palette colour with random per-channel variation."""
    return np.clip(np.asarray(color, np.float64) + rng.uniform(-amount, amount, 3), 0, 255)


def _paint_sky(
    rng: np.random.Generator, out: np.ndarray, top: np.ndarray, bottom: np.ndarray, s: float
) -> None:
    """Vertical gradient with soft clouds, computed at 1/8 resolution and upsampled."""
    rows, cols = out.shape[:2]
    gh, gw = max(2, math.ceil(rows / 8)), max(2, math.ceil(cols / 8))
    t = (np.linspace(0.0, 1.0, gh, dtype=np.float32) ** 0.8)[:, None, None]
    sky = top * (1.0 - t) + bottom * t
    cells = (round(rows / (170 * s)), round(cols / (520 * s)))
    detail = (round(rows / (45 * s)), round(cols / (120 * s)))
    noise = 0.75 * _smooth_noise(rng, gh, gw, cells) + 0.25 * _smooth_noise(rng, gh, gw, detail)
    threshold = rng.uniform(0.45, 0.85)
    alpha = np.clip((noise - threshold) / 0.18, 0.0, 1.0) * (1.0 - t[..., 0] ** 3) * 0.9
    cloud = rng.uniform(205, 245) * np.array([0.97, 0.98, 1.0])
    sky = sky * (1.0 - alpha[..., None]) + cloud * alpha[..., None]
    cv2.resize(sky.astype(np.uint8), (cols, rows), out, 0, 0, cv2.INTER_LINEAR)


def _paint_ground(
    rng: np.random.Generator, out: np.ndarray, palette: np.ndarray, haze: np.ndarray, s: float
) -> None:
    """Ground texture whose grain grows with the distance below the horizon (perspective).

    Rows are cut into bands whose height grows geometrically; each band is value noise at its
    own cell size, colour-mapped and hazed through a lookup table at grid resolution, then
    upsampled. A band's last grid row repeats the first row of the band below: no seams.
    """
    rows, cols = out.shape[:2]
    patches = _smooth_noise(
        rng,
        math.ceil(rows / 4),
        math.ceil(cols / 4),
        (math.ceil(rows / (90 * s)), math.ceil(cols / (260 * s))),
    )
    patches = (patches * 255).astype(np.uint16)
    # Colour of each (haze level, noise value): dark -> mid -> light, then blended with haze.
    v = np.linspace(0.0, 1.0, 256)[:, None]
    dark, mid, light = palette
    colors = dark + (mid - dark) * np.clip(2 * v, 0, 1) + (light - mid) * np.clip(2 * v - 1, 0, 1)
    hazes = np.linspace(0.0, 0.75, _HAZE_LEVELS)[:, None, None]
    lut = (colors * (1.0 - hazes) + haze * hazes).astype(np.uint8)
    edges = [0]
    while edges[-1] < rows:
        edges.append(min(rows, max(edges[-1] + 2, math.ceil(edges[-1] * 1.35))))
    below: tuple[np.ndarray, np.ndarray] | None = None  # first grid row of the band below
    for r0, r1 in reversed(list(zip(edges[:-1], edges[1:], strict=True))):
        band = r1 - r0
        cell_x = max(1.0, 0.03 * (r0 + r1) / 2)
        gh = max(2, math.ceil(band / max(1.0, 0.35 * cell_x)) + 1)
        gw = max(2, math.ceil(cols / cell_x))
        ys = np.clip(r0 + (np.arange(gh) + 0.5) * band / gh - 0.5, 0, rows - 1)
        xs = np.clip((np.arange(gw) + 0.5) * cols / gw - 0.5, 0, cols - 1)
        fine = rng.integers(0, 256, (gh, gw), dtype=np.uint16)
        coarse = patches[(ys // 4).astype(np.intp)[:, None], (xs // 4).astype(np.intp)[None, :]]
        value = ((fine * 141 + coarse * 115) >> 8).astype(np.uint8)
        if below is not None:
            value[-1] = np.round(np.interp(xs, *below))
        below = (xs, value[0])
        level = np.round(np.exp(-(ys + 1.0) / (60.0 * s)) * (_HAZE_LEVELS - 1)).astype(np.intp)
        cv2.resize(lut[level[:, None], value], (cols, band), out[r0:r1], 0, 0, cv2.INTER_LINEAR)


def _paint_hills(
    rng: np.random.Generator, world: np.ndarray, horizon: int, color: np.ndarray, s: float
) -> None:
    """Distant hills and a rough treeline just above the horizon."""
    cols = world.shape[1]
    xs = np.arange(0, cols + 4, 4, dtype=np.float64)
    hills = rng.uniform(0.0, 90.0) * s
    knots = np.linspace(0, cols, max(3, math.ceil(cols / (260 * s)) + 1))
    fine = np.linspace(0, cols, max(3, math.ceil(cols / (6 * s)) + 1))
    height = np.interp(xs, knots, rng.random(knots.size) ** 1.5 * hills)
    height += np.interp(xs, fine, rng.random(fine.size) * 9.0 * s)
    top = np.stack([xs, horizon - height], axis=1)
    outline = np.concatenate([top, [[cols, horizon + 1.0], [0.0, horizon + 1.0]]])
    cv2.fillPoly(world, [_to_fixed(outline)], _cv_color(color), cv2.LINE_8, _SHIFT)


def _paint_clutter(
    rng: np.random.Generator,
    world: np.ndarray,
    horizon: int,
    cam_height: float,
    palette: np.ndarray,
    s: float,
    count: int,
) -> None:
    """Rocks, bushes, stripes and posts in background colours: things that are not objects."""
    rows, cols = world.shape[:2]
    kinds = rng.choice(len(_CLUTTER_P), size=count, p=_CLUTTER_P)
    sizes = np.exp(rng.uniform(math.log(3.0), math.log(220.0), count)) * s
    drops = sizes * cam_height / _CLUTTER_SIZE[kinds] * rng.uniform(0.8, 1.2, count)
    xs = rng.uniform(0, cols, count)
    for i in np.argsort(drops, kind="stable"):
        kind, size, x, y = int(kinds[i]), sizes[i], xs[i], horizon + drops[i]
        if y - size > rows:
            continue
        shade = rng.uniform(0.7, 1.2)
        if kind == 0:  # rock: irregular flattened polygon with a lighter top
            angles = np.sort(rng.uniform(0, 2 * np.pi, 8))
            radius = rng.uniform(0.7, 1.0, 8)
            rx, ry = size / 2, size * rng.uniform(0.15, 0.25)
            pts = np.stack(
                [x + rx * radius * np.cos(angles), y - ry + ry * radius * np.sin(angles)], 1
            )
            base = 0.5 * palette[0] + 0.5 * rng.uniform(70, 140)
            cv2.fillPoly(world, [_to_fixed(pts)], _cv_color(base, shade), cv2.LINE_8, _SHIFT)
            top = _shrink(pts, 0.55) - (0.0, 0.3 * ry)
            cv2.fillPoly(world, [_to_fixed(top)], _cv_color(base, 1.2 * shade), cv2.LINE_8, _SHIFT)
        elif kind == 1:  # bush: overlapping dark-green discs
            for _ in range(int(rng.integers(4, 8))):
                centre = (x + size * rng.uniform(-0.35, 0.35), y - size * rng.uniform(0.15, 0.4))
                green = (rng.uniform(30, 70), rng.uniform(55, 100), rng.uniform(20, 45))
                radius = round(size * rng.uniform(0.15, 0.28) * _FIXED)
                cv2.circle(
                    world,
                    _fixed_point(centre),
                    radius,
                    _cv_color(green, shade),
                    -1,
                    cv2.LINE_8,
                    _SHIFT,
                )
        elif kind == 2:  # stripe: a long thin furrow or track in ground colours
            axes = (
                round(size / 2 * _FIXED),
                round(max(0.5, size * rng.uniform(0.01, 0.04)) * _FIXED),
            )
            color = _cv_color(palette[int(rng.integers(3))], shade)
            cv2.ellipse(
                world,
                _fixed_point((x, y)),
                axes,
                rng.uniform(-6, 6),
                0,
                360,
                color,
                -1,
                cv2.LINE_8,
                _SHIFT,
            )
        else:  # post: a thin weathered pole
            wood = (rng.uniform(70, 110), rng.uniform(60, 90), rng.uniform(45, 75))
            cv2.line(
                world,
                _fixed_point((x, y)),
                _fixed_point((x, y - size)),
                _cv_color(wood, shade),
                max(1, round(0.07 * size)),
                cv2.LINE_8,
                _SHIFT,
            )


# --- Domain randomisation (SceneConfig.randomize) -------------------------------------------

# Drawing variants of each class in randomised scenes: (palette slots, width/height range).
_RANDOM_VARIANTS: dict[int, list[tuple[tuple[list[_Color], ...], tuple[float, float]]]] = {
    PERSON: [
        (_PALETTES[PERSON][0], (0.34, 0.44)),  # standing
        (_PALETTES[PERSON][0], (0.48, 0.62)),  # walking
        (_PALETTES[PERSON][0], (0.62, 0.85)),  # crouching / seated
    ],
    VEHICLE: [
        (_PALETTES[VEHICLE][0], (2.0, 2.6)),  # car
        (_PALETTES[VEHICLE][0], (1.6, 1.9)),  # van
        ((_PAINT, _GLASS, _TYRE, _PAINT), (2.6, 3.3)),  # truck
        ((_PAINT, _GLASS, _TYRE, _LAMP), (2.8, 3.6)),  # bus
        (_PALETTES[VEHICLE][0], (1.15, 1.45)),  # car from the front or back
    ],
    BICYCLE: [
        (_PALETTES[BICYCLE][0], (1.6, 1.8)),  # bicycle
        ((_PAINT, _TYRE, _SADDLE, _TYRE), (1.5, 1.8)),  # motorbike
        (_PALETTES[BICYCLE][0], (0.35, 0.5)),  # bicycle end-on
    ],
    ANIMAL: [
        (palette, aspect)
        for palette, aspect in zip(_PALETTES[ANIMAL], _ASPECT[ANIMAL], strict=True)
    ],
    SIGN: [
        (_PALETTES[SIGN][0], (0.38, 0.46)),  # triangle
        (_PALETTES[SIGN][1], (0.38, 0.46)),  # diamond
        (
            ([(200, 30, 30)], [(240, 240, 240), (40, 80, 180)], [(140, 140, 145)], [(20, 20, 20)]),
            (0.40, 0.46),
        ),  # disc
        (
            (
                [(240, 240, 240)],
                [(30, 90, 170), (30, 130, 60)],
                [(140, 140, 145)],
                [(240, 240, 240)],
            ),
            (0.55, 0.9),
        ),  # rectangle
        (
            ([(240, 240, 240)], [(200, 25, 30)], [(140, 140, 145)], [(240, 240, 240)]),
            (0.40, 0.46),
        ),  # octagon
    ],
}
# Drawing styles of a randomised object: as drawn, flat (one colour), outlined, shaded.
_STYLE_P = np.array([0.4, 0.2, 0.2, 0.2])
FLAT, OUTLINED, SHADED = 1, 2, 3
# Unannotated distractors drawn among the objects (negative labels): kind, share, real longer
# side (m) and width/height range.
POLE, TREE, ROCK, BUILDING, FENCE = -1, -2, -3, -4, -5
_DISTRACTOR_KINDS = (POLE, TREE, ROCK, BUILDING, FENCE)
_DISTRACTOR_P = np.array([0.25, 0.25, 0.2, 0.1, 0.2])
_DISTRACTOR_SIZE = np.array([8.0, 8.0, 1.2, 14.0, 10.0])
_DISTRACTOR_ASPECT = ((0.06, 0.25), (0.35, 0.8), (1.3, 2.4), (0.6, 2.0), (3.0, 8.0))
# Bands painted along the horizon.
PLAIN, SKYLINE, SEA, FIELDS, FOREST = range(5)
BANDS = ("plain", "skyline", "sea", "fields", "forest")
_ROCK_OUTLINES = (
    ((0.0, 1.0), (0.05, 0.5), (0.25, 0.1), (0.6, 0.0), (0.9, 0.3), (1.0, 1.0)),
    ((0.0, 1.0), (0.15, 0.3), (0.45, 0.0), (0.8, 0.15), (1.0, 0.7), (0.95, 1.0)),
    ((0.05, 1.0), (0.0, 0.6), (0.3, 0.35), (0.55, 0.0), (1.0, 0.45), (1.0, 1.0)),
)


def _draw_pole(p: _Painter, b: _Place, colors: np.ndarray, variant: int) -> None:
    """Utility pole with a crossbar (variant 0) or a lamp post with an arm and lamp (1)."""
    metal, lamp, bar, _ = colors
    if variant == 0:
        p.polygon(b.poly((0.35, 0.0), (0.65, 0.0), (0.72, 1.0), (0.28, 1.0)), metal)
        p.polygon(b.poly((0.0, 0.08), (1.0, 0.08), (1.0, 0.11), (0.0, 0.11)), bar)
    else:
        p.polygon(b.poly((0.0, 0.02), (0.22, 0.02), (0.26, 1.0), (0.0, 1.0)), metal)
        p.polygon(b.poly((0.0, 0.02), (0.9, 0.02), (0.9, 0.045), (0.0, 0.045)), metal)
        p.polygon(b.poly((0.7, 0.04), (1.0, 0.04), (0.95, 0.08), (0.75, 0.08)), lamp)


def _draw_tree(p: _Painter, b: _Place, colors: np.ndarray, variant: int) -> None:
    """Broadleaf tree (variant 0) or conifer (1): trunk and foliage."""
    trunk, leaves, shade, _ = colors
    p.polygon(b.poly((0.44, 0.5), (0.56, 0.5), (0.6, 1.0), (0.4, 1.0)), trunk)
    if variant == 0:
        p.ellipse(b(0.5, 0.3), (0.5 * b.w, 0.3 * b.h), leaves)
        p.ellipse(b(0.33, 0.45), (0.3 * b.w, 0.16 * b.h), shade)
        p.ellipse(b(0.68, 0.42), (0.3 * b.w, 0.18 * b.h), shade)
    else:
        p.polygon(b.poly((0.5, 0.0), (0.85, 0.45), (0.15, 0.45)), leaves)
        p.polygon(b.poly((0.5, 0.2), (1.0, 0.85), (0.0, 0.85)), shade)


def _draw_rock(p: _Painter, b: _Place, colors: np.ndarray, variant: int) -> None:
    """Irregular boulder (one of three outlines) with a lit top."""
    base, light, _, _ = colors
    outline = b.poly(*_ROCK_OUTLINES[variant % len(_ROCK_OUTLINES)])
    p.polygon(outline, base)
    p.polygon(_shrink(outline, 0.5) - (0.0, 0.2 * b.h), light)


def _draw_building(p: _Painter, b: _Place, colors: np.ndarray, variant: int) -> None:
    """House with a pitched roof (variant 0) or a flat-roofed block (1), windows and a door."""
    wall, glass, roof, _ = colors
    top = 0.25 if variant == 0 else 0.0
    p.polygon(b.poly((0.0, top), (1.0, top), (1.0, 1.0), (0.0, 1.0)), wall)
    if variant == 0:
        p.polygon(b.poly((-0.0, top + 0.02), (0.5, 0.0), (1.0, top + 0.02)), roof)
    rows, cols = 3, 4
    for r in range(rows):
        for c in range(cols):
            u0, v0 = 0.08 + c * 0.23, top + 0.08 + r * (0.82 - top) / rows
            p.polygon(
                b.poly((u0, v0), (u0 + 0.12, v0), (u0 + 0.12, v0 + 0.12), (u0, v0 + 0.12)), glass
            )
    p.polygon(b.poly((0.44, 0.8), (0.56, 0.8), (0.56, 1.0), (0.44, 1.0)), roof)


def _draw_fence(p: _Painter, b: _Place, colors: np.ndarray, variant: int) -> None:
    """Posts joined by two rails (wood or metal)."""
    post, rail, _, _ = colors
    posts = 5 + variant * 3
    for k in range(posts):
        u = k * (1.0 - 0.04) / (posts - 1)
        p.polygon(b.poly((u, 0.0), (u + 0.04, 0.0), (u + 0.04, 1.0), (u, 1.0)), post)
    for v in (0.2, 0.6):
        p.polygon(b.poly((0.0, v), (1.0, v), (1.0, v + 0.1), (0.0, v + 0.1)), rail)


def _hsv(h: float, s: float, v: float) -> np.ndarray:
    """An RGB colour (0-255 floats) from hue, saturation and value in 0..1."""
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v)) * 255.0


def _random_color(rng: np.random.Generator) -> np.ndarray:
    """Any colour, spread over hue, saturation and value."""
    return _hsv(rng.random(), rng.uniform(0.0, 0.9), rng.uniform(0.1, 1.0))


def _sample_random_appearance(
    rng: np.random.Generator, label: int
) -> tuple[int, float, np.ndarray, int]:
    """Variant, width/height ratio, part colours and drawing style of a randomised object.

    A third of the parts take any colour instead of a palette one, so colour never gives the
    class away.
    """
    variants = _RANDOM_VARIANTS[label]
    variant = int(rng.integers(len(variants)))
    palettes, aspect_range = variants[variant]
    light = rng.uniform(0.6, 1.25)
    colors = np.empty((4, 3), np.uint8)
    for slot, palette in enumerate(palettes):
        base = np.array(palette[rng.integers(len(palette))], np.float64)
        if rng.random() < 0.33:
            base = _random_color(rng)
        colors[slot] = np.clip(base * light + rng.uniform(-20, 20, 3), 0, 255)
    style = int(rng.choice(len(_STYLE_P), p=_STYLE_P))
    return variant, float(rng.uniform(*aspect_range)), colors, style


def _sample_distractor(rng: np.random.Generator, kind: int) -> tuple[int, float, np.ndarray]:
    """Variant, width/height ratio and colours of one distractor."""
    index = _DISTRACTOR_KINDS.index(kind)
    grey = rng.uniform(60, 200)
    if kind == TREE:
        colors = [
            _hsv(rng.uniform(0.05, 0.1), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.45)),
            _hsv(rng.uniform(0.12, 0.45), rng.uniform(0.3, 0.9), rng.uniform(0.15, 0.6)),
            _hsv(rng.uniform(0.12, 0.45), rng.uniform(0.3, 0.9), rng.uniform(0.1, 0.5)),
        ]
    elif kind == ROCK:
        base = _hsv(rng.uniform(0.0, 0.15), rng.uniform(0.0, 0.35), rng.uniform(0.2, 0.7))
        colors = [base, np.clip(base * 1.25, 0, 255)]
    else:
        colors = [_random_color(rng), np.full(3, grey), _random_color(rng)]
        if kind == POLE:
            colors[0] = np.full(3, grey * rng.uniform(0.4, 1.0))
            colors[1] = _hsv(0.15, rng.uniform(0.0, 0.3), rng.uniform(0.8, 1.0))
        if kind == BUILDING:
            colors[1] = _hsv(0.6, rng.uniform(0.0, 0.4), rng.uniform(0.1, 0.5))
    colors += [np.zeros(3)] * (4 - len(colors))
    variant = int(rng.integers(3))
    aspect = float(rng.uniform(*_DISTRACTOR_ASPECT[index]))
    return variant, aspect, np.clip(np.stack(colors), 0, 255).astype(np.uint8)


def _apply_style(painter: _Painter, style: int, colors: np.ndarray, size: float) -> None:
    """Restyle a drawn object inside its own mask (flat, outlined or shaded): the mask, and so
    the ground truth, does not change."""
    if painter.patch is None or style == 0:
        return
    inside = painter.mask.view(bool)
    if style == FLAT:
        painter.patch[inside] = colors[0]
    elif style == OUTLINED:
        width = 1 + 2 * int(size // 160)
        core = cv2.erode(painter.mask, np.ones((width + 2, width + 2), np.uint8))
        edge = inside & ~core.view(bool)
        painter.patch[edge] = (colors.astype(np.float64).mean(axis=0) * 0.25).astype(np.uint8)
    else:
        rows = painter.patch.shape[0]
        light = np.linspace(1.3, 0.65, rows, dtype=np.float32)[:, None, None]
        shaded = np.clip(painter.patch * light, 0, 255).astype(np.uint8)
        np.copyto(painter.patch, shaded, where=inside[..., None])


@dataclass(frozen=True)
class _Look:
    """The randomised appearance of one sequence (SceneConfig.randomize)."""

    horizon: float  # fraction of the frame height
    slope: float  # horizon tilt, rows per column
    band: int  # index into BANDS
    sky: tuple[np.ndarray, np.ndarray]  # top, horizon colours
    ground: np.ndarray  # [3, 3] dark, mid, light
    furrows: float  # contrast of perspective stripes on the ground (0: none)
    gradient: tuple[float, float]  # lighting gradient: direction (radians), strength
    lut: np.ndarray  # uint8 [1, 256, 3]: brightness, contrast, gamma and colour cast
    blur: int  # 0 none, 1 Gaussian, 2 horizontal motion
    blur_px: float  # Gaussian sigma or motion length (pixels at this frame height)
    blur_per_frame: bool  # strength varies per frame
    noise: float  # sensor noise, standard deviation in grey levels
    jpeg: int  # JPEG quality the frames are degraded with
    distractors: float  # distractors per frame width


def _draw_look(rng: np.random.Generator, scale: float) -> _Look:
    """Draw a sequence's look: every randomised setting at once."""
    if rng.random() < 0.4:
        top, bottom = (_jitter(rng, c, 40) for c in _SKIES[rng.integers(len(_SKIES))])
    else:
        top = _hsv(rng.random(), rng.uniform(0.0, 0.7), rng.uniform(0.25, 1.0))
        haze = _hsv(rng.random(), rng.uniform(0.0, 0.4), rng.uniform(0.55, 1.0))
        bottom = 0.4 * top + 0.6 * haze
    if rng.random() < 0.35:
        ground = np.stack([_jitter(rng, c, 30) for c in _GROUNDS[rng.integers(len(_GROUNDS))]])
    else:
        mid = _hsv(rng.random(), rng.uniform(0.05, 0.8), rng.uniform(0.2, 0.85))
        ground = np.stack([mid * rng.uniform(0.4, 0.75), mid, mid * rng.uniform(1.15, 1.6)])
    v = np.linspace(0.0, 1.0, 256)[:, None]
    gamma = math.exp(rng.uniform(-0.35, 0.35))
    contrast, brightness = rng.uniform(0.7, 1.3), rng.uniform(-0.15, 0.15)
    cast = np.exp(rng.uniform(-0.12, 0.12, 3))
    lut = np.clip(((v**gamma - 0.5) * contrast + 0.5 + brightness) * cast * 255.0, 0, 255)
    blur = int(rng.choice(3, p=[0.45, 0.35, 0.2]))
    blur_px = (rng.uniform(0.5, 2.5) if blur == 1 else rng.uniform(2.0, 14.0)) * scale
    return _Look(
        horizon=float(rng.uniform(0.15, 0.75)),
        slope=math.tan(math.radians(rng.uniform(-4.0, 4.0))),
        band=int(rng.integers(len(BANDS))),
        sky=(np.clip(top, 0, 255), np.clip(bottom, 0, 255)),
        ground=np.clip(ground, 0, 255),
        furrows=float(rng.uniform(0.05, 0.25)) if rng.random() < 0.35 else 0.0,
        gradient=(rng.uniform(0, 2 * math.pi), rng.uniform(0.0, 0.6) * (rng.random() < 0.6)),
        lut=np.round(lut).astype(np.uint8).reshape(1, 256, 3),
        blur=blur,
        blur_px=float(blur_px),
        blur_per_frame=bool(rng.random() < 0.5),
        noise=float(rng.uniform(0.0, 8.0)),
        jpeg=int(rng.integers(50, 96)),
        distractors=float(rng.uniform(2.0, 25.0)),
    )


def _sample_distractors(
    rng: np.random.Generator,
    look: _Look,
    cam_height: float,
    lo: float,
    span: float,
    config: SceneConfig,
) -> list[tuple]:
    """Static, unannotated distractors spread over the world (rows as _sample_objects)."""
    s = config.scale
    count = rng.poisson(look.distractors * span / config.width)
    rows = []
    for _ in range(count):
        kind = int(rng.choice(_DISTRACTOR_KINDS, p=_DISTRACTOR_P))
        variant, aspect, colors = _sample_distractor(rng, kind)
        size = math.exp(rng.uniform(math.log(8.0), math.log(500.0))) * s
        index = _DISTRACTOR_KINDS.index(kind)
        drop = size * cam_height / _DISTRACTOR_SIZE[index] * rng.uniform(0.9, 1.1)
        x = lo + rng.random() * span
        rows.append((kind, variant, aspect, colors, 0, x, drop, size, *[0.0] * 7))
    return rows


def _paint_band(
    rng: np.random.Generator, world: np.ndarray, horizon: int, look: _Look, s: float
) -> None:
    """The band along the horizon: hills, a skyline, the sea, fields or a forest edge."""
    rows, cols = world.shape[:2]
    haze = look.sky[1]
    if look.band == PLAIN:
        _paint_hills(rng, world, horizon, (0.45 * look.ground[0] + 0.55 * haze) * 0.85, s)
    elif look.band == SKYLINE:
        x = 0.0
        tallest = rng.uniform(0.2, 1.0) * min(horizon, 400 * s)
        base = 0.5 * haze + 0.5 * _random_color(rng)
        while x < cols:
            w, h = rng.uniform(15, 160) * s, rng.uniform(0.1, 1.0) * tallest
            wall = _cv_color(base, rng.uniform(0.5, 1.1))
            x0, x1, top = round(x), round(x + w), round(horizon - h)
            cv2.rectangle(world, (x0, top), (x1, horizon), wall, -1)
            if rng.random() < 0.6 and w > 6 * s and h > 8 * s:
                lit = _cv_color(_hsv(0.13, rng.uniform(0, 0.5), rng.uniform(0.5, 1.0)))
                step = max(3, round(rng.uniform(5, 12) * s))
                for wy in range(top + step // 2, horizon - step, step):
                    for wx in range(x0 + step // 2, x1 - step // 2, step):
                        cv2.rectangle(world, (wx, wy), (wx + step // 3, wy + step // 3), lit, -1)
            x += w + rng.uniform(0, 30) * s
    elif look.band == SEA:
        depth = max(2, round(rng.uniform(0.05, 0.35) * (rows - horizon)))
        water = 0.5 * haze + 0.5 * _hsv(
            rng.uniform(0.45, 0.65), rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.7)
        )
        ramp = np.linspace(1.0, 0.7, depth)[:, None, None]
        world[horizon : horizon + depth] = np.clip(water * ramp, 0, 255).astype(np.uint8)
        for _ in range(round(cols * depth / (400 * s * s) + 1)):
            y = round(horizon + depth * rng.random() ** 1.5)
            x = round(rng.uniform(0, cols))
            half = round(rng.uniform(3, 40) * s * (1 + 3 * (y - horizon) / depth))
            cv2.line(world, (x - half, y), (x + half, y), _cv_color(water, 1.3), 1)
    elif look.band == FIELDS:
        y = float(horizon)
        bottom = horizon + rng.uniform(0.2, 0.8) * (rows - horizon)
        while y < bottom:
            h = max(2.0, (y - horizon + 4 * s) * rng.uniform(0.2, 0.6))
            x = 0.0
            while x < cols:
                w = rng.uniform(100, 900) * s
                crop = _hsv(rng.uniform(0.05, 0.35), rng.uniform(0.3, 0.8), rng.uniform(0.3, 0.8))
                area = world[round(y) : round(y + h), round(x) : round(x + w)]
                area[:] = np.clip(0.45 * area + 0.55 * crop, 0, 255).astype(np.uint8)
                x += w
            y += h
    else:  # FOREST
        tallest = rng.uniform(0.02, 0.12) * rows
        green = _hsv(rng.uniform(0.2, 0.45), rng.uniform(0.3, 0.8), rng.uniform(0.12, 0.4))
        x = 0.0
        while x < cols:
            r = rng.uniform(0.15, 0.5) * tallest
            cy = horizon - rng.uniform(0.2, 1.0) * (tallest - r)
            cv2.circle(
                world, (round(x), round(cy)), round(r), _cv_color(green, rng.uniform(0.7, 1.3)), -1
            )
            cv2.rectangle(
                world, (round(x - r), round(cy)), (round(x + r), horizon), _cv_color(green, 0.8), -1
            )
            x += r * rng.uniform(0.5, 1.2)


def _shade_world(world: np.ndarray, look: _Look, horizon: int, frame_cols: int) -> None:
    """Apply the lighting gradient and the ground's perspective furrows to the world, in place."""
    rows, cols = world.shape[:2]
    angle, strength = look.gradient
    xs = ((np.arange(cols, dtype=np.float32) - cols / 2) / frame_cols) * math.cos(angle)
    ys = ((np.arange(rows, dtype=np.float32) - rows / 2) / rows) * math.sin(angle)
    row_gain = np.ones(rows, np.float32)
    if look.furrows:
        below = np.arange(rows - horizon, dtype=np.float32)
        stripes = np.floor(np.log1p(below / 3.0) * 6.0) % 2
        row_gain[horizon:] = 1.0 + look.furrows * (stripes - 0.5)
    if not strength and not look.furrows:
        return
    for r0 in range(0, rows, 128):
        gain = (1.0 + strength * (xs[None, :] + ys[r0 : r0 + 128, None])) * row_gain[
            r0 : r0 + 128, None
        ]
        block = world[r0 : r0 + 128]
        block[:] = np.clip(block * gain[..., None], 0, 255).astype(np.uint8)


def _paint_random_world(
    rng: np.random.Generator,
    look: _Look,
    world: np.ndarray,
    horizon: int,
    cam_height: float,
    s: float,
    frame_cols: int,
) -> None:
    """Fill the world of a randomised sequence: sky, ground, horizon band, clutter, tilt and
    lighting gradient. The tilt shears a taller painting, so no edge is ever padded."""
    rows, cols = world.shape[:2]
    margin = math.ceil(abs(look.slope) * cols / 2) + 1
    tall = np.empty((rows + 2 * margin, cols, 3), np.uint8)
    level = horizon + margin
    top, bottom = look.sky
    _paint_sky(rng, tall[:level], top, bottom, s)
    _paint_ground(rng, tall[level:], look.ground, bottom, s)
    _paint_band(rng, tall, level, look, s)
    count = round(rng.uniform(40, 200) * cols / frame_cols)
    _paint_clutter(rng, tall, level, cam_height, look.ground, s, count)
    # Row y of the world shows row y - slope * (x - centre) + margin of the painting.
    shear = np.array([[1.0, 0.0, 0.0], [-look.slope, 1.0, look.slope * cols / 2 + margin]])
    cv2.warpAffine(
        tall,
        shear,
        (cols, rows),
        world,
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    _shade_world(world, look, horizon, frame_cols)
    cv2.LUT(world, look.lut, dst=world)


def _degrade(image: np.ndarray, look: _Look, rng: np.random.Generator, scale: float) -> np.ndarray:
    """Blur (Gaussian or motion) and JPEG-compress a frame as the look says."""
    px = look.blur_px * (rng.uniform(0.5, 1.5) if look.blur_per_frame else 1.0)
    if look.blur == 1 and px >= 0.3:
        cv2.GaussianBlur(image, (0, 0), px, dst=image)
    elif look.blur == 2 and px >= 1.5:
        cv2.blur(image, (round(px), 1), dst=image)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, look.jpeg])
    if not ok:
        raise RuntimeError("JPEG encoding of a frame failed")
    return cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


# Every drawing function by label: the classes, then the distractors.
_DRAWERS: dict[int, Callable[[_Painter, _Place, np.ndarray, int], None]] = {
    **_ICONS,
    POLE: _draw_pole,
    TREE: _draw_tree,
    ROCK: _draw_rock,
    BUILDING: _draw_building,
    FENCE: _draw_fence,
}


class SceneSequence:
    """One procedural sequence: a panorama world, its moving objects and a panning camera.

    Every frame is a pure function of (seed, config, frame index): render(t) works in any
    order, which is what a synthetic camera needs. The world image is built on first use;
    truth(t) alone never builds it.
    """

    def __init__(self, seed: int | Sequence[int], config: SceneConfig | None = None) -> None:
        self.config = config or SceneConfig()
        self._seed = (seed,) if isinstance(seed, int) else tuple(seed)
        if not self._seed or any(not isinstance(v, int) or v < 0 for v in self._seed):
            raise ValueError(f"seed must be a non-negative int or a sequence of them, got {seed!r}")
        cfg, s = self.config, self.config.scale
        rng = self._rng(0)
        self.horizon = round(cfg.height * rng.uniform(0.3, 0.45))
        self.cam_height = float(rng.uniform(3.0, 6.0))  # in metres, sets the perspective
        # Pan: camera x = amp * (1 + sin(freq * t + phase)), top speed amp * freq.
        self._pan_freq = 2 * math.pi / rng.uniform(200, 500)
        self._pan_phase = rng.uniform(0, 2 * math.pi)
        self._pan_amp = cfg.pan_speed * s / self._pan_freq * rng.uniform(0.5, 1.0)
        pans = [self._raw_pan(t) for t in range(cfg.frames)]
        self._pan_origin = min(pans)
        self.world_width = cfg.width + max(pans) - self._pan_origin
        # Objects live on a loop wider than the world by the largest object on each side; one
        # that leaves it re-enters at the other end, unseen, under a new track id.
        margin = math.ceil(1.1 * 1.15 * SIZE_TIERS[-1][1] * s) + 4
        self._loop = (-margin, self.world_width + 2 * margin)
        rows = _sample_objects(rng, cfg, self.cam_height, *self._loop)
        self._look = _draw_look(self._rng(4), s) if cfg.randomize else None
        if self._look is not None:
            self.horizon = round(cfg.height * self._look.horizon)
            rows += _sample_distractors(self._rng(5), self._look, self.cam_height, *self._loop, cfg)
        self._objects = _objects_from_rows(rows)
        self._distractors: dict[int, _Raster | None] = {}  # by index, in world columns

    def _rng(self, *stream: int) -> np.random.Generator:
        """Independent generator for one purpose (0 layout, 1 world, 2 grain, (3, t) frame t;
        randomised looks: 4 look, 5 distractors, (6, t) frame t's degradation)."""
        return np.random.default_rng([*self._seed, *stream])

    def _raw_pan(self, t: int) -> int:
        """Camera x before shifting the world so that it starts at column 0."""
        return round(self._pan_amp * (1.0 + math.sin(self._pan_freq * t + self._pan_phase)))

    def __len__(self) -> int:
        """Number of frames."""
        return self.config.frames

    def __iter__(self) -> Iterator[Frame]:
        """Render every frame in order."""
        return (self.render(t) for t in range(len(self)))

    def _check_index(self, frame_index: int) -> None:
        """Refuse frame indices outside the sequence (the world only covers its pan range)."""
        if not 0 <= frame_index < len(self):
            raise IndexError(f"frame {frame_index} outside 0..{len(self) - 1}")

    def camera_x(self, frame_index: int) -> int:
        """World column of the frame's left edge."""
        self._check_index(frame_index)
        return self._raw_pan(frame_index) - self._pan_origin

    @cached_property
    def _world(self) -> np.ndarray:
        """The static panorama: sky, hills, ground and clutter (H x world_width x 3, RGB)."""
        rng, cfg, s = self._rng(1), self.config, self.config.scale
        world = np.empty((cfg.height, self.world_width, 3), np.uint8)
        if self._look is not None:
            _paint_random_world(rng, self._look, world, self.horizon, self.cam_height, s, cfg.width)
            return world
        top, bottom = (_jitter(rng, c, 12) for c in _SKIES[rng.integers(len(_SKIES))])
        palette = np.stack([_jitter(rng, c, 15) for c in _GROUNDS[rng.integers(len(_GROUNDS))]])
        _paint_sky(rng, world[: self.horizon], top, bottom, s)
        _paint_ground(rng, world[self.horizon :], palette, bottom, s)
        _paint_hills(rng, world, self.horizon, (0.45 * palette[0] + 0.55 * bottom) * 0.85, s)
        count = round(rng.uniform(100, 160) * self.world_width / cfg.width)
        _paint_clutter(rng, world, self.horizon, self.cam_height, palette, s, count)
        return world

    @cached_property
    def _grain(self) -> tuple[np.ndarray, np.ndarray | None] | None:
        """Noise tiles repeated to cover the frame plus one tile (each frame takes a window):
        one added and, for the zero-mean sensor noise of randomised looks, one subtracted."""
        reps = (self.config.height // _GRAIN_TILE + 2, self.config.width // _GRAIN_TILE + 2, 1)
        if self._look is not None:
            noise = self._rng(2).normal(0.0, self._look.noise, (_GRAIN_TILE, _GRAIN_TILE, 3))
            up, down = (np.clip(np.round(v), 0, 255).astype(np.uint8) for v in (noise, -noise))
            return np.tile(up, reps), np.tile(down, reps)
        if self.config.grain == 0:
            return None
        tile = self._rng(2).integers(
            0, self.config.grain + 1, (_GRAIN_TILE, _GRAIN_TILE, 3), dtype=np.uint8
        )
        return np.tile(tile, reps), None

    def _backdrop(self, frame_index: int) -> np.ndarray:
        """The world as seen by the camera at a frame (a fresh, writable copy)."""
        x = self.camera_x(frame_index)
        return np.ascontiguousarray(self._world[:, x : x + self.config.width])

    def _add_grain(self, image: np.ndarray, frame_index: int) -> None:
        """Add this frame's sensor grain (a randomly offset window of the tile), in place."""
        if self._grain is None:
            return
        dy, dx = (int(v) for v in self._rng(3, frame_index).integers(0, _GRAIN_TILE, 2))
        cfg = self.config
        window = np.s_[dy : dy + cfg.height, dx : dx + cfg.width]
        up, down = self._grain
        cv2.add(image, up[window], dst=image)
        if down is not None:
            cv2.subtract(image, down[window], dst=image)

    def _finish(self, image: np.ndarray, frame_index: int, degrade: bool) -> np.ndarray:
        """Camera effects on a composed frame: noise (pixel by pixel), then with `degrade`
        the blur and JPEG of a randomised look (which spread pixels). Returns the image."""
        self._add_grain(image, frame_index)
        if self._look is not None and degrade:
            image = _degrade(image, self._look, self._rng(6, frame_index), self.config.scale)
        return image

    def background(self, frame_index: int, degrade: bool = True) -> np.ndarray:
        """The frame without its objects (same pan, distractors and camera effects): what
        objects are drawn over. `degrade=False` leaves out blur and JPEG (randomised looks)."""
        image = self._backdrop(frame_index)
        self._compose(frame_index, image, objects=False)
        return self._finish(image, frame_index, degrade)

    def truth(self, frame_index: int) -> FrameTruth:
        """Ground truth of a frame without rendering its pixels (masks only)."""
        return self._compose(frame_index, None)

    def render(self, frame_index: int, degrade: bool = True) -> Frame:
        """Pixels and ground truth of a frame. `degrade=False` leaves out the blur and JPEG
        of randomised looks, so that every object pixel stays inside its box."""
        image = self._backdrop(frame_index)
        truth = self._compose(frame_index, image)
        return Frame(**vars(truth), image=self._finish(image, frame_index, degrade))

    def _place(self, t: int) -> tuple[np.ndarray, ...]:
        """Frame x of the bottom centre, bottom row, longer side and track id of every object
        and distractor at frame t."""
        o = self._objects
        grow = np.exp(o.depth * np.sin(o.depth_freq * t + o.depth_phase))
        x = (
            o.x
            + o.speed * t
            + o.sway * (np.sin(o.sway_freq * t + o.sway_phase) - np.sin(o.sway_phase))
        )
        lo, span = self._loop
        laps = np.floor((x - lo) / span).astype(np.int64)
        camera = self.camera_x(t)
        x = x - laps * span - camera
        tracks = 1 + np.arange(len(x)) + len(x) * _zigzag(laps)
        horizon = self.horizon
        if self._look is not None:  # a tilted horizon: ground level depends on the column
            horizon = horizon + self._look.slope * (x + camera - self.world_width / 2)
        return x, horizon + o.drop * grow, o.size * grow, tracks

    def _rasters(
        self, t: int, with_pixels: bool, objects: bool = True
    ) -> list[tuple[int, _Raster, tuple[int, int, int, int], np.ndarray]]:
        """Rasterize what is in view at frame t far to near: (index, raster, in-frame box
        (tight), mask cropped to that box) per item; distractors only unless `objects`."""
        cfg, o = self.config, self._objects
        x, bottom, size, _ = self._place(t)
        half = size / 2 + 2
        near = (
            (x + half > 0)
            & (x - half < cfg.width)
            & (bottom + 2 > 0)
            & (bottom - size - 2 < cfg.height)
        )
        if not objects:
            near &= o.labels < 0
        order = np.flatnonzero(near)
        order = order[np.argsort(bottom[order], kind="stable")]
        camera = self.camera_x(t)
        kept = []
        for i in order:
            if o.labels[i] < 0:  # static: drawn once in world columns, then shifted
                if i not in self._distractors:
                    self._distractors[i] = self._rasterize(i, x[i] + camera, bottom[i], size[i])
                raster = self._distractors[i]
                if raster is not None:
                    raster = dataclasses.replace(raster, x=raster.x - camera)
            else:
                raster = self._rasterize(i, x[i], bottom[i], size[i], with_pixels)
            clipped = None if raster is None else _clip_to_frame(raster, cfg.height, cfg.width)
            if raster is None or clipped is None:
                continue
            kept.append((int(i), raster, *clipped))
        return kept

    def _rasterize(
        self, i: int, center_x: float, bottom_y: float, size: float, with_pixels: bool = True
    ) -> _Raster | None:
        """Draw object or distractor i in its look (style, lighting) at a place and size."""
        o = self._objects
        return _rasterize(
            int(o.labels[i]),
            int(o.variants[i]),
            o.colors[i],
            center_x,
            bottom_y,
            size,
            o.aspects[i],
            1 if o.speed[i] >= 0 else -1,
            with_pixels,
            int(o.styles[i]),
            None if self._look is None else self._look.lut,
        )

    def layers(self, frame_index: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """What a frame draws, far to near: (label, in-frame box xyxy, mask cropped to the
        box) per item; distractors have negative labels. For checking the ground truth."""
        self._check_index(frame_index)
        return [
            (int(self._objects.labels[i]), np.array(box), crop)
            for i, _, box, crop in self._rasters(frame_index, False)
        ]

    def _compose(self, t: int, image: np.ndarray | None, objects: bool = True) -> FrameTruth:
        """Place the objects at frame t, rasterize them far to near, derive the ground truth.

        Draws them into `image` when one is given (only the distractors unless `objects`).
        Distractors hide objects like nearer objects do but are not annotated.
        """
        kept = self._rasters(t, image is not None, objects)
        box_array = np.array([box for _, _, box, _ in kept], np.int64).reshape(-1, 4)
        totals = [np.count_nonzero(r.mask) for _, r, _, _ in kept]
        ignore = _ignored(box_array, [crop for _, _, _, crop in kept], totals)
        if image is not None:
            for _, r, _, _ in kept:
                _composite(image, r)
        index = np.array([i for i, _, _, _ in kept], np.int64)
        annotated = self._objects.labels[index] >= 0
        index = index[annotated]
        return FrameTruth(
            frame_index=t,
            camera_x=self.camera_x(t),
            boxes=box_array[annotated].astype(np.float32),
            labels=self._objects.labels[index],
            track_ids=self._place(t)[3][index],
            ignore=ignore[annotated],
        )


def generate_sequence(
    seed: int | Sequence[int], config: SceneConfig | None = None
) -> Iterator[Frame]:
    """Render the frames of one sequence in order (see SceneSequence for random access)."""
    return iter(SceneSequence(seed, config))
