"""`pdn-eval`: COCO metrics of a checkpoint or an exported ONNX model on a COCO dataset.

Frames run in sequence order through the deployment backends (the PyTorch backend for a
checkpoint, ONNX Runtime for an .onnx file), with the temporal memory carried within each
video and reset between videos, as the ROS node does.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from training.data import FrameRecord, load_frames, read_image
from training.metrics import FrameResult, summarize, write_report

SMALL_SIDE = 32.0  # longer side below which an object counts as small for patch recall


def open_model(
    model: Path,
    frame_size: tuple[int, int],
    patches: Sequence[int] | str | None,
    backend: str = "auto",
    threads: int | None = None,
):
    """A backend running `model` on frames of `frame_size` (height, width)."""
    from pdn_ros.backends import create_backend

    if model.suffix == ".onnx":
        options = {} if threads is None else {"threads": threads}
        runner = create_backend("onnxruntime" if backend == "auto" else backend, model, **options)
        info = runner.info
        if (info.height, info.width) != tuple(frame_size):
            raise ValueError(
                f"{model} was exported for {info.width}x{info.height} frames but the data has "
                f"{frame_size[1]}x{frame_size[0]}; export again with --height/--width"
            )
        if patches is not None:
            raise ValueError("--patches applies to checkpoints; an ONNX file has fixed patches")
        return runner
    return create_backend(
        "torch" if backend == "auto" else backend, model, input_size=frame_size, patches=patches
    )


def patches_contain(boxes: np.ndarray, patch_boxes: np.ndarray) -> np.ndarray:
    """Per box [N, 4]: lies entirely inside at least one patch [P, 4]."""
    if len(patch_boxes) == 0 or len(boxes) == 0:
        return np.zeros(len(boxes), dtype=bool)
    inside = (
        (boxes[:, None, 0] >= patch_boxes[None, :, 0])
        & (boxes[:, None, 1] >= patch_boxes[None, :, 1])
        & (boxes[:, None, 2] <= patch_boxes[None, :, 2])
        & (boxes[:, None, 3] <= patch_boxes[None, :, 3])
    )
    return inside.any(axis=1)


def run_frames(runner, frames: list[FrameRecord], limit: int | None = None) -> list[FrameResult]:
    """Run every frame in order, resetting the stream state at each new video."""
    from pdn_ros.backends import StreamState

    state = StreamState(runner.info)
    results, video = [], object()
    for frame in tqdm(frames[:limit], desc="evaluate", unit="frame"):
        if frame.video_id is None or frame.video_id != video:
            state.reset()
        video = frame.video_id
        image = np.ascontiguousarray(read_image(frame.path).transpose(2, 0, 1)[None])
        start = time.perf_counter()
        out = runner.run(image, **state.inputs())
        latency = time.perf_counter() - start
        state.update(out)
        keep = out["scores"][0] > 0
        results.append(
            FrameResult(
                image_id=frame.image_id,
                width=frame.width,
                height=frame.height,
                gt_boxes=frame.boxes,
                gt_labels=frame.labels,
                boxes=out["boxes"][0][keep].copy(),
                scores=out["scores"][0][keep].copy(),
                labels=out["labels"][0][keep].astype(np.int64),
                extra={"latency_s": latency, "patch_boxes": out["patch_boxes"][0].copy()},
            )
        )
    return results


def patch_recall_small(results: list[FrameResult]) -> float:
    """Share of small ground-truth objects that lie inside a selected patch."""
    inside, total = 0, 0
    for r in results:
        sides = (r.gt_boxes[:, 2:] - r.gt_boxes[:, :2]).max(axis=1)
        small = r.gt_boxes[sides < SMALL_SIDE]
        inside += int(patches_contain(small, r.extra["patch_boxes"]).sum())
        total += len(small)
    return inside / total if total else float("nan")


def evaluate(
    model: Path,
    data: Path,
    patches: Sequence[int] | str | None = None,
    backend: str = "auto",
    threads: int | None = None,
    limit: int | None = None,
) -> tuple[dict, object]:
    """Metrics of `model` on the COCO file `data` (keys of pdn-eval's metrics.json)."""
    frames, class_names = load_frames(data)
    if not frames:
        raise ValueError(f"{data} has no images")
    runner = open_model(model, (frames[0].height, frames[0].width), patches, backend, threads)
    results = run_frames(runner, frames, limit)
    metrics, evaluation = summarize(results, class_names)
    latencies = np.array([r.extra["latency_s"] for r in results]) * 1000
    metrics.update(
        patch_recall_small=patch_recall_small(results),
        latency_ms_p50=float(np.median(latencies)),
        latency_ms_p99=float(np.percentile(latencies, 99)),
        backend=runner.describe(),
        patches=int(results[0].extra["patch_boxes"].shape[0]),
    )
    return metrics, evaluation


def main(argv: list[str] | None = None) -> int:
    """`pdn-eval --model M --data D [--patches K] [--out DIR]`."""
    from pdn_model.export import parse_patches

    parser = argparse.ArgumentParser(prog="pdn-eval", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="checkpoint (.pt) or .onnx")
    parser.add_argument("--data", type=Path, required=True, help="COCO annotations.json")
    parser.add_argument("--patches", type=parse_patches, help="windows per scale, or 'all'")
    parser.add_argument("--backend", default="auto", help="auto, torch, onnxruntime")
    parser.add_argument("--threads", type=int, help="ONNX Runtime threads")
    parser.add_argument("--limit", type=int, help="evaluate only the first N frames")
    parser.add_argument("--out", type=Path, help="write metrics.json and plots here")
    args = parser.parse_args(argv)
    try:
        metrics, evaluation = evaluate(
            args.model, args.data, args.patches, args.backend, args.threads, args.limit
        )
    except (ValueError, FileNotFoundError) as err:
        print(f"pdn-eval: {err}", file=sys.stderr)
        return 2
    if args.out:
        title = f"{args.model.name} on {args.data} ({metrics['patches']} patches)"
        write_report(args.out, metrics, evaluation, title)
    print(json.dumps(metrics, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
