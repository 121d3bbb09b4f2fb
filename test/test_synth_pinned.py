"""The fixed look (SceneConfig without randomize) renders exactly what it rendered before the
generator was split into a package and domain randomisation was added, so that datasets and
results made earlier stay comparable. The hashes were recorded from training/synth.py at
commit d830512."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from training.synth import SceneConfig, SceneSequence


def _digests(sequence: SceneSequence) -> tuple[str, str]:
    """sha256 of every frame's pixels, and of its boxes, labels, track ids and ignore flags."""
    pixels, truth = hashlib.sha256(), hashlib.sha256()
    for frame in sequence:
        pixels.update(frame.image.tobytes())
        for values in (frame.boxes, frame.labels, frame.track_ids, frame.ignore):
            truth.update(np.ascontiguousarray(values).tobytes())
    return pixels.hexdigest(), truth.hexdigest()


@pytest.mark.parametrize(
    ("seed", "config", "pixels", "truth"),
    [
        (
            5,
            SceneConfig(height=360, width=640, frames=3),
            "ad6efb4913563ab988503f56134e7b7cfe0326ff82519f06c0ab75f3fbf05b9a",
            "05308c255314aec917fcdf370d12c86b4d5c483115d7ac7e37c290543178f921",
        ),
        (
            2,
            SceneConfig(frames=1),  # 3840 x 2160
            "f630bc002c44a499c175aff6ebfdb5f9fa8792b72be22c17eca4f9b7becea39f",
            "744b8b6bd909d66caecd730f9b497f42fb3d41ab6026989bbeec155c4e0d6ccb",
        ),
    ],
)
def test_fixed_look_output_is_unchanged(
    seed: int, config: SceneConfig, pixels: str, truth: str
) -> None:
    assert _digests(SceneSequence(seed, config)) == (pixels, truth)


def test_fixed_look_truth_is_unchanged_at_4k() -> None:
    """Ground truth only (no pixels, fast) of six 4K sequences, four frames each: pins the
    layout, motion, tight boxes and ignore flags of many objects."""
    digest = hashlib.sha256()
    for seed in range(6):
        sequence = SceneSequence(seed, SceneConfig(frames=4))
        for t in range(4):
            truth = sequence.truth(t)
            for values in (truth.boxes, truth.labels, truth.track_ids, truth.ignore):
                digest.update(np.ascontiguousarray(values).tobytes())
    assert digest.hexdigest() == "0220ce61e1e69e42767a1f0cf675c8153a83325727b975341349487d2e56de42"
