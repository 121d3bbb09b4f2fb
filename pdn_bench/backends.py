"""`pdn-bench backends`: latency per frame of the inference backends at 1080p, 4K and 8K.

Always ONNX Runtime on the CPU at the three sizes (with its idle threads sleeping, the
backend's default, and at 4K also spinning, ONNX Runtime's own default), and PyTorch on the
CPU at 1080p for reference; where a GPU is present also ONNX Runtime CUDA and PyTorch CUDA at
the three sizes, reported with the GPU's name. Every backend runs through `pdn_runtime`,
the code the node uses, with the memory and controller state fed back after each frame
(counted in the time). pdn-s with random weights (speed does not depend on them) or a checkpoint's.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from tqdm import tqdm

from pdn_bench.measure import interleaved_timings, latency_stats, machine_description
from pdn_bench.reporting import add_common_arguments, write_report
from pdn_model import build, load_checkpoint
from pdn_model.checkpoint import save_checkpoint
from pdn_model.export import to_onnx
from pdn_model.model import PatchDriveNet
from pdn_runtime import Backend, StreamRunner, create_backend
from pdn_runtime.onnxruntime_backend import cuda_provider_available

SIZES: dict[str, tuple[int, int]] = {"1080p": (1080, 1920), "4K": (2160, 3840), "8K": (4320, 7680)}
TORCH_CPU_SIZES = ("1080p",)
SPIN_SIZES = ("4K",)


def sized_model(args: argparse.Namespace, height: int, width: int) -> PatchDriveNet:
    """pdn-s (or --preset) at one input size, with --checkpoint's weights or random ones."""
    if args.checkpoint is None:
        torch.manual_seed(0)
        return build(args.preset, height, width)
    return load_checkpoint(args.checkpoint, input_size=(height, width))


def frame_call(backend: Backend, seed: int) -> Callable[[], None]:
    """One frame of a stream through the stream runner: a random frame (written into the
    runner's buffer once), the model, the state fed back, the detections copied out."""
    runner = StreamRunner(backend)
    runner.image[...] = np.random.default_rng(seed).integers(
        0, 256, runner.image.shape, dtype=np.uint8
    )
    return lambda: runner.step()


def gpu_name() -> str | None:
    """The first CUDA GPU's name as torch sees it, or None without one."""
    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def run(args: argparse.Namespace, work: Path) -> dict:
    """Export the models into `work`, time every backend available here, return the results."""
    gpu = gpu_name()
    rows: dict[str, dict] = {}
    calls: dict[str, Callable[[], None]] = {}
    for size, (height, width) in tqdm(SIZES.items(), desc="export models", unit="size"):
        model = sized_model(args, height, width)
        onnx_path = to_onnx(model, work / f"pdn-{size}.onnx")
        checkpoint = save_checkpoint(model, work / f"pdn-{size}.pt")
        cpu = {"device": "cpu", "threads": args.threads}
        setups = [("onnxruntime", "cpu", onnx_path, cpu)]
        if size in SPIN_SIZES:
            setups.append(("onnxruntime", "cpu, spinning", onnx_path, cpu | {"spin": True}))
        if size in TORCH_CPU_SIZES:
            setups.append(("torch", "cpu", checkpoint, {"device": "cpu"}))
        if gpu is not None and cuda_provider_available():
            setups.append(("onnxruntime", "cuda", onnx_path, {"device": "cuda"}))
        if gpu is not None:
            setups.append(("torch", "cuda", checkpoint, {"device": "cuda"}))
        for kind, device, path, options in setups:
            backend = create_backend(kind, path, **options)
            name = f"{kind} {device} {size}"
            rows[name] = {
                "backend": kind,
                "device": device,
                "size": size,
                "width": width,
                "height": height,
                "describe": backend.describe(),
            }
            calls[name] = frame_call(backend, seed=len(calls))
    runs = {name: args.runs for name in calls}
    with tqdm(total=sum(runs.values()), desc="time frames", unit="frame") as bar:
        times = interleaved_timings(calls, runs, progress=bar)
    for name, t in times.items():
        rows[name].update(latency_stats(t))
    return {
        "machine": machine_description(),
        "gpu": gpu,
        "threads": args.threads,
        "onnxruntime": ort.__version__,
        "torch": torch.__version__,
        "preset": args.preset,
        "weights": str(args.checkpoint) if args.checkpoint else "random (seed 0)",
        "rows": rows,
    }


def report(results: dict, command: str) -> str:
    """The Markdown report."""
    gpu = results["gpu"] or "no GPU on this machine, so no CUDA rows"
    lines = [
        "# Backend benchmark: latency per frame",
        "",
        f"Produced by `{command}` on {results['machine']} ({gpu}), ONNX Runtime "
        f"{results['onnxruntime']} ({results['threads']} CPU threads), torch "
        f"{results['torch']}, preset `{results['preset']}`, weights {results['weights']}. "
        "Each frame is one `StreamRunner.step` of `pdn_runtime` (`Backend.run`, the state "
        "update, the detections copied out), batch 1; the backends were timed in one run, in "
        "rotating blocks of 5 consecutive frames (the first frame after each switch untimed).",
        "",
        "| backend | device | frame | median ms | p99 ms | runs |",
        "|---|---|---|---:|---:|---:|",
    ]
    for row in results["rows"].values():
        lines.append(
            f"| {row['backend']} | {row['device']} | {row['size']} ({row['width']}x"
            f"{row['height']}) | {row['median_ms']:.1f} | {row['p99_ms']:.1f} | {row['runs']} |"
        )
    lines += ["", "Backends as they described themselves:", ""]
    lines += [f"- {name}: {row['describe']}" for name, row in results["rows"].items()]
    return "\n".join(lines) + "\n"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `pdn-bench backends`."""
    add_common_arguments(parser)
    parser.add_argument("--checkpoint", type=Path, help="trained weights (random if absent)")
    parser.add_argument("--runs", type=int, default=30, help="timed frames per backend and size")


def main(args: argparse.Namespace, command: str) -> int:
    """Run, write bench_backends.md (and results.json)."""
    if args.quick:
        args.runs = 3
    with tempfile.TemporaryDirectory(prefix="pdn-bench-") as work:
        results = run(args, Path(work))
    path = write_report(args, "bench_backends", report(results, command), results)
    for name, row in results["rows"].items():
        print(
            f"pdn-bench backends: {name}: median {row['median_ms']:.1f} ms, "
            f"p99 {row['p99_ms']:.1f} ms"
        )
    print(f"pdn-bench backends: report in {path}")
    return 0
