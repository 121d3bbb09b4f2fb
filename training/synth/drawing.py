"""Pixel-exact drawing for synthetic scenes: fixed-point OpenCV shapes drawn into a patch and its
coverage mask with identical calls, the tight boxes of masks, and colour helpers."""

from __future__ import annotations

import colorsys
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

SHIFT = 4  # OpenCV drawing at 1/16 px precision: motion stays smooth for tiny objects
FIXED = 1 << SHIFT


Color = tuple[int, int, int]


@dataclass(frozen=True)
class Raster:
    """An object's pixels: local patch (None when only the layout is wanted) and mask."""

    x: int  # frame column and row of mask[0, 0]
    y: int
    mask: np.ndarray  # bool [h, w]
    patch: np.ndarray | None


class Painter:
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
        return to_fixed(np.asarray(points, np.float64) - (self.x, self.y))

    def _point(self, point: np.ndarray) -> tuple[int, int]:
        """One point as the int tuple that OpenCV wants."""
        return fixed_point(np.asarray(point, np.float64) - (self.x, self.y))

    def _both(self, draw: Callable[[np.ndarray, tuple[int, ...]], object], color) -> None:
        """Apply one drawing call to the mask (value 1) and to the patch (the colour)."""
        draw(self.mask, (1,))
        if self.patch is not None:
            draw(self.patch, cv_color(color))

    def polygon(self, points: np.ndarray, color: np.ndarray) -> None:
        """Filled polygon."""
        pts = [self._fixed(points)]
        self._both(lambda img, c: cv2.fillPoly(img, pts, c, cv2.LINE_8, SHIFT), color)

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
        a = (max(0, round(axes[0] * FIXED)), max(0, round(axes[1] * FIXED)))
        self._both(
            lambda img, col: cv2.ellipse(img, c, a, 0.0, start, end, col, -1, cv2.LINE_8, SHIFT),
            color,
        )

    def circle(
        self, center: np.ndarray, radius: float, color: np.ndarray, thickness: int = -1
    ) -> None:
        """Filled disc, or a ring of the given thickness (whole pixels)."""
        c, r = self._point(center), max(0, round(radius * FIXED))
        self._both(lambda img, col: cv2.circle(img, c, r, col, thickness, cv2.LINE_8, SHIFT), color)

    def line(self, p0: np.ndarray, p1: np.ndarray, color: np.ndarray, thickness: int) -> None:
        """Straight line of the given thickness (whole pixels)."""
        a, b = self._point(p0), self._point(p1)
        self._both(lambda img, col: cv2.line(img, a, b, col, thickness, cv2.LINE_8, SHIFT), color)


@dataclass(frozen=True)
class Place:
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
        """Polygon vertices (the same arithmetic as one point at a time, vectorised)."""
        u, v = np.array(uv, np.float64).T
        if self.facing <= 0:
            u = 1.0 - u
        return np.stack([self.x0 + u * self.w, self.y0 + v * self.h], axis=1)

    def thick(self, fraction: float) -> int:
        """Line thickness in whole pixels: a fraction of the height, at least 1."""
        return max(1, round(fraction * self.h))


def to_fixed(points: np.ndarray) -> np.ndarray:
    """Pixel coordinates -> the fixed-point integers that OpenCV draws with shift=SHIFT."""
    return np.round(np.asarray(points, np.float64) * FIXED).astype(np.int32)


def fixed_point(point: np.ndarray) -> tuple[int, int]:
    """One point as the fixed-point int tuple that OpenCV wants."""
    x, y = to_fixed(point)
    return int(x), int(y)


def cv_color(color: np.ndarray, factor: float = 1.0) -> tuple[int, int, int]:
    """An OpenCV colour tuple from an RGB array, optionally scaled in brightness."""
    r, g, b = (int(min(255.0, max(0.0, float(c) * factor))) for c in color)
    return r, g, b


def shade(color: np.ndarray, factor: float) -> np.ndarray:
    """Colour scaled in brightness (for simple shading of parts)."""
    return np.clip(color.astype(np.float64) * factor, 0, 255)


def shrink(points: np.ndarray, factor: float) -> np.ndarray:
    """Polygon scaled about its vertex mean (inner panel of a sign)."""
    centre = points.mean(axis=0)
    return centre + (points - centre) * factor


def box_size(size: float, aspect: float) -> tuple[float, float]:
    """Width and height of an icon box from its longer side and its width/height ratio."""
    return (size, size / aspect) if aspect >= 1.0 else (size * aspect, size)


def tight_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Pixel-edge box (x1, y1, x2, y2) of the set pixels of a non-empty mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def clip_to_frame(
    raster: Raster, rows: int, cols: int
) -> tuple[tuple[int, int, int, int], np.ndarray] | None:
    """Frame box (tight, pixel edges) of a raster's pixels inside a rows x cols frame, and its
    mask cropped to that box; None when no pixel is inside."""
    ox, oy = max(0, -raster.x), max(0, -raster.y)
    inside = raster.mask[oy : rows - raster.y, ox : cols - raster.x]
    if not inside.any():
        return None
    x1, y1, x2, y2 = tight_box(inside)
    dx, dy = raster.x + ox, raster.y + oy
    return (x1 + dx, y1 + dy, x2 + dx, y2 + dy), inside[y1:y2, x1:x2]


def composite(image: np.ndarray, raster: Raster) -> None:
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


def jitter(rng: np.random.Generator, color: Sequence[int], amount: float) -> np.ndarray:
    """A palette colour with random per-channel variation."""
    return np.clip(np.asarray(color, np.float64) + rng.uniform(-amount, amount, 3), 0, 255)


def hsv(h: float, s: float, v: float) -> np.ndarray:
    """An RGB colour (0-255 floats) from hue, saturation and value in 0..1."""
    return np.array(colorsys.hsv_to_rgb(h % 1.0, s, v)) * 255.0


def random_color(rng: np.random.Generator) -> np.ndarray:
    """Any colour, spread over hue, saturation and value."""
    return hsv(rng.random(), rng.uniform(0.0, 0.9), rng.uniform(0.1, 1.0))
