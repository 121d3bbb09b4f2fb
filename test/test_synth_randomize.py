"""Domain-randomised synthetic scenes (SceneConfig(randomize=True), pdn-synth --randomize)."""

from __future__ import annotations

import numpy as np

from training.synth import SceneConfig, SceneSequence

RANDOM = SceneConfig(height=270, width=480, frames=3, randomize=True)


def test_randomised_truth_is_exactly_what_is_drawn() -> None:
    """For several looks: every annotated box is the tight box of its object's mask, every
    pixel the objects change lies in an annotated object's mask, and distractors are drawn
    but never annotated."""
    distractor_pixels = 0
    for seed in range(6):
        sequence = SceneSequence(seed, RANDOM)
        for t in (0, 2):
            frame = sequence.render(t, degrade=False)
            changed = np.any(frame.image != sequence.background(t, degrade=False), axis=2)
            layers = sequence.layers(t)
            objects = [(label, box, mask) for label, box, mask in layers if label >= 0]
            assert len(objects) == len(frame.boxes) > 0
            union = np.zeros_like(changed)
            for (label, box, mask), truth_box, truth_label in zip(
                objects, frame.boxes, frame.labels, strict=True
            ):
                assert label == truth_label
                np.testing.assert_array_equal(box, truth_box)
                assert mask[0].any() and mask[-1].any() and mask[:, 0].any() and mask[:, -1].any()
                x1, y1, x2, y2 = box
                union[y1:y2, x1:x2] |= mask
            assert not (changed & ~union).any()
            for label, _, mask in layers:
                if label < 0:
                    distractor_pixels += np.count_nonzero(mask)
    assert distractor_pixels > 0
