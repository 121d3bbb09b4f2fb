"""Which model, and which worker, take a camera's frames.

The node may hold several models, one per input size (`model_path` lists them; `pdn-export
--sizes` writes such a set from one checkpoint). A camera is bound on its first frame that a
model takes: to the model whose input size is the frame's width x height, and to a batch row
of one of that model's lanes. A lane is one model's batch rows run by one worker thread: with
a batch-1 model every camera has a lane of its own, with a batch-B model up to B cameras of
that size share a lane and run as one batch (a further camera opens another lane). A frame of
a size no model takes is a bad frame of kind "resolution" whose message names the sizes the
models take; the camera stays unbound until a frame of such a size arrives.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from pdn_ros.frame_processor import Arrival, FrameProcessor
from pdn_ros.image_convert import BadFrame, frame_size
from pdn_ros.messages import stamp_ns
from pdn_ros.slots import FrameSlots, Worker
from pdn_runtime import Backend, FrameMark, ModelInfo, Stream


def model_paths(text: str) -> list[str]:
    """'a.onnx, b.onnx' -> ['a.onnx', 'b.onnx'] (the parameter model_path)."""
    return [path.strip() for path in text.split(",") if path.strip()]


@dataclass(frozen=True)
class LoadedModel:
    """A model file and its backend."""

    path: str
    backend: Backend

    @property
    def size(self) -> tuple[int, int]:
        """The frame size it takes, (width, height)."""
        return self.backend.info.width, self.backend.info.height

    def describe(self) -> str:
        """'WxH batch B (path)', for logs and errors."""
        width, height = self.size
        return f"{width}x{height} batch {self.backend.info.batch} ({self.path})"


class ModelSet:
    """The node's models, one per input size, checked to form one set for `cameras` cameras:
    sizes differ, classes and temporal state agree (so a camera's stream and the class
    filter fit whichever model it gets), and each batch fits the cameras."""

    def __init__(self, models: Sequence[LoadedModel], cameras: int) -> None:
        if not models:
            raise ValueError("no model given")
        self.models = list(models)
        first = self.models[0]
        by_size: dict[tuple[int, int], LoadedModel] = {}
        for model in self.models:
            if model.size in by_size:
                raise ValueError(
                    f"models {by_size[model.size].path} and {model.path} both take "
                    f"{model.size[0]}x{model.size[1]} frames: give one model per frame size"
                )
            by_size[model.size] = model
            if _shared(model.backend.info) != _shared(first.backend.info):
                raise ValueError(
                    f"models {first.path} and {model.path} differ in classes or temporal "
                    "state: the models of one node must come from one checkpoint "
                    "(pdn-export --checkpoint C --sizes ...)"
                )
            reason = batch_problem(model, cameras, len(self.models))
            if reason is not None:
                raise ValueError(reason)
        self._by_size = by_size

    @property
    def info(self) -> ModelInfo:
        """The first model's info: classes and state shapes are the same in all of them."""
        return self.models[0].backend.info

    def describe(self) -> str:
        """Every model's size, batch and file."""
        return ", ".join(model.describe() for model in self.models)

    def pick(self, width: int, height: int) -> LoadedModel:
        """The model for width x height frames, or BadFrame("resolution") saying which sizes
        the models take and how to get one for this size."""
        model = self._by_size.get((width, height))
        if model is None:
            raise BadFrame(
                "resolution",
                f"image is {width}x{height} but no model takes that size (models: "
                f"{self.describe()}): export one from the same checkpoint "
                f"(pdn-export --sizes {width}x{height}) and add it to model_path",
                size=(width, height),
            )
        return model


def _shared(info: ModelInfo) -> tuple[object, ...]:
    """What every model of one node must have in common: classes and state shapes."""
    return info.class_names, info.memory_shape, info.controller_dim


def batch_problem(model: LoadedModel, cameras: int, models: int) -> str | None:
    """Why `model`'s batch does not fit `cameras` cameras, or None. With one model, every
    camera uses it: batch 1 (a worker per camera) or all cameras together. With several,
    a batch up to the number of cameras (those of its size run together)."""
    batch = model.backend.info.batch
    if models == 1 and batch not in (1, cameras):
        return (
            f"the model takes batch {batch} but the node has {cameras} cameras: export it "
            f"with --batch {cameras} (cameras run together) or --batch 1"
        )
    if batch > cameras:
        return (
            f"model {model.path} takes batch {batch} but the node has {cameras} cameras: "
            "export it with --batch 1 or the number of cameras of its size"
        )
    return None


class Lane:
    """One model's batch rows, run by one worker thread; cameras take rows when bound."""

    def __init__(self, model: LoadedModel, lock: threading.Lock, name: str) -> None:
        self.model = model
        self.name = name
        self.processor = FrameProcessor(model.backend, lock)
        self.slots: FrameSlots[Arrival] = FrameSlots(model.backend.info.batch)
        self.worker: Worker[Arrival] | None = None

    def start(
        self,
        handle: Callable[[FrameProcessor, list[tuple[int, Arrival]]], None],
        on_error: Callable[[str], None],
        wait_all_s: float,
    ) -> None:
        """Start a worker on fresh slots: it hands each batch of frames to `handle`."""
        self.slots = FrameSlots(self.model.backend.info.batch)
        self.worker = Worker(
            self.name,
            self.slots,
            lambda frames: handle(self.processor, frames),
            on_error,
            wait_all_s,
        )
        self.worker.start()

    def stop(self) -> None:
        """Stop the worker (it finishes its frame); the rows stay bound."""
        if self.worker is not None:
            self.worker.stop()
            self.worker = None

    def put(self, row: int, arrival: Arrival) -> bool:
        """Put a frame into its row's newest-frame slot; True when it replaced one (a drop)."""
        return self.slots.put(row, arrival)


class Router:
    """Binds each camera to a model and a lane row on its first frame a model takes, and
    finds that row for its later frames. `start` is called with each new lane (the node
    starts its worker)."""

    def __init__(
        self,
        models: ModelSet,
        streams: Sequence[Stream],
        start: Callable[[Lane], None],
    ) -> None:
        self.models = models
        self.streams = streams
        self.lanes: list[Lane] = []
        self._start = start
        self._routes: dict[int, tuple[Lane, int]] = {}
        self._backend_lock = threading.Lock()  # one model call at a time
        self._binding = threading.Lock()

    def route(self, camera: int, msg: Any) -> tuple[Lane, int]:
        """The lane and row of camera index `camera`, bound now if this is its first frame
        that a model takes; BadFrame when the frame's size cannot be read or no model takes
        it (the camera's stream then remembers that size, as for any frame of another size)."""
        route = self._routes.get(camera)
        if route is not None:
            return route
        with self._binding:
            try:
                model = self.models.pick(*frame_size(msg))
            except BadFrame as err:
                if err.size is not None:
                    self.streams[camera].skip(FrameMark(stamp_ns(msg.header), *err.size))
                raise
            lane = next(
                (
                    lane
                    for lane in self.lanes
                    if lane.model is model
                    and len(lane.processor.cameras) < model.backend.info.batch
                ),
                None,
            )
            if lane is None:
                width, height = model.size
                lane = Lane(model, self._backend_lock, f"pdn-{width}x{height}-{len(self.lanes)}")
                self.lanes.append(lane)
                self._start(lane)
            row = lane.processor.bind(camera, self.streams[camera])
            self._routes[camera] = (lane, row)
            return lane, row

    def model_of(self, camera: int) -> LoadedModel | None:
        """The model camera index `camera` is bound to (None before its first such frame)."""
        route = self._routes.get(camera)
        return None if route is None else route[0].model

    def stop(self) -> None:
        """Stop every lane's worker; bindings and temporal state stay."""
        for lane in self.lanes:
            lane.stop()
