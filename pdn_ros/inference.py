"""Frames of one or more cameras through the model: conversion, state policy, one batched
model call, results copied out of the backend's buffers. No ROS publishing here.

A `FrameProcessor` owns the image buffer [B,3,H,W] (allocated once; every frame is converted
straight into its row) and the cameras' states. With a model of batch 1, each camera has its
own processor and worker, and the processors share the backend under a lock; with a model
batch equal to the number of cameras, one processor runs the frames that are ready together
as one batch (a camera without a frame leaves its row unused).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np

from pdn_ros.backends import Backend
from pdn_ros.image_convert import BadFrame, message_into
from pdn_ros.messages import ModelResult, stamp_ns
from pdn_ros.params import Settings
from pdn_ros.temporal import CameraState, FrameMark


class Arrival(NamedTuple):
    """A message as the callback put it into the slot: `received` is `time.perf_counter()`
    then, `transport_s` the time from the image stamp to the callback."""

    msg: Any
    received: float
    transport_s: float


@dataclass
class SkippedFrame:
    """A frame that could not go to the model, and why."""

    camera: int
    header: Any
    error: BadFrame


class FrameProcessor:
    """Runs batches of frames for the cameras of its rows (row i is camera `cameras[i]`)."""

    def __init__(
        self,
        backend: Backend,
        lock: threading.Lock,
        cameras: Sequence[int],
        states: Sequence[CameraState],
    ) -> None:
        info = backend.info
        if len(cameras) != info.batch or len(states) != info.batch:
            raise ValueError(f"a processor needs one camera per batch row ({info.batch})")
        self.backend = backend
        self.lock = lock
        self.cameras = list(cameras)
        self.states = list(states)
        shapes = info.input_shapes
        self.image = np.zeros(shapes["image"], np.uint8)
        self.state_inputs = {
            name: np.zeros(shapes[name], np.float32)
            for name in ("memory", "memory_valid", "controller_state")
        }

    def process(
        self, frames: Sequence[tuple[int, Arrival]], settings: Settings
    ) -> list[ModelResult | SkippedFrame]:
        """Convert each (row, arrival), reset states as the policy says, run the model once
        for the good frames and return one result or skip per frame."""
        outcomes: list[ModelResult | SkippedFrame] = []
        ready: list[tuple[int, Any, str | None, dict[str, float]]] = []
        height, width = self.image.shape[2:]
        for row, (msg, received, transport_s) in frames:
            state = self.states[row]
            stamp = stamp_ns(msg.header)
            taken = time.perf_counter()
            try:
                message_into(msg, self.image[row])
            except BadFrame as err:
                if err.size is not None:
                    state.skip(FrameMark(stamp, *err.size))
                outcomes.append(SkippedFrame(self.cameras[row], msg.header, err))
                continue
            timings = {
                "transport": transport_s,
                "wait": taken - received,
                "convert": time.perf_counter() - taken,
            }
            reason = state.begin(FrameMark(stamp, width, height), settings.reset_gap_ns)
            for name, array in state.stream.inputs().items():
                self.state_inputs[name][row] = array[0]
            ready.append((row, msg, reason, timings))
        if not ready:
            return outcomes
        with self.lock:
            start = time.perf_counter()
            out = self.backend.run(self.image, **self.state_inputs)
            inference_s = time.perf_counter() - start
            for row, msg, reason, timings in ready:
                rows = {name: array[row : row + 1] for name, array in out.items()}
                self.states[row].update(rows, settings.memory_length)
                timings["inference"] = inference_s
                outcomes.append(self._result(row, msg, rows, reason, timings, settings))
        return outcomes

    def _result(
        self,
        row: int,
        msg: Any,
        out: dict[str, np.ndarray],
        reason: str | None,
        timings: dict[str, float],
        settings: Settings,
    ) -> ModelResult:
        """Copy one row's detections (score >= threshold, best first, at most the maximum)
        and patches out of the backend's buffers."""
        scores = out["scores"][0]
        keep = np.flatnonzero(scores >= max(settings.score_threshold, 1e-6))
        keep = keep[np.argsort(-scores[keep], kind="stable")][: settings.max_detections]
        return ModelResult(
            camera=self.cameras[row],
            header=msg.header,
            width=self.image.shape[3],
            height=self.image.shape[2],
            boxes=out["boxes"][0][keep].copy(),
            scores=scores[keep].copy(),
            labels=out["labels"][0][keep].astype(np.int64),
            patch_boxes=out["patch_boxes"][0].copy(),
            patch_scores=out["patch_scores"][0].copy(),
            patch_scale=out["patch_scale"][0].astype(np.int64),
            timings=timings,
            reset=reason,
        )
