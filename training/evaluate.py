"""`pdn-eval`: COCO metrics of a checkpoint or an exported ONNX model on a COCO dataset.

Frames run in sequence order through the deployment runtime's stream runner
(`pdn_runtime.StreamRunner`, the loop the ROS node uses): the PyTorch backend for a
checkpoint, backend "auto" (`pdn_runtime.factory`) or the one named for an .onnx file, with
the temporal memory carried within each video and reset between videos.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from pdn_runtime import Backend, StreamRunner, create_backend, options_for
from pdn_runtime.factory import CHECKPOINT_SUFFIXES
from pdn_runtime.timing import percentiles_ms
from training.data import FrameRecord, load_frames, read_image
from training.metrics import (
    FrameResult,
    ap50_by_video,
    class_agnostic_ap50,
    patch_recall_small,
    summarize,
    window_precision,
    write_report,
)


def open_model(
    model: Path,
    frame_size: tuple[int, int],
    patches: Sequence[int] | str | None,
    backend: str = "auto",
    threads: int | None = None,
) -> Backend:
    """A backend running `model` on frames of `frame_size` (height, width): backend "torch"
    for a checkpoint whatever `backend` says, else `backend` ("auto": the best runtime here)."""
    if model.suffix not in CHECKPOINT_SUFFIXES:
        options = options_for(backend, {} if threads is None else {"threads": threads})
        runner = create_backend(backend, model, **options)
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


def run_frames(
    backend: Backend, frames: list[FrameRecord], limit: int | None = None
) -> list[FrameResult]:
    """Run every frame in order through the stream runner (every detection kept), starting
    a new stream at each new video."""
    runner = StreamRunner(backend)
    results, video = [], object()
    for frame in tqdm(frames[:limit], desc="evaluate", unit="frame"):
        new_video = frame.video_id is None or frame.video_id != video
        video = frame.video_id
        found = runner.step(read_image(frame.path).transpose(2, 0, 1)[None], new_stream=new_video)
        results.append(
            FrameResult(
                image_id=frame.image_id,
                width=frame.width,
                height=frame.height,
                gt_boxes=frame.boxes,
                gt_labels=frame.labels,
                boxes=found.boxes,
                scores=found.scores,
                labels=found.labels,
                patch_boxes=found.patch_boxes,
                latency_s=found.inference_s,
            )
        )
    return results


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
    latency_p50, latency_p99 = percentiles_ms([r.latency_s for r in results])
    videos = [frame.video_id for frame in frames[: len(results)]]
    metrics.update(
        AP50_class_agnostic=class_agnostic_ap50(results),
        AP50_by_video=ap50_by_video(results, videos, class_names),
        patch_recall_small=patch_recall_small(results),
        **window_precision(results),
        latency_ms_p50=latency_p50,
        latency_ms_p99=latency_p99,
        backend=runner.describe(),
        patches=int(results[0].patch_boxes.shape[0]),
    )
    return metrics, evaluation


def main(argv: list[str] | None = None) -> int:
    """`pdn-eval --model M --data D [--patches K] [--out DIR]`."""
    from pdn_model.export import parse_patches

    parser = argparse.ArgumentParser(prog="pdn-eval", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="checkpoint (.pt) or .onnx")
    parser.add_argument("--data", type=Path, required=True, help="COCO annotations.json")
    parser.add_argument("--patches", type=parse_patches, help="windows per scale, or 'all'")
    parser.add_argument(
        "--backend",
        default="auto",
        help="auto (the best runtime here; torch for a checkpoint), onnxruntime, tensorrt, torch",
    )
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
