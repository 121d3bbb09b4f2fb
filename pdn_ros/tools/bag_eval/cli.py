"""`pdn-bag-eval`: deterministic offline evaluation of a rosbag2 bag, through the node's code.

Every image of the bag goes, in recorded order and none dropped, through what `pdn_node`
runs per frame (`run`); the metrics are those of `pdn-eval` (training.metrics) where the bag
has ground truth, plus figures that need none (`figures`: detections, windows, resets,
skipped frames) and an annotated video (`video`), reported by `report`. A bag that turns out
truncated or corrupt still yields the results of the frames read before the damage, marked
incomplete, and exit status 1. See docs/bag_evaluation.md.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from contextlib import ExitStack
from pathlib import Path

from pdn_ros.params import SPECS
from pdn_ros.tools.bag_eval.figures import run_figures
from pdn_ros.tools.bag_eval.report import compute_metrics, write_outputs
from pdn_ros.tools.bag_eval.run import frame_results, run_bag
from pdn_ros.tools.bag_eval.tracks import track_run
from pdn_ros.tools.bag_eval.video import VIDEO_NAME
from pdn_ros.tools.bag_reader import BagReadError, open_bag
from pdn_runtime.onnx_file import DEMO_MODEL
from pdn_runtime.tracking import TrackerSettings
from training.cli_types import int_at_least


def _parser() -> argparse.ArgumentParser:
    """The command line."""
    parser = argparse.ArgumentParser(prog="pdn-bag-eval", description=__doc__.splitlines()[0])
    parser.add_argument("bag", type=Path, help="rosbag2 folder, or one .mcap / .db3 file")
    parser.add_argument(
        "--model",
        type=Path,
        default=DEMO_MODEL,
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
    truth.add_argument(
        "--no-ground-truth",
        action="store_true",
        help="score nothing even if the bag has a DetectionArray topic (e.g. recorded detections)",
    )
    parser.add_argument(
        "--image-topic",
        help="Image or CompressedImage topic (default: the bag's only camera stream, its raw "
        "topic when it is recorded raw and compressed)",
    )
    parser.add_argument(
        "--no-video", action="store_true", help=f"do not write the annotated {VIDEO_NAME}"
    )
    parser.add_argument("--out", type=Path, help="report folder (default out/bag_eval/BAGNAME)")
    parser.add_argument("--limit", type=int_at_least(1), help="evaluate only the first N images")
    parser.add_argument(
        "--every",
        type=int_at_least(1),
        default=1,
        help="run every N-th image only, as a node keeping up with 1/N of the camera's rate "
        "(the tracker then sees objects move N frames' distance between its frames)",
    )
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
    tracking = TrackerSettings()
    parser.add_argument(
        "--track-max-gap-s",
        type=float,
        default=tracking.max_gap_s,
        help="tracking: how long a lost track waits for its object (seconds)",
    )
    parser.add_argument(
        "--track-high-score",
        type=float,
        default=tracking.high_score,
        help="tracking: detections at or above this score are matched first and start tracks",
    )
    parser.add_argument(
        "--track-match-iou",
        type=float,
        default=tracking.match_iou,
        help="tracking: least IoU between a detection and a track's predicted box",
    )
    parser.add_argument(
        "--track-buffer",
        type=float,
        default=tracking.buffer,
        help="tracking: boxes grow by this share of their size on each side for matching",
    )
    parser.add_argument(
        "--no-track-camera-motion",
        dest="track_camera_motion",
        action="store_false",
        help="tracking: match without taking out the camera's estimated pan and tilt",
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run pdn-bag-eval: 0 done, 1 bag damaged (partial results written), 2 cannot run."""
    argv = sys.argv[1:] if argv is None else argv
    args = _parser().parse_args(argv)
    command = shlex.join(["pdn-bag-eval", *argv])
    out = args.out or Path("out") / "bag_eval" / args.bag.name
    try:
        tracking = TrackerSettings(
            max_gap_s=args.track_max_gap_s,
            high_score=args.track_high_score,
            match_iou=args.track_match_iou,
            buffer=args.track_buffer,
            camera_motion=args.track_camera_motion,
        )
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
                ground_truth=not args.no_ground_truth,
                video=None if args.no_video else out / VIDEO_NAME,
                every=args.every,
                camera_motion=tracking.camera_motion,
            )
    except (BagReadError, ValueError, FileNotFoundError) as err:
        print(f"pdn-bag-eval: {err}", file=sys.stderr)
        return 2
    results = frame_results(run)
    metrics, evaluation = compute_metrics(run, results, args.model, args.bag)
    node_threshold, node_max = SPECS["score_threshold"].default, SPECS["max_detections"].default
    metrics.update(track_run(run, tracking, node_threshold, node_max))
    metrics.update(run_figures(run, node_threshold, node_max))
    write_outputs(out, run, results, metrics, evaluation, command)
    print(json.dumps(metrics, indent=2))
    print(f"pdn-bag-eval: images from {run.image_topic}: {run.image_choice}", file=sys.stderr)
    if not metrics["ground_truth"]:
        print("pdn-bag-eval: no ground truth: nothing scored (no AP)", file=sys.stderr)
    print(f"pdn-bag-eval: report in {out / 'report.md'}", file=sys.stderr)
    if not metrics["frames_processed"]:
        reason = run.rows[0].status if run.rows else f"no image on {run.image_topic}"
        print(f"pdn-bag-eval: no frame could be processed: {reason}", file=sys.stderr)
        return 2
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
