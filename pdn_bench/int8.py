"""`pdn-bench int8`: the float model and its INT8 copy side by side, at 1080p, 4K and 8K.

For each held-out set the checkpoint is exported at the set's frame size (as `pdn-export`
does) and quantised on the calibration folder (as `pdn-export --int8` does). Accuracy:
`pdn-eval`'s pass over every frame of the set (`training.evaluate.run_frames`, state fed
back, a new stream per video) for each model, scored with `training.metrics.summarize`, and
the share of windows the INT8 model chooses exactly as the float model does. Latency: both
models in this process through the backend the node uses, timed in alternating blocks on
the same decoded frames (`pdn_bench.measure.interleaved_timings`), so load on the machine
hits both alike.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import onnxruntime as ort

from pdn_bench.compare_sets import DEFAULT_DATA, DataSet, datasets, load_set
from pdn_bench.measure import interleaved_timings, latency_stats, machine_description
from pdn_bench.reporting import add_common_arguments, write_report
from pdn_runtime import StreamRunner, create_backend
from pdn_runtime.quantize import DEFAULT_FRAMES, quantize_model, read_frame

MODELS = ("float", "int8")
HELD_OUT_4K = DataSet("4K", Path("data/val_plain/annotations.json"))
DEFAULT_CALIBRATION = Path("data/plain_train/images")
LATENCY_FRAMES = 4  # distinct decoded frames the latency runs cycle through
SPEED_RATIO = 0.6  # INT8 / float median latency at 4K, at most
AP_TOLERANCE = 0.01  # |INT8 - float| AP_small and AP50 at 4K, at most


def file_md5(path: Path) -> str:
    """MD5 of a file, to name the exact checkpoint a report measured."""
    return hashlib.md5(path.read_bytes()).hexdigest()


def export_pair(args: argparse.Namespace, height: int, width: int, work: Path) -> dict[str, Path]:
    """The checkpoint exported at height x width with its default budget, and its INT8 copy."""
    from pdn_model.checkpoint import load_checkpoint
    from pdn_model.config import default_patches
    from pdn_model.export import to_onnx

    model = load_checkpoint(args.checkpoint, input_size=(height, width))
    model.set_patches(default_patches(model.config))
    float_path = to_onnx(model, work / f"float-{width}x{height}.onnx")
    int8 = quantize_model(
        float_path,
        work / f"int8-{width}x{height}.onnx",
        args.calibration,
        args.calibration_frames,
        say=lambda message: print(f"pdn-bench int8: {message}", flush=True),
    )
    return {"float": float_path, "int8": int8}


def window_agreement(float_results: list, int8_results: list) -> float:
    """Share of the float model's windows that the INT8 model also chose, frame by frame."""
    same = total = 0
    for a, b in zip(float_results, int8_results, strict=True):
        chosen = {tuple(w) for w in b.patch_boxes.tolist()}
        same += sum(tuple(w) in chosen for w in a.patch_boxes.tolist())
        total += len(a.patch_boxes)
    return same / max(total, 1)


def run_set(args: argparse.Namespace, data: DataSet, work: Path) -> dict[str, Any]:
    """Both models on one set: accuracy over every frame, then interleaved latency."""
    from training.evaluate import run_frames
    from training.metrics import summarize

    frames, class_names = load_set(data, args.frames, "pdn-bench int8")
    height, width = frames[0].height, frames[0].width
    paths = export_pair(args, height, width, work)
    backends = {
        name: create_backend("onnxruntime", path, device="cpu", threads=args.threads)
        for name, path in paths.items()
    }
    rows: dict[str, Any] = {}
    evaluated = {}
    for name, backend in backends.items():
        evaluated[name] = run_frames(backend, frames)
        metrics = summarize(evaluated[name], class_names)[0]
        rows[name] = {key: metrics[key] for key in ("AP", "AP_small", "AP50", "objects")}
    decoded = [read_frame(f.path, height, width)[None] for f in frames[:LATENCY_FRAMES]]
    calls = {}
    for name, backend in backends.items():
        runner, turn = StreamRunner(backend), iter(range(10**9))
        calls[name] = lambda r=runner, t=turn: r.step(decoded[next(t) % len(decoded)])
    times = interleaved_timings(calls, dict.fromkeys(calls, args.runs))
    for name, backend in backends.items():
        stats = latency_stats(times[name])
        rows[name].update(latency_ms_p50=stats["median_ms"], latency_ms_p99=stats["p99_ms"])
        rows[name]["size_mb"] = paths[name].stat().st_size / 1e6
        backend.close()
    return {
        "width": width,
        "height": height,
        "frames": len(frames),
        "data": str(data.path),
        "rows": rows,
        "windows_agreeing": window_agreement(evaluated["float"], evaluated["int8"]),
        "speed_ratio": rows["int8"]["latency_ms_p50"] / rows["float"]["latency_ms_p50"],
    }


def targets(sets: dict[str, Any]) -> list[dict[str, Any]]:
    """Issue 14's INT8 targets at 4K, each with its measured figure."""
    if "4K" not in sets:
        return []
    rows, ratio = sets["4K"]["rows"], sets["4K"]["speed_ratio"]
    checks = [
        {
            "name": f"4K: INT8 / float median latency <= {SPEED_RATIO:g}",
            "measured": f"{ratio:.2f}",
            "met": ratio <= SPEED_RATIO,
        }
    ]
    for key in ("AP_small", "AP50"):
        gap = rows["int8"][key] - rows["float"][key]
        checks.append(
            {
                "name": f"4K: |INT8 - float| {key} <= {AP_TOLERANCE:g}",
                "measured": f"{gap:+.4f}",
                "met": abs(gap) <= AP_TOLERANCE,
            }
        )
    return checks


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Every set: export, quantise, evaluate and time both models."""
    start = time.perf_counter()
    sets = datasets(args)
    if not args.data:  # the held-out 4K set instead of compare's synthetic one
        sets = [HELD_OUT_4K if s.name == "4K" else s for s in sets]
    results: dict[str, Any] = {
        "machine": machine_description(),
        "threads": args.threads,
        "onnxruntime": ort.__version__,
        "checkpoint": str(args.checkpoint),
        "checkpoint_md5": file_md5(args.checkpoint),
        "calibration": f"{args.calibration_frames} frames of {args.calibration}",
        "sets": {},
    }
    for data in sets:
        results["sets"][data.name] = run_set(args, data, work)
    results["targets"] = targets(results["sets"])
    results["wall_s"] = time.perf_counter() - start
    return results


def markdown(results: dict[str, Any], command: str) -> str:
    """The report."""
    lines = [
        "# INT8 beside float: latency and accuracy at 1080p, 4K and 8K",
        "",
        f"Produced by `{command}` on {results['machine']}, ONNX Runtime "
        f"{results['onnxruntime']} (CPU, {results['threads']} threads), checkpoint "
        f"`{results['checkpoint']}` (md5 {results['checkpoint_md5']}), INT8 calibrated on "
        f"{results['calibration']}; {results['wall_s'] / 60:.0f} min. Latency: one "
        "`StreamRunner.step` per frame (state fed back), both models timed in alternating "
        "blocks in one process. Accuracy: every frame of each held-out set, as `pdn-eval` "
        "runs it.",
        "",
        "| frame | model | p50 ms | p99 ms | INT8/float p50 | AP | AP_small | AP50 | windows "
        "as float | file MB |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, data in results["sets"].items():
        for model in MODELS:
            row = data["rows"][model]
            ratio = f"{data['speed_ratio']:.2f}" if model == "int8" else ""
            agree = f"{100 * data['windows_agreeing']:.1f} %" if model == "int8" else ""
            lines.append(
                f"| {name} ({data['width']}x{data['height']}, {data['frames']} frames) | "
                f"{model} | {row['latency_ms_p50']:.1f} | {row['latency_ms_p99']:.1f} | {ratio} "
                f"| {row['AP']:.4f} | {row['AP_small']:.4f} | {row['AP50']:.4f} | {agree} | "
                f"{row['size_mb']:.1f} |"
            )
    lines += ["", "| target (issue 14) | measured | met |", "|---|---:|---|"]
    for check in results["targets"]:
        lines.append(
            f"| {check['name']} | {check['measured']} | {'yes' if check['met'] else '**no**'} |"
        )
    lines.append("")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `pdn-bench int8`."""
    add_common_arguments(parser)
    parser.add_argument(
        "--checkpoint", type=Path, default=Path("models/pdn-s-synth4k.pt"), help="weights"
    )
    parser.add_argument(
        "--calibration", type=Path, default=DEFAULT_CALIBRATION, help="calibration images"
    )
    parser.add_argument("--calibration-frames", type=int, default=DEFAULT_FRAMES)
    parser.add_argument(
        "--data",
        action="append",
        metavar="NAME=ANNOTATIONS",
        help="held-out COCO sets (repeat; default "
        + ", ".join(str(d.path) for d in (DEFAULT_DATA[0], HELD_OUT_4K, DEFAULT_DATA[2]))
        + ")",
    )
    parser.add_argument("--frames", type=int, help="first N frames of each set (default all)")
    parser.add_argument("--runs", type=int, default=30, help="timed frames per model and size")


def main(args: argparse.Namespace, command: str) -> int:
    """Run and write bench_int8.md (and results.json) where pdn_bench.reporting says."""
    if args.quick:
        args.frames, args.runs, args.calibration_frames = 3, 5, 2
    if not args.checkpoint.is_file():
        print(f"pdn-bench int8: checkpoint not found: {args.checkpoint}", file=sys.stderr)
        return 2
    try:
        with tempfile.TemporaryDirectory(prefix="pdn-int8-") as work:
            results = run(args, Path(work))
    except (ValueError, FileNotFoundError) as err:
        print(f"pdn-bench int8: {err}", file=sys.stderr)
        return 2
    path = write_report(args, "bench_int8", markdown(results, command), results)
    for check in results["targets"]:
        state = "met" if check["met"] else "MISSED"
        print(f"pdn-bench int8: {check['name']}: {check['measured']} ({state})")
    print(f"pdn-bench int8: report in {path}")
    return 0
