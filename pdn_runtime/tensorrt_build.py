"""TensorRT engine build: parse an exported ONNX model, apply the FP16 policy
(`fp16_policy.py`), build with a timing cache, and `build_engine_file` behind
`pdn-export --engine`. The engine cache (`engine_cache.py`) decides when to build.

Written against the TensorRT 10 Python API (explicit-batch networks, `IProgressMonitor`,
weakly typed FP16 with precision constraints). TensorRT 11 removed `BuilderFlag.FP16`: there
only precision "fp32" builds. Nothing here has run against a real TensorRT yet (see
docs/deployment.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from pdn_runtime import gpu_runtime
from pdn_runtime.engine_cache import (
    EngineKey,
    atomic_write,
    file_sha256,
    load_or_build,
    stale_reason,
    timing_cache_path,
)
from pdn_runtime.errors import BackendError, BackendUnavailableError, ModelFileError
from pdn_runtime.fp16_policy import LayerView, PrecisionPlan, plan_fp32_layers
from pdn_runtime.gpu_runtime import CudaRuntime, import_tensorrt
from pdn_runtime.interface import ModelInfo
from pdn_runtime.onnx_file import load_onnx, onnx_model_info, require_file

PRECISIONS = ("fp16", "fp32")
# Build phases deeper than this (per-layer tactic timing) are not printed.
PROGRESS_DEPTH = 1


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


def engine_key(
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


def check_precision(trt: ModuleType, precision: str) -> None:
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
    check_precision(trt, precision)
    cuda = CudaRuntime(gpu_runtime.import_cuda_runtime(), device_id)
    onnx_path, engine_path = require_file(onnx_path), Path(engine_path)
    info = onnx_model_info(load_onnx(onnx_path), onnx_path)
    key = engine_key(trt, cuda, precision, info, onnx_path)
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
