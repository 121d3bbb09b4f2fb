"""The shapes of the scene's object classes and of its unannotated distractors, each drawn
into a unit box (u along the facing direction, v down) through a Painter."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from pdn_model.config import DEFAULT_CLASSES
from training.synth.drawing import Painter, Place, shade, shrink

CLASS_NAMES: tuple[str, ...] = DEFAULT_CLASSES
PERSON, VEHICLE, BICYCLE, ANIMAL, SIGN = range(len(CLASS_NAMES))


# Unannotated distractors drawn among the objects of randomised looks have negative labels.
POLE, TREE, ROCK, BUILDING, FENCE = -1, -2, -3, -4, -5
DISTRACTOR_KINDS = (POLE, TREE, ROCK, BUILDING, FENCE)


def _draw_person(p: Painter, b: Place, colors: np.ndarray, variant: int) -> None:
    """Standing (variant 0), walking (1) or crouching (2) body: legs, torso, arms, head."""
    skin, shirt, pants, hair = colors
    sleeve = shade(shirt, 0.8)
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


def _draw_vehicle(p: Painter, b: Place, colors: np.ndarray, variant: int) -> None:
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
            b.poly((0.04, 0.06), (0.66, 0.06), (0.66, 0.09), (0.04, 0.09)), shade(paint, 0.85)
        )
        wheels = (0.18, 0.82)
    elif variant == 2:  # truck: box body behind a cab
        p.polygon(b.poly((0.0, 0.0), (0.72, 0.0), (0.72, 0.84), (0.0, 0.84)), shade(lamp, 0.9))
        p.polygon(b.poly((0.74, 0.16), (0.92, 0.16), (1.0, 0.46), (1.0, 0.84), (0.74, 0.84)), paint)
        p.polygon(b.poly((0.77, 0.21), (0.90, 0.21), (0.96, 0.44), (0.77, 0.44)), glass)
        wheels = (0.12, 0.30, 0.88)
        radius = 0.16 * b.h
    else:  # bus: long box with a row of windows
        p.polygon(b.poly((0.0, 0.02), (0.97, 0.02), (1.0, 0.12), (1.0, 0.86), (0.0, 0.86)), paint)
        for k in range(6):
            u0 = 0.04 + k * 0.155
            p.polygon(b.poly((u0, 0.14), (u0 + 0.13, 0.14), (u0 + 0.13, 0.42), (u0, 0.42)), glass)
        p.polygon(b.poly((0.0, 0.60), (1.0, 0.60), (1.0, 0.66), (0.0, 0.66)), shade(paint, 0.7))
        wheels = (0.16, 0.80)
        radius = 0.14 * b.h
    p.polygon(b.poly((0.965, 0.52), (1.0, 0.52), (1.0, 0.6), (0.965, 0.6)), lamp)
    for u in wheels:
        centre = b(u, 1.0) - (0.0, radius)
        p.circle(centre, radius, tyre)
        p.circle(centre, 0.45 * radius, np.array([150, 150, 155]))


def _draw_vehicle_front(p: Painter, b: Place, colors: np.ndarray) -> None:
    """A car seen from the front or back: roof, windscreen, body, lights, two tyres."""
    paint, glass, tyre, lamp = colors
    p.polygon(b.poly((0.05, 0.78), (0.22, 0.78), (0.22, 1.0), (0.05, 1.0)), tyre)
    p.polygon(b.poly((0.78, 0.78), (0.95, 0.78), (0.95, 1.0), (0.78, 1.0)), tyre)
    p.polygon(b.poly((0.18, 0.0), (0.82, 0.0), (0.94, 0.42), (0.06, 0.42)), paint)
    p.polygon(b.poly((0.23, 0.06), (0.77, 0.06), (0.86, 0.38), (0.14, 0.38)), glass)
    p.polygon(b.poly((0.0, 0.40), (1.0, 0.40), (1.0, 0.86), (0.0, 0.86)), paint)
    for u in (0.14, 0.86):
        p.ellipse(b(u, 0.55), (0.08 * b.w, 0.06 * b.h), lamp)
    p.polygon(b.poly((0.32, 0.62), (0.68, 0.62), (0.68, 0.74), (0.32, 0.74)), shade(paint, 0.5))


def _draw_bicycle(p: Painter, b: Place, colors: np.ndarray, variant: int) -> None:
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


def _draw_motorbike(p: Painter, b: Place, colors: np.ndarray) -> None:
    """Side view of a motorbike: thick tyres, engine block, tank, seat, fork and handlebar."""
    frame, tyre, saddle, grips = colors
    radius = 0.34 * b.h
    hub_v = 1.0 - radius / b.h
    rear, front = b(radius / b.w, hub_v), b(1.0 - radius / b.w, hub_v)
    for hub in (rear, front):
        p.circle(hub, radius, tyre)
        p.circle(hub, 0.45 * radius, np.array([150, 150, 155]))
    p.polygon(b.poly((0.35, 0.45), (0.60, 0.45), (0.62, 0.75), (0.38, 0.75)), shade(tyre, 2.5))
    p.polygon(b.poly((0.22, 0.35), (0.70, 0.28), (0.74, 0.45), (0.25, 0.50)), frame)
    p.polygon(b.poly((0.12, 0.28), (0.45, 0.28), (0.45, 0.36), (0.12, 0.38)), saddle)
    p.line(b(0.70, 0.3), front, frame, b.thick(0.06))
    p.line(b(0.70, 0.3), b(0.74, 0.04), grips, b.thick(0.05))
    p.line(b(0.74, 0.04), b(0.64, 0.06), grips, b.thick(0.05))


def _draw_bicycle_end_on(p: Painter, b: Place, colors: np.ndarray) -> None:
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


def _draw_animal(p: Painter, b: Place, colors: np.ndarray, variant: int) -> None:
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


def _draw_sign(p: Painter, b: Place, colors: np.ndarray, variant: int) -> None:
    """Panel with a symbol on a pole: warning triangle (variant 0), diamond (1), disc (2),
    rectangle (3) or octagon (4)."""
    border, panel, pole, symbol = colors
    corners, bottom = _sign_panel(variant)
    outer = b.poly(*corners)
    p.polygon(b.poly((0.45, bottom - 0.02), (0.55, bottom - 0.02), (0.55, 1.0), (0.45, 1.0)), pole)
    p.polygon(outer, border)
    p.polygon(shrink(outer, 0.68), panel)
    mid = 0.6 * bottom if variant == 0 else 0.5 * bottom + (0.03 if variant > 1 else 0.0)
    p.polygon(
        b.poly((0.47, mid - 0.08), (0.53, mid - 0.08), (0.52, mid + 0.02), (0.48, mid + 0.02)),
        symbol,
    )


_ROCK_OUTLINES = (
    ((0.0, 1.0), (0.05, 0.5), (0.25, 0.1), (0.6, 0.0), (0.9, 0.3), (1.0, 1.0)),
    ((0.0, 1.0), (0.15, 0.3), (0.45, 0.0), (0.8, 0.15), (1.0, 0.7), (0.95, 1.0)),
    ((0.05, 1.0), (0.0, 0.6), (0.3, 0.35), (0.55, 0.0), (1.0, 0.45), (1.0, 1.0)),
)


def _draw_pole(p: Painter, b: Place, colors: np.ndarray, variant: int) -> None:
    """Utility pole with a crossbar (variant 0) or a lamp post with an arm and lamp (1)."""
    metal, lamp, bar, _ = colors
    if variant == 0:
        p.polygon(b.poly((0.35, 0.0), (0.65, 0.0), (0.72, 1.0), (0.28, 1.0)), metal)
        p.polygon(b.poly((0.0, 0.08), (1.0, 0.08), (1.0, 0.11), (0.0, 0.11)), bar)
    else:
        p.polygon(b.poly((0.0, 0.02), (0.22, 0.02), (0.26, 1.0), (0.0, 1.0)), metal)
        p.polygon(b.poly((0.0, 0.02), (0.9, 0.02), (0.9, 0.045), (0.0, 0.045)), metal)
        p.polygon(b.poly((0.7, 0.04), (1.0, 0.04), (0.95, 0.08), (0.75, 0.08)), lamp)


def _draw_tree(p: Painter, b: Place, colors: np.ndarray, variant: int) -> None:
    """Broadleaf tree (variant 0) or conifer (1): trunk and foliage."""
    trunk, leaves, dark_leaves, _ = colors
    p.polygon(b.poly((0.44, 0.5), (0.56, 0.5), (0.6, 1.0), (0.4, 1.0)), trunk)
    if variant == 0:
        p.ellipse(b(0.5, 0.3), (0.5 * b.w, 0.3 * b.h), leaves)
        p.ellipse(b(0.33, 0.45), (0.3 * b.w, 0.16 * b.h), dark_leaves)
        p.ellipse(b(0.68, 0.42), (0.3 * b.w, 0.18 * b.h), dark_leaves)
    else:
        p.polygon(b.poly((0.5, 0.0), (0.85, 0.45), (0.15, 0.45)), leaves)
        p.polygon(b.poly((0.5, 0.2), (1.0, 0.85), (0.0, 0.85)), dark_leaves)


def _draw_rock(p: Painter, b: Place, colors: np.ndarray, variant: int) -> None:
    """Irregular boulder (one of three outlines) with a lit top."""
    base, light, _, _ = colors
    outline = b.poly(*_ROCK_OUTLINES[variant % len(_ROCK_OUTLINES)])
    p.polygon(outline, base)
    p.polygon(shrink(outline, 0.5) - (0.0, 0.2 * b.h), light)


def _draw_building(p: Painter, b: Place, colors: np.ndarray, variant: int) -> None:
    """House with a pitched roof (variant 0) or a flat-roofed block (1), windows and a door."""
    wall, glass, roof, _ = colors
    top = 0.25 if variant == 0 else 0.0
    p.polygon(b.poly((0.0, top), (1.0, top), (1.0, 1.0), (0.0, 1.0)), wall)
    if variant == 0:
        p.polygon(b.poly((0.0, top + 0.02), (0.5, 0.0), (1.0, top + 0.02)), roof)
    rows, cols = 3, 4
    for r in range(rows):
        for c in range(cols):
            u0, v0 = 0.08 + c * 0.23, top + 0.08 + r * (0.82 - top) / rows
            p.polygon(
                b.poly((u0, v0), (u0 + 0.12, v0), (u0 + 0.12, v0 + 0.12), (u0, v0 + 0.12)), glass
            )
    p.polygon(b.poly((0.44, 0.8), (0.56, 0.8), (0.56, 1.0), (0.44, 1.0)), roof)


def _draw_fence(p: Painter, b: Place, colors: np.ndarray, variant: int) -> None:
    """Posts joined by two rails (wood or metal)."""
    post, rail, _, _ = colors
    posts = 5 + variant * 3
    for k in range(posts):
        u = k * (1.0 - 0.04) / (posts - 1)
        p.polygon(b.poly((u, 0.0), (u + 0.04, 0.0), (u + 0.04, 1.0), (u, 1.0)), post)
    for v in (0.2, 0.6):
        p.polygon(b.poly((0.0, v), (1.0, v), (1.0, v + 0.1), (0.0, v + 0.1)), rail)


# Every drawing function by label: the classes, then the distractors.
DRAWERS: dict[int, Callable[[Painter, Place, np.ndarray, int], None]] = {
    PERSON: _draw_person,
    VEHICLE: _draw_vehicle,
    BICYCLE: _draw_bicycle,
    ANIMAL: _draw_animal,
    SIGN: _draw_sign,
    POLE: _draw_pole,
    TREE: _draw_tree,
    ROCK: _draw_rock,
    BUILDING: _draw_building,
    FENCE: _draw_fence,
}
