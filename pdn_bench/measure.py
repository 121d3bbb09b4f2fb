"""Timing and memory measurement shared by the benchmarks."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from pdn_model.onnx_graph import sink_input_cast
from pdn_runtime.onnxruntime_backend import CPU, create_session
from pdn_runtime.timing import percentiles_ms


def latency_stats(seconds: list[float]) -> dict[str, float]:
    """Median, p99, mean and count of per-call times, in milliseconds."""
    median, p99 = percentiles_ms(seconds)
    return {
        "median_ms": median,
        "p99_ms": p99,
        "mean_ms": float(np.mean(seconds) * 1000.0),
        "runs": len(seconds),
    }


def interleaved_timings(
    calls: dict[str, Callable[[], object]],
    runs: dict[str, int],
    block: int = 5,
    progress=None,
) -> dict[str, list[float]]:
    """Time several calls side by side: rounds of `block` consecutive runs of each call in
    turn, so drift in machine load hits all of them alike. The first run of every block is
    untimed: it pays for switching (caches, memory arenas), not for the call itself."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    while any(len(times[name]) < runs[name] for name in calls):
        for name, call in calls.items():
            todo = min(block, runs[name] - len(times[name]))
            if todo <= 0:
                continue
            call()
            for _ in range(todo):
                start = time.perf_counter()
                call()
                times[name].append(time.perf_counter() - start)
                if progress is not None:
                    progress.update(1)
    return times


def onnxruntime_session(
    path: str | Path, threads: int, sink_cast: bool = True
) -> ort.InferenceSession:
    """A CPU ONNX Runtime session of an exported model (ONNX Runtime's spinning threads), by
    default with the input cast sunk past the gathers (`sink_cast=False`: as exported)."""
    graph = onnx.load(str(path))
    if sink_cast:
        graph = sink_input_cast(graph)
    return create_session(graph, [CPU], threads, spin=True)


def peak_rss_mb() -> float:
    """This process's peak resident memory (VmHWM) in MiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    raise RuntimeError("VmHWM not found in /proc/self/status")


def machine_description() -> str:
    """CPU model and core count, for report headers."""
    model = platform.processor() or "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return f"{model}, {os.cpu_count()} logical CPUs"
