"""Frames of one or more cameras through the model: each message converted straight into its
row of the model's input buffer, then the stream runner (`pdn_runtime.StreamRunner`: reset
policy, one batched model call, detections copied out). No ROS publishing here.

With a model of batch 1, each camera has its own processor and worker, and the processors
share the backend under a lock; with a model of batch B, one processor runs the frames of up
to B cameras that are ready together as one batch (a camera without a frame leaves its row
unused). Cameras get their rows when created or later, one by one (`bind`: the node binds a
camera on its first frame, `pdn_ros.routing`).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from std_msgs.msg import Header

from pdn_ros.image_convert import BadFrame, message_into
from pdn_ros.messages import stamp_ns
from pdn_ros.params import Settings
from pdn_runtime import Backend, FrameDetections, FrameMark, Stream, StreamRunner


class Arrival(NamedTuple):
    """A message as the callback put it into the slot: `received` is `time.perf_counter()`
    then, `transport_s` the time from the image stamp to the callback."""

    msg: Any
    received: float
    transport_s: float


@dataclass
class CameraResult:
    """What the model found in one camera frame, with the frame's header and its timings
    in seconds (transport, wait, convert, inference: `stats.TIMINGS`)."""

    camera: int
    header: Header
    found: FrameDetections
    timings: dict[str, float]


@dataclass
class SkippedFrame:
    """A frame that could not go to the model, and why."""

    camera: int
    header: Any
    error: BadFrame


class FrameProcessor:
    """Runs batches of frames for the cameras of its rows (row i is camera `cameras[i]`;
    rows past the bound cameras are unused)."""

    def __init__(
        self,
        backend: Backend,
        lock: threading.Lock,
        cameras: Sequence[int] = (),
        streams: Sequence[Stream] = (),
    ) -> None:
        batch = backend.info.batch
        if len(cameras) != len(streams) or len(cameras) > batch:
            raise ValueError(f"a processor takes one stream per camera, at most {batch}")
        spare = [Stream(backend.info) for _ in range(batch - len(streams))]
        self.runner = StreamRunner(backend, [*streams, *spare])
        self.lock = lock
        self.cameras = list(cameras)

    def bind(self, camera: int, stream: Stream) -> int:
        """Give the next free row to `camera`, whose temporal state is `stream`; its row."""
        row = len(self.cameras)
        if row == len(self.runner.streams):
            raise ValueError(f"all {row} rows of this processor are bound")
        self.runner.streams[row] = stream
        self.cameras.append(camera)
        return row

    def process(
        self, frames: Sequence[tuple[int, Arrival]], settings: Settings
    ) -> list[CameraResult | SkippedFrame]:
        """Convert each (row, arrival), reset states as the policy says, run the model once
        for the good frames and return one result or skip per frame."""
        runner, policy = self.runner, settings.policy
        outcomes: list[CameraResult | SkippedFrame] = []
        ready: list[tuple[int, Any, dict[str, float]]] = []
        height, width = runner.image.shape[2:]
        for row, (msg, received, transport_s) in frames:
            stamp = stamp_ns(msg.header)
            taken = time.perf_counter()
            try:
                message_into(msg, runner.image[row])
            except BadFrame as err:
                if err.size is not None:
                    runner.streams[row].skip(FrameMark(stamp, *err.size))
                outcomes.append(SkippedFrame(self.cameras[row], msg.header, err))
                continue
            timings = {
                "transport": transport_s,
                "wait": taken - received,
                "convert": time.perf_counter() - taken,
            }
            runner.begin(row, FrameMark(stamp, width, height), policy)
            ready.append((row, msg, timings))
        if not ready:
            return outcomes
        with self.lock:
            found = runner.run([row for row, _, _ in ready], policy)
        for (row, msg, timings), one in zip(ready, found, strict=True):
            timings["inference"] = one.inference_s
            outcomes.append(CameraResult(self.cameras[row], msg.header, one, timings))
        return outcomes
