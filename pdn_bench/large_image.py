"""`pdn-bench large-image`: pdn-detect on very large tiled TIFFs (default 20000x20000, 400 Mpx,
and 32768x32768, 1 Gpx), each with a synthetic 4K frame pasted at a known offset: recall and
AP of the pasted objects, detections elsewhere, wall time, and the peak resident memory of
the pdn-detect process (target: under 2 GiB, growing under 20 % from 400 Mpx to 1 Gpx).

The TIFFs are written tile by tile from a generator (an object-free synthetic 4K background
repeated, the frame pasted over it), so making them stays within memory too, and deleted
afterwards unless --keep. pdn-detect runs as its own process (`python -m
pdn_runtime.detect_cli`), and its peak RSS is the kernel's figure for that process
(`os.wait4`).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
import zlib
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tifffile

from pdn_bench.measure import machine_description
from pdn_bench.reporting import add_output_arguments, write_report
from pdn_runtime.image_reader import ArrayReader
from pdn_runtime.large_image import TiledDetector
from pdn_runtime.onnx_file import DEMO_MODEL
from pdn_runtime.two_part import TwoPartModel
from training.metrics import FrameResult, matched_ground_truth, summarize
from training.synth import Frame, SceneConfig, SceneSequence

TIFF_TILE = 512
RSS_LIMIT_MIB = 2048.0
RSS_GROWTH_LIMIT = 0.20
# Offset of the pasted frame in each image: well inside, and on no tile or window grid.
OFFSET_FRACTION = (0.37, 0.53)


def paste_offset(side: int) -> tuple[int, int]:
    """(x, y) of the pasted 4K frame in a side x side image, odd so that it sits on no grid."""
    return int(side * OFFSET_FRACTION[0]) | 1, int(side * OFFSET_FRACTION[1]) | 1


def encoded_tiles(
    side: int, background: np.ndarray, frame: np.ndarray, offset: tuple[int, int], level: int
) -> Iterator[bytes]:
    """The side x side image's TIFF tiles, row-major, deflate-encoded at `level` (0: stored
    raw): `background` (sides multiples of TIFF_TILE) repeated, `frame` pasted at `offset`
    (x, y). The background's few distinct tiles are encoded once, so writing a 1 Gpx image
    costs little more than its bytes on disk."""
    bh, bw = background.shape[:2]
    fh, fw = frame.shape[:2]
    ox, oy = offset

    def encode(tile: np.ndarray) -> bytes:
        return zlib.compress(tile.tobytes(), level) if level else tile.tobytes()

    plain = {
        (y, x): encode(np.ascontiguousarray(background[y : y + TIFF_TILE, x : x + TIFF_TILE]))
        for y in range(0, bh, TIFF_TILE)
        for x in range(0, bw, TIFF_TILE)
    }
    for y0 in range(0, side, TIFF_TILE):
        for x0 in range(0, side, TIFF_TILE):
            y1, x1 = max(y0, oy), max(x0, ox)
            y2, x2 = min(y0 + TIFF_TILE, oy + fh), min(x0 + TIFF_TILE, ox + fw)
            if y1 >= y2 or x1 >= x2:
                yield plain[y0 % bh, x0 % bw]
                continue
            by, bx = y0 % bh, x0 % bw
            tile = background[by : by + TIFF_TILE, bx : bx + TIFF_TILE].copy()
            tile[y1 - y0 : y2 - y0, x1 - x0 : x2 - x0] = frame[y1 - oy : y2 - oy, x1 - ox : x2 - ox]
            yield encode(tile)


def write_tiff(
    path: Path,
    side: int,
    background: np.ndarray,
    frame: np.ndarray,
    offset: tuple[int, int],
    compression: str,
) -> None:
    """A side x side RGB BigTIFF with 512x512 tiles (deflate level 1, or raw), written tile by
    tile from `encoded_tiles`."""
    level = 0 if compression == "none" else 1
    tifffile.imwrite(
        path,
        encoded_tiles(side, background, frame, offset, level),
        shape=(side, side, 3),
        dtype=np.uint8,
        tile=(TIFF_TILE, TIFF_TILE),
        photometric="rgb",
        compression=None if compression == "none" else "zlib",
        bigtiff=True,
    )


def file_digest(path: Path) -> str:
    """The first 16 hex digits of a file's SHA-256 (which model files a report used)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def run_detect(tiff: Path, model: Path, out: Path, threads: int) -> dict:
    """pdn-detect on one image in its own process: its exit code, wall time and peak RSS."""
    command = [sys.executable, "-m", "pdn_runtime.detect_cli", str(tiff), "--model", str(model)]
    command += ["--out", str(out), "--score", "0.05", "--threads", str(threads)]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - start
    log = process.stdout.read().decode(errors="replace")
    process.stdout.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"pdn-detect failed on {tiff}:\n{log[-2000:]}")
    return {"wall_s": seconds, "peak_rss_mib": usage.ru_maxrss / 1024.0}


def pasted_scores(
    frame: Frame,
    offset: tuple[int, int],
    boxes: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    class_names: list[str],
) -> dict:
    """Recall (IoU 0.5, score 0.3) and AP of the pasted frame's objects, from the detections
    whose centre lies in the pasted frame (the rest are counted as detections elsewhere)."""
    ox, oy = offset
    fh, fw = frame.image.shape[:2]
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    inside = (cx >= ox) & (cx < ox + fw) & (cy >= oy) & (cy < oy + fh)
    keep = ~frame.ignore
    shift = np.array([ox, oy, ox, oy], np.float32)
    result = FrameResult(
        1,
        fw,
        fh,
        frame.boxes[keep],
        frame.labels[keep],
        boxes[inside] - shift,
        scores[inside],
        labels[inside],
    )
    metrics, _ = summarize([result], class_names)
    return {
        "objects": int(keep.sum()),
        "recall": float(matched_ground_truth(result).mean()),
        "AP50": metrics["AP50"],
        "AP": metrics["AP"],
        "detections_in_frame": int(inside.sum()),
        "detections_elsewhere": int((~inside & (scores >= 0.3)).sum()),
    }


def load_detections(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """boxes xyxy, scores and class indices from a pdn-detect detections.json."""
    document = json.loads(path.read_text())
    rows = document["annotations"]
    xywh = np.array([a["bbox"] for a in rows], np.float32).reshape(-1, 4)
    boxes = np.concatenate([xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1)
    scores = np.array([a["score"] for a in rows], np.float32)
    labels = np.array([a["category_id"] - 1 for a in rows], np.int64)
    return boxes, scores, labels


def run(args: argparse.Namespace, work: Path) -> dict:
    """Write each TIFF, run pdn-detect on it, score the pasted objects; and the same frame
    run alone as a 4K camera frame, for reference."""
    model = TwoPartModel(args.model, threads=args.threads)
    names = list(model.class_names)
    frame = SceneSequence(args.seed, SceneConfig(frames=1)).render(0, degrade=False)
    # An object-free 4K background, cut to 2048 x 3584 (whole TIFF tiles) and repeated.
    scene = SceneSequence(args.seed + 1, SceneConfig(frames=1, objects=(0, 0)))
    background = scene.background(0)[2160 - 2048 :, :3584]
    alone = TiledDetector(model, 0.05).detect(ArrayReader(frame.image))
    reference = pasted_scores(frame, (0, 0), alone.boxes, alone.scores, alone.labels, names)
    results = {
        "model": str(args.model),
        "model_sha256": {p.name: file_digest(p) for p in (model.look_path, model.detect_path)},
        "machine": machine_description(),
        "reference_4k": reference,
        "images": [],
    }
    for side in args.sizes:
        tiff = work / f"large-{side}.tif"
        offset = paste_offset(side)
        start = time.perf_counter()
        write_tiff(tiff, side, background, frame.image, offset, args.compression)
        written_s = time.perf_counter() - start
        size_mb = tiff.stat().st_size / 1e6
        out = work / f"detect-{side}"
        print(
            f"pdn-bench large-image: {side}x{side} written ({size_mb:.0f} MB, "
            f"{written_s:.0f} s); running pdn-detect",
            flush=True,
        )
        measured = run_detect(tiff, args.model, out, args.threads)
        boxes, scores, labels = load_detections(out / "detections.json")
        entry = {
            "side": side,
            "megapixels": side * side / 1e6,
            "offset": list(offset),
            "tiff_mb": size_mb,
            "write_s": written_s,
            **measured,
            **pasted_scores(frame, offset, boxes, scores, labels, names),
        }
        print(f"pdn-bench large-image: {json.dumps(entry)}", flush=True)
        results["images"].append(entry)
        if not args.keep:
            tiff.unlink()
    return results


def report(results: dict, args: argparse.Namespace, command: str, wall_s: float) -> str:
    """The markdown report (docs/bench_large_image.md)."""
    images = results["images"]
    ref = results["reference_4k"]
    lines = [
        "# pdn-detect on very large images",
        "",
        f"Produced by `{command}` ({wall_s / 60:.1f} min) on {results['machine']}, model "
        f"`{results['model']}` (its two-part export, SHA-256 "
        f"{', '.join(f'{k} {v}' for k, v in results['model_sha256'].items())}), "
        "pdn-detect in its own process with "
        f"{args.threads} ONNX Runtime threads, TIFF tiles 512x512 ({args.compression}).",
        "",
        "Each image is an object-free synthetic 4K background repeated, with one synthetic 4K "
        f"frame (`SceneSequence({args.seed})`, {ref['objects']} annotated objects) pasted at "
        "the offset shown. Recall: share of the pasted objects found (IoU >= 0.5, same class, "
        "score >= 0.3); AP over the detections whose centre lies in the pasted frame; "
        '"elsewhere": detections (score >= 0.3) on the background, which holds no object.',
        "",
        "| image | pixels | TIFF | offset (x, y) | pdn-detect wall | peak RSS | recall | AP50 "
        "| AP | elsewhere |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for e in images:
        lines.append(
            f"| {e['side']}x{e['side']} | {e['megapixels']:.0f} Mpx | {e['tiff_mb']:.0f} MB | "
            f"{e['offset'][0]}, {e['offset'][1]} | {e['wall_s']:.0f} s | "
            f"{e['peak_rss_mib']:.0f} MiB | {e['recall']:.3f} | {e['AP50']:.3f} | {e['AP']:.3f} | "
            f"{e['detections_elsewhere']} |"
        )
    lines.append(
        f"| the frame alone, as a 4K camera frame | 8 Mpx | - | - | - | - | {ref['recall']:.3f} | "
        f"{ref['AP50']:.3f} | {ref['AP']:.3f} | - |"
    )
    lines.append("")
    if len(images) >= 2:
        small, large = images[0], images[-1]
        growth = large["peak_rss_mib"] / small["peak_rss_mib"] - 1.0
        worst = max(e["peak_rss_mib"] for e in images)
        lines += [
            f"Peak RSS {worst:.0f} MiB at most (target under {RSS_LIMIT_MIB:.0f} MiB: "
            f"{'met' if worst < RSS_LIMIT_MIB else 'missed'}); from {small['megapixels']:.0f} to "
            f"{large['megapixels']:.0f} Mpx it grows by {100 * growth:.1f} % (target under "
            f"{100 * RSS_GROWTH_LIMIT:.0f} %: {'met' if growth < RSS_GROWTH_LIMIT else 'missed'}).",
            "",
        ]
    lines += [
        "How it reads: the image is cut into 3840x2160 tiles overlapping by 512 px; per tile, "
        "its 1/8 global view is built from row bands read tile by tile, the look part picks "
        "16 windows, and only those are read at full resolution (docs/detect.md). Memory grows "
        "with the image's width (one band of rows), not its area.",
        "",
    ]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", type=Path, default=DEMO_MODEL, help="model (two-part export)")
    parser.add_argument(
        "--sizes", default="20000,32768", help="image sides in pixels, comma-separated (square)"
    )
    parser.add_argument(
        "--compression", choices=("zlib", "none"), default="zlib", help="TIFF tiles"
    )
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    parser.add_argument("--seed", type=int, default=5, help="synthetic scene seed")
    parser.add_argument(
        "--work", type=Path, default=Path("out/large_image"), help="where the TIFFs go"
    )
    parser.add_argument("--keep", action="store_true", help="keep the TIFFs")
    add_output_arguments(parser)


def main(args: argparse.Namespace, command: str) -> int:
    args.sizes = [int(s) for s in args.sizes.split(",")]
    args.work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    results = run(args, args.work)
    wall_s = time.perf_counter() - start
    results["wall_s"] = wall_s
    path = write_report(args, "bench_large_image", report(results, args, command, wall_s), results)
    print(f"pdn-bench large-image: report {path}")
    return 0
