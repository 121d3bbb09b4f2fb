"""`pdn-synth`: write procedural high-resolution sequences as a COCO dataset, and as a bag.

Sequence i of a run is `SceneSequence((seed, i), config)`, so the same arguments always give
the same pixels, boxes and bag. See docs/synthetic_data.md.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from training.cli_types import int_at_least
from training.coco import ANNOTATIONS_FILE, IMAGES_DIR, CocoWriter
from training.rosbag_io import IMAGE_FORMATS, BagWriter, frame_stamp_ns
from training.synth import SceneConfig, SceneSequence

PROG = "pdn-synth"


def _objects(text: str) -> tuple[int, int]:
    """argparse type: MIN,MAX objects per frame with 0 <= MIN <= MAX."""
    try:
        low, high = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected MIN,MAX (two integers), got {text!r}") from None
    if not 0 <= low <= high:
        raise argparse.ArgumentTypeError(f"need 0 <= MIN <= MAX, got {text!r}")
    return low, high


def _parser() -> argparse.ArgumentParser:
    """The command line."""
    defaults = SceneConfig()
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Write procedural high-resolution scenes as a COCO dataset "
        "(DIR/annotations.json, DIR/images/) and optionally as a rosbag2 (mcap) bag.",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="dataset folder")
    parser.add_argument("--sequences", type=int_at_least(1), default=1, metavar="N")
    parser.add_argument(
        "--frames",
        type=int_at_least(1),
        default=defaults.frames,
        metavar="F",
        help="frames per sequence (default %(default)s)",
    )
    parser.add_argument("--height", type=int_at_least(1), default=defaults.height)
    parser.add_argument("--width", type=int_at_least(1), default=defaults.width)
    parser.add_argument("--seed", type=int_at_least(0), default=0, metavar="S")
    parser.add_argument(
        "--objects",
        type=_objects,
        default=defaults.objects,
        metavar="MIN,MAX",
        help="objects in view per frame (default %(default)s)",
    )
    parser.add_argument(
        "--fps",
        type=float,
        default=defaults.fps,
        help="frame rate: object motion and bag stamps (default %(default)s)",
    )
    parser.add_argument(
        "--randomize",
        action="store_true",
        help="domain randomisation: every sequence draws its own look (object styles, "
        "horizon, sky/ground, lighting, blur, noise, JPEG quality, distractors)",
    )
    parser.add_argument(
        "--bag",
        type=Path,
        metavar="BAG",
        help="also write the frames as a rosbag2 bag: a new folder holding "
        "BAG/<name>.mcap and metadata.yaml",
    )
    parser.add_argument(
        "--bag-format",
        choices=IMAGE_FORMATS,
        default=None,
        help="raw: sensor_msgs/Image rgb8 (default); jpeg: CompressedImage",
    )
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace annotations.json and images/*.jpg in DIR, and the bag",
    )
    return parser


def _clear_dataset(out: Path) -> None:
    """Remove what a previous run wrote into a dataset folder (and nothing else)."""
    (out / ANNOTATIONS_FILE).unlink(missing_ok=True)
    for image in (out / IMAGES_DIR).glob("*.jpg"):
        image.unlink()


def _clear_bag(bag: Path) -> None:
    """Remove a previous bag folder: its metadata.yaml and .mcap files, then the folder."""
    for item in bag.iterdir():
        item.unlink()
    bag.rmdir()


def _check_paths(args: argparse.Namespace) -> str | None:
    """Why the output paths cannot be used, or None when they can."""
    out: Path = args.out
    if out.exists() and not out.is_dir():
        return f"--out {out} exists and is not a folder"
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        return f"--out {out} is not empty; pass --overwrite to replace its dataset"
    bag: Path | None = args.bag
    if bag is None:
        return "--bag-format needs --bag" if args.bag_format else None
    if bag.exists():
        if not args.overwrite:
            return f"--bag {bag} exists; pass --overwrite to replace it"
        if (
            not bag.is_dir()
            or not (bag / "metadata.yaml").is_file()
            or any(
                item.is_dir() or (item.name != "metadata.yaml" and item.suffix != ".mcap")
                for item in bag.iterdir()
            )
        ):
            return f"--bag {bag} exists and is not a rosbag2 mcap bag; not replacing it"
    return None


def main(argv: Sequence[str] | None = None) -> int:
    """Run pdn-synth; returns the exit status (2 for bad arguments)."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as done:  # --help, or an argument argparse refused (message printed)
        return int(done.code or 0)
    try:
        config = SceneConfig(
            height=args.height,
            width=args.width,
            frames=args.frames,
            objects=args.objects,
            fps=args.fps,
            randomize=args.randomize,
        )
    except ValueError as error:
        parser.print_usage(sys.stderr)
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 2
    problem = _check_paths(args)
    if problem:
        parser.print_usage(sys.stderr)
        print(f"{PROG}: error: {problem}", file=sys.stderr)
        return 2
    if args.out.is_dir():
        _clear_dataset(args.out)
    if args.bag is not None and args.bag.exists():
        _clear_bag(args.bag)

    info = {"generator": PROG, "seed": args.seed, "config": dataclasses.asdict(config)}
    images = annotations = 0
    with contextlib.ExitStack() as stack:
        coco = stack.enter_context(CocoWriter(args.out, info=info))
        bag = None
        if args.bag is not None:
            bag = stack.enter_context(BagWriter(args.bag, args.bag_format or "raw"))
        progress = stack.enter_context(
            tqdm(total=args.sequences * args.frames, unit="frame", desc=PROG)
        )
        for index in range(args.sequences):
            video = coco.add_video(f"seq{index:04d}")
            for frame in SceneSequence((args.seed, index), config):
                coco.add_frame(video, frame)
                if bag is not None:
                    stamp = frame_stamp_ns(frame.frame_index, config.fps, index, config.frames)
                    bag.write(frame, stamp)
                images += 1
                annotations += len(frame.boxes)
                progress.update()
    print(
        f"{PROG}: wrote {images} images and {annotations} boxes to {args.out}"
        + (f", and the bag {args.bag}" if args.bag is not None else "")
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
