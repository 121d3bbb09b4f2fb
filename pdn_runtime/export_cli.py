"""`pdn-export`: export a model to ONNX (`pdn_model.export`), with `--int8` also its INT8 copy
(`quantize.export_int8`), and with `--engine` build its TensorRT engine
(`tensorrt_build.build_engine_file`).

The command lives here, above pdn_model, so that pdn_model imports no other project package;
pdn_model (and torch) are imported inside `main` only.
"""

from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

from pdn_runtime.quantize import add_int8_arguments, check_int8_arguments, export_int8
from pdn_runtime.tensorrt_build import PRECISIONS

# Output options that name a file per model: with --sizes each gets the size in its name.
SIZED_PATHS = ("out", "engine", "int8_out", "tensorrt_cache")
SIZE_SUFFIX = re.compile(r"-\d+x\d+$")


def parse_sizes(text: str) -> list[tuple[int, int]]:
    """'1920x1080,3840x2160' -> [(1920, 1080), (3840, 2160)] (width x height), for --sizes."""
    sizes = []
    for word in text.split(","):
        match = re.fullmatch(r"\s*(\d+)x(\d+)\s*", word)
        if match is None or 0 in (size := (int(match[1]), int(match[2]))):
            raise argparse.ArgumentTypeError(
                f"sizes look like WIDTHxHEIGHT[,WIDTHxHEIGHT...] in pixels, got {word.strip()!r}"
            )
        if size in sizes:
            raise argparse.ArgumentTypeError(f"size {size[0]}x{size[1]} is given twice")
        sizes.append(size)
    return sizes


def sized_path(path: Path, width: int, height: int) -> Path:
    """`path` named for one input size as the repository's models are: NAME-WxH.SUFFIX (a
    size already at the end of NAME is replaced)."""
    name = SIZE_SUFFIX.sub("", path.name.removesuffix(path.suffix))
    return path.with_name(f"{name}-{width}x{height}{path.suffix}")


def per_size(args: argparse.Namespace) -> list[argparse.Namespace]:
    """The arguments of each export: `args` itself, or with --sizes one copy per size with
    its width, height and output names (SIZED_PATHS) set."""
    if args.sizes is None:
        return [args]
    runs = []
    for width, height in args.sizes:
        one = argparse.Namespace(**{**vars(args), "width": width, "height": height})
        for name in SIZED_PATHS:
            if getattr(one, name, None) is not None:
                setattr(one, name, sized_path(getattr(one, name), width, height))
        runs.append(one)
    return runs


def main(argv: list[str] | None = None) -> int:
    """`pdn-export`: build (or load) a model, write its ONNX graph, optionally its engine."""
    from pdn_model.export import add_arguments

    parser = argparse.ArgumentParser(
        prog="pdn-export",
        description="Export PatchDriveNet to ONNX for one input size (or one per --sizes).",
    )
    add_arguments(parser)
    parser.add_argument(
        "--engine", type=Path, help="also build this TensorRT engine (needs TensorRT and a GPU)"
    )
    parser.add_argument("--precision", choices=PRECISIONS, default="fp16", help="engine precision")
    parser.add_argument(
        "--sizes",
        type=parse_sizes,
        help="export one model per input size from the same weights, e.g. "
        "1920x1080,3840x2160 (instead of --width/--height); each output file gets the size "
        "in its name: --out m.onnx writes m-1920x1080.onnx and m-3840x2160.onnx",
    )
    add_int8_arguments(parser)
    args = parser.parse_args(argv)
    if args.int8:  # fail before the export when the calibration frames are unusable
        try:
            check_int8_arguments(args)
        except ValueError as err:
            print(f"pdn-export: {err}", file=sys.stderr)
            return 2
    if args.engine:  # fail before the export when TensorRT is missing
        from pdn_runtime.gpu_runtime import require_tensorrt

        try:
            require_tensorrt()
        except ValueError as err:
            print(f"pdn-export: {err}", file=sys.stderr)
            return 2
    for one in per_size(args):
        status = export_one(one)
        if status != 0:
            return status
    return 0


def export_one(args: argparse.Namespace) -> int:
    """One input size: its ONNX graph, and its INT8 copy and engine when asked for."""
    from pdn_model.export import export_from_args

    status = export_from_args(args)
    if status == 0 and args.int8:
        status = export_int8(args)
    if status != 0 or not args.engine:
        return status
    from pdn_runtime.tensorrt_build import build_engine_file

    start = time.perf_counter()
    try:
        build_engine_file(
            args.out,
            args.engine,
            args.precision,
            say=lambda message: print(f"pdn-export: {message}", flush=True),
        )
    except ValueError as err:
        print(f"pdn-export: {err}", file=sys.stderr)
        return 2
    print(f"pdn-export: {args.engine} ready in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
