"""`pdn-bench model`: PatchDriveNet against the same weights over every window (dense
tiled) and with no patches (global stream only), on ONNX Runtime, measured in one run.

Reports GFLOPs (PyTorch's FlopCounterMode; one multiply-add = 2 FLOPs), median and p99
latency per frame at 4K, and latency and peak memory of the 8K model in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import onnxruntime as ort
import torch
from torch.utils.flop_counter import FlopCounterMode
from tqdm import tqdm

from pdn_bench.measure import (
    interleaved_timings,
    latency_stats,
    machine_description,
    onnxruntime_session,
)
from pdn_bench.reporting import add_common_arguments, write_report
from pdn_model import build
from pdn_model.contract import INPUT_NAMES
from pdn_model.export import example_inputs, to_onnx
from pdn_model.model import DENSE, PatchDriveNet

MODES = {"patchdrivenet": None, "dense tiled": DENSE, "global only": "zero"}
# The same PatchDriveNet graph as exported (full-frame cast first, as TensorRT needs).
UNSUNK = "patchdrivenet, cast not sunk"
COLORS = {"patchdrivenet": "tab:green", UNSUNK: "yellowgreen", "dense tiled": "tab:red",
          "global only": "tab:gray"}
TARGETS = {"median_ms_4k": 100.0, "flops_ratio": 6.0, "latency_ratio": 4.0, "peak_mb_8k": 4096.0}


def count_gflops(model: PatchDriveNet) -> float:
    """FLOPs of one forward pass at batch 1, in GFLOP."""
    with FlopCounterMode(display=False) as counter:
        model(*example_inputs(model))
    return counter.get_total_flops() / 1e9


def set_mode(model: PatchDriveNet, mode: str | None) -> None:
    """Default patch counts (None), every window (DENSE) or none ("zero")."""
    if mode is None:
        model.set_patches(model.config.patches_per_scale)
    elif mode == "zero":
        model.set_patches((0,) * model.config.num_scales)
    else:
        model.set_patches(mode)


def run(args: argparse.Namespace, work: Path) -> dict:
    """Export the graphs into `work`, time them, and return every figure of the report."""
    torch.manual_seed(0)
    model = build(args.preset, 2160, 3840)
    results: dict = {
        "machine": machine_description(),
        "threads": args.threads,
        "onnxruntime": ort.__version__,
        "torch": torch.__version__,
        "preset": args.preset,
        "modes": {},
    }
    sessions, feeds = {}, None
    for name, mode in tqdm(MODES.items(), desc="export 4K graphs", unit="graph"):
        set_mode(model, mode)
        path = to_onnx(model, work / f"{name.replace(' ', '_')}.onnx")
        results["modes"][name] = {
            "patches": sum(model.window_counts()),
            "gflops": count_gflops(model),
        }
        sessions[name] = onnxruntime_session(path, args.threads)
        if mode is None:
            sessions[UNSUNK] = onnxruntime_session(path, args.threads, sink_cast=False)
            results["modes"][UNSUNK] = dict(results["modes"][name])
        if feeds is None:
            feeds = {n: t.numpy() for n, t in zip(INPUT_NAMES, example_inputs(model), strict=True)}
    runs = {name: args.runs for name in sessions}
    runs["dense tiled"] = args.dense_runs
    calls = {name: (lambda s=s: s.run(None, feeds)) for name, s in sessions.items()}
    with tqdm(total=sum(runs.values()), desc="time 4K frames", unit="frame") as bar:
        times = interleaved_timings(calls, runs, progress=bar)
    for name, t in times.items():
        results["modes"][name].update(latency_stats(t))

    set_mode(model, None)
    big = build(args.preset, 4320, 7680)
    big.load_state_dict(model.state_dict())
    path_8k = to_onnx(big, work / "patchdrivenet_8k.onnx")
    print("running the 8K model in a fresh process ...", flush=True)
    probe = subprocess.run(
        [sys.executable, "-m", "pdn_bench.run_onnx", str(path_8k), "--runs", str(args.runs_8k),
         "--threads", str(args.threads)],
        check=True, capture_output=True, text=True,
    )
    results["8k"] = json.loads(probe.stdout.strip().splitlines()[-1])
    results["8k"]["gflops"] = count_gflops(big)

    pdn, dense = results["modes"]["patchdrivenet"], results["modes"]["dense tiled"]
    results["ratios"] = {
        "flops_ratio": dense["gflops"] / pdn["gflops"],
        "latency_ratio": dense["median_ms"] / pdn["median_ms"],
    }
    results["targets"] = {
        "median_ms_4k": [pdn["median_ms"], pdn["median_ms"] <= TARGETS["median_ms_4k"]],
        "flops_ratio": [results["ratios"]["flops_ratio"],
                        results["ratios"]["flops_ratio"] >= TARGETS["flops_ratio"]],
        "latency_ratio": [results["ratios"]["latency_ratio"],
                          results["ratios"]["latency_ratio"] >= TARGETS["latency_ratio"]],
        "peak_mb_8k": [results["8k"]["peak_rss_mb"],
                       results["8k"]["peak_rss_mb"] <= TARGETS["peak_mb_8k"]],
    }
    return results


def report(results: dict, command: str) -> str:
    """The Markdown report."""
    lines = [
        "# Model benchmark: PatchDriveNet vs dense tiled vs global only",
        "",
        f"Produced by `{command}` on {results['machine']}, ONNX Runtime "
        f"{results['onnxruntime']} (CPU, {results['threads']} threads), torch "
        f"{results['torch']}, preset `{results['preset']}`, random weights (speed and memory do "
        "not depend on the weights). The graphs share one set of weights and were timed in "
        "one run, in rotating blocks of 5 consecutive frames per method (the first frame "
        "after each switch untimed); latency is per 4K frame (3840x2160, batch 1), with the "
        "input cast sunk for ONNX Runtime unless the row says otherwise (docs/model.md).",
        "",
        "| method | patches | GFLOP | median ms | p99 ms | runs |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, m in results["modes"].items():
        lines.append(
            f"| {name} | {m['patches']} | {m['gflops']:.2f} | {m['median_ms']:.1f} | "
            f"{m['p99_ms']:.1f} | {m['runs']} |"
        )
    k8 = results["8k"]
    lines += [
        "",
        f"8K (7680x4320), same weights, fresh process: {k8['gflops']:.2f} GFLOP, median "
        f"{k8['median_ms']:.1f} ms, p99 {k8['p99_ms']:.1f} ms over {k8['runs']} runs, peak "
        f"resident memory {k8['peak_rss_mb']:.0f} MiB.",
        "",
        "| target (issue 3) | measured | met |",
        "|---|---:|---|",
    ]
    names = {
        "median_ms_4k": "4K median <= 100 ms",
        "flops_ratio": "dense / PatchDriveNet FLOPs >= 6",
        "latency_ratio": "dense / PatchDriveNet latency >= 4",
        "peak_mb_8k": "8K peak memory < 4096 MiB",
    }
    for key, (value, met) in results["targets"].items():
        lines.append(f"| {names[key]} | {value:.2f} | {'yes' if met else 'NO'} |")
    lines += ["", "![latency and FLOPs](bench_model.png)", ""]
    return "\n".join(lines)


def plot(results: dict, path: Path) -> None:
    """Bar charts of median latency and GFLOPs per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["modes"])
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
    for ax, key, label in ((axes[0], "median_ms", "median latency (ms), 4K"),
                           (axes[1], "gflops", "GFLOP per frame, 4K")):
        values = [results["modes"][n][key] for n in names]
        ax.bar(range(len(names)), values, color=[COLORS[n] for n in names])
        ax.set_xticks(range(len(names)), [n.replace(", ", ",\n") for n in names], fontsize=8)
        ax.set_title(label)
        for i, v in enumerate(values):
            ax.text(i, v, f"{v:.1f}", ha="center", va="bottom")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `pdn-bench model`."""
    add_common_arguments(parser)
    parser.add_argument("--runs", type=int, default=40, help="timed frames per cheap method")
    parser.add_argument("--dense-runs", type=int, default=15, help="timed dense frames")
    parser.add_argument("--runs-8k", type=int, default=10, help="timed 8K frames")


def main(args: argparse.Namespace, command: str) -> int:
    """Run, write bench_model.md and .png (and results.json); missed targets are in the
    report, not the exit status."""
    if args.quick:
        args.runs, args.dense_runs, args.runs_8k = 8, 3, 2
    with tempfile.TemporaryDirectory(prefix="pdn-bench-") as work:
        results = run(args, Path(work))
    path = write_report(
        args,
        "bench_model",
        report(results, command),
        results,
        plots=lambda folder: plot(results, folder / "bench_model.png"),
    )
    pdn = results["modes"]["patchdrivenet"]
    print(
        f"pdn-bench model: 4K median {pdn['median_ms']:.1f} ms (p99 {pdn['p99_ms']:.1f}), "
        f"dense/pdn FLOPs {results['ratios']['flops_ratio']:.1f}x, latency "
        f"{results['ratios']['latency_ratio']:.1f}x, 8K peak "
        f"{results['8k']['peak_rss_mb']:.0f} MiB -> {path}"
    )
    return 0

