"""The one per-stream loop: a camera's (or a video's) frames through a backend in order, with
the model's temporal state carried from frame to frame and reset when the stream breaks.

The model carries memory and a controller state from frame to frame (`StreamState`). They
describe one continuous view of the world, so they reset when the stream is not continuous:
a new resolution, time going backwards (a bag restarted, a clock reset) or a gap longer than
`StreamPolicy.reset_gap_ns` (a camera that stalled, a node that was paused); callers without
stamps (a dataset's videos) start a new stream explicitly.

`StreamRunner` runs one model call for up to `batch` streams (one per batch row) and returns
each frame's `FrameDetections`: the detections above the threshold, best first, and the
selected patches, copied out of the backend's reused buffers. `pdn_node`, `pdn-bag-eval`,
`pdn-eval` and the benchmarks all run frames through it.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from pdn_runtime.interface import STATE_NAMES, Backend, ModelInfo

RESET_REASONS: tuple[str, ...] = ("resolution", "time_backwards", "gap")
# Scores below this are the model's padding and suppressed slots (exactly 0), never detections.
MIN_SCORE = 1e-6


class FrameMark(NamedTuple):
    """What the reset policy needs to know about a frame: its stamp and size."""

    stamp_ns: int
    width: int
    height: int


@dataclass(frozen=True)
class StreamPolicy:
    """How frames of a stream are handled: when the state resets, how much memory the model
    may use, which detections are kept."""

    reset_gap_ns: int = 1_000_000_000
    memory_length: int = -1  # earlier frames kept in memory (-1: all the model's slots)
    score_threshold: float = 0.0
    max_detections: int | None = None  # None: as many as the model returns


@dataclass(frozen=True)
class FrameDetections:
    """What the model found in one frame of one stream (arrays are copies)."""

    boxes: np.ndarray  # [n, 4] float32 xyxy, full-resolution pixel edges
    scores: np.ndarray  # [n] float32, best first
    labels: np.ndarray  # [n] int64 class index into ModelInfo.class_names
    patch_boxes: np.ndarray  # [P, 4] float32 xyxy, in selection order
    patch_scores: np.ndarray  # [P] float32 sigmoid priority
    patch_scale: np.ndarray  # [P] int64 scale index
    width: int
    height: int
    reset: str | None  # which of RESET_REASONS reset the state before this frame, if any
    inference_s: float  # the model call (shared by the frames of one batch)

    def subset(self, keep: np.ndarray) -> FrameDetections:
        """The same frame with only the detections `keep` (indices or a boolean mask)."""
        return dataclasses.replace(
            self, boxes=self.boxes[keep], scores=self.scores[keep], labels=self.labels[keep]
        )


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


class StreamState:
    """memory [B,T,M,C], memory_valid [B,T] and controller_state [B,S] of one stream.

    The same rules as `pdn_model.temporal.push_frame`, without torch: after each frame the
    frame tokens become memory slot 0 and the oldest slot drops out, and the controller state
    becomes `next_controller_state`. The arrays are allocated once and updated in place.
    """

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
        """Forget every earlier frame (new resolution, time jump, long gap, new video)."""
        for array in (self.memory, self.memory_valid, self.controller_state):
            array.fill(0.0)


class Stream:
    """One stream's model state (batch 1) and the mark of its last processed frame."""

    def __init__(self, info: ModelInfo) -> None:
        self.memory_slots = info.memory_shape[0]
        self.state = StreamState(dataclasses.replace(info, batch=1))
        self.last: FrameMark | None = None

    def begin(self, mark: FrameMark | None, reset_gap_ns: int) -> str | None:
        """Reset the state if the policy says so before the frame `mark` (None: a frame
        without stamp, which continues the stream); returns the reason."""
        if mark is None:
            return None
        reason = reset_reason(self.last, mark, reset_gap_ns)
        if reason is not None:
            self.state.reset()
        self.last = mark
        return reason

    def restart(self) -> None:
        """Start a new stream (a new video): forget the state and the last frame."""
        self.state.reset()
        self.last = None

    def skip(self, mark: FrameMark) -> None:
        """Remember a frame the model could not take (another resolution), so that the next
        frame of the model's size counts as a resolution change."""
        self.last = mark

    def push(self, outputs: Mapping[str, np.ndarray], memory_length: int) -> None:
        """Take in this stream's outputs (batch 1), keeping at most `memory_length` earlier
        frames in memory (-1: all the model's slots, 0: none)."""
        self.state.update(outputs)
        if 0 <= memory_length < self.memory_slots:
            self.state.memory_valid[:, memory_length:] = 0.0


def select_detections(
    scores: np.ndarray, score_threshold: float, max_detections: int | None
) -> np.ndarray:
    """Indices of one frame's detections with score >= the threshold (and above the padding),
    best first (ties in model order), at most `max_detections`."""
    keep = np.flatnonzero(scores >= max(score_threshold, MIN_SCORE))
    return keep[np.argsort(-scores[keep], kind="stable")][:max_detections]


class StreamRunner:
    """Runs a backend for its batch rows, row i being stream `streams[i]`.

    `image` is the model's input buffer [B,3,H,W] (allocated once): callers convert frames
    straight into its rows, or pass their own array to `step` / `run`.
    """

    def __init__(self, backend: Backend, streams: Sequence[Stream] | None = None) -> None:
        info = backend.info
        streams = [Stream(info) for _ in range(info.batch)] if streams is None else streams
        if len(streams) != info.batch:
            raise ValueError(f"a runner needs one stream per batch row ({info.batch})")
        self.backend = backend
        self.streams = list(streams)
        self._reasons: list[str | None] = [None] * info.batch
        shapes = info.input_shapes
        self.image = np.zeros(shapes["image"], np.uint8)
        self._state_inputs = {name: np.zeros(shapes[name], np.float32) for name in STATE_NAMES}

    def begin(self, row: int, mark: FrameMark | None, policy: StreamPolicy) -> str | None:
        """Apply the reset policy to row `row`'s stream before its frame `mark`."""
        self._reasons[row] = self.streams[row].begin(mark, policy.reset_gap_ns)
        return self._reasons[row]

    def run(
        self, rows: Sequence[int], policy: StreamPolicy, image: np.ndarray | None = None
    ) -> list[FrameDetections]:
        """One model call for the frames in `rows` of `image` (default: the runner's buffer;
        other rows are run but ignored); pushes each stream's state, returns its detections."""
        for row in rows:
            for name, array in self.streams[row].state.inputs().items():
                self._state_inputs[name][row] = array[0]
        start = time.perf_counter()
        out = self.backend.run(self.image if image is None else image, **self._state_inputs)
        inference_s = time.perf_counter() - start
        results = []
        for row in rows:
            one = {name: array[row : row + 1] for name, array in out.items()}
            self.streams[row].push(one, policy.memory_length)
            results.append(self._detections(one, self._reasons[row], inference_s, policy))
            self._reasons[row] = None
        return results

    def step(
        self,
        image: np.ndarray | None = None,
        policy: StreamPolicy = StreamPolicy(),
        mark: FrameMark | None = None,
        new_stream: bool = False,
    ) -> FrameDetections:
        """One frame of a batch-1 model's stream: `image` uint8 [1,3,H,W] planar RGB (None:
        already in `self.image`), the state reset first when `new_stream` or the policy say so."""
        if new_stream:
            self.streams[0].restart()
        self.begin(0, mark, policy)
        return self.run([0], policy, image)[0]

    def _detections(
        self,
        out: Mapping[str, np.ndarray],
        reason: str | None,
        inference_s: float,
        policy: StreamPolicy,
    ) -> FrameDetections:
        """Copy one row's (batch-1 view `out`) selected detections and patches."""
        scores = out["scores"][0]
        keep = select_detections(scores, policy.score_threshold, policy.max_detections)
        return FrameDetections(
            boxes=out["boxes"][0][keep].copy(),
            scores=scores[keep].copy(),
            labels=out["labels"][0][keep].astype(np.int64),
            patch_boxes=out["patch_boxes"][0].copy(),
            patch_scores=out["patch_scores"][0].copy(),
            patch_scale=out["patch_scale"][0].astype(np.int64),
            width=self.image.shape[3],
            height=self.image.shape[2],
            reset=reason,
            inference_s=inference_s,
        )
