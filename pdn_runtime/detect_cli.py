"""`pdn-detect SOURCE... [--model M] --out DIR`: run the model on image files, folders,
globs, videos and very large (tiled TIFF) images; write annotated images or videos and
DIR/detections.json (COCO). See docs/detect.md.

Every source goes through the two-part export of the model (`TiledDetector`): any size, in
native pixels, large images tile by tile. A source that cannot be read is reported with its
file name and skipped; detections.json always holds what was done.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import cv2
from tqdm import tqdm

from pdn_runtime.detect_output import CocoResults, Overview, draw
from pdn_runtime.detect_sources import Source, expand, plan
from pdn_runtime.errors import BackendError
from pdn_runtime.image_reader import ArrayReader, ImageReadError, open_image
from pdn_runtime.large_image import TiledDetector
from pdn_runtime.onnx_file import DEMO_MODEL
from pdn_runtime.two_part import TwoPartModel


class VideoReadError(ImageReadError):
    """A video that cannot be opened or ends before its last frame; names the file."""


class Run:
    """One pdn-detect run: the detector, the results so far and where output goes."""

    def __init__(self, detector: TiledDetector, out: Path, bar: tqdm) -> None:
        self.detector = detector
        self.names = detector.model.class_names
        self.out = out
        self.bar = bar
        self.results = CocoResults(self.names)
        self._written: set[str] = set()

    def output_path(self, source: Path, suffix: str) -> Path:
        """A file in the output folder named after the source, unique within the run."""
        name, n = f"{source.stem}{suffix}", 1
        while name in self._written:
            n += 1
            name = f"{source.stem}-{n}{suffix}"
        self._written.add(name)
        return self.out / name

    def _progress(self, done: int, total: int) -> None:
        if total > 1:
            self.bar.set_postfix_str(f"tile {done}/{total}")

    def image(self, source: Source) -> None:
        """Detect in one image file; write it annotated (or an annotated overview)."""
        reader = open_image(source.path)
        try:
            if not source.continues:
                self.detector.new_stream()
            overview = None
            if not isinstance(reader, ArrayReader):  # read piece by piece: draw an overview
                overview = Overview(reader.height, reader.width)
            found = self.detector.detect(
                reader, self._progress, None if overview is None else overview.add
            )
            self.results.add(str(source.path), found)
            if overview is None:
                picture = draw(reader.pixels.copy(), found, self.names)
                path = self.output_path(source.path, ".jpg")
            else:
                picture = draw(overview.pixels, found, self.names, 1.0 / overview.step)
                path = self.output_path(source.path, ".overview.jpg")
            cv2.imwrite(str(path), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
        finally:
            reader.close()
        self.bar.update(1)

    def video(self, source: Source) -> None:
        """Detect in every frame of a video (one stream); write the annotated video."""
        capture = cv2.VideoCapture(str(source.path))
        if not capture.isOpened():
            raise VideoReadError(f"{source.path}: cannot open the video (not a video, or corrupt)")
        expected = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        fps = capture.get(cv2.CAP_PROP_FPS) or 15.0
        self.detector.new_stream()
        writer = None
        frames = 0
        try:
            while True:
                ok, bgr = capture.read()
                if not ok:
                    break
                rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
                found = self.detector.detect(
                    ArrayReader(rgb, f"{source.path}#{frames}"), self._progress
                )
                self.results.add(str(source.path), found, frame_index=frames)
                if writer is None:
                    path = self.output_path(source.path, ".mp4")
                    size = (bgr.shape[1], bgr.shape[0])
                    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
                writer.write(cv2.cvtColor(draw(rgb, found, self.names), cv2.COLOR_RGB2BGR))
                frames += 1
                self.bar.update(1)
        finally:
            capture.release()
            if writer is not None:
                writer.release()
        if frames == 0 or frames < expected:
            raise VideoReadError(
                f"{source.path}: the video ended after {frames} of {expected} frames "
                f"(truncated or corrupt); the detections of those {frames} frames are kept"
            )


def frame_count(source: Source) -> int:
    """Frames a source is expected to hold (for the progress bar; 1 for an image)."""
    if source.kind != "video":
        return 1
    capture = cv2.VideoCapture(str(source.path))
    count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT)) if capture.isOpened() else 0
    capture.release()
    return max(count, 0)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="pdn-detect",
        description="Detect objects in images, folders, globs, videos and very large images.",
    )
    parser.add_argument("sources", nargs="+", help="image or video files, folders, globs")
    parser.add_argument(
        "--model",
        type=Path,
        default=DEMO_MODEL,
        help=f"the model's ONNX export X.onnx, whose two parts X.look.onnx and X.detect.onnx "
        f"(pdn-export --two-part) are run (default {DEMO_MODEL})",
    )
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--score", type=float, default=0.3, help="score threshold (0.3)")
    parser.add_argument(
        "--max-detections", type=int, default=None, help="at most this many per image"
    )
    parser.add_argument("--threads", type=int, default=0, help="ONNX Runtime threads (0: all)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run pdn-detect; 0 when every source was read, 1 when some failed (named on stderr and
    in detections.json), 2 when nothing could run (no model, no source)."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="pdn-detect: %(message)s")
    files, errors = expand(args.sources)
    for problem in errors:
        print(f"pdn-detect: error: {problem}", file=sys.stderr)
    if not files:
        return 2
    try:
        model = TwoPartModel(args.model, threads=args.threads)
    except BackendError as err:
        print(f"pdn-detect: {err}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    sources = plan(files)
    detector = TiledDetector(model, args.score, args.max_detections)
    bar = tqdm(total=sum(frame_count(s) for s in sources), unit="frame", desc="pdn-detect")
    run = Run(detector, args.out, bar)
    try:
        for source in sources:
            try:
                (run.video if source.kind == "video" else run.image)(source)
            except ImageReadError as err:
                errors.append(str(err))
                tqdm.write(f"pdn-detect: error: {err}", file=sys.stderr)
    finally:
        bar.close()
        run.results.write(args.out / "detections.json", errors)
    print(
        f"pdn-detect: {len(run.results.images)} images/frames, "
        f"{len(run.results.annotations)} detections -> {args.out / 'detections.json'}"
        + (f"; {len(errors)} sources failed" if errors else "")
    )
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
