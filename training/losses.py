"""Training losses for PatchDriveNet.

- Detection: each candidate (global cell or patch cell) is assigned the ground-truth box whose
  centre lies within `center_radius` cells of it and whose size suits the candidate's head
  (`size_range`); focal loss on classes, GIoU + L1 on the boxes of assigned candidates. Each
  head (global, one per patch scale) is normalised by its own positives, so the few large
  objects of the global head weigh as much as the many small ones of the patches.
- Saliency: a heat map per patch scale, peaked at the objects that the scale's head detects,
  weighted toward objects too small for the global head.
- Where to look, with a signal that reaches every window, chosen or not, and cannot run away:
  `selection` is the log-softmax mass of each priority map on the windows that would hold
  such an object (exact, no floor), and `window` a BCE of every window's priority on the same
  target, which anchors the priority's absolute level (patch_scores = sigmoid(priority)).
  Hard top-k has no gradient, and detection credit does not flow into the choice.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from pdn_model.config import ModelConfig
from pdn_model.selection import cell_window_origins


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms (the total is their weighted sum)."""

    classification: float = 1.0
    giou: float = 2.0
    l1: float = 0.5
    saliency: float = 1.0
    selection: float = 0.2
    window: float = 0.5


LOSS_TERMS = tuple(f.name for f in fields(LossWeights))


@dataclass(frozen=True)
class Target:
    """Ground truth of one frame: boxes [G, 4] xyxy pixels and labels [G] (0-based)."""

    boxes: torch.Tensor
    labels: torch.Tensor

    def to(self, device: torch.device | str) -> Target:
        """The same target on another device."""
        return Target(self.boxes.to(device), self.labels.to(device))


def size_range(stride: float, config: ModelConfig) -> tuple[float, float]:
    """Object sizes (longer side, pixels) that candidates of this stride learn to detect.

    Global cells take objects from 0.75 cell up; a patch cell of stride s takes objects up to
    8 s (about its receptive field) and at most half its window, from 2 s up except at the
    finest patch stride, which takes everything smaller. At 4K: 256-px windows 0-64 px,
    512-px windows 32-128 px, global 48 px and up; the ranges overlap so no size falls
    between heads.
    """
    if stride >= config.token_stride:
        return 0.75 * stride, float("inf")
    finest = 8.0 * min(config.patch_scales) / config.patch_size
    window = stride * config.patch_size / 8.0
    low = 0.0 if stride <= finest else 2.0 * stride
    return low, min(8.0 * stride, window / 2)


def scale_size_range(scale_index: int, config: ModelConfig) -> tuple[float, float]:
    """`size_range` of the patch head behind windows of one patch scale."""
    return size_range(8.0 * config.patch_scales[scale_index] / config.patch_size, config)


def _in_scale_range(longer: torch.Tensor, scale_index: int, config: ModelConfig) -> torch.Tensor:
    low, high = scale_size_range(scale_index, config)
    return (longer >= low) & (longer <= high)


def assign(
    centers: torch.Tensor,
    strides: torch.Tensor,
    target: Target,
    config: ModelConfig,
    center_radius: float = 0.75,
) -> torch.Tensor:
    """Index of the ground-truth box assigned to each candidate [N], -1 for background.

    centers [N, 2] and strides [N] in pixels. Among boxes that qualify, the smallest wins.
    """
    n, g = centers.shape[0], target.boxes.shape[0]
    if g == 0:
        return torch.full((n,), -1, dtype=torch.long, device=centers.device)
    boxes = target.boxes
    box_centers = (boxes[:, :2] + boxes[:, 2:]) / 2  # [G, 2]
    sides = boxes[:, 2:] - boxes[:, :2]
    longer = sides.max(dim=1).values  # [G]
    area = sides[:, 0] * sides[:, 1]
    near = (
        (centers[:, None, :] - box_centers[None]).abs() <= center_radius * strides[:, None, None]
    ).all(-1)
    low = torch.empty_like(strides)
    high = torch.empty_like(strides)
    for stride in strides.unique().tolist():
        lo, hi = size_range(stride, config)
        level = strides == stride
        low[level], high[level] = lo, hi
    fits = (longer[None] >= low[:, None]) & (longer[None] <= high[:, None])
    ok = near & fits  # [N, G]
    cost = torch.where(
        ok, area[None].expand(n, g), torch.full_like(ok, float("inf"), dtype=area.dtype)
    )
    best_cost, best = cost.min(dim=1)
    return torch.where(torch.isfinite(best_cost), best, torch.full_like(best, -1))


def focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Sigmoid focal loss, summed."""
    p = torch.sigmoid(logits)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return (alpha_t * ce * (1 - p_t) ** gamma).sum()


def giou_loss(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """1 - generalised IoU of matching xyxy boxes [K, 4], summed."""
    area_p = (pred[:, 2] - pred[:, 0]).clamp(min=0) * (pred[:, 3] - pred[:, 1]).clamp(min=0)
    area_g = (gt[:, 2] - gt[:, 0]) * (gt[:, 3] - gt[:, 1])
    lt = torch.maximum(pred[:, :2], gt[:, :2])
    rb = torch.minimum(pred[:, 2:], gt[:, 2:])
    inter = (rb - lt).clamp(min=0).prod(dim=1)
    union = area_p + area_g - inter
    iou = inter / union.clamp(min=1e-6)
    hull = (torch.maximum(pred[:, 2:], gt[:, 2:]) - torch.minimum(pred[:, :2], gt[:, :2])).prod(
        dim=1
    )
    giou = iou - (hull - union) / hull.clamp(min=1e-6)
    return (1 - giou).sum()


def saliency_targets(target: Target, config: ModelConfig, sigma_cells: float = 1.0) -> torch.Tensor:
    """Heat map [num_scales, Hs, Ws] in [0, 1]: where each scale's windows should go.

    An object counts for a scale when its size is in the range of that scale's head; objects
    too small for the global head count fully, the others half.
    """
    rows, cols = config.saliency_grid
    cell = float(config.cell_size)
    device = target.boxes.device
    heat = torch.zeros(config.num_scales, rows, cols, device=device)
    if target.boxes.shape[0] == 0:
        return heat
    longer = (target.boxes[:, 2:] - target.boxes[:, :2]).max(dim=1).values
    global_low, _ = size_range(float(config.token_stride), config)
    weight = torch.where(longer < global_low, 1.0, 0.5)
    centers = (target.boxes[:, :2] + target.boxes[:, 2:]) / 2 / cell - 0.5  # in cell units
    ys = torch.arange(rows, device=device, dtype=torch.float32)
    xs = torch.arange(cols, device=device, dtype=torch.float32)
    gauss_y = torch.exp(-((ys[None] - centers[:, 1:2]) ** 2) / (2 * sigma_cells**2))  # [G, rows]
    gauss_x = torch.exp(-((xs[None] - centers[:, 0:1]) ** 2) / (2 * sigma_cells**2))  # [G, cols]
    blobs = weight[:, None, None] * gauss_y[:, :, None] * gauss_x[:, None, :]  # [G, rows, cols]
    for i in range(config.num_scales):
        wanted = _in_scale_range(longer, i, config)
        if wanted.any():
            heat[i] = blobs[wanted].amax(dim=0)
    return heat


def window_targets(target: Target, config: ModelConfig) -> torch.Tensor:
    """[num_scales, Hs, Ws] bool: the window of that scale centred on the cell (shifted inside
    the frame, as the model places it) wholly holds an object in the scale's size range."""
    rows, cols = config.saliency_grid
    device = target.boxes.device
    wanted = torch.zeros(config.num_scales, rows, cols, dtype=torch.bool, device=device)
    if target.boxes.shape[0] == 0:
        return wanted
    boxes = target.boxes
    longer = (boxes[:, 2:] - boxes[:, :2]).max(dim=1).values
    cells = torch.arange(rows * cols, device=device)[None]
    for i, scale in enumerate(config.patch_scales):
        keep = _in_scale_range(longer, i, config)
        if not keep.any():
            continue
        b = boxes[keep]
        x0, y0 = (o.reshape(rows, cols) for o in cell_window_origins(cells, cols, scale, config))
        x0, y0 = x0[0], y0[:, 0]  # origins depend on the column and the row alone
        in_x = (b[:, None, 0] >= x0[None]) & (b[:, None, 2] <= x0[None] + scale)  # [G, cols]
        in_y = (b[:, None, 1] >= y0[None]) & (b[:, None, 3] <= y0[None] + scale)  # [G, rows]
        wanted[i] = (in_y.float().T @ in_x.float()) > 0
    return wanted


def selection_loss(priority: torch.Tensor, wanted: torch.Tensor) -> torch.Tensor:
    """-log of the softmax mass of each priority map [B, S, Hs, Ws] on its wanted cells,
    averaged over the maps that have any; exact in log space, so it keeps its gradient
    however small the mass."""
    prio = priority.flatten(2)
    mask = wanted.flatten(2)
    has = mask.any(dim=2)
    if not has.any():
        return prio.sum() * 0.0
    inside = prio.masked_fill(~mask, float("-inf")).logsumexp(dim=2)
    return (prio.logsumexp(dim=2) - inside)[has].mean()


def detection_heads(config: ModelConfig) -> list[tuple[str, float]]:
    """(name, candidate stride) of each detection head: "global", then "p<scale>" per patch
    scale (the patch head behind windows of that scale)."""
    heads = [("global", float(config.token_stride))]
    return heads + [(f"p{s}", 8.0 * s / config.patch_size) for s in config.patch_scales]


def detection_criterion(
    out: dict[str, torch.Tensor],
    targets: list[Target],
    config: ModelConfig,
    weights: LossWeights = LossWeights(),
) -> dict[str, torch.Tensor]:
    """Loss terms and their weighted `total` for a training-mode forward over a batch."""
    logits = out["candidate_logits"]
    b = logits.shape[0]
    device = logits.device
    cls_targets = torch.zeros_like(logits)
    pred_boxes, gt_boxes, box_strides = [], [], []
    heat = []
    for i, target in enumerate(targets):
        matched = assign(out["candidate_centers"][i], out["candidate_strides"][i], target, config)
        pos = matched >= 0
        cls_targets[i, pos, target.labels[matched[pos]]] = 1.0
        pred_boxes.append(out["candidate_boxes"][i][pos])
        gt_boxes.append(target.boxes[matched[pos]])
        box_strides.append(out["candidate_strides"][i][pos])
        heat.append(saliency_targets(target, config))
    pred = torch.cat(pred_boxes)
    gt = torch.cat(gt_boxes)
    strides = torch.cat(box_strides)
    heat = torch.stack(heat)  # [B, scales, Hs, Ws]
    wanted = torch.stack([window_targets(t, config) for t in targets])

    terms = {name: logits.new_zeros(()) for name in ("classification", "giou", "l1")}
    positives = {}
    for name, stride in detection_heads(config):
        level = out["candidate_strides"] == stride  # [B, N]
        if not level.any():
            continue  # this head saw no candidates (e.g. no windows of this scale)
        on = strides == stride
        count = float(on.sum())
        positives[name] = count / b
        norm = max(1.0, count)
        terms["classification"] = terms["classification"] + (
            focal_loss(logits[level], cls_targets[level]) / norm
        )
        terms["giou"] = terms["giou"] + giou_loss(pred[on], gt[on]) / norm
        terms["l1"] = terms["l1"] + ((pred[on] - gt[on]).abs() / stride).sum() / norm
    sal = out["saliency_logits"]
    bce = F.binary_cross_entropy_with_logits(sal, heat, reduction="none")
    terms["saliency"] = (bce * (1.0 + 10.0 * heat)).mean()
    prio = out["priority_logits"]
    terms["selection"] = selection_loss(prio, wanted)
    terms["window"] = F.binary_cross_entropy_with_logits(prio, wanted.float())
    total = torch.zeros((), device=device)
    for name, value in terms.items():
        total = total + getattr(weights, name) * value
    terms["total"] = total
    for name, count in positives.items():
        terms[f"positives_{name}"] = torch.tensor(count)
    return terms
