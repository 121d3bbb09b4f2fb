"""Comparing the detections of two runtimes, allowing for ties in score order."""

from __future__ import annotations

import numpy as np


def assert_same_detections(
    got: dict[str, np.ndarray],
    ref: dict[str, np.ndarray],
    *,
    score_gap: float = 1e-4,
    min_score: float = 0.0,
    box_atol: float = 1e-2,
    min_clear: int = 1,
) -> int:
    """Scores close; boxes and labels equal wherever a detection's score is clear of its
    neighbours by `score_gap` (equal scores may swap places between runtimes) and above
    `min_score`. Returns how many detections were compared, at least `min_clear`."""
    np.testing.assert_allclose(got["scores"], ref["scores"], atol=score_gap)
    compared = 0
    for b in range(ref["scores"].shape[0]):
        s = ref["scores"][b]
        gap = np.minimum(np.abs(np.diff(s, prepend=2.0)), np.abs(np.diff(s, append=-1.0)))
        clear = (gap > score_gap) & (s > min_score)
        np.testing.assert_allclose(got["boxes"][b][clear], ref["boxes"][b][clear], atol=box_atol)
        np.testing.assert_array_equal(got["labels"][b][clear], ref["labels"][b][clear])
        compared += int(clear.sum())
    assert compared >= min_clear, f"only {compared} detections clear of ties"
    return compared
