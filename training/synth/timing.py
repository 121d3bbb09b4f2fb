"""Time frame rendering with the fixed look and with randomised looks (SceneConfig.randomize).

    python -m training.synth.timing [--sequences 6] [--frames 6] [--height 2160] [--width 3840]

Per look it prints medians, in CPU milliseconds of this process (all its threads: the cost of
a frame, steadier than wall time on a busy machine) and in wall milliseconds: one frame
(frames 1.. of each sequence, the world already built), its ground truth alone (truth(), no
pixels), a sequence's first frame (which builds the world), writing one such frame as
pdn-synth does (JPEG quality 95, training.coco), and the JPEG round trip (quality 75) that
randomised looks put each full-resolution frame through.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import cv2

from training.coco import JPEG_QUALITY
from training.synth.randomize import jpeg_round_trip
from training.synth.scene import SceneConfig, SceneSequence


class _Clock:
    """CPU and wall seconds of calls, per name."""

    def __init__(self) -> None:
        self.cpu: dict[str, list[float]] = {}
        self.wall: dict[str, list[float]] = {}

    def __call__(self, name: str, function: Callable[..., object], *args: object) -> object:
        """Call function(*args), record its CPU and wall time under name, return its result."""
        cpu, wall = time.process_time(), time.perf_counter()
        result = function(*args)
        self.cpu.setdefault(name, []).append(time.process_time() - cpu)
        self.wall.setdefault(name, []).append(time.perf_counter() - wall)
        return result

    def line(self, name: str) -> str:
        """'CPU median / wall median ms' of a name."""
        cpu, wall = (1000 * statistics.median(times[name]) for times in (self.cpu, self.wall))
        return f"{cpu:.0f} / {wall:.0f} ms"


def measure(config: SceneConfig, sequences: int) -> _Clock:
    """Time the frames of `sequences` sequences (seeds 0..) and their JPEG write and trip."""
    clock = _Clock()
    with tempfile.TemporaryDirectory() as folder:
        path = str(Path(folder) / "frame.jpg")
        quality = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
        for seed in range(sequences):
            sequence = SceneSequence(seed, config)
            clock("first frame", sequence.render, 0)
            for t in range(1, len(sequence)):
                frame = clock("frame", sequence.render, t)
                clock("truth only", sequence.truth, t)
                bgr = cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)
                clock("JPEG write", cv2.imwrite, path, bgr, quality)
                clock("JPEG round trip", jpeg_round_trip, frame.image, 75)
    return clock


def main(argv: Sequence[str] | None = None) -> int:
    """Print the medians for the fixed look and for randomised looks."""
    parser = argparse.ArgumentParser(prog="python -m training.synth.timing", description=__doc__)
    parser.add_argument("--sequences", type=int, default=6)
    parser.add_argument("--frames", type=int, default=6, help="frames per sequence (>= 2)")
    parser.add_argument("--height", type=int, default=2160)
    parser.add_argument("--width", type=int, default=3840)
    args = parser.parse_args(argv)
    if args.sequences < 1 or args.frames < 2:
        parser.error("need --sequences >= 1 and --frames >= 2")
    print(f"medians, CPU / wall, {args.sequences} sequences x {args.frames - 1} frames:")
    for randomize in (False, True):
        config = SceneConfig(
            height=args.height, width=args.width, frames=args.frames, randomize=randomize
        )
        clock = measure(config, args.sequences)
        print(
            f"{'randomized' if randomize else 'fixed look'}: "
            + ", ".join(f"{name} {clock.line(name)}" for name in clock.cpu)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
