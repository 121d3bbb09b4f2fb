"""The static world behind the objects: sky, perspective-textured ground, the band along the
horizon and background clutter, for the fixed look and for randomised looks."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import cv2
import numpy as np

from training.synth.drawing import (
    FIXED,
    SHIFT,
    cv_color,
    fixed_point,
    hsv,
    jitter,
    random_color,
    shrink,
    to_fixed,
)

if TYPE_CHECKING:
    from training.synth.randomize import Look


_HAZE_LEVELS = 32


SKIES = (  # top, horizon
    ((60, 110, 190), (190, 210, 230)),
    ((120, 150, 185), (215, 220, 225)),
    ((140, 145, 155), (200, 200, 205)),
    ((70, 80, 140), (230, 175, 130)),
)
GROUNDS = (  # dark, mid, light
    ((40, 70, 30), (80, 120, 50), (140, 150, 80)),
    ((90, 80, 50), (150, 130, 80), (200, 180, 120)),
    ((60, 60, 60), (100, 100, 98), (140, 138, 130)),
    ((150, 130, 95), (190, 170, 125), (225, 205, 160)),
)


# Clutter kinds (not objects): rock, bush, stripe, post; their share and real size (m).
_CLUTTER_P = np.array([0.4, 0.3, 0.2, 0.1])
_CLUTTER_SIZE = np.array([0.8, 1.5, 4.0, 1.3])


# Bands painted along the horizon of randomised looks.
PLAIN, SKYLINE, SEA, FIELDS, FOREST = range(5)
BANDS = ("plain", "skyline", "sea", "fields", "forest")


def _smooth_noise(
    rng: np.random.Generator, rows: int, cols: int, grid: tuple[int, int]
) -> np.ndarray:
    """Value noise in [0, 1]: a random grid of the given shape resized (cubic) to rows x cols."""
    coarse = rng.random((max(2, grid[0]), max(2, grid[1])), dtype=np.float32)
    return np.clip(cv2.resize(coarse, (cols, rows), interpolation=cv2.INTER_CUBIC), 0.0, 1.0)


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
    cv2.fillPoly(world, [to_fixed(outline)], cv_color(color), cv2.LINE_8, SHIFT)


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
            cv2.fillPoly(world, [to_fixed(pts)], cv_color(base, shade), cv2.LINE_8, SHIFT)
            top = shrink(pts, 0.55) - (0.0, 0.3 * ry)
            cv2.fillPoly(world, [to_fixed(top)], cv_color(base, 1.2 * shade), cv2.LINE_8, SHIFT)
        elif kind == 1:  # bush: overlapping dark-green discs
            for _ in range(int(rng.integers(4, 8))):
                centre = (x + size * rng.uniform(-0.35, 0.35), y - size * rng.uniform(0.15, 0.4))
                green = (rng.uniform(30, 70), rng.uniform(55, 100), rng.uniform(20, 45))
                radius = round(size * rng.uniform(0.15, 0.28) * FIXED)
                cv2.circle(
                    world,
                    fixed_point(centre),
                    radius,
                    cv_color(green, shade),
                    -1,
                    cv2.LINE_8,
                    SHIFT,
                )
        elif kind == 2:  # stripe: a long thin furrow or track in ground colours
            axes = (
                round(size / 2 * FIXED),
                round(max(0.5, size * rng.uniform(0.01, 0.04)) * FIXED),
            )
            color = cv_color(palette[int(rng.integers(3))], shade)
            cv2.ellipse(
                world,
                fixed_point((x, y)),
                axes,
                rng.uniform(-6, 6),
                0,
                360,
                color,
                -1,
                cv2.LINE_8,
                SHIFT,
            )
        else:  # post: a thin weathered pole
            wood = (rng.uniform(70, 110), rng.uniform(60, 90), rng.uniform(45, 75))
            cv2.line(
                world,
                fixed_point((x, y)),
                fixed_point((x, y - size)),
                cv_color(wood, shade),
                max(1, round(0.07 * size)),
                cv2.LINE_8,
                SHIFT,
            )


def paint_world(
    rng: np.random.Generator,
    world: np.ndarray,
    horizon: int,
    cam_height: float,
    s: float,
    frame_cols: int,
) -> None:
    """Fill the world of the fixed look: sky, ground, hills and clutter."""
    top, bottom = (jitter(rng, c, 12) for c in SKIES[rng.integers(len(SKIES))])
    palette = np.stack([jitter(rng, c, 15) for c in GROUNDS[rng.integers(len(GROUNDS))]])
    _paint_sky(rng, world[:horizon], top, bottom, s)
    _paint_ground(rng, world[horizon:], palette, bottom, s)
    _paint_hills(rng, world, horizon, (0.45 * palette[0] + 0.55 * bottom) * 0.85, s)
    count = round(rng.uniform(100, 160) * world.shape[1] / frame_cols)
    _paint_clutter(rng, world, horizon, cam_height, palette, s, count)


def _paint_skyline(
    rng: np.random.Generator, world: np.ndarray, horizon: int, haze: np.ndarray, s: float
) -> None:
    """Buildings of random widths and heights standing on the horizon, often with lit windows."""
    cols = world.shape[1]
    x = 0.0
    tallest = rng.uniform(0.2, 1.0) * min(horizon, 400 * s)
    base = 0.5 * haze + 0.5 * random_color(rng)
    while x < cols:
        w, h = rng.uniform(15, 160) * s, rng.uniform(0.1, 1.0) * tallest
        wall = cv_color(base, rng.uniform(0.5, 1.1))
        x0, x1, top = round(x), round(x + w), round(horizon - h)
        cv2.rectangle(world, (x0, top), (x1, horizon), wall, -1)
        if rng.random() < 0.6 and w > 6 * s and h > 8 * s:
            lit = cv_color(hsv(0.13, rng.uniform(0, 0.5), rng.uniform(0.5, 1.0)))
            step = max(3, round(rng.uniform(5, 12) * s))
            for wy in range(top + step // 2, horizon - step, step):
                for wx in range(x0 + step // 2, x1 - step // 2, step):
                    cv2.rectangle(world, (wx, wy), (wx + step // 3, wy + step // 3), lit, -1)
        x += w + rng.uniform(0, 30) * s


def _paint_sea(
    rng: np.random.Generator, world: np.ndarray, horizon: int, haze: np.ndarray, s: float
) -> None:
    """A water band below the horizon, darker towards the camera, with light streaks."""
    rows, cols = world.shape[:2]
    depth = max(2, round(rng.uniform(0.05, 0.35) * (rows - horizon)))
    water = 0.5 * haze + 0.5 * hsv(
        rng.uniform(0.45, 0.65), rng.uniform(0.2, 0.8), rng.uniform(0.2, 0.7)
    )
    ramp = np.linspace(1.0, 0.7, depth)[:, None, None]
    world[horizon : horizon + depth] = np.clip(water * ramp, 0, 255).astype(np.uint8)
    for _ in range(round(cols * depth / (400 * s * s) + 1)):
        y = round(horizon + depth * rng.random() ** 1.5)
        x = round(rng.uniform(0, cols))
        half = round(rng.uniform(3, 40) * s * (1 + 3 * (y - horizon) / depth))
        cv2.line(world, (x - half, y), (x + half, y), cv_color(water, 1.3), 1)


def _paint_fields(
    rng: np.random.Generator, world: np.ndarray, horizon: int, haze: np.ndarray, s: float
) -> None:
    """Strips below the horizon, taller towards the camera, cut into crop-coloured fields
    blended over the ground texture."""
    rows, cols = world.shape[:2]
    y = float(horizon)
    bottom = horizon + rng.uniform(0.2, 0.8) * (rows - horizon)
    while y < bottom:
        h = max(2.0, (y - horizon + 4 * s) * rng.uniform(0.2, 0.6))
        x = 0.0
        while x < cols:
            w = rng.uniform(100, 900) * s
            crop = hsv(rng.uniform(0.05, 0.35), rng.uniform(0.3, 0.8), rng.uniform(0.3, 0.8))
            area = world[round(y) : round(y + h), round(x) : round(x + w)]
            area[:] = np.clip(0.45 * area + 0.55 * crop, 0, 255).astype(np.uint8)
            x += w
        y += h


def _paint_forest(
    rng: np.random.Generator, world: np.ndarray, horizon: int, haze: np.ndarray, s: float
) -> None:
    """A dense treeline of overlapping crowns standing on the horizon."""
    rows, cols = world.shape[:2]
    tallest = rng.uniform(0.02, 0.12) * rows
    green = hsv(rng.uniform(0.2, 0.45), rng.uniform(0.3, 0.8), rng.uniform(0.12, 0.4))
    x = 0.0
    while x < cols:
        r = rng.uniform(0.15, 0.5) * tallest
        cy = horizon - rng.uniform(0.2, 1.0) * (tallest - r)
        crown = cv_color(green, rng.uniform(0.7, 1.3))
        cv2.circle(world, (round(x), round(cy)), round(r), crown, -1)
        cv2.rectangle(
            world, (round(x - r), round(cy)), (round(x + r), horizon), cv_color(green, 0.8), -1
        )
        x += r * rng.uniform(0.5, 1.2)


def _paint_band(
    rng: np.random.Generator, world: np.ndarray, horizon: int, look: Look, s: float
) -> None:
    """The band along the horizon: hills, a skyline, the sea, fields or a forest edge."""
    haze = look.sky[1]
    if look.band == PLAIN:
        _paint_hills(rng, world, horizon, (0.45 * look.ground[0] + 0.55 * haze) * 0.85, s)
    else:
        painters = {
            SKYLINE: _paint_skyline,
            SEA: _paint_sea,
            FIELDS: _paint_fields,
            FOREST: _paint_forest,
        }
        painters[look.band](rng, world, horizon, haze, s)


def _shade_world(world: np.ndarray, look: Look, horizon: int, frame_cols: int) -> None:
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
        cv2.multiply(block, cv2.merge([gain] * 3), dst=block, dtype=cv2.CV_8U)


def paint_random_world(
    rng: np.random.Generator,
    look: Look,
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
    # Column x of the world shows rows from margin - round(slope * (x - centre)) of the
    # painting: the horizon runs at horizon + slope * (x - centre), to the nearest row.
    offsets = np.round(look.slope * (np.arange(cols) - cols / 2)).astype(np.intp)
    starts = np.flatnonzero(np.diff(offsets, prepend=offsets[0] - 1))
    for x0, x1 in zip(starts, [*starts[1:], cols], strict=True):
        top_row = margin - offsets[x0]
        world[:, x0:x1] = tall[top_row : top_row + rows, x0:x1]
    _shade_world(world, look, horizon, frame_cols)
    cv2.LUT(world, look.lut, dst=world)
