"""`pdn-bench compare`: PatchDriveNet against the same weights with no patches (global only),
over every window (dense tiled) and under SAHI (sliced inference), on the same held-out frames
at 1080p, 4K and 8K: GFLOPs, latency, peak memory, AP and AP_small; plus a sweep of patch
budgets (total windows per frame) drawn as latency against AP_small, so a budget can be
picked from the curve.

SAHI runs through the `sahi` library itself (`pdn_bench.sahi_model`). Every method and budget
is a separate ONNX export of the same checkpoint, run in a fresh process
(`pdn_bench.compare_worker`) that imports no torch. The report and plots are written by
`pdn_bench.compare_report`.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
from sahi.slicing import get_slice_bboxes
from tqdm import tqdm

from pdn_bench.budget import (
    AP_SMALL_SHARE,
    DEFAULT_BUDGETS,
    SPEEDUP_8K,
    parse_budgets,
    split_budget,
    sweep_verdict,
)
from pdn_bench.compare_report import plot, report
from pdn_bench.compare_sets import (
    DENSE_TILED,
    GLOBAL,
    METHODS,
    PDN,
    DataSet,
    datasets,
    load_set,
)
from pdn_bench.compare_worker import run_in_process
from pdn_bench.measure import latency_stats, machine_description
from pdn_bench.reporting import add_common_arguments, write_report
from pdn_bench.sahi_model import SAHI, SAHI_SETTINGS
from training.metrics import FrameResult, summarize

SPEEDUPS = {"4K": 5.0, "8K": SPEEDUP_8K}  # SAHI / PatchDriveNet median latency at least
DENSE_SPEEDUP_4K = 5.0  # dense tiled / PatchDriveNet median latency at 4K at least
QUICK_FRAMES = 3
# Where the default budget lives: the checkpoint's config, used at every resolution.
DEFAULT_BUDGET_SOURCE = (
    "pdn_model.config.default_patches: the checkpoint's patches_per_scale up to 4K, scaled "
    "with the frame's linear size above it, as pdn-export does"
)


def _load(args: argparse.Namespace, height: int, width: int) -> Any:
    """The checkpoint (or random --preset weights) built for one frame size."""
    import torch

    from pdn_model import build, load_checkpoint

    if args.checkpoint is None:
        torch.manual_seed(0)
        return build(args.preset, height, width)
    return load_checkpoint(args.checkpoint, input_size=(height, width))


def _modes(model: Any, budgets: tuple[int, ...]) -> tuple[dict[str, Any], dict[int, str]]:
    """The graphs to export at this size, label -> patch counts per scale (or DENSE), and
    the label that measures each budget of the sweep (a budget equal to the default or to
    0 reuses that row rather than running twice)."""
    from pdn_model.config import default_patches
    from pdn_model.model import DENSE

    default = default_patches(model.config)
    model.set_patches(DENSE)
    limits = model.window_counts()
    modes: dict[str, Any] = {
        PDN: default,
        GLOBAL: (0,) * len(default),
        DENSE_TILED: DENSE,
    }
    by_budget = {}
    for budget in budgets:
        counts = split_budget(budget, default, limits)
        label = next((name for name, mode in modes.items() if mode == counts), None)
        if label is None:
            label = f"budget {budget}"
            modes[label] = counts
        by_budget[budget] = label
    return modes, by_budget


def _export(model: Any, modes: dict[str, Any], work: Path, stem: str) -> dict[str, tuple]:
    """Export `model` in each mode; returns label -> (ONNX path, GFLOPs per forward pass)."""
    from pdn_bench.model import count_gflops
    from pdn_model.export import to_onnx

    exported = {}
    for label, mode in tqdm(modes.items(), desc=f"export {stem}", unit="graph", leave=False):
        model.set_patches(mode)
        path = to_onnx(model, work / f"{stem}-{label.replace(' ', '_')}.onnx")
        exported[label] = (path, count_gflops(model))
    return exported


def _score(frames: list, class_names: list[str], detections: list[list[list]]) -> dict[str, float]:
    """training.metrics.summarize of one method's detections on the set's frames."""
    scored = [
        FrameResult(
            f.image_id,
            f.width,
            f.height,
            f.boxes,
            f.labels,
            np.array(boxes, np.float32).reshape(-1, 4),
            np.array(scores, np.float32),
            np.array(labels, np.int64),
        )
        for f, (boxes, scores, labels) in zip(frames, detections, strict=True)
    ]
    return summarize(scored, class_names)[0]


def _measure(job: dict[str, Any], frames: list, class_names: list[str], work: Path) -> dict:
    """Run one job in a fresh process and score it: one row of a set's table."""
    measured = run_in_process(job, work)
    metrics = _score(frames, class_names, measured["detections"])
    times = latency_stats(measured["latencies_s"])
    row = {
        "latency_ms_p50": times["median_ms"],
        "latency_ms_p99": times["p99_ms"],
        "peak_rss_mb": measured["peak_rss_mb"],
        **{key: metrics[key] for key in ("AP", "AP_small", "AP50", "objects")},
        **{key: metrics[key] for key in ("recall_0-16px", "recall_16-32px")},
    }
    if job["method"] in SAHI_SETTINGS:
        pure = latency_stats(measured["inference_s"])
        row.update(inference_ms_p50=pure["median_ms"], inference_ms_p99=pure["p99_ms"])
    return row


def _run_set(args: argparse.Namespace, data: DataSet, slice_model: tuple, work: Path) -> dict:
    """Every method and budget on one set: export, run each in its own process, score."""
    frames, class_names = load_set(data, args.frames, "pdn-bench compare")
    height, width = frames[0].height, frames[0].width
    model = _load(args, height, width)
    modes, by_budget = _modes(model, args.budgets)
    graphs = _export(model, modes, work, data.name)
    slices = len(
        get_slice_bboxes(
            height,
            width,
            args.slice,
            args.slice,
            overlap_height_ratio=args.overlap,
            overlap_width_ratio=args.overlap,
        )
    )
    for method in SAHI_SETTINGS:
        graphs[method] = (slice_model[0], slice_model[1] * slices)
    rows: dict[str, Any] = {}
    for label in tqdm(graphs, desc=f"run {data.name}", unit="method"):
        job = {
            "name": data.name,
            "method": label,
            "model": str(graphs[label][0]),
            "frames": [[str(f.path), f.video_id] for f in frames],
            "threads": args.threads,
            "slice": args.slice,
            "overlap": args.overlap,
        }
        rows[label] = {"gflops": graphs[label][1], **_measure(job, frames, class_names, work)}
        if label in SAHI_SETTINGS:
            rows[label]["slices"] = slices
    budgets = [
        {"budget": budget, "patches": list(modes[label]), "measured_as": label, **rows[label]}
        for budget, label in by_budget.items()
    ]
    return {
        "width": width,
        "height": height,
        "frames": len(frames),
        "objects": rows[PDN]["objects"],
        "data": str(data.path),
        "default_patches": list(modes[PDN]),
        "methods": {method: rows[method] for method in METHODS},
        "budgets": budgets,
    }


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Export, run every method and budget on every set in its own process, score and collect."""
    start = time.perf_counter()
    sets = datasets(args)
    from pdn_model.model import DENSE

    slice_net = _load(args, args.slice, args.slice)
    slice_model = _export(slice_net, {SAHI: DENSE}, work, f"slice{args.slice}")[SAHI]
    results: dict[str, Any] = {
        "machine": machine_description(),
        "load_average_at_start": os.getloadavg()[0],
        "threads": args.threads,
        "onnxruntime": ort.__version__,
        "sahi_version": version("sahi"),
        "weights": str(args.checkpoint) if args.checkpoint else f"random {args.preset}",
        "default_budget_source": DEFAULT_BUDGET_SOURCE,
        "sahi": {
            "slice": args.slice,
            "overlap": args.overlap,
            "perform_standard_pred": False,
            "class_agnostic": False,
            "slice_gflops": slice_model[1],
            "settings": SAHI_SETTINGS,
        },
        "sets": {},
    }
    for data in sets:
        results["sets"][data.name] = _run_set(args, data, slice_model, work)
    results["sweeps"] = {
        name: sweep_verdict(data["budgets"], *sahi_reference(data["methods"]))
        for name, data in results["sets"].items()
        if data["budgets"]
    }
    results["targets"] = targets(results)
    results["wall_s"] = time.perf_counter() - start
    return results


def sahi_reference(rows: dict[str, Any]) -> tuple[float, float]:
    """SAHI with the benefit of its two settings: its better AP_small, its lower latency."""
    return (
        max(rows[m]["AP_small"] for m in SAHI_SETTINGS),
        min(rows[m]["latency_ms_p50"] for m in SAHI_SETTINGS),
    )


def _check(name: str, value: float, minimum: float) -> dict[str, Any]:
    """One target row: a measured ratio against its minimum."""
    return {"name": f"{name} >= {minimum:g}", "measured": f"{value:.2f}", "met": value >= minimum}


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """The issue's targets that these results speak to, each with its measured figures."""
    checks = []
    for name, minimum in SPEEDUPS.items():
        if name not in results["sets"]:
            continue
        rows = results["sets"][name]["methods"]
        sahi_ap, sahi_ms = sahi_reference(rows)
        pdn = rows[PDN]
        checks.append(
            _check(
                f"{name}: SAHI (faster setting) / PatchDriveNet median latency",
                sahi_ms / pdn["latency_ms_p50"],
                minimum,
            )
        )
        if name == "4K":
            dense = rows[DENSE_TILED]
            checks += [
                _check(
                    "4K: PatchDriveNet AP_small / SAHI (better setting) AP_small",
                    pdn["AP_small"] / max(sahi_ap, 1e-9),
                    AP_SMALL_SHARE,
                ),
                _check(
                    "4K: PatchDriveNet AP_small / dense tiled AP_small",
                    pdn["AP_small"] / max(dense["AP_small"], 1e-9),
                    AP_SMALL_SHARE,
                ),
                _check(
                    "4K: dense tiled / PatchDriveNet median latency",
                    dense["latency_ms_p50"] / pdn["latency_ms_p50"],
                    DENSE_SPEEDUP_4K,
                ),
            ]
    sweep = results.get("sweeps", {}).get("8K")
    if sweep is not None:
        checks.append(budget_check(sweep))
    return checks


def budget_check(sweep: dict[str, Any]) -> dict[str, Any]:
    """The 8K sweep target: a budget with >= 0.9x SAHI's AP_small at >= 10x lower latency."""
    name = (
        f"8K: a budget with AP_small >= {AP_SMALL_SHARE:g}x SAHI's at >= {SPEEDUP_8K:g}x "
        "lower latency"
    )
    if sweep["met"]:
        first = sweep["met"][0]
        measured = (
            f"budget {first['budget']}: {first['ap_share']:.2f}x AP_small, "
            f"{first['speedup']:.1f}x faster"
        )
        return {"name": name, "measured": measured, "met": True}
    fast, accurate = sweep["best_share_when_fast"], sweep["best_speedup_when_accurate"]
    parts = ["no budget does"]
    if fast:
        parts.append(
            f"best AP_small share at >= {SPEEDUP_8K:g}x: {fast['ap_share']:.2f}x "
            f"(budget {fast['budget']})"
        )
    if accurate:
        parts.append(
            f"best speed-up at >= {AP_SMALL_SHARE:g}x AP_small: {accurate['speedup']:.1f}x "
            f"(budget {accurate['budget']})"
        )
    return {"name": name, "measured": "; ".join(parts), "met": False}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `pdn-bench compare`."""
    add_common_arguments(parser)
    parser.add_argument(
        "--checkpoint",
        type=Path,
        default=Path("models/pdn-s-synth4k.pt"),
        help="trained weights (default the demo model)",
    )
    parser.add_argument(
        "--random-weights",
        dest="checkpoint",
        action="store_const",
        const=None,
        help="random --preset weights instead (speed only)",
    )
    parser.add_argument(
        "--data",
        action="append",
        metavar="NAME=ANNOTATIONS",
        help="held-out COCO sets (repeat; default 1080p, 4K and 8K synthetic)",
    )
    parser.add_argument("--frames", type=int, help="first N frames of each set (default all)")
    parser.add_argument("--slice", type=int, default=512, help="SAHI slice size (default 512)")
    parser.add_argument("--overlap", type=float, default=0.2, help="SAHI overlap (default 0.2)")
    parser.add_argument(
        "--budgets",
        type=parse_budgets,
        default=DEFAULT_BUDGETS,
        help="total windows per frame to sweep, split across the scales in the model's "
        f"default ratio (default {','.join(map(str, DEFAULT_BUDGETS))}; '' for none)",
    )


def main(args: argparse.Namespace, command: str) -> int:
    """Run and write benchmarks.md, its plots and results.json (see pdn_bench.reporting for
    where). Missed targets are in the report; the exit status is 2 only for bad input
    (arguments, a missing model or data set) and 1 for a method that failed."""
    if args.quick:
        args.frames = min(args.frames or QUICK_FRAMES, QUICK_FRAMES)
    if args.frames is not None and args.frames < 1:
        return _fail("--frames must be at least 1", 2)
    if args.checkpoint is not None and not args.checkpoint.is_file():
        return _fail(
            f"checkpoint not found: {args.checkpoint} (pass --checkpoint, or --random-weights "
            "for speed only)",
            2,
        )
    try:
        with tempfile.TemporaryDirectory(prefix="pdn-compare-") as work:
            results = run(args, Path(work))
    except (ValueError, FileNotFoundError) as err:
        return _fail(str(err), 2)
    except RuntimeError as err:
        return _fail(str(err), 1)
    path = write_report(
        args,
        "benchmarks",
        report(results, command),
        results,
        plots=lambda folder: plot(results, folder),
    )
    for check in results["targets"]:
        print(
            f"pdn-bench compare: {check['name']}: {check['measured']} "
            f"({'met' if check['met'] else 'MISSED'})"
        )
    print(f"pdn-bench compare: report in {path}")
    return 0


def _fail(message: str, status: int) -> int:
    """Print `message` as the command's error and return `status`."""
    print(f"pdn-bench compare: {message}", file=sys.stderr)
    return status
