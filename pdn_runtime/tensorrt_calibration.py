"""TensorRT's INT8 calibration cache from the calibration frames of `pdn-export --int8`
(`--tensorrt-cache FILE`): an entropy calibrator fed the same frames, converted the same way
(`quantize.calibration_inputs`), during an INT8 build of the float export.

Unverified: written against the TensorRT 10 Python API (`IInt8EntropyCalibrator2`, deprecated
there in favour of explicit quantisation, which the INT8 .onnx itself provides) and never run,
since TensorRT cannot be installed on any machine this project has (docs/int8.md).
tensorrt and cuda-python are imported when called, never at import.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from pdn_runtime import gpu_runtime
from pdn_runtime.engine_cache import atomic_write
from pdn_runtime.errors import BackendError, ModelFileError
from pdn_runtime.gpu_runtime import CudaRuntime, import_tensorrt
from pdn_runtime.interface import ModelInfo
from pdn_runtime.onnx_file import load_onnx, onnx_model_info
from pdn_runtime.quantize import DEFAULT_FRAMES, calibration_files, calibration_inputs


def _calibrator(
    trt: ModuleType,
    cuda: CudaRuntime,
    info: ModelInfo,
    batches: Iterator[dict[str, np.ndarray]],
    cache: Path,
) -> Any:
    """An IInt8EntropyCalibrator2 that copies each calibration batch into device buffers
    allocated once, and reads and writes the cache file at `cache`."""
    rt = cuda.rt

    class FrameCalibrator(trt.IInt8EntropyCalibrator2):
        """Feeds `batches` to TensorRT's calibration, one batch per get_batch."""

        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.device = {
                name: cuda.call(rt.cudaMalloc(int(np.prod(shape)) * (1 if name == "image" else 4)))
                for name, shape in info.input_shapes.items()
            }

        def get_batch_size(self) -> int:
            return info.batch

        def get_batch(self, names: list[str]) -> list[int] | None:
            batch = next(batches, None)
            if batch is None:
                return None
            for name in names:
                host = np.ascontiguousarray(batch[name])
                cuda.call(
                    rt.cudaMemcpy(
                        self.device[name],
                        host.ctypes.data,
                        host.nbytes,
                        rt.cudaMemcpyKind.cudaMemcpyHostToDevice,
                    )
                )
            return [int(self.device[name]) for name in names]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data: Any) -> None:
            atomic_write(cache, bytes(data))

        def free(self) -> None:
            for pointer in self.device.values():
                cuda.call(rt.cudaFree(pointer))

    return FrameCalibrator()


def write_tensorrt_cache(
    onnx_path: str | Path,
    calibration: str | Path,
    cache: str | Path,
    frames: int = DEFAULT_FRAMES,
    device_id: int = 0,
    say: Callable[[str], None] = print,
) -> Path:
    """Calibrate the float export `onnx_path` for TensorRT INT8 on up to `frames` images of
    `calibration`, and write TensorRT's calibration cache to `cache` (the engine built on
    the way is discarded: engines are built per robot, by `pdn-export --engine`)."""
    trt = import_tensorrt()
    cuda = CudaRuntime(gpu_runtime.import_cuda_runtime(), device_id)
    onnx_path, cache = Path(onnx_path), Path(cache)
    info = onnx_model_info(load_onnx(onnx_path), onnx_path)
    files = calibration_files(calibration, frames)
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "\n  ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ModelFileError(f"TensorRT cannot parse {onnx_path}:\n  {errors}")
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.INT8)
    calibrator = _calibrator(trt, cuda, info, calibration_inputs(info, files), cache)
    config.int8_calibrator = calibrator
    say(f"TensorRT INT8 calibration on {len(files)} frames of {calibration} -> {cache}")
    try:
        if builder.build_serialized_network(network, config) is None:
            raise BackendError(f"TensorRT could not calibrate {onnx_path} (log above)")
    finally:
        calibrator.free()
    if not cache.is_file():
        raise BackendError(f"TensorRT built {onnx_path} but wrote no calibration cache")
    return cache
