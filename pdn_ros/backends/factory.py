"""`create_backend(kind, model_path, **options)` and the choice behind kind "auto":
TensorRT where it imports and a GPU exists, else ONNX Runtime with CUDA, else ONNX Runtime
on the CPU. The availability probes are module functions, so tests can replace them.
"""

from __future__ import annotations

import importlib
import logging
from pathlib import Path
from typing import NamedTuple

from pdn_ros.backends.base import Backend
from pdn_ros.backends.errors import BackendError

log = logging.getLogger(__name__)

# kind -> (module, class); modules load on first use, so torch/tensorrt stay unimported.
BACKENDS: dict[str, tuple[str, str]] = {
    "onnxruntime": ("pdn_ros.backends.onnxruntime_backend", "OnnxRuntimeBackend"),
    "tensorrt": ("pdn_ros.backends.tensorrt_backend", "TensorRTBackend"),
    "torch": ("pdn_ros.backends.torch_backend", "TorchBackend"),
}
KINDS: tuple[str, ...] = ("auto", *BACKENDS)
CHECKPOINT_SUFFIXES = (".pt", ".pth")


class Choice(NamedTuple):
    """What "auto" picked: backend kind, options it implies, and why."""

    kind: str
    options: dict[str, object]
    reason: str


def backend_class(kind: str) -> type[Backend]:
    """The Backend subclass of a kind (imports its module, not its runtime)."""
    if kind not in BACKENDS:
        raise BackendError(f"unknown backend {kind!r}; choose one of {KINDS}")
    module, name = BACKENDS[kind]
    return getattr(importlib.import_module(module), name)


def probe_tensorrt() -> str | None:
    """Why TensorRT cannot run here, or None when it can."""
    from pdn_ros.backends.tensorrt_backend import tensorrt_problem

    return tensorrt_problem()


def probe_onnxruntime_cuda() -> str | None:
    """Why ONNX Runtime cannot use CUDA here, or None when it can."""
    import onnxruntime as ort

    providers = ort.get_available_providers()
    return None if "CUDAExecutionProvider" in providers else f"its providers are {providers}"


def choose_auto() -> Choice:
    """The best backend this machine offers, with the reason (see the module docstring)."""
    trt_problem = probe_tensorrt()
    if trt_problem is None:
        return Choice("tensorrt", {}, "TensorRT imports and a CUDA GPU is present")
    cuda_problem = probe_onnxruntime_cuda()
    if cuda_problem is None:
        return Choice(
            "onnxruntime",
            {"device": "cuda"},
            f"TensorRT unusable ({trt_problem}); ONNX Runtime has the CUDA provider",
        )
    return Choice(
        "onnxruntime",
        {"device": "cpu"},
        f"TensorRT unusable ({trt_problem}); ONNX Runtime has no CUDA provider "
        f"({cuda_problem}), so the CPU",
    )


def create_backend(kind: str, model_path: str | Path, **options: object) -> Backend:
    """Load `model_path` on backend `kind` ("auto", "onnxruntime", "tensorrt", "torch").

    Options go to the backend's constructor (see each class). Under "auto", each option
    goes to the chosen backend if it takes it: e.g. `threads` only reaches ONNX Runtime.
    """
    if kind != "torch" and Path(model_path).suffix in CHECKPOINT_SUFFIXES:
        raise BackendError(
            f"{model_path} is a PyTorch checkpoint: run it with backend 'torch', or export "
            "it with pdn-export for 'onnxruntime' / 'tensorrt' / 'auto'"
        )
    if kind == "auto":
        known = set().union(*(backend_class(k).OPTIONS for k in ("onnxruntime", "tensorrt")))
        known.discard("device")  # auto's own decision; name a backend to choose a device
        unknown = set(options) - known
        if unknown:
            raise BackendError(
                f"backend 'auto' takes options {sorted(known)}, not {sorted(unknown)}"
            )
        choice = choose_auto()
        log.info("backend auto -> %s: %s", choice.kind, choice.reason)
        cls = backend_class(choice.kind)
        options = {k: v for k, v in options.items() if k in cls.OPTIONS} | choice.options
    else:
        cls = backend_class(kind)
        unknown = set(options) - cls.OPTIONS
        if unknown:
            raise BackendError(
                f"backend {kind!r} takes options {sorted(cls.OPTIONS)}, not {sorted(unknown)}"
            )
    backend = cls(model_path, **options)
    log.info("backend: %s, model %s", backend.describe(), model_path)
    return backend
