"""How each object looks: palettes, drawing variants and styles per class, their random draws
(fixed look and randomised looks), and rasterizing one object or distractor."""

from __future__ import annotations

import math

import cv2
import numpy as np

from training.synth.drawing import (
    Color,
    Painter,
    Place,
    Raster,
    box_size,
    clip_to_frame,
    composite,
    hsv,
    random_color,
)
from training.synth.icons import (
    ANIMAL,
    BICYCLE,
    BUILDING,
    DISTRACTOR_KINDS,
    DRAWERS,
    PERSON,
    POLE,
    ROCK,
    SIGN,
    TREE,
    VEHICLE,
)

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
_PALETTES: dict[int, list[tuple[list[Color], ...]]] = {
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


# Drawing variants of each class in randomised scenes: (palette slots, width/height range).
RANDOM_VARIANTS: dict[int, list[tuple[tuple[list[Color], ...], tuple[float, float]]]] = {
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


# Drawing styles of a randomised object and their shares: as drawn, flat (one colour),
# outlined, shaded (lit from above).
STYLES = ("as drawn", "flat", "outlined", "shaded")
_STYLE_P = np.array([0.4, 0.2, 0.2, 0.2])
FLAT, OUTLINED, SHADED = 1, 2, 3
# Width / height range of each distractor kind (DISTRACTOR_KINDS).
_DISTRACTOR_ASPECT = ((0.06, 0.25), (0.35, 0.8), (1.3, 2.4), (0.6, 2.0), (3.0, 8.0))


def sample_appearance(rng: np.random.Generator, label: int) -> tuple[int, float, np.ndarray, int]:
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


def sample_random_appearance(
    rng: np.random.Generator, label: int
) -> tuple[int, float, np.ndarray, int]:
    """Variant, width/height ratio, part colours and drawing style of a randomised object.

    A third of the parts take any colour instead of a palette one, so colour never gives the
    class away.
    """
    variants = RANDOM_VARIANTS[label]
    variant = int(rng.integers(len(variants)))
    palettes, aspect_range = variants[variant]
    light = rng.uniform(0.6, 1.25)
    colors = np.empty((4, 3), np.uint8)
    for slot, palette in enumerate(palettes):
        base = np.array(palette[rng.integers(len(palette))], np.float64)
        if rng.random() < 0.33:
            base = random_color(rng)
        colors[slot] = np.clip(base * light + rng.uniform(-20, 20, 3), 0, 255)
    style = int(rng.choice(len(STYLES), p=_STYLE_P))
    return variant, float(rng.uniform(*aspect_range)), colors, style


def sample_distractor(rng: np.random.Generator, kind: int) -> tuple[int, float, np.ndarray]:
    """Variant, width/height ratio and colours of one distractor."""
    index = DISTRACTOR_KINDS.index(kind)
    grey = rng.uniform(60, 200)
    if kind == TREE:
        colors = [
            hsv(rng.uniform(0.05, 0.1), rng.uniform(0.3, 0.7), rng.uniform(0.15, 0.45)),
            hsv(rng.uniform(0.12, 0.45), rng.uniform(0.3, 0.9), rng.uniform(0.15, 0.6)),
            hsv(rng.uniform(0.12, 0.45), rng.uniform(0.3, 0.9), rng.uniform(0.1, 0.5)),
        ]
    elif kind == ROCK:
        base = hsv(rng.uniform(0.0, 0.15), rng.uniform(0.0, 0.35), rng.uniform(0.2, 0.7))
        colors = [base, np.clip(base * 1.25, 0, 255)]
    else:
        colors = [random_color(rng), np.full(3, grey), random_color(rng)]
        if kind == POLE:
            colors[0] = np.full(3, grey * rng.uniform(0.4, 1.0))
            colors[1] = hsv(0.15, rng.uniform(0.0, 0.3), rng.uniform(0.8, 1.0))
        if kind == BUILDING:
            colors[1] = hsv(0.6, rng.uniform(0.0, 0.4), rng.uniform(0.1, 0.5))
    colors += [np.zeros(3)] * (4 - len(colors))
    variant = int(rng.integers(3))
    aspect = float(rng.uniform(*_DISTRACTOR_ASPECT[index]))
    return variant, aspect, np.clip(np.stack(colors), 0, 255).astype(np.uint8)


def _apply_style(painter: Painter, style: int, colors: np.ndarray, size: float) -> None:
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


def rasterize(
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
) -> Raster | None:
    """Draw one object (or distractor: negative label) into a local patch and mask, in a
    drawing style and under a lighting lookup table; None when it covers no pixel at all."""
    w, h = box_size(size, aspect)
    pad = 2 + math.ceil(0.06 * size)
    x, y = math.floor(center_x - w / 2) - pad, math.floor(bottom_y - h) - pad
    cols = math.ceil(center_x + w / 2) + pad + 1 - x
    rows = math.ceil(bottom_y) + pad + 1 - y
    painter = Painter(x, y, rows, cols, with_pixels)
    DRAWERS[label](painter, Place(center_x - w / 2, bottom_y - h, w, h, facing), colors, variant)
    if not painter.mask.any():
        return None
    _apply_style(painter, style, colors, size)
    if lut is not None and painter.patch is not None:
        cv2.LUT(painter.patch, lut, dst=painter.patch)
    return Raster(x, y, painter.mask.view(bool), painter.patch)


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
    variant, aspect, colors, _ = sample_appearance(rng, label)
    raster = rasterize(label, variant, colors, center_x, bottom_y, size, aspect, facing, True)
    if raster is None:
        return None
    composite(image, raster)
    clipped = clip_to_frame(raster, *image.shape[:2])
    return None if clipped is None else np.array(clipped[0], np.float32)
