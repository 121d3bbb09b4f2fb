"""The recurrent state of one camera stream, carried from frame to frame in NumPy.

The same rules as `pdn_model.temporal.push_frame`, without torch: after each frame the
frame tokens become memory slot 0 and the oldest slot drops out, and the controller state
becomes `next_controller_state`. The arrays are allocated once and updated in place, so a
backend can bind them as inputs without a copy.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from pdn_ros.backends.base import ModelInfo


class StreamState:
    """memory [B,T,M,C], memory_valid [B,T] and controller_state [B,S] of one stream."""

    def __init__(self, info: ModelInfo):
        shapes = info.input_shapes
        self.memory = np.zeros(shapes["memory"], np.float32)
        self.memory_valid = np.zeros(shapes["memory_valid"], np.float32)
        self.controller_state = np.zeros(shapes["controller_state"], np.float32)

    def inputs(self) -> dict[str, np.ndarray]:
        """The state as keyword arguments of `Backend.run` (besides `image`)."""
        return {
            "memory": self.memory,
            "memory_valid": self.memory_valid,
            "controller_state": self.controller_state,
        }

    def update(self, outputs: Mapping[str, np.ndarray]) -> None:
        """Take in one frame's outputs: push `frame_tokens`, keep `next_controller_state`.

        Copies the values, so the backend may overwrite its output buffers afterwards.
        """
        for slot in range(self.memory.shape[1] - 1, 0, -1):
            self.memory[:, slot] = self.memory[:, slot - 1]
            self.memory_valid[:, slot] = self.memory_valid[:, slot - 1]
        self.memory[:, 0] = outputs["frame_tokens"]
        self.memory_valid[:, 0] = 1.0
        self.controller_state[...] = outputs["next_controller_state"]

    def reset(self) -> None:
        """Forget every earlier frame (new resolution, time jump, long gap)."""
        for array in (self.memory, self.memory_valid, self.controller_state):
            array.fill(0.0)
