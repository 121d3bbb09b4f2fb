"""`pdn-bag-eval`: deterministic offline evaluation of a rosbag2 bag, through the node's code.

Every image of the bag is taken in recorded order and goes through exactly what `pdn_node`
runs per frame (`pdn_ros.inference.FrameProcessor`: the node's image conversion, its
per-camera temporal-state reset policy, the backend from `create_backend`), one frame at a
time and none dropped, so the result does not depend on replay timing. Ground truth comes
from the bag's pdn_msgs/DetectionArray topic (matched to images by header stamp) or from a
COCO file (matched by frame order). Metrics are those of `pdn-eval` (training.metrics).
A bag that turns out truncated or corrupt still yields the results of the frames read
before the damage, marked incomplete, and exit status 1. See docs/bag_evaluation.md.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import shlex
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from faster_coco_eval import COCOeval_faster
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CompressedImage, Image

from pdn_ros.backends import create_backend
from pdn_ros.bag_reader import DETECTIONS_TYPE, IMAGE_TYPES, Bag, BagReadError, open_bag
from pdn_ros.debug_draw import draw
from pdn_ros.image_convert import BadFrame
from pdn_ros.inference import Arrival, FrameProcessor, SkippedFrame
from pdn_ros.messages import ModelResult, stamp_ns
from pdn_ros.params import PARAMETERS, SPECS, Settings
from pdn_ros.temporal import CameraState
from training.metrics import (
    METRIC_KEYS,
    RECALL_SCORE,
    FrameResult,
    matched_ground_truth,
    summarize,
    write_report,
)
from training.rosbag_io import typestore

# training.evaluate and training.data import torch, so they are imported where used: the
# node's path itself needs no torch (unless the model is a checkpoint).

DEFAULT_MODEL = Path("models/pdn-s-synth4k-3840x2160.onnx")
SAMPLE_FRAMES = 4
SAMPLE_WIDTH = 1920  # annotated samples are downscaled to at most this width
TRUTH_COLOR = (255, 255, 255)  # ground truth in the samples (RGB); detections by class


@dataclass
class FrameRow:
    """One image of the bag: where it is, what the node's path made of it, its ground truth."""

    index: int
    stamp_ns: int
    status: str  # "ok" or "bad <kind>: <message>"
    result: ModelResult | None
    processing_s: float  # conversion + state policy + model + copying out (FrameProcessor)
    truth: tuple[np.ndarray, np.ndarray] | None = None  # boxes xyxy [N,4], labels [N]
    image_id: int | None = None


@dataclass
class BagRun:
    """What reading and running a bag produced."""

    rows: list[FrameRow]
    size: tuple[int, int]  # the model's frame width and height
    class_names: tuple[str, ...]
    backend: str
    image_topic: str
    truth_source: str
    samples: dict[int, np.ndarray]  # frame index -> annotated RGB picture (truth added later)
    sample_scale: float
    error: str | None
    recovered: str | None


def _settings(max_detections: int, reset_gap_s: float, memory: int) -> Settings:
    """The node's settings (its parameter defaults) with every detection kept, as AP needs,
    and the given state policy."""
    values = {spec.name: spec.default for spec in PARAMETERS}
    values.update(
        score_threshold=0.0,
        max_detections=max_detections,
        reset_gap_s=reset_gap_s,
        memory_length=memory,
    )
    return Settings.from_values(values)


def truth_from_message(msg: Any) -> tuple[np.ndarray, np.ndarray]:
    """Boxes xyxy [N,4] float32 and labels [N] of a pdn_msgs/DetectionArray (rosbags object)."""
    boxes = np.array(
        [
            [
                d.center_x - d.size_x / 2,
                d.center_y - d.size_y / 2,
                d.center_x + d.size_x / 2,
                d.center_y + d.size_y / 2,
            ]
            for d in msg.detections
        ],
        dtype=np.float32,
    ).reshape(-1, 4)
    return boxes, np.array([d.class_id for d in msg.detections], dtype=np.int64)


def _sample_indices(total: int | None) -> set[int]:
    """Frames to annotate: evenly spread over `total`, or a few early ones when unknown."""
    if total is None:
        return {0, 10, 30, 60}
    return {int(i) for i in np.linspace(0, max(total - 1, 0), SAMPLE_FRAMES).round()}


def run_bag(
    bag: Bag,
    model: Path,
    backend: str,
    threads: int,
    image_topic: str | None,
    truth_topic: str | None,
    coco: Path | None,
    limit: int | None,
    reset_gap_s: float,
    memory_length: int,
) -> BagRun:
    """Read the bag in recorded order and run every image through the node's FrameProcessor."""
    image_topic = bag.topic_of_type(IMAGE_TYPES, image_topic, "image")
    if coco is None:
        truth_topic = bag.topic_of_type((DETECTIONS_TYPE,), truth_topic, "ground-truth")
    options = {"threads": threads} if backend in ("auto", "onnxruntime") else {}
    runner = create_backend(backend, model, **options)
    info, described = runner.info, runner.describe()
    if info.batch != 1:
        raise ValueError(f"{model} takes batch {info.batch}; evaluate with a batch-1 export")
    settings = _settings(info.output_shapes["scores"][1], reset_gap_s, memory_length)
    processor = FrameProcessor(runner, threading.Lock(), [0], [CameraState(info)])
    image_type = Image if bag.topics[image_topic] == IMAGE_TYPES[0] else CompressedImage
    store = typestore()
    total = bag.count(image_topic)
    samples_at = _sample_indices(total if limit is None else min(limit, total or limit))
    scale = min(1.0, SAMPLE_WIDTH / info.width)
    rows: list[FrameRow] = []
    truths: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    samples: dict[int, np.ndarray] = {}
    last_image_time, error = None, None
    topics = [image_topic] if truth_topic is None else [image_topic, truth_topic]
    try:
        for message in bag.messages(topics):
            done = limit is not None and len(rows) >= limit
            if done and message.log_time_ns > last_image_time:
                break  # the ground truth of the last frame has had its chance to arrive
            if message.topic == truth_topic:
                msg = store.deserialize_cdr(message.raw, message.msgtype)
                truths[stamp_ns(msg.header)] = truth_from_message(msg)
                continue
            if done:
                continue
            msg = deserialize_message(message.raw, image_type)
            start = time.perf_counter()  # offline, a frame arrives when it is taken
            outcome = processor.process([(0, Arrival(msg, start, 0.0))], settings)[0]
            elapsed = time.perf_counter() - start
            stamp = stamp_ns(msg.header)
            last_image_time = message.log_time_ns
            if isinstance(outcome, SkippedFrame):
                if outcome.error.kind == "resolution":
                    raise outcome.error
                status = f"bad {outcome.error.kind}: {outcome.error}"
                rows.append(FrameRow(len(rows), stamp, status, None, elapsed))
                continue
            if len(rows) in samples_at:
                keep = outcome.scores >= RECALL_SCORE
                shown = dataclasses.replace(
                    outcome,
                    boxes=outcome.boxes[keep],
                    scores=outcome.scores[keep],
                    labels=outcome.labels[keep],
                )
                samples[len(rows)] = draw(processor.image[0], shown, scale, info.class_names)
            rows.append(FrameRow(len(rows), stamp, "ok", outcome, elapsed))
    except BagReadError as err:
        error = str(err)
    except BadFrame as err:
        raise ValueError(str(err)) from err
    finally:
        runner.close()
    class_names = info.class_names
    if coco is None:
        for row in rows:
            row.truth = truths.get(row.stamp_ns)
        source = f"topic {truth_topic} (matched by header stamp)"
    else:
        class_names = _attach_coco(rows, coco)
        source = f"{coco} (matched by frame order)"
    return BagRun(
        rows,
        (info.width, info.height),
        tuple(class_names),
        described,
        image_topic,
        source,
        samples,
        scale,
        error,
        bag.recovered,
    )


def _attach_coco(rows: list[FrameRow], coco: Path) -> list[str]:
    """Give the i-th image the i-th frame of the COCO file (sequence order); returns the
    file's class names. A frame count or size that differs is an error."""
    from training.data import load_frames

    frames, class_names = load_frames(coco)
    if len(frames) < len(rows):
        raise ValueError(
            f"{coco} has {len(frames)} images but the bag has at least {len(rows)}: frame "
            "order matching needs one COCO image per bag image"
        )
    for row, frame in zip(rows, frames, strict=False):
        if row.result is not None and (row.result.width, row.result.height) != (
            frame.width,
            frame.height,
        ):
            raise ValueError(
                f"bag frame {row.index} is {row.result.width}x{row.result.height} but COCO "
                f"image {frame.image_id} ({frame.path.name}) is {frame.width}x{frame.height}"
            )
        row.truth = (frame.boxes, frame.labels)
        row.image_id = frame.image_id
    return class_names


def frame_results(run: BagRun) -> list[FrameResult]:
    """training.metrics FrameResults of the frames that have ground truth (a bad frame counts
    with no detections, as the node publishes none for it)."""
    empty = np.zeros((0, 4), np.float32)
    results = []
    for row in run.rows:
        if row.truth is None:
            continue
        r = row.result
        results.append(
            FrameResult(
                image_id=row.image_id if row.image_id is not None else row.index + 1,
                width=run.size[0],
                height=run.size[1],
                gt_boxes=row.truth[0],
                gt_labels=row.truth[1],
                boxes=r.boxes if r is not None else empty,
                scores=r.scores if r is not None else np.zeros(0, np.float32),
                labels=r.labels if r is not None else np.zeros(0, np.int64),
                extra={
                    "latency_s": r.timings["inference"] if r is not None else float("nan"),
                    "patch_boxes": r.patch_boxes if r is not None else empty,
                    "row": row,
                },
            )
        )
    return results


def _percentiles(seconds: list[float]) -> tuple[float, float]:
    """p50 and p99 in milliseconds (NaN without samples)."""
    if not seconds:
        return float("nan"), float("nan")
    p50, p99 = np.percentile(np.asarray(seconds) * 1000.0, [50, 99])
    return float(p50), float(p99)


def compute_metrics(
    run: BagRun, results: list[FrameResult], model: Path, bag: Path
) -> tuple[dict[str, Any], COCOeval_faster | None]:
    """pdn-eval's metrics (training.metrics.summarize, patch recall, latency) plus the bag's
    own figures; the COCOeval is None when no frame has ground truth."""
    from training.evaluate import patch_recall_small

    ok = [row for row in run.rows if row.result is not None]
    inference_p50, inference_p99 = _percentiles([row.result.timings["inference"] for row in ok])
    processing_p50, processing_p99 = _percentiles([row.processing_s for row in ok])
    metrics: dict[str, Any] = {key: float("nan") for key in METRIC_KEYS}
    metrics.update(frames=0, objects=0, patch_recall_small=float("nan"))
    evaluation = None
    if results:
        metrics, evaluation = summarize(results, list(run.class_names))
        metrics["patch_recall_small"] = patch_recall_small(results)
    metrics.update(
        latency_ms_p50=inference_p50,
        latency_ms_p99=inference_p99,
        processing_ms_p50=processing_p50,
        processing_ms_p99=processing_p99,
        backend=run.backend,
        patches=int(ok[0].result.patch_boxes.shape[0]) if ok else 0,
        complete=run.error is None,
        error=run.error,
        bag=str(bag),
        model=str(model),
        image_topic=run.image_topic,
        ground_truth=run.truth_source,
        frames_read=len(run.rows),
        frames_without_ground_truth=sum(row.truth is None for row in run.rows),
        bad_frames=len(run.rows) - len(ok),
        resets=sum(row.result.reset is not None for row in ok),
        index_unreadable=run.recovered,
    )
    return metrics, evaluation


def _write_csv(path: Path, run: BagRun, results: list[FrameResult]) -> None:
    """One line per image: stamp, status, ground truth, what was found, timings."""
    from training.evaluate import SMALL_SIDE, patches_contain

    by_row = {id(r.extra["row"]): r for r in results}
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(
            [
                "frame",
                "stamp_ns",
                "status",
                "reset",
                "gt_objects",
                "gt_small",
                "detections",
                "found",
                "small_in_patch",
                "inference_ms",
                "processing_ms",
            ]
        )
        for row in run.rows:
            r = row.result
            fr = by_row.get(id(row))
            gt, small, found, in_patch = "", "", "", ""
            if fr is not None:
                sides = (fr.gt_boxes[:, 2:] - fr.gt_boxes[:, :2]).max(axis=1)
                gt, small = len(fr.gt_boxes), int((sides < SMALL_SIDE).sum())
                found = int(matched_ground_truth(fr).sum())
                in_patch = int(
                    patches_contain(fr.gt_boxes[sides < SMALL_SIDE], fr.extra["patch_boxes"]).sum()
                )
            writer.writerow(
                [
                    row.index,
                    row.stamp_ns,
                    row.status,
                    (r.reset or "") if r else "",
                    gt,
                    small,
                    int((r.scores >= RECALL_SCORE).sum()) if r else "",
                    found,
                    in_patch,
                    f"{r.timings['inference'] * 1000:.2f}" if r else "",
                    f"{row.processing_s * 1000:.2f}",
                ]
            )


def _plot_latency(path: Path, run: BagRun) -> None:
    """Per-frame model and processing time, and their distribution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [row for row in run.rows if row.result is not None]
    index = [row.index for row in ok]
    inference = np.array([row.result.timings["inference"] for row in ok]) * 1000
    processing = np.array([row.processing_s for row in ok]) * 1000
    fig, (ax_t, ax_h) = plt.subplots(1, 2, figsize=(10, 3.5))
    ax_t.plot(index, processing, ".-", label="processing (conversion + model + copy)")
    ax_t.plot(index, inference, ".-", label="model (backend.run)")
    ax_t.set_xlabel("frame")
    ax_t.set_ylabel("ms")
    ax_t.legend(fontsize=8)
    ax_t.set_title("time per frame")
    if len(inference):
        ax_h.hist([inference, processing], bins=30, label=["model", "processing"])
        for value, name in zip(np.percentile(inference, [50, 99]), ("p50", "p99"), strict=True):
            ax_h.axvline(value, color="k", linestyle=":" if name == "p99" else "--")
            ax_h.text(value, ax_h.get_ylim()[1] * 0.9, f" model {name}", fontsize=8)
    ax_h.set_xlabel("ms")
    ax_h.set_title("distribution")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _write_samples(folder: Path, run: BagRun) -> list[str]:
    """Annotated sample frames as JPEG: patches and detections (score >= 0.3) as the node's
    debug image draws them, ground truth in white. Returns the file names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for index, picture in sorted(run.samples.items()):
        row = run.rows[index]
        if row.truth is not None:
            for box in (row.truth[0] * run.sample_scale).round().astype(int).tolist():
                cv2.rectangle(
                    picture, (box[0] - 2, box[1] - 2), (box[2] + 1, box[3] + 1), TRUTH_COLOR, 1
                )
        name = f"frame_{index:05d}.jpg"
        cv2.imwrite(
            str(folder / name),
            cv2.cvtColor(picture, cv2.COLOR_RGB2BGR),
            [cv2.IMWRITE_JPEG_QUALITY, 90],
        )
        names.append(name)
    return names


def _markdown(metrics: dict[str, Any], command: str, samples: list[str], has_curves: bool) -> str:
    """report.md: what ran, the metrics, the plots and the samples."""
    state = (
        "complete"
        if metrics["complete"]
        else f"**INCOMPLETE: the bag is damaged.** {metrics['error'].rstrip('.')}. The "
        f"figures below cover the {metrics['frames_read']} frames read before the damage."
    )
    lines = [
        f"# Bag evaluation: {Path(metrics['bag']).name}",
        "",
        f"`{command}`",
        "",
        f"- bag `{metrics['bag']}`, images from `{metrics['image_topic']}`: {state}",
        f"- ground truth: {metrics['ground_truth']}",
        f"- model `{metrics['model']}` on {metrics['backend']}, {metrics['patches']} patches",
        f"- frames read {metrics['frames_read']}, evaluated {metrics['frames']}, without "
        f"ground truth {metrics['frames_without_ground_truth']}, bad (skipped by the node's "
        f"conversion, counted with no detections) {metrics['bad_frames']}, temporal-state "
        f"resets {metrics['resets']}",
    ]
    if metrics.get("index_unreadable"):
        lines.append(f"- bag index unreadable ({metrics['index_unreadable']}): read from the start")
    lines += ["", "| metric | value |", "|---|---:|"]
    for key, value in metrics.items():
        if isinstance(value, float):
            lines.append(f"| {key} | {value:.4f} |")
    lines += [
        "",
        "Latency: `latency_ms_*` is the model call alone (as in pdn-eval); `processing_ms_*` "
        "is the node's whole per-frame path (conversion, state policy, model, copying out).",
        "",
    ]
    if has_curves:
        lines += ["![precision-recall and AP by size](pr_ap.png)", ""]
    lines += ["![time per frame](latency.png)", "", "Per-frame figures: `frames.csv`.", ""]
    if samples:
        lines += [
            "## Samples",
            "",
            "Patches thin (coloured by scale), detections with score >= 0.3 thick (coloured by "
            "class), ground truth white.",
            "",
        ]
        lines += [f"![{name}](samples/{name})" for name in samples]
    return "\n".join(lines) + "\n"


def write_outputs(
    out: Path,
    run: BagRun,
    results: list[FrameResult],
    metrics: dict[str, Any],
    evaluation: COCOeval_faster | None,
    command: str,
) -> None:
    """metrics.json (+ pr_ap.png), frames.csv, latency.png, samples/*.jpg and report.md."""
    out.mkdir(parents=True, exist_ok=True)
    if evaluation is not None:
        write_report(out, metrics, evaluation, f"{Path(metrics['bag']).name}: {metrics['model']}")
    else:
        (out / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=True))
    _write_csv(out / "frames.csv", run, results)
    _plot_latency(out / "latency.png", run)
    samples = _write_samples(out / "samples", run)
    (out / "report.md").write_text(_markdown(metrics, command, samples, evaluation is not None))


def _positive(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="pdn-bag-eval", description=__doc__.splitlines()[0])
    parser.add_argument("bag", type=Path, help="rosbag2 folder, or one .mcap / .db3 file")
    parser.add_argument(
        "--model",
        type=Path,
        default=DEFAULT_MODEL,
        help="exported .onnx (or a .pt checkpoint with --backend torch)",
    )
    truth = parser.add_mutually_exclusive_group()
    truth.add_argument(
        "--gt-topic",
        help="pdn_msgs/DetectionArray ground truth (default: the bag's only DetectionArray topic)",
    )
    truth.add_argument(
        "--coco",
        type=Path,
        help="COCO annotations instead, i-th image = i-th frame in sequence order",
    )
    parser.add_argument(
        "--image-topic", help="Image or CompressedImage topic (default: the bag's only one)"
    )
    parser.add_argument("--out", type=Path, help="report folder (default out/bag_eval/BAGNAME)")
    parser.add_argument("--limit", type=_positive, help="evaluate only the first N images")
    parser.add_argument(
        "--backend", default=SPECS["backend"].default, help="as the node's backend parameter"
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=SPECS["threads"].default,
        help="ONNX Runtime threads (0: one per core)",
    )
    parser.add_argument(
        "--reset-gap-s",
        type=float,
        default=SPECS["reset_gap_s"].default,
        help="the node's reset_gap_s: reset the temporal state after a longer gap between stamps",
    )
    parser.add_argument(
        "--memory-length",
        type=int,
        default=SPECS["memory_length"].default,
        help="the node's memory_length",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run pdn-bag-eval: 0 done, 1 bag damaged (partial results written), 2 cannot run."""
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    command = shlex.join(["pdn-bag-eval", *argv])
    out = args.out or Path("out") / "bag_eval" / args.bag.name
    try:
        with ExitStack() as stack:
            bag = open_bag(args.bag, stack)
            run = run_bag(
                bag,
                args.model,
                args.backend,
                args.threads,
                args.image_topic,
                args.gt_topic,
                args.coco,
                args.limit,
                args.reset_gap_s,
                args.memory_length,
            )
    except (BagReadError, ValueError, FileNotFoundError) as err:
        print(f"pdn-bag-eval: {err}", file=sys.stderr)
        return 2
    results = frame_results(run)
    metrics, evaluation = compute_metrics(run, results, args.model, args.bag)
    write_outputs(out, run, results, metrics, evaluation, command)
    print(json.dumps(metrics, indent=2))
    print(f"pdn-bag-eval: report in {out / 'report.md'}", file=sys.stderr)
    if run.error is not None:
        print(
            f"pdn-bag-eval: error: {run.error}\npdn-bag-eval: the results cover the "
            f'{len(run.rows)} frames read before it (metrics.json: "complete": false)',
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
