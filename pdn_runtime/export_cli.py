"""`pdn-export`: export a model to ONNX (`pdn_model.export`), with `--int8` also its INT8 copy
(`quantize.export_int8`), and with `--engine` build its TensorRT engine
(`tensorrt_build.build_engine_file`).

The command lives here, above pdn_model, so that pdn_model imports no other project package;
pdn_model (and torch) are imported inside `main` only.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from pdn_runtime.quantize import add_int8_arguments, check_int8_arguments, export_int8
from pdn_runtime.tensorrt_build import PRECISIONS


def main(argv: list[str] | None = None) -> int:
    """`pdn-export`: build (or load) a model, write its ONNX graph, optionally its engine."""
    from pdn_model.export import add_arguments, export_from_args

    parser = argparse.ArgumentParser(
        prog="pdn-export", description="Export PatchDriveNet to ONNX for one input size."
    )
    add_arguments(parser)
    parser.add_argument(
        "--engine", type=Path, help="also build this TensorRT engine (needs TensorRT and a GPU)"
    )
    parser.add_argument("--precision", choices=PRECISIONS, default="fp16", help="engine precision")
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
