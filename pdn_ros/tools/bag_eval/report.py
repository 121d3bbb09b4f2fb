"""`pdn-bag-eval`, reporting a run: metrics (those of `pdn-eval` where there is ground truth,
plus the bag's own figures), metrics.json with the precision-recall plot, frames.csv,
latency.png, annotated samples and report.md. See docs/bag_evaluation.md."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from faster_coco_eval import COCOeval_faster

from pdn_ros.image_convert import JPEG_QUALITY
from pdn_ros.tools.bag_eval.figures import skip_summaries, window_coverage
from pdn_ros.tools.bag_eval.run import BagRun
from pdn_runtime.boxes import longer_side
from pdn_runtime.timing import percentiles_ms
from training.metrics import (
    METRIC_KEYS,
    RECALL_SCORE,
    SMALL_SIDE,
    FrameResult,
    matched_ground_truth,
    patch_recall_small,
    small_in_patch,
    summarize,
    write_report,
)

TRUTH_COLOR = (255, 255, 255)  # ground truth in the samples (RGB); detections by class


def compute_metrics(
    run: BagRun, results: dict[int, FrameResult], model: Path, bag: Path
) -> tuple[dict[str, Any], COCOeval_faster | None]:
    """pdn-eval's metrics (training.metrics.summarize, patch recall; only where the run has
    ground truth) and latency, plus the bag's own figures; the COCOeval is None when no frame
    has ground truth."""
    ok = [row for row in run.rows if row.result is not None]
    inference_p50, inference_p99 = percentiles_ms([row.result.timings["inference"] for row in ok])
    processing_p50, processing_p99 = percentiles_ms([row.processing_s for row in ok])
    metrics: dict[str, Any] = {}
    evaluation = None
    if run.truth_source is not None:
        metrics = {key: float("nan") for key in METRIC_KEYS}
        metrics.update(frames=0, objects=0, patch_recall_small=float("nan"))
    if results:
        metrics, evaluation = summarize(list(results.values()), list(run.class_names))
        metrics["patch_recall_small"] = patch_recall_small(list(results.values()))
    metrics.update(
        latency_ms_p50=inference_p50,
        latency_ms_p99=inference_p99,
        processing_ms_p50=processing_p50,
        processing_ms_p99=processing_p99,
        backend=run.backend,
        patches=int(ok[0].result.found.patch_boxes.shape[0]) if ok else 0,
        complete=run.error is None,
        error=run.error,
        bag=str(bag),
        model=str(model),
        image_topic=run.image_topic,
        image_topic_choice=run.image_choice,
        ground_truth=run.truth_source is not None,
        ground_truth_source=run.truth_source,
        frames_read=len(run.rows),
        bad_frames=len(run.rows) - len(ok),
        resets=sum(row.result.found.reset is not None for row in ok),
        index_unreadable=run.recovered,
    )
    if run.truth_source is not None:
        metrics["frames_without_ground_truth"] = sum(row.truth is None for row in run.rows)
    return metrics, evaluation


def _write_csv(path: Path, run: BagRun, results: dict[int, FrameResult]) -> None:
    """One line per image: stamp, status, ground truth, what was found, timings."""
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
                "windows",
                "window_coverage",
            ]
        )
        for row in run.rows:
            r = row.result
            fr = results.get(row.index)
            gt, small, found, in_patch = "", "", "", ""
            if fr is not None:
                gt, small = len(fr.gt_boxes), int((longer_side(fr.gt_boxes) < SMALL_SIDE).sum())
                found = int(matched_ground_truth(fr).sum())
                in_patch = small_in_patch(fr)[0]
            writer.writerow(
                [
                    row.index,
                    row.stamp_ns,
                    row.status,
                    (r.found.reset or "") if r else "",
                    gt,
                    small,
                    int((r.found.scores >= RECALL_SCORE).sum()) if r else "",
                    found,
                    in_patch,
                    f"{r.timings['inference'] * 1000:.2f}" if r else "",
                    f"{row.processing_s * 1000:.2f}",
                    len(r.found.patch_boxes) if r else "",
                    f"{window_coverage(r.found):.4f}" if r else "",
                ]
            )


def _plot_latency(path: Path, run: BagRun) -> None:
    """Per-frame model and processing time, and their distribution."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ok = [row for row in run.rows if row.result is not None]
    index = [row.index for row in ok]
    inference_s = [row.result.timings["inference"] for row in ok]
    inference = np.array(inference_s) * 1000
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
        for value, name in zip(percentiles_ms(inference_s), ("p50", "p99"), strict=True):
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
            [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY],
        )
        names.append(name)
    return names


def _state(metrics: dict[str, Any]) -> str:
    """Complete, or incomplete with the damage."""
    if metrics["complete"]:
        return "complete"
    return (
        f"**INCOMPLETE: the bag is damaged.** {metrics['error'].rstrip('.')}. The figures "
        f"below cover the {metrics['frames_read']} frames read before the damage."
    )


def _counts(counts: dict[str, int]) -> str:
    """`3 (gap 2, resolution 1)` from counts by reason."""
    total = sum(counts.values())
    return f"{total} ({', '.join(f'{k} {v}' for k, v in counts.items())})" if counts else "0"


def _run_lines(metrics: dict[str, Any], command: str) -> list[str]:
    """What ran: bag, image topic, ground truth, model, frame counts."""
    truth = (
        f"ground truth: {metrics['ground_truth_source']}"
        if metrics["ground_truth"]
        else "**no ground truth**: the bag has no annotations (no pdn_msgs/DetectionArray topic "
        "and no `--coco`, or `--no-ground-truth`), so nothing is scored: no AP, recall or "
        "tracking accuracy. The figures below need no annotations."
    )
    lines = [
        f"# Bag evaluation: {Path(metrics['bag']).name}",
        "",
        f"`{command}`",
        "",
        f"- bag `{metrics['bag']}`: {_state(metrics)}",
        f"- images from `{metrics['image_topic']}`: {metrics['image_topic_choice']}",
        f"- {truth}",
        f"- model `{metrics['model']}` on {metrics['backend']}, {metrics['patches']} patches",
        f"- frames read {metrics['frames_read']}, processed {metrics['frames_processed']}, "
        f"skipped {_counts(metrics['frames_skipped'])}; temporal-state resets "
        f"{_counts(metrics['resets_by_reason'])}",
    ]
    if metrics["ground_truth"]:
        lines.append(
            f"- frames scored {metrics['frames']}, without ground truth "
            f"{metrics['frames_without_ground_truth']} (a frame skipped for its resolution is "
            "not scored; one skipped as bad counts with no detections)"
        )
    if metrics.get("index_unreadable"):
        lines.append(f"- bag index unreadable ({metrics['index_unreadable']}): read from the start")
    return lines


def _activity_lines(metrics: dict[str, Any], run: BagRun) -> list[str]:
    """What the model did, needing no annotations: detections by class, windows, resets,
    skipped frames, the video."""
    published = metrics["published_detections"]
    lines = [
        "## What the model did (no annotations needed)",
        "",
        f"Detections the node would publish (score >= {published['score_threshold']}, at most "
        f"{published['max_detections']} per frame): {metrics['detections_per_frame']:.2f} per "
        f"processed frame, in {metrics['frames_with_detections']} of "
        f"{metrics['frames_processed']} frames.",
        "",
        "| class | detections per frame |",
        "|---|---:|",
    ]
    lines += [f"| {k} | {v:.2f} |" for k, v in metrics["detections_per_frame_by_class"].items()]
    lines += [
        "",
        f"Windows chosen: {metrics['windows_per_frame']:.1f} per frame, covering "
        f"{100 * metrics['window_coverage_mean']:.1f} % of the frame on average (min "
        f"{100 * metrics['window_coverage_min']:.1f} %, max "
        f"{100 * metrics['window_coverage_max']:.1f} %; the union of the windows).",
        "",
        "| scale | windows per frame | median side (px) |",
        "|---|---:|---:|",
    ]
    lines += [
        f"| {k} | {v['per_frame']:.2f} | {v['side_px_median']:.0f} |"
        for k, v in metrics["windows_by_scale"].items()
    ]
    resets = [(row.index, row.result.found.reset) for row in run.rows if row.result is not None]
    resets = [(i, reason) for i, reason in resets if reason]
    lines += ["", f"Temporal-state resets: {_counts(metrics['resets_by_reason'])}."]
    if resets:
        lines += ["", "| frame | reason |", "|---:|---|"]
        lines += [f"| {i} | {reason} |" for i, reason in resets[:20]]
        lines += [f"| ... | {len(resets) - 20} more in frames.csv |"] if len(resets) > 20 else []
    lines += [
        "",
        f"Frames skipped (the node skips them too): {_counts(metrics['frames_skipped'])}.",
    ]
    skips = skip_summaries(run)
    if skips:
        lines += [
            "",
            "| reason | frames | first | last | first message |",
            "|---|---:|---:|---:|---|",
        ]
        lines += [f"| {k.kind} | {k.count} | {k.first} | {k.last} | {k.message} |" for k in skips]
    video = metrics["video"]
    lines += ["", f"Annotated video: {video if video else 'none (--no-video)'}."]
    return lines


def _markdown(
    metrics: dict[str, Any], run: BagRun, command: str, samples: list[str], has_curves: bool
) -> str:
    """report.md: what ran, the metrics, what the model did, the plots and the samples."""
    lines = _run_lines(metrics, command)
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
    lines += _activity_lines(metrics, run)
    lines.append("")
    if has_curves:
        lines += ["![precision-recall and AP by size](pr_ap.png)", ""]
    lines += ["![time per frame](latency.png)", "", "Per-frame figures: `frames.csv`.", ""]
    if samples:
        lines += [
            "## Samples",
            "",
            "Patches thin (coloured by scale), detections with score >= 0.3 thick (coloured by "
            "class)" + (", ground truth white." if metrics["ground_truth"] else "."),
            "",
        ]
        lines += [f"![{name}](samples/{name})" for name in samples]
    return "\n".join(lines) + "\n"


def write_outputs(
    out: Path,
    run: BagRun,
    results: dict[int, FrameResult],
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
    markdown = _markdown(metrics, run, command, samples, evaluation is not None)
    (out / "report.md").write_text(markdown)
