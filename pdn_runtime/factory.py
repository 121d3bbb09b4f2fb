"""`create_backend(kind, model_path, **options)` and the choice behind kind "auto".

"auto" has one meaning everywhere: the best runtime this machine offers for an exported
.onnx model, TensorRT where it imports and a GPU exists, else ONNX Runtime with CUDA, else
ONNX Runtime on the CPU. (A .pt checkpoint runs only on backend "torch"; `pdn-eval` asks
for "torch" itself when given one.) The availability probes are module functions, so
tests can replace them.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

from pdn_runtime.errors import BackendError
from pdn_runtime.interface import Backend

log = logging.getLogger(__name__)

# kind -> (module, class); modules load on first use, so torch/tensorrt stay unimported.
BACKENDS: dict[str, tuple[str, str]] = {
    "onnxruntime": ("pdn_runtime.onnxruntime_backend", "OnnxRuntimeBackend"),
    "tensorrt": ("pdn_runtime.tensorrt_backend", "TensorRTBackend"),
    "torch": ("pdn_runtime.torch_backend", "TorchBackend"),
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


def accepted_options(kind: str) -> frozenset[str]:
    """The options `create_backend(kind, ...)` takes: a backend's own, or under "auto" those
    of the backends it may choose (less `device`, which is auto's own decision)."""
    if kind != "auto":
        return backend_class(kind).OPTIONS
    known = backend_class("onnxruntime").OPTIONS | backend_class("tensorrt").OPTIONS
    return known - {"device"}


def options_for(kind: str, options: Mapping[str, object]) -> dict[str, object]:
    """The part of `options` that backend `kind` takes, so that a command line can offer
    e.g. --threads whatever the backend (threads only reach ONNX Runtime)."""
    accepted = accepted_options(kind)
    return {name: value for name, value in options.items() if name in accepted}


def probe_tensorrt() -> str | None:
    """Why TensorRT cannot run here, or None when it can."""
    from pdn_runtime.gpu_runtime import tensorrt_problem

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
    accepted = accepted_options(kind)
    unknown = set(options) - accepted
    if unknown:
        raise BackendError(
            f"backend {kind!r} takes options {sorted(accepted)}, not {sorted(unknown)}"
        )
    if kind == "auto":
        choice = choose_auto()
        log.info("backend auto -> %s: %s", choice.kind, choice.reason)
        cls = backend_class(choice.kind)
        options = options_for(choice.kind, options) | choice.options
    else:
        cls = backend_class(kind)
    backend = cls(model_path, **options)
    log.info("backend: %s, model %s", backend.describe(), model_path)
    return backend
