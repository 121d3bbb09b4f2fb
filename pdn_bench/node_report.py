"""The report of `pdn-bench node`: the targets, the Markdown text (where the time goes, CPU
use) and the plot of memory and latency over time."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

import numpy as np

CAMERA = "bench"
TRANSPORT_WARMUP_S = 3.0
LATENCY_MARGIN_MS = 20.0
RSS_GROWTH_LIMIT = 0.05
QUEUE_GROWTH_LIMIT = 1.25  # last-third latency p50 over first-third p50
OTHER_CPU_LIMIT = 0.1  # cores other processes may use before a run counts as not idle
DEFAULT_RATE_HZ = 15.0


def report_stem(rate: float) -> str:
    """docs/<stem>.md and .png: bench_node at the default rate, bench_node_<rate>hz else."""
    return "bench_node" if rate == DEFAULT_RATE_HZ else f"bench_node_{rate:g}hz"


def plot(run: dict[str, Any], args: argparse.Namespace, path: Path) -> None:
    """Resident memory and latency over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_rss, ax_lat) = plt.subplots(2, 1, figsize=(9, 5.5), sharex=True)
    times, rss, anon, shmem = np.array(run["rss"]).T
    ax_rss.plot(times, rss, color="tab:blue", label="VmRSS")
    ax_rss.plot(times, anon, color="tab:green", label="RssAnon (heap)")
    ax_rss.plot(times, shmem, color="tab:purple", label="RssShmem (DDS segments)")
    ax_rss.set_ylabel("pdn_node memory (MiB)")
    ax_rss.axvline(args.warmup, color="gray", linestyle=":", label="end of warm-up")
    ax_rss.legend(loc="lower right")
    t, latency = np.array(run["latencies"]).T
    ax_lat.scatter(t, latency * 1000.0, s=3, color="tab:orange", label="per frame")
    window = max(1, int(args.rate * 10))
    if len(latency) >= window:
        rolling = np.convolve(latency, np.ones(window) / window, mode="valid") * 1000.0
        ax_lat.plot(t[window - 1 :], rolling, color="black", label="10 s mean")
    ax_lat.set_ylabel("stamp to detections (ms)")
    ax_lat.set_xlabel("time since the first frame (s)")
    ax_lat.legend(loc="upper right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def where_time_goes(results: dict) -> str:
    """One paragraph: the latency split into its parts, against the frame period and the
    floor that moving the frame and the model alone set."""
    part = results["node_p50_ms"]
    period = 1000.0 / results["rate_hz"]
    cycle = part["convert"] + part["inference"]
    model = results["model_alone_p50_ms"]
    transport = results["transport_alone"]["median_ms"]
    floor = transport + model
    limit = results["targets"]["latency"][1]
    pace = (
        "so it keeps up with the camera"
        if cycle < period
        else f"so it processes {results['processed_hz']:.1f} of {results['rate_hz']:g} frames "
        "per second and drops the rest in the slot, which keeps the latency flat instead of "
        "growing"
    )
    text = (
        f"Where the time goes (p50): {part['transport']:.0f} ms from the stamp into the node's "
        f"callback, {part['wait']:.0f} ms in the slot, {part['convert']:.0f} ms conversion, "
        f"{part['inference']:.0f} ms inference (the model alone: {model:.0f} ms). A frame "
        f"arrives every {period:.0f} ms and the worker needs about {cycle:.0f} ms per frame, "
        f"{pace}. Moving the frame alone (transport reference) takes {transport:.0f} ms, so "
        f"the frame's trip plus the model alone come to {floor:.0f} ms"
    )
    if floor > limit:
        text += (
            f", {floor - limit:.0f} ms above the latency limit of {limit:.0f} ms before any "
            "conversion, waiting or sharing of the CPU: moving the frame alone takes more than "
            f"the {LATENCY_MARGIN_MS:.0f} ms margin, so on this machine no subscriber to this "
            "publisher can meet the limit"
        )
    return text + f"; the node adds {results['latency']['median_ms'] - floor:.0f} ms to that."


def cpu_line(cores: dict[str, float]) -> str:
    """CPU use during the run, and a warning when other processes took a noticeable share."""
    line = (
        f"CPU used during the run, in cores of {os.cpu_count()}: pdn_node {cores['node']:.2f}, "
        f"this benchmark process {cores['bench']:.2f}, everything else {cores['other']:.2f}."
    )
    if cores["other"] > OTHER_CPU_LIMIT:
        line += " **The machine was not idle: these figures are not representative.**"
    return line


def markdown(results: dict, command: str, soak: bool) -> str:
    """The report."""
    lat, echo, before, after = (
        results["latency"],
        results["transport_alone"],
        results["model_alone_before"],
        results["model_alone_after"],
    )
    node, rss, targets = results["node"], results["rss_mib"], results["targets"]
    node_note = (
        "In-node figures are the median over the measured time of the node's own per-second "
        "/diagnostics p50 (each over its last 10 s)."
    )
    met = {
        "latency": targets["latency"][0] <= targets["latency"][1],
        "queue": targets["queue"][0] <= targets["queue"][1],
        "rss": targets["rss"][0] < targets["rss"][1],
    }
    yes = {True: "yes", False: "**no**"}
    seconds = results["seconds"]
    lines = [
        "# Node benchmark: pdn_node at 4K, 15 Hz, on this CPU"
        if results["rate_hz"] == 15
        else f"# Node benchmark: pdn_node at 4K, {results['rate_hz']:g} Hz",
        "",
        f"Produced by `{command}` on {results['machine']}, model `{results['model']}`, "
        f"ONNX Runtime on the CPU with {results['threads']} intra-op threads, the SHM-only Fast "
        f"DDS profile. {'A soak run: ' if soak else ''}{results['warmup_s']:.0f} s of warm-up, "
        f"then {seconds:.0f} s measured, on an otherwise idle machine.",
        "",
        f"Method: this process publishes 3840x2160 rgb8 frames ({results['frames']} synthetic "
        "frames, cycled) "
        f"to `{CAMERA}/image` with sensor-data QoS, stamping each just before `publish()`; "
        "pdn_node (a separate process, the installed executable) converts, infers and "
        f"publishes `{CAMERA}/detections`; latency is from the stamp to the detections "
        "arriving back here, so it includes serialising and moving the 25 MB frame, "
        "deserialising it in the node, the wait in the node's newest-frame slot, conversion, "
        "inference and publishing. The model alone is timed through the same backend in this "
        "process on the same frames, before the node starts and after it stops. The transport "
        "reference sends the same frames at the same rate, after the node has stopped, to a "
        "process that subscribes as the node does and only sends each header back "
        f"(`pdn_bench/echo.py`; {TRANSPORT_WARMUP_S:.0f} s of warm-up, then "
        f"{results['transport_seconds']:.0f} s measured).",
        "",
        "| measure | p50 ms | p99 ms | runs |",
        "|---|---:|---:|---:|",
        *(
            f"| {name} | {stats['median_ms']:.1f} | {stats['p99_ms']:.1f} | {stats['runs']} |"
            for name, stats in (
                ("model alone, before", before),
                ("model alone, after", after),
            )
        ),
        *(
            f"| in the node: {label} | {results['node_p50_ms'][name]:.1f} | | |"
            for name, label in (
                ("transport", "stamp to image callback (publish, DDS, deserialise)"),
                ("wait", "wait in the newest-frame slot"),
                ("convert", "conversion to the model's RGB buffer"),
                ("inference", "inference"),
                ("latency", "stamp to detections published"),
            )
        ),
        f"| stamp to detections received | {lat['median_ms']:.1f} | {lat['p99_ms']:.1f} "
        f"| {lat['runs']} |",
        f"| transport reference: stamp to echo received | {echo['median_ms']:.1f} "
        f"| {echo['p99_ms']:.1f} | {echo['runs']} |",
        "",
        node_note,
        "",
        where_time_goes(results),
        "",
        "Latency p50 by third of the measured time (ms): "
        + ", ".join(f"{v:.1f}" for v in results["latency_thirds_p50_ms"])
        + ".",
        "",
        "| frames | count |",
        "|---|---:|",
        f"| published | {results['published']} |",
        f"| received by the node | {node['received']} |",
        f"| processed (detections published) | {node['processed']} |",
        f"| dropped (replaced in the slot before the worker took them) | {node['dropped']} |",
        f"| bad frames | {node['bad_frames']} |",
        "",
        f"Processing rate over the run: {results['processed_hz']:.1f} Hz. Resident memory of "
        f"the node process (VmRSS): {rss['after_warmup']:.0f} MiB after warm-up, "
        f"{rss['end']:.0f} MiB at the end, {rss['max']:.0f} MiB at most; of it, its own heap "
        f"(RssAnon) {rss['anon_after_warmup']:.0f} -> {rss['anon_end']:.0f} MiB and touched "
        f"pages of the DDS shared-memory segments (RssShmem) {rss['shmem_end']:.0f} MiB at the "
        "end.",
        "",
        "The transport reference process, which holds no model, ends at "
        + ", ".join(f"{v:.0f} MiB {k}" for k, v in results["transport_rss_mib"].items())
        + ": most of the node's resident memory is rclpy and the DDS profile's buffers.",
        "",
        cpu_line(results["cpu_cores"]),
        "",
        "| target | measured | limit | met |",
        "|---|---:|---:|---|",
        f"| latency p50 <= model alone p50 + {LATENCY_MARGIN_MS:.0f} ms | "
        f"{targets['latency'][0]:.1f} ms | {targets['latency'][1]:.1f} ms "
        f"| {yes[met['latency']]} |",
        f"| no queue growth: last-third / first-third latency p50 | {targets['queue'][0]:.2f} "
        f"| {targets['queue'][1]:.2f} | {yes[met['queue']]} |",
        f"| RSS growth from after warm-up to the end | {targets['rss'][0]:.2f} % | "
        f"{targets['rss'][1]:.0f} % | {yes[met['rss']]} |",
        "",
        f"![pdn_node resident memory and latency over time]({report_stem(results['rate_hz'])}.png)",
        "",
    ]
    return "\n".join(lines)
