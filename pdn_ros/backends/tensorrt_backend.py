"""TensorRT backend: builds (or loads from the engine cache) an engine for an exported ONNX
model and runs it on a CUDA stream through pinned host buffers.

Written against the TensorRT 10 Python API (explicit-batch networks, `set_tensor_address` /
`execute_async_v3`, `IProgressMonitor`, weakly typed FP16 with precision constraints), the
version JetPack 6 ships for Jetson robots. TensorRT 11 removed `BuilderFlag.FP16`: there only
precision "fp32" builds. CUDA memory and streams come from cuda-python (`cuda.bindings`), not
torch, so a robot needs no PyTorch. Both libraries are imported when a backend or a build is
created, never when this module is imported. Nothing here has run against a real TensorRT yet
(see docs/deployment.md).
"""

from __future__ import annotations

import ctypes
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from pdn_model.contract import INPUT_NAMES, OUTPUT_NAMES
from pdn_ros.backends.base import INPUT_DTYPES, OUTPUT_DTYPES, Backend, ModelInfo
from pdn_ros.backends.engine_cache import (
    EngineKey,
    atomic_write,
    cached_engine_path,
    default_cache_dir,
    file_sha256,
    load_or_build,
    read_engine_file,
    stale_reason,
    timing_cache_path,
)
from pdn_ros.backends.errors import (
    BackendError,
    BackendUnavailableError,
    ModelContractError,
    ModelFileError,
)
from pdn_ros.backends.model_file import load_onnx, onnx_model_info, require_file
from pdn_ros.backends.precision import LayerView, PrecisionPlan, plan_fp32_layers

log = logging.getLogger(__name__)

PRECISIONS = ("fp16", "fp32")
# Build phases deeper than this (per-layer tactic timing) are not printed.
PROGRESS_DEPTH = 1


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


def _layer_views(trt: ModuleType, network: Any) -> list[LayerView]:
    """The precision policy's view of every layer of a TensorRT network."""
    floats = (trt.float32, trt.float16)
    views = []
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        inputs = (layer.get_input(j) for j in range(layer.num_inputs))
        outputs = [layer.get_output(j) for j in range(layer.num_outputs)]
        views.append(
            LayerView(
                kind=layer.type.name,
                inputs=tuple(t.name for t in inputs if t is not None),
                outputs=tuple(t.name for t in outputs),
                float_output=any(t.dtype in floats for t in outputs),
            )
        )
    return views


def apply_fp16_policy(trt: ModuleType, network: Any, config: Any) -> PrecisionPlan:
    """Enable FP16 and pin the layers chosen by `precision.plan_fp32_layers` to FP32
    (computation and float outputs), with OBEY so TensorRT may not override them."""
    config.set_flag(trt.BuilderFlag.FP16)
    config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
    plan = plan_fp32_layers(_layer_views(trt, network))
    for i in sorted(plan.fp32):
        layer = network.get_layer(i)
        layer.precision = trt.float32
        for j in range(layer.num_outputs):
            if layer.get_output(j).dtype in (trt.float32, trt.float16):
                layer.set_output_type(j, trt.float32)
    return plan


def _progress_monitor(trt: ModuleType, say: Callable[[str], None]) -> Any:
    """An IProgressMonitor that reports TensorRT's build phases as plain lines."""

    class BuildProgress(trt.IProgressMonitor):
        """Prints phase starts, finishes with their time, and top phases' steps per 10 %."""

        def __init__(self) -> None:
            trt.IProgressMonitor.__init__(self)
            self._lock = threading.Lock()
            self._phases: dict[str, tuple[int, int, float]] = {}  # depth, steps, start

        def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
            with self._lock:
                parent = self._phases.get(parent_phase) if parent_phase else None
                depth = parent[0] + 1 if parent else 0
                self._phases[phase_name] = (depth, num_steps, time.perf_counter())
            if depth <= PROGRESS_DEPTH:
                say(f"{'  ' * depth}{phase_name} ({num_steps} steps)")

        def step_complete(self, phase_name: str, step: int) -> bool:
            with self._lock:
                depth, steps, _ = self._phases.get(phase_name, (99, 1, 0.0))
            if depth == 0 and steps >= 10 and (step + 1) % (steps // 10) == 0:
                say(f"{phase_name}: {step + 1}/{steps}")
            return True

        def phase_finish(self, phase_name: str) -> None:
            with self._lock:
                depth, _, start = self._phases.pop(phase_name, (99, 1, time.perf_counter()))
            if depth <= PROGRESS_DEPTH:
                say(f"{'  ' * depth}{phase_name} done in {time.perf_counter() - start:.1f} s")

    return BuildProgress()


def _timing_cache(trt: ModuleType, config: Any, path: Path, say: Callable[[str], None]) -> Any:
    """The timing cache stored at `path` (a fresh one if absent or unreadable)."""
    blob = path.read_bytes() if path.is_file() else b""
    try:
        cache = config.create_timing_cache(blob) if blob else None
    except Exception as err:  # a truncated cache file
        say(f"timing cache {path} is unreadable ({err})")
        cache = None
    if cache is None:
        say(f"new timing cache {path}")
        return config.create_timing_cache(b"")
    say(f"timing cache {path} ({len(blob) / 1e3:.0f} kB)")
    return cache


def build_serialized_engine(
    onnx_path: Path, precision: str, timing_cache: Path, say: Callable[[str], None]
) -> bytes:
    """Parse `onnx_path`, build an engine of `precision` with the timing cache at
    `timing_cache` (updated afterwards), and return the serialized engine."""
    trt = import_tensorrt()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: every network has an explicit batch
    parser = trt.OnnxParser(network, logger)
    say(f"parsing {onnx_path}")
    if not parser.parse_from_file(str(onnx_path)):
        errors = "\n  ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelFileError(f"TensorRT cannot parse {onnx_path}:\n  {errors}")
    config = builder.create_builder_config()
    if precision == "fp16":
        plan = apply_fp16_policy(trt, network, config)
        say(
            f"FP16 with {len(plan.fp32)} of {network.num_layers} layers kept in FP32: "
            f"{len(plan.sensitive)} softmax/normalisation/reduce/top-k, "
            f"{len(plan.tail)} in the heads and post-processing (boxes in pixels, NMS)"
        )
    elif hasattr(trt.BuilderFlag, "TF32"):
        config.clear_flag(trt.BuilderFlag.TF32)  # fp32 means FP32 math, for parity checks
        say("FP32 (TF32 off)")
    cache = _timing_cache(trt, config, timing_cache, say)
    config.set_timing_cache(cache, ignore_mismatch=False)
    if hasattr(trt, "IProgressMonitor"):
        config.progress_monitor = _progress_monitor(trt, say)
    say("building the engine: TensorRT times kernels on this GPU, which takes minutes")
    start = time.perf_counter()
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f"TensorRT could not build an engine from {onnx_path} (log above)")
    atomic_write(timing_cache, bytes(config.get_timing_cache().serialize()))
    say(f"built in {time.perf_counter() - start:.0f} s ({serialized.nbytes / 1e6:.1f} MB)")
    return bytes(serialized)


def _engine_key(
    trt: ModuleType, cuda: CudaRuntime, precision: str, info: ModelInfo, onnx_path: Path
) -> EngineKey:
    """The cache key of `onnx_path` built at `precision` on the current GPU."""
    gpu, cc = cuda.device()
    return EngineKey(
        gpu_name=gpu,
        compute_capability=cc,
        tensorrt_version=trt.__version__,
        precision=precision,
        input_shape=info.input_shapes["image"],
        onnx_sha256=file_sha256(onnx_path),
    )


def _check_precision(trt: ModuleType, precision: str) -> None:
    """BackendError unless this TensorRT can build `precision`."""
    if precision not in PRECISIONS:
        raise BackendError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp16" and not hasattr(trt.BuilderFlag, "FP16"):
        raise BackendUnavailableError(
            f"TensorRT {trt.__version__} has no weakly typed FP16 (removed in TensorRT 11); "
            "use precision 'fp32' there"
        )


def build_engine_file(
    onnx_path: str | Path,
    engine_path: str | Path,
    precision: str = "fp16",
    device_id: int = 0,
    say: Callable[[str], None] = print,
) -> Path:
    """`pdn-export --engine`: build `engine_path` (+ sidecar; timing cache in its folder)
    from an exported model, unless the engine there is already valid for it."""
    trt = import_tensorrt()
    _check_precision(trt, precision)
    cuda = CudaRuntime(import_cuda_runtime(), device_id)
    onnx_path, engine_path = require_file(onnx_path), Path(engine_path)
    info = onnx_model_info(load_onnx(onnx_path), onnx_path)
    key = _engine_key(trt, cuda, precision, info, onnx_path)
    say(
        f"engine for {key.gpu_name} (sm {key.compute_capability}), TensorRT "
        f"{key.tensorrt_version}, {precision}, input {list(key.input_shape)}"
    )
    reason = stale_reason(engine_path, key)
    say(f"{engine_path} is up to date" if reason is None else f"building {engine_path}: {reason}")
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    load_or_build(
        engine_path,
        key,
        info,
        build=lambda: build_serialized_engine(
            onnx_path, precision, timing_cache_path(engine_path.parent, key), say
        ),
        deserialize=runtime.deserialize_cuda_engine,
    )
    return engine_path


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
        _check_precision(trt, precision)
        self._cuda = cuda = CudaRuntime(import_cuda_runtime(), device_id)
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
            key = _engine_key(trt, cuda, precision, self.info, self.path)
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
