"""Static INT8 quantisation of an exported model for ONNX Runtime (`pdn-export --int8`).

The float graph gets QuantizeLinear/DequantizeLinear pairs (QDQ) around the convolutions of
the patch backbone, the stage where most of the compute is, with activation ranges
measured on calibration frames. Signed INT8 with zero points of 0 for activations and
per-channel weights is what TensorRT accepts as explicit quantisation and what ONNX Runtime
runs with VNNI on x86. Everything else stays float (`FLOAT_STAGES`).

Calibration frames are image files, converted as the node converts a frame: decoded to RGB,
planar uint8 [3,H,W] at the model's size, each with a first frame's zero state. A rosbag2
folder is refused with a message saying how to use its frames: reading bags needs ROS
message types, which pdn_runtime never imports (docs/architecture.md).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnx.numpy_helper
from onnxruntime.quantization import (
    CalibrationDataReader,
    CalibrationMethod,
    QuantFormat,
    QuantType,
    quantize_static,
)

from pdn_model.contract import INPUT_NAMES
from pdn_model.onnx_graph import check_tensorrt_rules, read_metadata, write_metadata
from pdn_runtime import graph_stages
from pdn_runtime.errors import BackendError
from pdn_runtime.interface import ModelInfo
from pdn_runtime.onnx_file import load_onnx, onnx_model_info

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
BAG_FILES = ("metadata.yaml", "*.mcap", "*.db3")
DEFAULT_FRAMES = 24
QUANTIZED_OPS = ("Conv", "MatMul", "Gemm")
# Stages that stay float whatever their ops: everything the window choice depends on (the
# global stream, saliency, priorities, controller, top-k: so a stream's first frame gets
# exactly the float model's windows), fusion and heads (measured on the 4K demo model: INT8
# there took a further 0.006 AP_small and 0.007 AP50 off, with no speed gain; docs/int8.md),
# the coordinates (crop, box decoding in full-resolution pixels, NMS, the outputs), and the
# temporal attention over memory, whose inputs calibration cannot see (calibration frames
# carry an empty memory).
FLOAT_STAGES = frozenset(
    {
        graph_stages.INPUT_CAST,
        graph_stages.GLOBAL,
        graph_stages.HEADS,
        graph_stages.FUSION,
        graph_stages.PRIORITY,
        graph_stages.SELECTION,
        graph_stages.CROP,
        graph_stages.TEMPORAL,
        graph_stages.DECODE,
        graph_stages.NMS,
        graph_stages.OUTPUTS,
        graph_stages.OTHER,
    }
)


class CalibrationError(BackendError):
    """Calibration frames that cannot be used: a missing, empty or unreadable folder, a bag,
    or a file that does not decode (the message names it)."""


def calibration_files(folder: str | Path, limit: int = DEFAULT_FRAMES) -> list[Path]:
    """Up to `limit` image files of `folder`, spread evenly over its sorted listing (so that
    frames of every sequence are used), or CalibrationError saying what is wrong."""
    folder = Path(folder)
    if not folder.exists():
        raise CalibrationError(f"calibration folder {folder} does not exist")
    if not folder.is_dir():
        raise CalibrationError(f"calibration path {folder} is not a folder of image files")
    if any(next(folder.glob(pattern), None) for pattern in BAG_FILES):
        raise CalibrationError(
            f"{folder} is a rosbag2 bag: --calibration takes a folder of image files, because "
            "reading a bag needs ROS message types and pdn_runtime imports no ROS; write some "
            "of its frames as image files (JPEG) and pass that folder"
        )
    try:
        names = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
    except OSError as err:
        raise CalibrationError(f"calibration folder {folder} cannot be read: {err}") from err
    if not names:
        raise CalibrationError(
            f"calibration folder {folder} holds no image files ({', '.join(IMAGE_SUFFIXES)})"
        )
    if limit < 1:
        raise CalibrationError(f"calibration needs at least 1 frame, asked for {limit}")
    picks = np.linspace(0, len(names) - 1, min(limit, len(names))).round().astype(int)
    return [names[i] for i in sorted(set(picks.tolist()))]


def read_frame(path: Path, height: int, width: int) -> np.ndarray:
    """The image file at `path` as planar RGB uint8 [3,height,width], as the node converts a
    frame (decoded to RGB, one copy per channel); a frame of another size is resized (area
    averaging when shrinking). CalibrationError naming the file when it does not decode."""
    import cv2

    try:
        data = np.fromfile(path, np.uint8)
    except OSError as err:
        raise CalibrationError(f"calibration frame {path} cannot be read: {err}") from err
    rgb = cv2.imdecode(data, cv2.IMREAD_COLOR_RGB) if data.size else None
    if rgb is None:
        raise CalibrationError(f"calibration frame {path} is not a readable image")
    if rgb.shape[:2] != (height, width):
        shrink = rgb.shape[0] * rgb.shape[1] > height * width
        rgb = cv2.resize(
            rgb, (width, height), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR
        )
    planar = np.empty((3, height, width), np.uint8)
    cv2.split(rgb, [planar[0], planar[1], planar[2]])
    return planar


def calibration_inputs(info: ModelInfo, files: Sequence[Path]) -> Iterator[dict[str, np.ndarray]]:
    """Model inputs of the calibration frames, a batch of `info.batch` frames at a time (the
    last batch filled up with the first frames), each with a first frame's zero state."""
    zeros = {
        name: np.zeros(info.input_shapes[name], np.float32)
        for name in INPUT_NAMES
        if name != "image"
    }
    batches = -(-len(files) // info.batch)
    for b in range(batches):
        image = np.empty(info.input_shapes["image"], np.uint8)
        for row in range(info.batch):
            path = files[(b * info.batch + row) % len(files)]
            image[row] = read_frame(path, info.height, info.width)
        yield {"image": image, **zeros}


class _FrameReader(CalibrationDataReader):
    """ONNX Runtime's calibration reader over `calibration_inputs`, counting what it read."""

    def __init__(self, inputs: Iterator[dict[str, np.ndarray]]):
        self._inputs = inputs
        self.batches = 0

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._inputs, None)
        self.batches += batch is not None
        return batch


def float_nodes(model: onnx.ModelProto) -> list[str]:
    """Names of the nodes that must stay float: those of `FLOAT_STAGES`."""
    stages = graph_stages.node_stages(model)
    return [name for name, stage in stages.items() if stage in FLOAT_STAGES]


def nonzero_zero_points(model: onnx.ModelProto) -> list[str]:
    """Q/DQ nodes whose zero point is not 0: TensorRT takes only symmetric INT8 (empty: ok)."""
    values = {t.name: t for t in model.graph.initializer}
    problems = []
    for node in model.graph.node:
        if node.op_type in ("QuantizeLinear", "DequantizeLinear") and len(node.input) > 2:
            zero = values.get(node.input[2])
            if zero is None or np.any(onnx.numpy_helper.to_array(zero) != 0):
                problems.append(f"{node.op_type} node {node.name}: zero point is not a constant 0")
    return problems


def quantize_model(
    source: str | Path,
    out: str | Path,
    calibration: str | Path,
    frames: int = DEFAULT_FRAMES,
    say: Callable[[str], None] = print,
) -> Path:
    """Write an INT8 (QDQ) copy of the exported model `source` to `out`, calibrated on up to
    `frames` images of the folder `calibration`; its `pdn.*` metadata gains `precision`
    "int8" and `calibration` (folder, frames, method, the stages kept float).

    The result passes onnx.checker and the TensorRT rules (ValueError otherwise) and loads
    wherever the float model does.
    """
    source, out = Path(source), Path(out)
    model = load_onnx(source)
    info = onnx_model_info(model, source)
    files = calibration_files(calibration, frames)
    meta = read_metadata(model)
    if meta.get("precision") == "int8":
        raise BackendError(f"{source} is already an INT8 model; quantise the float export")
    keep = float_nodes(model)
    say(
        f"INT8: calibrating on {len(files)} frames of {calibration} at "
        f"{info.width}x{info.height}; {len(keep)} of {len(model.graph.node)} nodes stay float"
    )
    del model.metadata_props[:]  # rewritten below, with the quantisation added
    reader = _FrameReader(calibration_inputs(info, files))
    start = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    quantize_static(
        model,
        out,
        reader,
        quant_format=QuantFormat.QDQ,
        op_types_to_quantize=list(QUANTIZED_OPS),
        per_channel=True,
        activation_type=QuantType.QInt8,
        weight_type=QuantType.QInt8,
        nodes_to_exclude=keep,
        calibrate_method=CalibrationMethod.MinMax,
        extra_options={"ActivationSymmetric": True, "WeightSymmetric": True},
    )
    quantized = onnx.load(str(out))
    del quantized.metadata_props[:]
    write_metadata(
        quantized,
        {
            **meta,
            "precision": "int8",
            "calibration": {
                "folder": str(calibration),
                "frames": len(files),
                "first": files[0].name,
                "last": files[-1].name,
                "method": "static QDQ, min-max, symmetric int8 activations, per-channel weights",
                "quantized_ops": list(QUANTIZED_OPS),
                "float_stages": sorted(FLOAT_STAGES - {graph_stages.OTHER}),
            },
        },
    )
    onnx.checker.check_model(quantized, full_check=True)
    problems = check_tensorrt_rules(quantized) + nonzero_zero_points(quantized)
    if problems:
        raise ValueError("the INT8 graph breaks TensorRT rules:\n  " + "\n  ".join(problems))
    onnx_model_info(quantized, out)  # loads like any export
    onnx.save(quantized, out)
    qdq = sum(n.op_type == "QuantizeLinear" for n in quantized.graph.node)
    say(
        f"INT8: {qdq} quantised tensors, {reader.batches} calibration batches in "
        f"{time.perf_counter() - start:.1f} s"
    )
    return out


def int8_path(float_path: Path) -> Path:
    """Where `pdn-export --int8` writes the INT8 copy by default: NAME-int8.onnx beside it."""
    return float_path.with_name(f"{float_path.stem}-int8{float_path.suffix}")


def add_int8_arguments(parser: argparse.ArgumentParser) -> None:
    """The INT8 options of `pdn-export`."""
    parser.add_argument(
        "--int8",
        action="store_true",
        help="also write a static INT8 (QDQ) copy for ONNX Runtime, calibrated on --calibration",
    )
    parser.add_argument(
        "--calibration",
        type=Path,
        help="folder of calibration image files (frames like the "
        "camera's; a rosbag2 bag is refused: write some of its frames as images)",
    )
    parser.add_argument(
        "--calibration-frames",
        type=int,
        default=DEFAULT_FRAMES,
        help=f"frames used, spread over the folder (default {DEFAULT_FRAMES})",
    )
    parser.add_argument(
        "--int8-out", type=Path, help="the INT8 model's file (default: --out's NAME-int8.onnx)"
    )
    parser.add_argument(
        "--tensorrt-cache",
        type=Path,
        help="with --int8: also write TensorRT's INT8 calibration cache from the same frames "
        "(needs TensorRT and a GPU; unverified, docs/int8.md)",
    )


def check_int8_arguments(args: argparse.Namespace) -> None:
    """CalibrationError unless `--int8` has a usable calibration folder."""
    if args.calibration is None:
        raise CalibrationError("--int8 needs --calibration DIR, a folder of image files")
    calibration_files(args.calibration, args.calibration_frames)
    if args.tensorrt_cache:
        from pdn_runtime.gpu_runtime import require_tensorrt

        require_tensorrt()


def export_int8(args: argparse.Namespace) -> int:
    """`pdn-export --int8`: quantise the float export at `args.out`; 0 when written, 2 (with
    the reason on stderr) when it cannot be."""
    out = args.int8_out or int8_path(args.out)
    try:
        quantize_model(
            args.out,
            out,
            args.calibration,
            args.calibration_frames,
            say=lambda message: print(f"pdn-export: {message}", flush=True),
        )
        print(f"pdn-export: wrote {out} ({out.stat().st_size / 1e6:.1f} MB)")
        if args.tensorrt_cache:
            from pdn_runtime.tensorrt_calibration import write_tensorrt_cache

            write_tensorrt_cache(
                args.out, args.calibration, args.tensorrt_cache, args.calibration_frames
            )
            print(f"pdn-export: wrote {args.tensorrt_cache}")
    except ValueError as err:
        print(f"pdn-export: {err}", file=sys.stderr)
        return 2
    return 0
