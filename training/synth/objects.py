"""The objects of a sequence: how many, which classes, sizes, places and motion (with the
unannotated distractors of randomised looks), and the ground-truth ignore policy."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from training.synth.appearance import sample_appearance, sample_distractor, sample_random_appearance
from training.synth.icons import CLASS_NAMES, DISTRACTOR_KINDS, SIGN

if TYPE_CHECKING:
    from training.synth.scene import SceneConfig


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
# clipped box is shorter than MIN_BOX_SIDE on its longer side, or when nearer objects (and the
# unannotated distractors of randomised looks) cover more than MAX_OCCLUDED of its in-frame
# pixels.
MIN_BOX_SIDE = 4.0
MIN_IN_FRAME = 0.5
MAX_OCCLUDED = 0.7


_CLASS_P = np.array([0.32, 0.28, 0.13, 0.14, 0.13])
# Real-world longer side (m) and speed range (m/s): perspective links size, distance below the
# horizon and speed on screen.
_PHYSICAL_SIZE = np.array([1.75, 4.5, 1.75, 1.4, 2.4])
_SPEED = np.array([[0.0, 1.8], [0.0, 15.0], [1.5, 7.0], [0.0, 2.5], [0.0, 0.0]])
_SAME_CLASS_IN_GROUP = 0.7


# Share and real longer side (m) of each distractor kind (DISTRACTOR_KINDS).
_DISTRACTOR_P = np.array([0.25, 0.25, 0.2, 0.1, 0.2])
_DISTRACTOR_SIZE = np.array([8.0, 8.0, 1.2, 14.0, 10.0])


@dataclass(frozen=True)
class Objects:
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


def sample_objects(
    rng: np.random.Generator, config: SceneConfig, cam_height: float, lo: float, span: float
) -> list[tuple]:
    """Objects of a world span, in groups stratified along it, with sizes by tier (one row of
    Objects fields per object)."""
    appearance = sample_random_appearance if config.randomize else sample_appearance
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


def objects_from_rows(rows: list[tuple]) -> Objects:
    """Column arrays of per-object rows (label, variant, aspect, colours, style, x, ...)."""
    columns = list(zip(*rows, strict=True)) if rows else [[]] * 15
    return Objects(
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


def sample_distractors(
    rng: np.random.Generator,
    density: float,
    cam_height: float,
    lo: float,
    span: float,
    config: SceneConfig,
) -> list[tuple]:
    """Static, unannotated distractors spread over the world, `density` per frame width (rows
    as sample_objects)."""
    s = config.scale
    count = rng.poisson(density * span / config.width)
    rows = []
    for _ in range(count):
        kind = int(rng.choice(DISTRACTOR_KINDS, p=_DISTRACTOR_P))
        variant, aspect, colors = sample_distractor(rng, kind)
        size = math.exp(rng.uniform(math.log(8.0), math.log(500.0))) * s
        index = DISTRACTOR_KINDS.index(kind)
        drop = size * cam_height / _DISTRACTOR_SIZE[index] * rng.uniform(0.9, 1.1)
        x = lo + rng.random() * span
        rows.append((kind, variant, aspect, colors, 0, x, drop, size, *[0.0] * 7))
    return rows


def ignored(boxes: np.ndarray, crops: list[np.ndarray], totals: list[int]) -> np.ndarray:
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


def zigzag(laps: np.ndarray) -> np.ndarray:
    """Map lap counts 0, -1, 1, -2, ... to 0, 1, 2, 3, ... (distinct non-negative ints)."""
    return np.where(laps >= 0, 2 * laps, -2 * laps - 1)
