"""The backend interface: `ModelInfo` (what a model takes and returns, read from the model
itself), the `Backend` base class, and the input checks every backend shares.

Imports neither torch nor tensorrt.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import ClassVar

import numpy as np

from pdn_model.contract import INPUT_NAMES, OUTPUT_NAMES
from pdn_runtime.errors import FrameError, ModelContractError, StateError

INPUT_DTYPES: dict[str, np.dtype] = {
    "image": np.dtype(np.uint8),
    "memory": np.dtype(np.float32),
    "memory_valid": np.dtype(np.float32),
    "controller_state": np.dtype(np.float32),
}
OUTPUT_DTYPES: dict[str, np.dtype] = {
    name: np.dtype(np.int32 if name in ("labels", "patch_scale") else np.float32)
    for name in OUTPUT_NAMES
}
STATE_NAMES: tuple[str, ...] = ("memory", "memory_valid", "controller_state")


@dataclass(frozen=True)
class ModelInfo:
    """What a loaded model takes and returns, read from the model file (never assumed)."""

    height: int
    width: int
    batch: int
    class_names: tuple[str, ...]
    memory_shape: tuple[int, int, int]  # T slots x M tokens x C channels
    controller_dim: int
    output_shapes: Mapping[str, tuple[int, ...]]

    @classmethod
    def from_shapes(
        cls,
        input_shapes: Mapping[str, tuple[int, ...]],
        output_shapes: Mapping[str, tuple[int, ...]],
        class_names: tuple[str, ...] | list[str],
        source: str,
    ) -> ModelInfo:
        """Derive the model's geometry from its static input shapes; `source` names the model
        in errors when the shapes do not fit together as the contract requires."""
        b, channels, h, w = _dims(input_shapes, "image", 4, source)
        mb, t, m, c = _dims(input_shapes, "memory", 4, source)
        vb, vt = _dims(input_shapes, "memory_valid", 2, source)
        sb, s = _dims(input_shapes, "controller_state", 2, source)
        if channels != 3 or len({b, mb, vb, sb}) != 1 or vt != t:
            raise ModelContractError(
                f"{source}: input shapes {dict(input_shapes)} do not fit the contract "
                "(image [B,3,H,W], memory [B,T,M,C], memory_valid [B,T], controller_state [B,S])"
            )
        missing = [n for n in OUTPUT_NAMES if n not in output_shapes]
        if missing:
            raise ModelContractError(f"{source}: outputs {missing} are missing")
        return cls(
            height=h,
            width=w,
            batch=b,
            class_names=tuple(class_names),
            memory_shape=(t, m, c),
            controller_dim=s,
            output_shapes={n: tuple(output_shapes[n]) for n in OUTPUT_NAMES},
        )

    @property
    def input_shapes(self) -> dict[str, tuple[int, ...]]:
        """Static shapes of the four inputs, in contract order."""
        b = self.batch
        return {
            "image": (b, 3, self.height, self.width),
            "memory": (b, *self.memory_shape),
            "memory_valid": (b, self.memory_shape[0]),
            "controller_state": (b, self.controller_dim),
        }

    def to_dict(self) -> dict[str, object]:
        """Plain JSON types, for the engine cache's sidecar files."""
        return {
            "height": self.height,
            "width": self.width,
            "batch": self.batch,
            "class_names": list(self.class_names),
            "memory_shape": list(self.memory_shape),
            "controller_dim": self.controller_dim,
            "output_shapes": {k: list(v) for k, v in self.output_shapes.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, object]) -> ModelInfo:
        """Inverse of `to_dict`."""
        return cls(
            height=int(data["height"]),
            width=int(data["width"]),
            batch=int(data["batch"]),
            class_names=tuple(data["class_names"]),
            memory_shape=tuple(data["memory_shape"]),
            controller_dim=int(data["controller_dim"]),
            output_shapes={k: tuple(v) for k, v in data["output_shapes"].items()},
        )


def _dims(
    shapes: Mapping[str, tuple[int, ...]], name: str, rank: int, source: str
) -> tuple[int, ...]:
    """The static dims of one input, or ModelContractError naming the problem."""
    if name not in shapes:
        raise ModelContractError(f"{source}: input {name!r} is missing")
    dims = tuple(shapes[name])
    if len(dims) != rank or any(not isinstance(d, int) or d <= 0 for d in dims):
        raise ModelContractError(
            f"{source}: input {name!r} has shape {dims}; the backends need {rank} static "
            "positive dimensions (export with pdn-export, which fixes every size)"
        )
    return dims


def check_inputs(
    info: ModelInfo,
    image: object,
    memory: object,
    memory_valid: object,
    controller_state: object,
) -> dict[str, np.ndarray]:
    """The four inputs by name once they match the model, else FrameError / StateError
    saying exactly what is wrong and how the model wants it."""
    _check_image(info, image)
    expected = info.input_shapes
    arrays = {"image": image}
    for name, value in zip(STATE_NAMES, (memory, memory_valid, controller_state), strict=True):
        if not isinstance(value, np.ndarray):
            raise StateError(f"{name} must be a numpy array, got {type(value).__name__}")
        if value.dtype != INPUT_DTYPES[name]:
            raise StateError(f"{name} has dtype {value.dtype}, the model takes float32")
        if value.shape != expected[name]:
            t, m, c = info.memory_shape
            raise StateError(
                f"{name} has shape {value.shape}, the model takes {expected[name]} "
                f"(batch {info.batch}, memory of T={t} frames x M={m} tokens x C={c}, "
                f"controller state S={info.controller_dim})"
            )
        arrays[name] = value
    return {name: arrays[name] for name in INPUT_NAMES}


def _check_image(info: ModelInfo, image: object) -> None:
    """FrameError unless `image` is a uint8 [B,3,H,W] array of the model's size and batch."""
    want = info.input_shapes["image"]
    if not isinstance(image, np.ndarray):
        raise FrameError(f"image must be a numpy array, got {type(image).__name__}")
    shape = image.shape
    interleaved = (image.ndim == 3 and shape[-1] in (1, 3, 4)) or (
        image.ndim == 4 and shape[-1] == 3 and shape[1] != 3
    )
    if interleaved:
        raise FrameError(
            f"image has shape {shape}, which is height x width x channels (interleaved); "
            f"the model takes planar RGB [B,3,H,W] = {want}: pass "
            "frame.transpose(2, 0, 1)[None] for one HxWx3 frame"
        )
    if image.ndim != 4 or shape[1] != 3:
        raise FrameError(f"image has shape {shape}, the model takes [B,3,H,W] = {want}")
    if image.dtype != np.uint8:
        raise FrameError(
            f"image has dtype {image.dtype}, the model takes uint8 RGB pixels 0-255 "
            "(it normalises them itself)"
        )
    if shape[2:] != want[2:]:
        raise FrameError(
            f"image is {shape[3]}x{shape[2]} pixels but the model was exported for "
            f"{info.width}x{info.height}: export one model per camera resolution "
            f"(pdn-export --width {shape[3]} --height {shape[2]})"
        )
    if shape[0] != info.batch:
        raise FrameError(
            f"image has batch {shape[0]}, the model takes batch {info.batch} (one frame per camera)"
        )


class Backend(ABC):
    """One loaded model on one runtime. `run` checks the inputs and returns the outputs of
    `pdn_model.contract.OUTPUT_NAMES` as NumPy arrays.

    ONNX Runtime and TensorRT return preallocated buffers that the next `run` overwrites:
    copy what must outlive the next frame (`StreamState.update` copies the state itself).
    """

    kind: ClassVar[str]
    OPTIONS: ClassVar[frozenset[str]]  # keyword options of the constructor
    info: ModelInfo

    def run(
        self,
        image: np.ndarray,
        memory: np.ndarray,
        memory_valid: np.ndarray,
        controller_state: np.ndarray,
    ) -> dict[str, np.ndarray]:
        """Run one batch of frames: image uint8 [B,3,H,W]; the state arrays as in
        `ModelInfo.input_shapes` (zeros on a stream's first frame)."""
        return self._run(check_inputs(self.info, image, memory, memory_valid, controller_state))

    @abstractmethod
    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Run checked inputs (contract names and shapes; possibly not C-contiguous)."""

    @abstractmethod
    def describe(self) -> str:
        """One line for logs: runtime, device and settings."""

    def close(self) -> None:  # noqa: B027 - an optional hook, not an abstract method
        """Release runtime resources (device memory, streams); the default has none."""

    def __enter__(self) -> Backend:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()
