"""Detection metrics: COCO AP with faster-coco-eval (maxDets raised for dense scenes),
recall by object size, and the plots of an evaluation report. Imports no torch."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from faster_coco_eval import COCO, COCOeval_faster

from pdn_runtime.boxes import box_iou, contains, in_any_patch, longer_side

MAX_DETS = (10, 100, 300)
# Longer-side bins (pixels) for recall by size; the first two are what patches are for.
SIZE_BINS = ((0.0, 16.0), (16.0, 32.0), (32.0, 96.0), (96.0, float("inf")))
RECALL_IOU = 0.5
RECALL_SCORE = 0.3
SMALL_SIDE = 32.0  # longer side below which an object counts as small for patch recall
METRIC_KEYS = ("AP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large")
_COCO_NAMES = {
    "AP": "AP_all",
    "AP50": "AP_50",
    "AP75": "AP_75",
    "AP_small": "AP_small",
    "AP_medium": "AP_medium",
    "AP_large": "AP_large",
}


@dataclass
class FrameResult:
    """Ground truth and detections of one frame (boxes xyxy pixels, labels 0-based), with the
    patches the model selected and its inference time when an evaluation ran the model."""

    image_id: int
    width: int
    height: int
    gt_boxes: np.ndarray
    gt_labels: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    patch_boxes: np.ndarray | None = None  # [P, 4] xyxy
    latency_s: float = float("nan")


def _xywh(boxes: np.ndarray) -> list[list[float]]:
    b = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    return np.concatenate([b[:, :2], b[:, 2:] - b[:, :2]], axis=1).tolist()


def coco_evaluation(frames: list[FrameResult], class_names: list[str]) -> COCOeval_faster:
    """Run COCO bbox evaluation over the frames; returns the evaluated COCOeval object."""
    images, annotations, detections = [], [], []
    for f in frames:
        images.append({"id": f.image_id, "width": f.width, "height": f.height})
        for box, label in zip(_xywh(f.gt_boxes), f.gt_labels.tolist(), strict=True):
            annotations.append(
                {
                    "id": len(annotations) + 1,
                    "image_id": f.image_id,
                    "category_id": int(label) + 1,
                    "bbox": box,
                    "area": box[2] * box[3],
                    "iscrowd": 0,
                }
            )
        keep = f.scores > 0
        for box, score, label in zip(
            _xywh(f.boxes[keep]), f.scores[keep].tolist(), f.labels[keep].tolist(), strict=True
        ):
            detections.append(
                {
                    "image_id": f.image_id,
                    "category_id": int(label) + 1,
                    "bbox": box,
                    "score": float(score),
                }
            )
    categories = [{"id": i + 1, "name": n} for i, n in enumerate(class_names)]
    gt = COCO({"images": images, "annotations": annotations, "categories": categories})
    dt = (
        gt.loadRes(detections)
        if detections
        else COCO({"images": images, "annotations": [], "categories": categories})
    )
    evaluation = COCOeval_faster(gt, dt, iouType="bbox", print_function=lambda *a: None)
    evaluation.params.maxDets = list(MAX_DETS)
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
    return evaluation


def matched_ground_truth(frame: FrameResult, score: float = RECALL_SCORE) -> np.ndarray:
    """Per ground-truth box: found by a same-class detection with score >= `score` at IoU
    >= 0.5 (greedy, highest score first)."""
    found = np.zeros(len(frame.gt_boxes), dtype=bool)
    order = np.argsort(-frame.scores)
    order = order[frame.scores[order] >= score]
    if len(order) == 0 or len(found) == 0:
        return found
    iou = box_iou(frame.boxes[order], frame.gt_boxes)
    same = frame.labels[order][:, None] == frame.gt_labels[None]
    iou = np.where(same, iou, 0.0)
    for row in iou:
        row = np.where(found, 0.0, row)
        best = int(row.argmax())
        if row[best] >= RECALL_IOU:
            found[best] = True
    return found


def recall_by_size(frames: list[FrameResult]) -> dict[str, float]:
    """Share of ground-truth objects found (IoU >= 0.5, score >= 0.3) per longer-side bin."""
    found, sizes = [], []
    for f in frames:
        found.append(matched_ground_truth(f))
        sizes.append(longer_side(f.gt_boxes))
    found_all = np.concatenate(found) if found else np.zeros(0, bool)
    size_all = np.concatenate([np.asarray(s, dtype=float) for s in sizes]) if sizes else np.zeros(0)
    result = {}
    for lo, hi in SIZE_BINS:
        inside = (size_all >= lo) & (size_all < hi)
        name = f"recall_{int(lo)}-{'inf' if hi == float('inf') else int(hi)}px"
        result[name] = float(found_all[inside].mean()) if inside.any() else float("nan")
    return result


def small_in_patch(frame: FrameResult) -> tuple[int, int]:
    """(small ground-truth objects that lie entirely inside a selected patch, small objects)
    of one frame; small means a longer side under SMALL_SIDE pixels."""
    small = frame.gt_boxes[longer_side(frame.gt_boxes) < SMALL_SIDE]
    if frame.patch_boxes is None:
        raise ValueError(f"frame {frame.image_id} has no patch boxes (the model was not run)")
    return int(in_any_patch(small, frame.patch_boxes).sum()), len(small)


def patch_recall_small(frames: list[FrameResult]) -> float:
    """Share of small ground-truth objects that lie inside a selected patch (NaN: none)."""
    counts = np.array([small_in_patch(f) for f in frames], np.int64).reshape(-1, 2)
    inside, total = counts.sum(axis=0)
    return float(inside / total) if total else float("nan")


def window_precision(frames: list[FrameResult]) -> dict[str, float]:
    """Per window size S: `window_precision_Spx`, the share of the chosen windows of that size
    that wholly hold at least one annotated object."""
    held: dict[int, list[int]] = {}
    for frame in frames:
        if frame.patch_boxes is None:
            raise ValueError(f"frame {frame.image_id} has no patch boxes (the model was not run)")
        holds = contains(frame.patch_boxes, frame.gt_boxes).any(axis=1)
        sizes = np.rint(frame.patch_boxes[:, 2] - frame.patch_boxes[:, 0]).astype(int)
        for size, hit in zip(sizes.tolist(), holds.tolist(), strict=True):
            held.setdefault(size, []).append(hit)
    return {f"window_precision_{size}px": float(np.mean(v)) for size, v in sorted(held.items())}


def summarize(frames: list[FrameResult], class_names: list[str]) -> tuple[dict, COCOeval_faster]:
    """The metrics of `pdn-eval`: AP keys (0..1, -1 where no object of that size exists),
    recall by size, object counts."""
    evaluation = coco_evaluation(frames, class_names)
    stats = evaluation.stats_as_dict
    metrics = {key: float(stats[_COCO_NAMES[key]]) for key in METRIC_KEYS}
    metrics.update(recall_by_size(frames))
    metrics["frames"] = len(frames)
    metrics["objects"] = int(sum(len(f.gt_boxes) for f in frames))
    return metrics, evaluation


def _ap50(frames: list[FrameResult], class_names: list[str]) -> float:
    """COCO AP at IoU 0.5 of `frames`."""
    return float(coco_evaluation(frames, class_names).stats_as_dict[_COCO_NAMES["AP50"]])


def class_agnostic_ap50(frames: list[FrameResult]) -> float:
    """AP50 with every class merged into one: how well objects are found and placed whatever
    their class (the gap to AP50 is what confusing classes costs)."""
    merged = [
        replace(f, gt_labels=np.zeros_like(f.gt_labels), labels=np.zeros_like(f.labels))
        for f in frames
    ]
    return _ap50(merged, ["object"])


def ap50_by_video(
    frames: list[FrameResult], videos: list[int | None], class_names: list[str]
) -> dict[str, float]:
    """AP50 of each video's frames (`videos[i]` is frame i's video; keys are the ids as text),
    to show how results vary from scene to scene; empty for fewer than two videos."""
    ids = list(dict.fromkeys(videos))
    if len(ids) < 2:
        return {}
    return {
        str(v): _ap50([f for f, w in zip(frames, videos, strict=True) if w == v], class_names)
        for v in ids
    }


def write_report(out_dir: Path, metrics: dict, evaluation: COCOeval_faster, title: str) -> None:
    """metrics.json, a precision-recall plot (IoU 0.5, by COCO area) and AP by size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=True))
    precision = evaluation.eval["precision"]  # [iou, recall, class, area, maxdet]
    recall_points = np.asarray(evaluation.params.recThrs)
    fig, (ax_pr, ax_ap) = plt.subplots(1, 2, figsize=(10, 3.8))
    for a, area in enumerate(evaluation.params.areaRngLbl):
        curve = precision[0, :, :, a, -1]
        curve = np.where(curve < 0, np.nan, curve)
        if np.isnan(curve).all():
            continue
        ax_pr.plot(recall_points, np.nanmean(curve, axis=1), label=area)
    ax_pr.set_xlabel("recall")
    ax_pr.set_ylabel("precision")
    ax_pr.set_title("precision-recall, IoU 0.5")
    ax_pr.legend()
    names = ["AP_small", "AP_medium", "AP_large", "AP"]
    values = [max(0.0, metrics[n]) for n in names]
    ax_ap.bar(names, values, color=["tab:blue", "tab:orange", "tab:green", "tab:gray"])
    for i, v in enumerate(values):
        ax_ap.text(i, v, f"{v:.3f}", ha="center", va="bottom")
    ax_ap.set_ylim(0, 1)
    ax_ap.set_title("AP by size (COCO areas)")
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(out_dir / "pr_ap.png", dpi=100)
    plt.close(fig)
