"""When a camera's temporal memory must be forgotten, and the per-camera state that obeys it.

The model carries memory and a controller state from frame to frame (`StreamState`). They
describe one continuous view of the world, so they reset when the stream is not continuous:
a new resolution, time going backwards (a bag restarted, a clock reset) or a gap longer than
the `reset_gap_s` parameter (a camera that stalled, a node that was paused).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import NamedTuple

import numpy as np

from pdn_ros.backends import ModelInfo, StreamState

RESET_REASONS: tuple[str, ...] = ("resolution", "time_backwards", "gap")


class FrameMark(NamedTuple):
    """What the reset policy needs to know about a frame: its stamp and size."""

    stamp_ns: int
    width: int
    height: int


def reset_reason(previous: FrameMark | None, current: FrameMark, reset_gap_ns: int) -> str | None:
    """Which of RESET_REASONS applies between the last processed frame and this one, if any
    (None also for a stream's first frame, whose state is empty anyway)."""
    if previous is None:
        return None
    if (current.width, current.height) != (previous.width, previous.height):
        return "resolution"
    if current.stamp_ns < previous.stamp_ns:
        return "time_backwards"
    if current.stamp_ns - previous.stamp_ns > reset_gap_ns:
        return "gap"
    return None


class CameraState:
    """One camera's model state (batch 1) and the mark of its last processed frame."""

    def __init__(self, info: ModelInfo) -> None:
        self.memory_slots = info.memory_shape[0]
        self.stream = StreamState(dataclasses.replace(info, batch=1))
        self.last: FrameMark | None = None

    def begin(self, mark: FrameMark, reset_gap_ns: int) -> str | None:
        """Reset the state if the policy says so before processing `mark`; returns the reason."""
        reason = reset_reason(self.last, mark, reset_gap_ns)
        if reason is not None:
            self.stream.reset()
        self.last = mark
        return reason

    def update(self, outputs: Mapping[str, np.ndarray], memory_length: int) -> None:
        """Take in this camera's outputs (batch 1), keeping at most `memory_length` earlier
        frames in memory (-1: all the model's slots, 0: none)."""
        self.stream.update(outputs)
        if 0 <= memory_length < self.memory_slots:
            self.stream.memory_valid[:, memory_length:] = 0.0

    def skip(self, mark: FrameMark) -> None:
        """Remember a frame the model could not take (another resolution), so that the next
        frame of the model's size counts as a resolution change."""
        self.last = mark
