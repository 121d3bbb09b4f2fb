"""A contact sheet of randomised looks: the first frame of sequences 0..N-1 in a grid, with
their annotated boxes (green) and ignored boxes (yellow), written as one JPEG.

    python -m training.synth.contact_sheet --out docs/synthetic_randomized.jpg
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from training.synth.scene import Frame, SceneConfig, SceneSequence

_ANNOTATED = (60, 230, 60)
_IGNORED = (240, 220, 40)


def _with_boxes(frame: Frame) -> np.ndarray:
    """The frame's image with its ground-truth boxes outlined (1 px, just outside the box)."""
    image = frame.image.copy()
    for (x1, y1, x2, y2), ignore in zip(frame.boxes.astype(int), frame.ignore, strict=True):
        color = _IGNORED if ignore else _ANNOTATED
        cv2.rectangle(image, (x1 - 1, y1 - 1), (x2, y2), color, 1)
    return image


def contact_sheet(columns: int, rows: int, height: int, width: int, seed: int) -> np.ndarray:
    """RGB grid of the first frames of randomised sequences (seed, 0) .. (seed, N-1)."""
    config = SceneConfig(height=height, width=width, frames=1, randomize=True)
    tiles = [
        _with_boxes(SceneSequence((seed, index), config).render(0))
        for index in range(columns * rows)
    ]
    return np.concatenate(
        [np.concatenate(tiles[r * columns : (r + 1) * columns], axis=1) for r in range(rows)]
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Write the contact sheet."""
    parser = argparse.ArgumentParser(
        prog="python -m training.synth.contact_sheet", description=__doc__
    )
    parser.add_argument("--out", type=Path, required=True, metavar="JPG")
    parser.add_argument("--columns", type=int, default=4)
    parser.add_argument("--rows", type=int, default=3)
    parser.add_argument("--height", type=int, default=270, help="of one tile")
    parser.add_argument("--width", type=int, default=480, help="of one tile")
    parser.add_argument("--seed", type=int, default=0, help="sequence i is (seed, i)")
    parser.add_argument("--quality", type=int, default=85, help="JPEG quality")
    args = parser.parse_args(argv)
    if args.columns < 1 or args.rows < 1 or not 1 <= args.quality <= 100:
        parser.error("need --columns >= 1, --rows >= 1 and --quality in 1..100")
    sheet = contact_sheet(args.columns, args.rows, args.height, args.width, args.seed)
    bgr = cv2.cvtColor(sheet, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(args.out), bgr, [cv2.IMWRITE_JPEG_QUALITY, args.quality]):
        raise OSError(f"could not write {args.out}")
    print(f"wrote {args.out} ({args.out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
