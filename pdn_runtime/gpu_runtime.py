"""The GPU libraries of the TensorRT backend: importing tensorrt and cuda-python (with errors
that say what to install), the probe behind backend "auto", and the few CUDA runtime calls.

Written against TensorRT 10 (the version JetPack 6 ships) and cuda-python (`cuda.bindings`),
not torch, so a robot needs no PyTorch. Both are imported when called, never when this
module is imported.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from pdn_runtime.errors import BackendError, BackendUnavailableError


def import_tensorrt() -> ModuleType:
    """The tensorrt module, or BackendUnavailableError saying what to install."""
    try:
        import tensorrt
    except Exception as err:  # ImportError, or OSError from a broken libnvinfer
        raise BackendUnavailableError(
            f"the TensorRT backend needs the tensorrt Python package (TensorRT 10), which does "
            f"not import here ({err}); install it from NVIDIA (JetPack, or pip install "
            "tensorrt), or run the .onnx with backend 'onnxruntime' (or 'auto')"
        ) from err
    return tensorrt


def import_cuda_runtime() -> ModuleType:
    """cuda-python's runtime API module (`cuda.bindings.runtime`, or the older
    `cuda.cudart`), or BackendUnavailableError saying what to install."""
    try:
        from cuda.bindings import runtime
    except ImportError:
        try:
            from cuda import cudart as runtime
        except ImportError as err:
            raise BackendUnavailableError(
                "the TensorRT backend needs cuda-python for CUDA streams and memory "
                f"({err}); pip install cuda-python matching your CUDA version"
            ) from err
    return runtime


class CudaRuntime:
    """The few CUDA runtime calls the backend makes, with errors turned into BackendError."""

    def __init__(self, runtime: ModuleType, device_id: int):
        self.rt = runtime
        self.device_id = device_id
        count = self.call(runtime.cudaGetDeviceCount())
        if not 0 <= device_id < count:
            raise BackendUnavailableError(f"CUDA device {device_id} asked for, {count} present")
        self.call(runtime.cudaSetDevice(device_id))

    def call(self, result: tuple) -> Any:
        """Check a cuda-python result tuple (error first) and return the value(s) after it."""
        err, *values = result
        if err != self.rt.cudaError_t.cudaSuccess:
            message = self.rt.cudaGetErrorString(err)[1]
            if isinstance(message, bytes):
                message = message.decode(errors="replace")
            raise BackendError(f"CUDA error {err}: {message}")
        return values[0] if len(values) == 1 else tuple(values)

    def device(self) -> tuple[str, str]:
        """(GPU name, compute capability "major.minor") of the current device."""
        props = self.call(self.rt.cudaGetDeviceProperties(self.device_id))
        name = props.name
        if isinstance(name, bytes):
            name = name.split(b"\0", 1)[0].decode(errors="replace")
        return name.strip(), f"{props.major}.{props.minor}"


def require_tensorrt() -> None:
    """BackendUnavailableError unless tensorrt and cuda-python both import."""
    import_tensorrt()
    import_cuda_runtime()


def tensorrt_problem() -> str | None:
    """Why the TensorRT backend cannot run here, or None when tensorrt and cuda-python import
    and a CUDA GPU is present (the probe behind backend 'auto')."""
    try:
        import_tensorrt()
    except BackendUnavailableError as err:
        return f"tensorrt does not import: {err.__cause__}"
    try:
        runtime = import_cuda_runtime()
    except BackendUnavailableError as err:
        return f"cuda-python does not import: {err.__cause__}"
    err, count = runtime.cudaGetDeviceCount()
    if err != runtime.cudaError_t.cudaSuccess or count == 0:
        return f"no CUDA GPU ({err}, {count} devices)"
    return None
