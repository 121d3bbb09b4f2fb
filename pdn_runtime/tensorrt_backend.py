"""TensorRT backend: runs an engine (from the engine cache, built on a miss by
`tensorrt_build`, or a prebuilt .engine file) on a CUDA stream through pinned host buffers.

Written against the TensorRT 10 Python API (`set_tensor_address` / `execute_async_v3`).
CUDA memory and streams come from cuda-python (`gpu_runtime`), not torch. Both libraries are
imported when a backend is created, never when this module is imported. Nothing here has
run against a real TensorRT yet (see docs/deployment.md).
"""

from __future__ import annotations

import ctypes
import logging
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from pdn_model.contract import INPUT_NAMES, OUTPUT_NAMES
from pdn_runtime import gpu_runtime
from pdn_runtime.engine_cache import (
    cached_engine_path,
    default_cache_dir,
    load_or_build,
    read_engine_file,
    timing_cache_path,
)
from pdn_runtime.errors import BackendError, ModelContractError, ModelFileError
from pdn_runtime.gpu_runtime import CudaRuntime, import_tensorrt
from pdn_runtime.interface import INPUT_DTYPES, OUTPUT_DTYPES, Backend, ModelInfo
from pdn_runtime.onnx_file import load_onnx, onnx_model_info, require_file
from pdn_runtime.tensorrt_build import build_serialized_engine, check_precision, engine_key

log = logging.getLogger(__name__)


def check_engine_io(
    io: dict[str, tuple[bool, tuple[int, ...], np.dtype]], info: ModelInfo, source: str
) -> None:
    """ModelContractError unless an engine's I/O tensors (name -> (is input, shape, dtype))
    are the contract's, with the shapes and dtypes of `info`."""
    inputs = sorted(n for n, (is_input, _, _) in io.items() if is_input)
    if inputs != sorted(INPUT_NAMES) or not set(OUTPUT_NAMES) <= set(io):
        raise ModelContractError(
            f"{source}: engine tensors {sorted(io)} are not the contract's inputs "
            f"{list(INPUT_NAMES)} and outputs {list(OUTPUT_NAMES)}"
        )
    want = {
        **{n: (s, INPUT_DTYPES[n]) for n, s in info.input_shapes.items()},
        **{n: (s, OUTPUT_DTYPES[n]) for n, s in info.output_shapes.items()},
    }
    for name, (shape, dtype) in want.items():
        _, got_shape, got_dtype = io[name]
        if tuple(got_shape) != tuple(shape) or np.dtype(got_dtype) != dtype:
            raise ModelContractError(
                f"{source}: engine tensor {name!r} is {got_dtype} {tuple(got_shape)}, "
                f"the model info says {dtype} {tuple(shape)}"
            )


class TensorRTBackend(Backend):
    """A TensorRT engine on one GPU, with device buffers and pinned host buffers allocated
    once and one CUDA stream.

    model_path: an exported .onnx (the engine comes from the cache, built on a miss) or a
    .engine written by `pdn-export --engine` (used as is, checked against its sidecar).
    precision: "fp16" (default; sensitive layers stay FP32, see `precision.py`) or "fp32";
    a .engine keeps the precision it was built with.
    cache_dir: engine cache folder (default `engine_cache.default_cache_dir()`).
    device_id: CUDA device index.
    """

    kind = "tensorrt"
    OPTIONS = frozenset({"precision", "cache_dir", "device_id"})

    def __init__(
        self,
        model_path: str | Path,
        precision: str = "fp16",
        cache_dir: str | Path | None = None,
        device_id: int = 0,
    ):
        trt = import_tensorrt()
        check_precision(trt, precision)
        self._cuda = cuda = CudaRuntime(gpu_runtime.import_cuda_runtime(), device_id)
        self.path = require_file(model_path)
        self.precision = precision
        self.gpu, cc = cuda.device()
        runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
        if self.path.suffix == ".engine":
            blob, self.info, self.precision = read_engine_file(
                self.path, self.gpu, cc, trt.__version__
            )
            engine = runtime.deserialize_cuda_engine(blob)
            if engine is None:
                raise ModelFileError(f"TensorRT could not deserialize {self.path}")
        else:
            self.info = onnx_model_info(load_onnx(self.path), self.path)
            key = engine_key(trt, cuda, precision, self.info, self.path)
            folder = Path(cache_dir) if cache_dir is not None else default_cache_dir()
            engine = load_or_build(
                cached_engine_path(folder, self.path, key),
                key,
                self.info,
                build=lambda: build_serialized_engine(
                    self.path, precision, timing_cache_path(folder, key), log.info
                ),
                deserialize=runtime.deserialize_cuda_engine,
            )
        self._trt_version = trt.__version__
        self._engine = engine
        self._context = engine.create_execution_context()
        self._stream: Any = None
        self._device: dict[str, int] = {}
        self._pinned: list[int] = []
        self.host: dict[str, np.ndarray] = {}
        try:
            self._allocate(trt, engine)
        except BaseException:
            self.close()  # what was allocated before the failure
            raise

    def _allocate(self, trt: ModuleType, engine: Any) -> None:
        """A device buffer and a pinned host array per I/O tensor, bound to the context."""
        cuda = self._cuda
        io = {}
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            io[name] = (
                engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT,
                tuple(engine.get_tensor_shape(name)),
                np.dtype(trt.nptype(engine.get_tensor_dtype(name))),
            )
        check_engine_io(io, self.info, str(self.path))
        self._stream = cuda.call(cuda.rt.cudaStreamCreate())
        for name, (_, shape, dtype) in io.items():
            nbytes = int(np.prod(shape)) * dtype.itemsize
            self._device[name] = cuda.call(cuda.rt.cudaMalloc(nbytes))
            pointer = cuda.call(cuda.rt.cudaMallocHost(nbytes))
            self._pinned.append(pointer)
            raw = (ctypes.c_uint8 * nbytes).from_address(pointer)
            self.host[name] = np.frombuffer(raw, dtype).reshape(shape)
            if not self._context.set_tensor_address(name, self._device[name]):
                raise BackendError(f"TensorRT refused the address of tensor {name!r}")

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Stage inputs in pinned memory, copy, execute and copy back on the stream."""
        cuda, rt, stream = self._cuda, self._cuda.rt, self._stream
        for name, array in inputs.items():
            host = self.host[name]
            np.copyto(host, array)
            cuda.call(
                rt.cudaMemcpyAsync(
                    self._device[name],
                    host.ctypes.data,
                    host.nbytes,
                    rt.cudaMemcpyKind.cudaMemcpyHostToDevice,
                    stream,
                )
            )
        if not self._context.execute_async_v3(int(stream)):  # the cudaStream_t's address
            raise BackendError("TensorRT execution failed (see the TensorRT log)")
        for name in OUTPUT_NAMES:
            host = self.host[name]
            cuda.call(
                rt.cudaMemcpyAsync(
                    host.ctypes.data,
                    self._device[name],
                    host.nbytes,
                    rt.cudaMemcpyKind.cudaMemcpyDeviceToHost,
                    stream,
                )
            )
        cuda.call(rt.cudaStreamSynchronize(stream))
        return {name: self.host[name] for name in OUTPUT_NAMES}

    def describe(self) -> str:
        """Runtime, GPU and precision."""
        return f"tensorrt {self._trt_version} {self.precision} on {self.gpu}"

    def close(self) -> None:
        """Free device memory, pinned memory and the stream (once); arrays returned by `run`
        live in that pinned memory, so drop them first."""
        cuda, rt = self._cuda, self._cuda.rt
        self.host.clear()
        for pointer in self._device.values():
            cuda.call(rt.cudaFree(pointer))
        for pointer in self._pinned:
            cuda.call(rt.cudaFreeHost(pointer))
        self._device.clear()
        self._pinned.clear()
        if self._stream is not None:
            cuda.call(rt.cudaStreamDestroy(self._stream))
            self._stream = None
