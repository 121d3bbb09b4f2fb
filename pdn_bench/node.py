"""`pdn-bench node`: pdn_node as a process, fed 4K frames at a fixed rate over the SHM-only DDS
profile, against the model's own inference time measured in the same run.

This process renders synthetic 4K frames, times the model alone through the backend the node
uses (before the node starts and after it stops, on the same frames), then starts the
installed pdn_node and publishes the frames to it at `--rate` for a warm-up plus the measured
time, stamping each just before publishing. It records per frame the latency from that stamp
to the detections arriving here, the node's /diagnostics (its own stamp-to-publish latency,
inference time, frames received, processed and dropped), and every second the node process's
resident memory. Last, the transport reference: the same frames at the same rate to a process
that only sends each header back (`pdn_bench.echo`), which is what moving a frame costs before
the node does any work. Report: docs/bench_node.md and docs/bench_node.png at the default
15 Hz, docs/bench_node_<rate>hz.md and .png at another rate.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from pdn_bench.measure import latency_stats, machine_description
from pdn_bench.node_report import (
    CAMERA,
    DEFAULT_RATE_HZ,
    LATENCY_MARGIN_MS,
    QUEUE_GROWTH_LIMIT,
    RSS_GROWTH_LIMIT,
    TRANSPORT_WARMUP_S,
    markdown,
    plot,
    report_stem,
)
from pdn_bench.reporting import add_output_arguments, write_report
from pdn_runtime.onnx_file import DEMO_MODEL


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `pdn-bench node`."""
    parser.add_argument("--model", type=Path, default=DEMO_MODEL, help="4K ONNX model")
    parser.add_argument(
        "--rate", type=float, default=DEFAULT_RATE_HZ, help="frames per second sent"
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="measured time")
    parser.add_argument(
        "--soak-seconds", type=float, default=0.0, help="a soak run of this length instead"
    )
    parser.add_argument("--warmup", type=float, default=10.0, help="unmeasured start (s)")
    parser.add_argument(
        "--transport-seconds",
        type=float,
        default=20.0,
        help="measured time of the transport reference (frames to a process that only echoes)",
    )
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    parser.add_argument("--frames", type=int, default=16, help="distinct frames, cycled")
    parser.add_argument("--model-runs", type=int, default=40, help="model-alone runs, twice")
    add_output_arguments(parser)


def memory_mib(pid: int) -> tuple[float, float, float]:
    """VmRSS, RssAnon and RssShmem of a process in MiB (RSS counts the touched pages of the
    DDS shared-memory segments too; RssAnon is the process's own heap)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "RssAnon", "RssShmem"):
            fields[name] = int(value.split()[0]) / 1024.0
    return fields["VmRSS"], fields["RssAnon"], fields["RssShmem"]


def cpu_seconds(pid: int | None = None) -> float:
    """CPU time (user + system) used so far by one process, or by the whole machine (busy
    time of all cores) when `pid` is None."""
    ticks = os.sysconf("SC_CLK_TCK")
    if pid is None:
        user, nice, system, _idle, _iowait, irq, softirq = (
            int(v) for v in Path("/proc/stat").read_text().split()[1:8]
        )
        return (user + nice + system + irq + softirq) / ticks
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / ticks


def render_frames(count: int) -> list[np.ndarray]:
    """`count` consecutive 4K frames of a synthetic sequence (H x W x 3 RGB)."""
    from training.synth import SceneConfig, SceneSequence

    sequence = SceneSequence((4242, 1), SceneConfig(frames=count))
    return [sequence.render(i).image for i in range(count)]


def model_alone(model: Path, threads: int, frames: list[np.ndarray], runs: int) -> dict[str, float]:
    """The model's inference time through the node's backend, state fed back, frames cycled."""
    from pdn_runtime import StreamRunner, create_backend

    backend = create_backend("onnxruntime", model, device="cpu", threads=threads)
    planar = [np.ascontiguousarray(f.transpose(2, 0, 1)[None]) for f in frames]
    runner = StreamRunner(backend)
    times = []
    for i in range(runs + 2):
        start = time.perf_counter()
        runner.step(planar[i % len(planar)])
        if i >= 2:  # the first runs pay for allocation and caches
            times.append(time.perf_counter() - start)
    backend.close()
    return latency_stats(times)


class Recorder:
    """Collects, from the executor thread, each result's latency (detections from pdn_node,
    or headers from the echo process) and the node's diagnostics."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[tuple[float, float]] = []  # (monotonic time, latency s)
        self.diagnostics: list[tuple[float, dict[str, str]]] = []  # (monotonic time, values)

    def on_detections(self, now_ns: int, stamp_ns: int) -> None:
        with self.lock:
            self.latencies.append((time.monotonic(), (now_ns - stamp_ns) / 1e9))

    def on_diagnostics(self, values: dict[str, str]) -> None:
        with self.lock:
            self.diagnostics.append((time.monotonic(), values))


def node_command(args: argparse.Namespace) -> list[str]:
    """The installed pdn_node with the benchmark's model, backend and camera."""
    from pdn_ros import launcher

    return [
        str(launcher.installed("lib", launcher.PACKAGE, launcher.NODE_EXECUTABLE)),
        *launcher.ros_args(
            None,
            {
                "model_path": str(args.model.resolve()),
                "backend": "onnxruntime",
                "threads": args.threads,
                "cameras": [CAMERA],
            },
        ),
    ]


def echo_command() -> list[str]:
    """The transport reference: a process that sends each image's header straight back."""
    return [sys.executable, "-m", "pdn_bench.echo"]


def stream(
    args: argparse.Namespace,
    frames: list[np.ndarray],
    name: str,
    command: list[str],
    warmup: float,
    seconds: float,
) -> dict[str, Any]:
    """Start `command` (pdn_node or the echo process, called `name` in errors), publish the
    frames for warm-up + `seconds`, record each result's latency and sample the process's
    memory."""
    import rclpy
    from diagnostic_msgs.msg import DiagnosticArray
    from rclpy.executors import SingleThreadedExecutor
    from rclpy.qos import QoSProfile, QoSReliabilityPolicy, qos_profile_sensor_data
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from pdn_bench.echo import ECHO_TOPIC
    from pdn_msgs.msg import DetectionArray
    from pdn_ros import launcher
    from pdn_ros.image_convert import rgb_image_message
    from pdn_ros.messages import stamp_ns
    from pdn_ros.stats import status_values

    os.environ.update(launcher.local_dds_environment())
    rclpy.init()
    bench = rclpy.create_node("pdn_bench_camera")
    recorder = Recorder()
    clock = bench.get_clock()
    reliable = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)
    bench.create_subscription(
        DetectionArray,
        f"{CAMERA}/detections",
        lambda m: recorder.on_detections(clock.now().nanoseconds, stamp_ns(m.header)),
        reliable,
    )
    bench.create_subscription(
        Header,
        ECHO_TOPIC,
        lambda m: recorder.on_detections(clock.now().nanoseconds, stamp_ns(m)),
        reliable,
    )

    def on_diagnostics(message: DiagnosticArray) -> None:
        values = status_values(message, CAMERA)
        if values is not None:
            recorder.on_diagnostics(values)

    bench.create_subscription(DiagnosticArray, "/diagnostics", on_diagnostics, 10)
    publisher = bench.create_publisher(Image, f"{CAMERA}/image", qos_profile_sensor_data)
    messages = [rgb_image_message(f, Header(frame_id="bench_optical_frame")) for f in frames]
    executor = SingleThreadedExecutor()
    executor.add_node(bench)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    node = launcher.start(command)
    timeline: list[tuple[float, float, float, float]] = []  # (t, VmRSS, RssAnon, RssShmem)
    published = 0
    try:
        deadline = time.monotonic() + 120
        while publisher.get_subscription_count() == 0:
            if node.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not subscribe (exit {node.poll()})")
            time.sleep(0.1)
        start = time.monotonic()
        processes = (("machine", None), ("node", node.pid), ("bench", os.getpid()))
        cpu_start = {name: cpu_seconds(pid) for name, pid in processes}
        total = warmup + seconds
        next_sample = start
        while (now := time.monotonic()) < start + total:
            if node.poll() is not None:
                raise RuntimeError(f"{name} exited with status {node.returncode}")
            message = messages[published % len(messages)]
            message.header.stamp = clock.now().to_msg()
            publisher.publish(message)
            published += 1
            if now >= next_sample:
                timeline.append((now - start, *memory_mib(node.pid)))
                next_sample += 1.0
            time.sleep(max(0.0, start + published / args.rate - time.monotonic()))
        cpu = {name: cpu_seconds(pid) - cpu_start[name] for name, pid in processes}
        elapsed = time.monotonic() - start
        time.sleep(2.0)  # the last frames and one more diagnostics message
    finally:
        launcher.stop([node])
        executor.shutdown()
        bench.destroy_node()
        rclpy.try_shutdown()
    with recorder.lock:
        latencies = [(t - start, s) for t, s in recorder.latencies]
        diagnostics = [(t - start, values) for t, values in recorder.diagnostics]
    return {
        "published": published,
        "latencies": latencies,
        "diagnostics": diagnostics,
        "rss": timeline,
        "node_exit": node.returncode,
        "cpu_cores": {name: used / elapsed for name, used in cpu.items()},
    }


def summarize(
    args: argparse.Namespace, run: dict[str, Any], echo: dict[str, Any], before: dict, after: dict
) -> dict:
    """The report's figures and targets from the node's run and the transport reference."""
    measured = [s for t, s in run["latencies"] if t >= args.warmup]
    latency = latency_stats(measured)
    thirds = np.array_split(np.asarray(measured) * 1000.0, 3)
    rss = [sample for sample in run["rss"] if sample[0] >= args.warmup]
    rss_start, rss_end = rss[0][1], rss[-1][1]
    from pdn_ros.stats import TIMINGS

    d = run["diagnostics"][-1][1]
    measured_diagnostics = [v for t, v in run["diagnostics"] if t >= args.warmup + 10.0]
    breakdown = {
        name: float(np.nanmedian([float(v[f"{name}_p50_ms"]) for v in measured_diagnostics]))
        for name in TIMINGS
    }
    model_p50 = (before["median_ms"] + after["median_ms"]) / 2.0
    transport = latency_stats([s for t, s in echo["latencies"] if t >= TRANSPORT_WARMUP_S])
    queue_ratio = float(np.median(thirds[2]) / np.median(thirds[0]))
    growth = (rss_end - rss_start) / rss_start
    return {
        "machine": machine_description(),
        "model": str(args.model),
        "rate_hz": args.rate,
        "frames": args.frames,
        "threads": args.threads,
        "warmup_s": args.warmup,
        "model_alone_before": before,
        "model_alone_after": after,
        "model_alone_p50_ms": model_p50,
        "latency": latency,
        "transport_alone": transport,
        "transport_seconds": echo["seconds"],
        "transport_rss_mib": dict(
            zip(("VmRSS", "RssAnon", "RssShmem"), echo["rss"][-1][1:], strict=True)
        ),
        "latency_thirds_p50_ms": [float(np.median(t)) for t in thirds],
        "published": run["published"],
        "node": {k: d[k] for k in ("received", "processed", "dropped", "bad_frames", "backend")},
        "node_p50_ms": breakdown,
        "processed_hz": len(run["latencies"]) / (args.warmup + run["seconds"]),
        "cpu_cores": {
            "node": run["cpu_cores"]["node"],
            "bench": run["cpu_cores"]["bench"],
            "other": run["cpu_cores"]["machine"]
            - run["cpu_cores"]["node"]
            - run["cpu_cores"]["bench"],
        },
        "rss_mib": {
            "after_warmup": rss_start,
            "end": rss_end,
            "max": max(sample[1] for sample in rss),
            "growth": growth,
            "anon_after_warmup": rss[0][2],
            "anon_end": rss[-1][2],
            "shmem_end": rss[-1][3],
        },
        "targets": {
            "latency": (latency["median_ms"], model_p50 + LATENCY_MARGIN_MS),
            "queue": (queue_ratio, QUEUE_GROWTH_LIMIT),
            "rss": (growth * 100.0, RSS_GROWTH_LIMIT * 100.0),
        },
    }


def main(args: argparse.Namespace, command: str) -> int:
    """Run the benchmark and write the report."""
    if not args.model.is_file():
        print(f"pdn-bench node: {args.model} is missing (the 4K demo model; see docs/results.md)")
        return 2
    seconds = args.soak_seconds or args.seconds
    print(f"rendering {args.frames} 4K frames...", flush=True)
    frames = render_frames(args.frames)
    print("timing the model alone...", flush=True)
    before = model_alone(args.model, args.threads, frames, args.model_runs)
    print(f"streaming {args.rate:g} Hz for {args.warmup:.0f} + {seconds:.0f} s...", flush=True)
    run = stream(args, frames, "pdn_node", node_command(args), args.warmup, seconds)
    run["seconds"] = seconds
    after = model_alone(args.model, args.threads, frames, args.model_runs)
    print(f"transport alone: {args.rate:g} Hz for {args.transport_seconds:.0f} s...", flush=True)
    echo = stream(
        args, frames, "the echo process", echo_command(), TRANSPORT_WARMUP_S, args.transport_seconds
    )
    echo["seconds"] = args.transport_seconds
    results = summarize(args, run, echo, before, after)
    results["seconds"] = seconds
    stem = report_stem(args.rate)
    path = write_report(
        args,
        stem,
        markdown(results, command, bool(args.soak_seconds)),
        results,
        plots=lambda folder: plot(run, args, folder / f"{stem}.png"),
    )
    print(path.read_text())
    return 0
