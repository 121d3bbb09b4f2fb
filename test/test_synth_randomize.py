"""Domain-randomised synthetic scenes (SceneConfig(randomize=True), pdn-synth --randomize)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from training.synth import (
    BANDS,
    CLASS_NAMES,
    MAX_OCCLUDED,
    MIN_BOX_SIDE,
    SceneConfig,
    SceneSequence,
)
from training.synth.appearance import RANDOM_VARIANTS, STYLES, rasterize
from training.synth.icons import DISTRACTOR_KINDS
from training.synth.randomize import BLURS, GAUSSIAN, MOTION, NO_BLUR, SOFT, jpeg_round_trip
from training.synth_cli import main

RANDOM = SceneConfig(height=270, width=480, frames=3, randomize=True)
# Seeds whose looks together use every horizon band (checked below), horizons 15 to 74 %.
SEEDS = (0, 1, 3, 5, 8, 21, 29)


def _in_frame_truth(sequence: SceneSequence, t: int) -> None:
    """Check one randomised frame against the masks that drew it (see the test below)."""
    frame = sequence.render(t, degrade=False)
    changed = np.any(frame.image != sequence.background(t, degrade=False), axis=2)
    layers = sequence.layers(t)
    objects = [(k, box, mask) for k, (label, box, mask) in enumerate(layers) if label >= 0]
    assert [layers[k][0] for k, _, _ in objects] == frame.labels.tolist()
    visible = np.zeros_like(changed)
    for (k, box, mask), truth_box, ignore in zip(objects, frame.boxes, frame.ignore, strict=True):
        np.testing.assert_array_equal(box, truth_box)
        # Tight: the object's own mask reaches all four edges of its box.
        assert mask[0].any() and mask[-1].any() and mask[:, 0].any() and mask[:, -1].any()
        x1, y1, x2, y2 = box
        visible[y1:y2, x1:x2] |= mask
        # Occlusion policy: nearer objects and distractors (later layers) hide it.
        covered = np.zeros_like(mask)
        for _, (jx1, jy1, jx2, jy2), other in layers[k + 1 :]:
            ix1, iy1, ix2, iy2 = max(x1, jx1), max(y1, jy1), min(x2, jx2), min(y2, jy2)
            if ix1 < ix2 and iy1 < iy2:
                covered[iy1 - y1 : iy2 - y1, ix1 - x1 : ix2 - x1] |= other[
                    iy1 - jy1 : iy2 - jy1, ix1 - jx1 : ix2 - jx1
                ]
        hidden = np.count_nonzero(covered & mask) > MAX_OCCLUDED * np.count_nonzero(mask)
        small = max(x2 - x1, y2 - y1) < MIN_BOX_SIDE
        if hidden or small:
            assert ignore
    # Every pixel the objects change belongs to an annotated object's mask.
    assert not (changed & ~visible).any()


def test_randomised_truth_is_exactly_what_is_drawn() -> None:
    """For looks covering every horizon band: each annotated box is the tight box of its
    object's mask, the objects change no pixel outside their masks, objects hidden by nearer
    objects or distractors are ignored, and distractors are drawn but never annotated."""
    bands, distractors = set(), 0
    for seed in SEEDS:
        sequence = SceneSequence(seed, RANDOM)
        assert sequence.look is not None
        bands.add(sequence.look.band)
        for t in (0, 2):
            _in_frame_truth(sequence, t)
            distractors += sum(label < 0 for label, _, _ in sequence.layers(t))
    assert bands == set(range(len(BANDS)))
    assert distractors > 20


@pytest.mark.parametrize("label", [*range(len(CLASS_NAMES)), *DISTRACTOR_KINDS])
def test_every_variant_and_style_paints_exactly_its_mask(label: int) -> None:
    """Each drawing variant of each class and distractor, in each style, paints its patch
    exactly where its mask is set: no black (unpainted) pixel inside the mask, no painted
    pixel outside it. Part colours are never black, so black means unpainted."""
    rng = np.random.default_rng(abs(label))
    variants = len(RANDOM_VARIANTS[label]) if label >= 0 else 3
    for variant in range(variants):
        for style in range(len(STYLES)):
            for size, facing in ((9.5, 1), (57.3, -1), (170.0, 1)):
                colors = rng.integers(60, 256, (4, 3), dtype=np.uint8)
                x, y = rng.uniform(20.0, 21.0, 2)
                raster = rasterize(label, variant, colors, x, y, size, 1.0, facing, True, style)
                assert raster is not None and raster.patch is not None
                painted = raster.patch.any(axis=2)
                np.testing.assert_array_equal(painted, raster.mask)


def test_looks_vary_and_repeat_per_seed() -> None:
    """Looks spread over horizon heights, tilts, blur kinds and JPEG qualities; a seed always
    gives the same frames, blur and JPEG included; degradation changes the pixels."""
    looks = [SceneSequence(seed, RANDOM).look for seed in range(24)]
    horizons = [look.horizon for look in looks]
    assert min(horizons) < 0.3 and max(horizons) > 0.6
    assert all(0.15 <= h <= 0.75 for h in horizons)
    assert max(abs(look.slope) for look in looks) > 0.03
    assert {look.blur for look in looks} == set(range(len(BLURS)))
    qualities = [look.jpeg for look in looks]
    assert all(50 <= q <= 95 for q in qualities) and min(qualities) < 65 < 85 < max(qualities)
    assert len({look.lut.tobytes() for look in looks}) == len(looks)
    a, b = SceneSequence(3, RANDOM), SceneSequence(3, RANDOM)
    np.testing.assert_array_equal(a.render(1).image, b.render(1).image)
    assert not np.array_equal(a.render(1).image, a.render(1, degrade=False).image)
    assert not np.array_equal(a.render(1).image, SceneSequence(4, RANDOM).render(1).image)
    assert SceneSequence(3, SceneConfig(height=270, width=480, frames=3)).look is None


def test_degradation_blurs_and_compresses() -> None:
    """Without blur a degraded frame is exactly the clean frame after a JPEG round trip at the
    look's quality; each blur kind makes it smoother than that. Tall frames with few objects:
    blur sizes are defined at 2160 rows."""
    config = SceneConfig(height=2160, width=256, frames=2, objects=(0, 3), randomize=True)
    seeds = {NO_BLUR: 4, GAUSSIAN: 0, MOTION: 1, SOFT: 14}  # blur strong enough to show

    def roughness(image: np.ndarray) -> float:
        return float(np.abs(np.diff(image.astype(np.int16), axis=1)).mean())

    for kind, seed in seeds.items():
        sequence = SceneSequence(seed, config)
        assert sequence.look.blur == kind
        clean = sequence.render(1, degrade=False).image
        degraded = sequence.render(1).image
        compressed = jpeg_round_trip(clean, sequence.look.jpeg)
        if kind == NO_BLUR:
            np.testing.assert_array_equal(degraded, compressed)
        else:
            assert roughness(degraded) < 0.9 * roughness(compressed), BLURS[kind]


def test_distractors_alone_give_no_annotations() -> None:
    """With no objects at all a randomised scene still draws distractors, and annotates
    nothing."""
    config = SceneConfig(height=270, width=480, frames=2, objects=(0, 0), randomize=True)
    drawn = 0
    for seed in range(4):
        sequence = SceneSequence(seed, config)
        frame = sequence.render(1)
        assert len(frame.boxes) == len(frame.labels) == 0
        drawn += sum(np.count_nonzero(mask) for _, _, mask in sequence.layers(1))
    assert drawn > 1000


def test_randomize_is_checked() -> None:
    with pytest.raises(ValueError, match="randomize"):
        SceneConfig(randomize="yes")  # type: ignore[arg-type]


def test_cli_randomize(tmp_path: Path) -> None:
    """pdn-synth --randomize records the flag and writes other pixels than the fixed look."""
    common = ["--frames", "1", "--height", "270", "--width", "480", "--seed", "2"]
    assert main(["--out", str(tmp_path / "fixed"), *common]) == 0
    assert main(["--out", str(tmp_path / "random"), "--randomize", *common]) == 0
    info = json.loads((tmp_path / "random" / "annotations.json").read_text())["info"]
    assert info["config"]["randomize"] is True
    fixed = sorted((tmp_path / "fixed" / "images").glob("*.jpg"))
    random = sorted((tmp_path / "random" / "images").glob("*.jpg"))
    assert len(fixed) == len(random) == 1
    assert fixed[0].read_bytes() != random[0].read_bytes()
