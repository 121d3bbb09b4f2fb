"""`pdn-bench profile`: where one 4K frame's time goes, stage by stage, for a float model and
its INT8 copy in one run.

Model: ONNX Runtime's own profiler (SessionOptions.enable_profiling) on the graph the CPU
backend runs (input cast sunk), each kernel's time added to the model stage of its node
(`pdn_runtime.graph_stages`); nodes that ONNX Runtime adds while optimising (layout reorders
and transposes) are their own row. Node path: the steps pdn_node takes per frame, timed in
this process without DDS: an rgb8 Image message serialised and deserialised (what crossing
to the node costs on the CPU), converted into the model's buffer (`pdn_ros.image_convert`),
the stream runner's model call and the copy-out of detections, the DetectionArray and
PatchArray built and serialised (what `publish` does before DDS takes over).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort

from pdn_bench.measure import machine_description
from pdn_bench.reporting import add_output_arguments, write_report
from pdn_model.onnx_graph import read_metadata, sink_input_cast
from pdn_runtime import StreamState, graph_stages
from pdn_runtime.onnx_file import DEMO_MODEL, load_onnx, onnx_model_info
from pdn_runtime.onnxruntime_backend import CPU, create_session
from pdn_runtime.quantize import calibration_files, int8_path, read_frame
from pdn_runtime.timing import percentiles_ms

LAYOUT = "added by ONNX Runtime (layout, reshapes)"
# Names of nodes ONNX Runtime's optimiser adds (besides those with a "_token" in the name).
ADDED_BY_ORT = ("Reorder", "Transpose", "Squeeze", "Unsqueeze", "Reshape", "gemm_")
UNMAPPED = "unmapped"
PATH_STEPS = (
    "image message serialise + deserialise",
    "conversion to the model's buffer",
    "model call",
    "detections copied out, state pushed",
    "messages built",
    "messages serialised (publish)",
)
DEFAULT_FRAMES_DIR = Path("data/val_plain/images")


def stage_lookup(model: onnx.ModelProto) -> tuple[dict[str, str], dict[str, str]]:
    """(node name -> stage, tensor name -> stage of the node writing it) of `model`."""
    nodes = graph_stages.node_stages(model)
    tensors = {out: nodes[node.name] for node in model.graph.node for out in node.output}
    return nodes, tensors


def profiled_stage(name: str, nodes: dict[str, str], tensors: dict[str, str]) -> str:
    """The stage of a kernel in ONNX Runtime's profile. Its name is a node's name, or one
    that ONNX Runtime derived while optimising: NODE/FusionName, NODE_token_N (layout
    transform), TENSOR_nchwc, TENSOR_q / TENSOR_dq (quantisation), or a node of its own
    (ReorderOutput_token_N, Squeeze_token_N, gemm_input_reshape, ...). The longest known
    prefix wins."""
    base = name.split("/", 1)[0]
    parts = base.split("_")
    for end in range(len(parts), 0, -1):
        prefix = "_".join(parts[:end])
        if prefix in nodes:
            return nodes[prefix]
        if prefix in tensors:
            return tensors[prefix]
    if "_token" in base or base.startswith(ADDED_BY_ORT):
        return LAYOUT
    return UNMAPPED


def profile_model(
    path: Path, frames: list[np.ndarray], threads: int, runs: int, work: Path
) -> dict[str, Any]:
    """Run `path` over `frames` (planar [3,H,W], cycled, state fed back) under ONNX Runtime's
    profiler: per stage the kernel time per frame (ms), and the run's wall time p50/p99."""
    model = load_onnx(path)
    state = StreamState(onnx_model_info(model, path))
    graph = sink_input_cast(model)
    nodes, tensors = stage_lookup(graph)
    session = create_session(graph, [CPU], threads, profile=str(work / path.stem))
    names = [o.name for o in session.get_outputs()]
    walls = []
    for i in range(runs + 2):
        feeds = {"image": frames[i % len(frames)][None], **state.inputs()}
        start = time.perf_counter()
        out = dict(zip(names, session.run(None, feeds), strict=True))
        if i >= 2:  # warm-up runs are left out of the wall times (their kernels too, below)
            walls.append(time.perf_counter() - start)
        state.update(out)
    events = json.loads(Path(session.end_profiling()).read_text())
    runs_seen = [e for e in events if e.get("cat") == "Session" and e["name"] == "model_run"]
    first_timed = runs_seen[2]["ts"] if len(runs_seen) > 2 else 0
    per_stage: Counter[str] = Counter()
    for event in events:
        if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time"):
            continue
        if event["ts"] < first_timed:
            continue
        stage = profiled_stage(event["name"][: -len("_kernel_time")], nodes, tensors)
        per_stage[stage] += event["dur"]
    p50, p99 = percentiles_ms(walls)
    return {
        "stages_ms": {stage: us / 1000.0 / runs for stage, us in per_stage.items()},
        "run_p50_ms": p50,
        "run_p99_ms": p99,
        "runs": runs,
        "precision": read_metadata(graph).get("precision", "float32"),
    }


def node_path(path: Path, frames: list[np.ndarray], threads: int, runs: int) -> dict[str, Any]:
    """p50 ms of each of PATH_STEPS over `runs` frames through the node's own code."""
    from rclpy.serialization import deserialize_message, serialize_message
    from sensor_msgs.msg import Image
    from std_msgs.msg import Header

    from pdn_ros.image_convert import message_into, rgb_image_message
    from pdn_ros.messages import detection_array, patch_array
    from pdn_runtime import StreamPolicy, StreamRunner, create_backend

    backend = create_backend("onnxruntime", path, device="cpu", threads=threads)
    runner, policy = StreamRunner(backend), StreamPolicy()
    names = backend.info.class_names
    header = Header(frame_id="camera")
    messages = [
        rgb_image_message(np.ascontiguousarray(f.transpose(1, 2, 0)), header) for f in frames
    ]
    times: dict[str, list[float]] = {step: [] for step in PATH_STEPS}
    for i in range(runs + 2):
        clock = [time.perf_counter()]
        msg = deserialize_message(serialize_message(messages[i % len(messages)]), Image)
        clock.append(time.perf_counter())
        message_into(msg, runner.image[0])
        clock.append(time.perf_counter())
        runner.begin(0, None, policy)
        found = runner.run([0], policy)[0]
        clock.append(time.perf_counter())
        detections, patches = detection_array(found, names, header), patch_array(found, header)
        clock.append(time.perf_counter())
        serialize_message(detections)
        serialize_message(patches)
        clock.append(time.perf_counter())
        if i < 2:
            continue
        spans = np.diff(clock)
        model_s = found.inference_s
        for step, seconds in zip(
            PATH_STEPS,
            (spans[0], spans[1], model_s, spans[2] - model_s, spans[3], spans[4]),
            strict=True,
        ):
            times[step].append(seconds)
    backend.close()
    return {step: percentiles_ms(values)[0] for step, values in times.items()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Profile the float model and its INT8 copy on the same frames, alternating."""
    models = {"float": args.model, "int8": args.int8 or int8_path(args.model)}
    for name, path in models.items():
        if not Path(path).is_file():
            raise FileNotFoundError(f"{name} model not found: {path}")
    info = onnx.load(str(args.model), load_external_data=False).graph.input[0]
    height, width = (d.dim_value for d in info.type.tensor_type.shape.dim[2:])
    files = calibration_files(args.frames, args.count)
    frames = [read_frame(f, height, width) for f in files]
    results: dict[str, Any] = {
        "machine": machine_description(),
        "onnxruntime": ort.__version__,
        "threads": args.threads,
        "frames": f"{len(files)} frames of {args.frames}",
        "size": [width, height],
        "models": {name: str(path) for name, path in models.items()},
        "profile": {},
        "node_path": {},
    }
    with tempfile.TemporaryDirectory(prefix="pdn-profile-") as work:
        for name, path in models.items():
            results["profile"][name] = profile_model(
                Path(path), frames, args.threads, args.runs, Path(work)
            )
    for name, path in models.items():
        results["node_path"][name] = node_path(Path(path), frames, args.threads, args.runs)
    return results


def markdown(results: dict[str, Any], command: str) -> str:
    """The report: model stages and node path, float beside INT8."""
    names = list(results["models"])
    width, height = results["size"]
    lines = [
        f"# Profile: one {width}x{height} frame, stage by stage",
        "",
        f"Produced by `{command}` on {results['machine']}, ONNX Runtime "
        f"{results['onnxruntime']} (CPU, {results['threads']} threads), "
        f"{results['frames']}, state fed back. Models: "
        + ", ".join(f"{n} `{p}`" for n, p in results["models"].items())
        + ".",
        "",
        "## The model, by stage (ONNX Runtime's profiler)",
        "",
        "Kernel time per frame, added up by the stage of each node (`pdn_runtime/graph_stages.py`);"
        " the run's wall time is with the profiler on.",
        "",
        "| stage | " + " | ".join(f"{n} ms | {n} %" for n in names) + " |",
        "|---|" + "---:|---:|" * len(names),
    ]
    order = [*graph_stages.STAGES, LAYOUT, UNMAPPED]
    totals = {n: sum(results["profile"][n]["stages_ms"].values()) for n in names}
    for stage in order:
        values = [results["profile"][n]["stages_ms"].get(stage, 0.0) for n in names]
        if not any(v >= 0.005 for v in values):
            continue
        cells = [
            f"{v:.2f} | {100 * v / max(totals[n], 1e-9):.0f}"
            for n, v in zip(names, values, strict=True)
        ]
        lines.append(f"| {stage} | " + " | ".join(cells) + " |")
    lines.append(
        "| **kernels, total** | " + " | ".join(f"**{totals[n]:.1f}** | 100" for n in names) + " |"
    )
    walls = [results["profile"][n] for n in names]
    lines.append(
        "| run wall time p50 (p99) | "
        + " | ".join(f"{w['run_p50_ms']:.1f} ({w['run_p99_ms']:.1f}) | " for w in walls)
        + " |"
    )
    lines += [
        "",
        "## The node's per-frame path (this process, no DDS), p50 ms",
        "",
        "| step | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for step in PATH_STEPS:
        lines.append(
            f"| {step} | "
            + " | ".join(f"{results['node_path'][n][step]:.2f}" for n in names)
            + " |"
        )
    lines.append(
        "| **sum** | "
        + " | ".join(f"**{sum(results['node_path'][n].values()):.1f}**" for n in names)
        + " |"
    )
    lines.append("")
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of `pdn-bench profile`."""
    parser.add_argument("--model", type=Path, default=DEMO_MODEL, help="float ONNX model")
    parser.add_argument(
        "--int8", type=Path, help="its INT8 copy (default: the model's NAME-int8.onnx)"
    )
    parser.add_argument(
        "--frames", type=Path, default=DEFAULT_FRAMES_DIR, help="folder of frames (images)"
    )
    parser.add_argument("--count", type=int, default=8, help="distinct frames, cycled")
    parser.add_argument("--runs", type=int, default=20, help="profiled frames per model")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    add_output_arguments(parser)


def main(args: argparse.Namespace, command: str) -> int:
    """Profile, write bench_profile.md (and results.json) where pdn_bench.reporting says."""
    try:
        results = run(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"pdn-bench profile: {err}")
        return 2
    path = write_report(args, "bench_profile", markdown(results, command), results)
    for name in results["models"]:
        stages = results["profile"][name]["stages_ms"]
        top = ", ".join(f"{s} {v:.1f}" for s, v in Counter(stages).most_common(3))
        print(f"pdn-bench profile: {name}: {sum(stages.values()):.1f} ms of kernels ({top})")
    print(f"pdn-bench profile: report in {path}")
    return 0
