"""Procedural high-resolution scenes for training and evaluating PatchDriveNet.

A sequence is a wide world (sky with clouds, hills, perspective-textured ground, clutter and
moving objects) seen through a camera that pans smoothly across it. Every object is drawn
into its own coverage mask with exactly the same calls as its pixels, so the ground truth is
the tight box of what was drawn. numpy + OpenCV only (no torch); every frame is a pure
function of (seed, config, frame index). With SceneConfig(randomize=True) each sequence draws
its own look (domain randomisation; see docs/synthetic_data.md).

Pixel sizes are defined for a 2160-row frame and scale with height / 2160, so a 1080p scene
looks like a downsampled 4K one. Boxes are xyxy in pixel-edge coordinates: [x1, y1, x2, y2]
covers columns x1 .. x2-1 and rows y1 .. y2-1.

Modules, one job each: drawing (pixel-exact shapes and masks), icons (class and distractor
shapes), appearance (palettes, variants, styles, rasterizing), background (the world),
objects (sampling, motion, ignore policy), randomize (a sequence's look, camera degradation),
scene (configuration, frames, SceneSequence); and two commands, timing and contact_sheet
(python -m training.synth.timing, python -m training.synth.contact_sheet).
"""

from training.synth.appearance import draw_object
from training.synth.background import BANDS
from training.synth.icons import ANIMAL, BICYCLE, CLASS_NAMES, PERSON, SIGN, VEHICLE
from training.synth.objects import (
    MAX_OCCLUDED,
    MIN_BOX_SIDE,
    MIN_IN_FRAME,
    SIZE_TIERS,
    TIER_SHARES,
)
from training.synth.scene import (
    MIN_FRAME_SIDE,
    REFERENCE_HEIGHT,
    Frame,
    FrameTruth,
    SceneConfig,
    SceneSequence,
    generate_sequence,
)

__all__ = [
    "ANIMAL",
    "BANDS",
    "BICYCLE",
    "CLASS_NAMES",
    "MAX_OCCLUDED",
    "MIN_BOX_SIDE",
    "MIN_FRAME_SIDE",
    "MIN_IN_FRAME",
    "PERSON",
    "REFERENCE_HEIGHT",
    "SIGN",
    "SIZE_TIERS",
    "TIER_SHARES",
    "VEHICLE",
    "Frame",
    "FrameTruth",
    "SceneConfig",
    "SceneSequence",
    "draw_object",
    "generate_sequence",
]
