"""Time frame rendering with the fixed look and with randomised looks (SceneConfig.randomize).

    python -m training.synth.timing [--sequences 4] [--frames 5] [--height 2160] [--width 3840]

Per look it prints the median time of one frame (frames 1.. of each sequence: the world is
already built) and of a sequence's first frame (which builds the world), plus the median time
of writing one such frame as pdn-synth does (JPEG quality 95, training.coco).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

import cv2

from training.coco import JPEG_QUALITY
from training.synth.scene import SceneConfig, SceneSequence

T = TypeVar("T")


def _timed(function: Callable[..., T], *args: object) -> tuple[float, T]:
    """Wall time (s) of one call, and what it returned."""
    start = time.perf_counter()
    result = function(*args)
    return time.perf_counter() - start, result


def measure(config: SceneConfig, sequences: int) -> dict[str, float]:
    """Median milliseconds of a frame, of a first frame (with the world) and of writing a
    frame's JPEG, and the number of frames timed."""
    frames, firsts, writes = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "frame.jpg")
        for seed in range(sequences):
            sequence = SceneSequence(seed, config)
            firsts.append(_timed(sequence.render, 0)[0])
            for t in range(1, len(sequence)):
                elapsed, frame = _timed(sequence.render, t)
                frames.append(elapsed)
                bgr = cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)
                quality = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
                writes.append(_timed(cv2.imwrite, path, bgr, quality)[0])
    return {
        "frame_ms": 1000 * statistics.median(frames),
        "first_frame_ms": 1000 * statistics.median(firsts),
        "jpeg_write_ms": 1000 * statistics.median(writes),
        "frames": len(frames),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Print the medians for the fixed look and for randomised looks."""
    parser = argparse.ArgumentParser(prog="python -m training.synth.timing", description=__doc__)
    parser.add_argument("--sequences", type=int, default=4)
    parser.add_argument("--frames", type=int, default=5, help="frames per sequence (>= 2)")
    parser.add_argument("--height", type=int, default=2160)
    parser.add_argument("--width", type=int, default=3840)
    args = parser.parse_args(argv)
    if args.sequences < 1 or args.frames < 2:
        parser.error("need --sequences >= 1 and --frames >= 2")
    for randomize in (False, True):
        config = SceneConfig(
            height=args.height, width=args.width, frames=args.frames, randomize=randomize
        )
        result = measure(config, args.sequences)
        print(
            f"{'randomized' if randomize else 'fixed look':>10}: frame {result['frame_ms']:.0f} ms"
            f" (median of {result['frames']}), first frame with world "
            f"{result['first_frame_ms']:.0f} ms, JPEG write {result['jpeg_write_ms']:.0f} ms"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
