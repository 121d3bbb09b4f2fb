"""Training losses for PatchDriveNet.

- Detection: each candidate (global cell or patch cell) is assigned the ground-truth box whose
  centre lies within `center_radius` cells of it and whose size suits the candidate's stride;
  focal loss on classes, GIoU + L1 on the boxes of assigned candidates.
- Saliency: a heat map per patch scale, peaked at objects that the scale's windows should
  fetch, weighted toward objects too small to survive the global downsample.
- Relaxed selection: a softmax over each priority map should put its mass on those objects,
  which trains the priors and the controller even where the hard top-k has no gradient.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from pdn_model.config import ModelConfig


@dataclass(frozen=True)
class LossWeights:
    """Weights of the loss terms (the total is their weighted sum)."""

    classification: float = 1.0
    giou: float = 2.0
    l1: float = 0.5
    saliency: float = 1.0
    selection: float = 0.2


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

    Global cells take large objects, 256-px windows small ones, 512-px windows the middle;
    the ranges overlap so no size falls between levels.
    """
    if stride >= config.token_stride:
        return 0.75 * stride, float("inf")
    finest = 8.0 * min(config.patch_scales) / config.patch_size
    low = 0.0 if stride <= finest else 1.5 * stride
    return low, 12.0 * stride


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

    An object counts for a scale when it is small enough for the scale's windows to be worth
    it (the global head handles the rest); objects smaller than a saliency cell, which the
    global view cannot resolve, count fully, larger ones half.
    """
    rows, cols = config.saliency_grid
    cell = float(config.cell_size)
    device = target.boxes.device
    heat = torch.zeros(config.num_scales, rows, cols, device=device)
    if target.boxes.shape[0] == 0:
        return heat
    sides = target.boxes[:, 2:] - target.boxes[:, :2]
    longer = sides.max(dim=1).values
    weight = torch.where(longer < cell, 1.0, 0.5)
    centers = (target.boxes[:, :2] + target.boxes[:, 2:]) / 2 / cell - 0.5  # in cell units
    ys = torch.arange(rows, device=device, dtype=torch.float32)
    xs = torch.arange(cols, device=device, dtype=torch.float32)
    gauss_y = torch.exp(-((ys[None] - centers[:, 1:2]) ** 2) / (2 * sigma_cells**2))  # [G, rows]
    gauss_x = torch.exp(-((xs[None] - centers[:, 0:1]) ** 2) / (2 * sigma_cells**2))  # [G, cols]
    blobs = weight[:, None, None] * gauss_y[:, :, None] * gauss_x[:, None, :]  # [G, rows, cols]
    for i, scale in enumerate(config.patch_scales):
        stride = 8.0 * scale / config.patch_size
        _, high = size_range(stride, config)
        wanted = longer <= min(high, config.token_stride * 1.5)
        if wanted.any():
            heat[i] = blobs[wanted].amax(dim=0)
    return heat


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
    num_pos = max(1.0, float(sum(p.shape[0] for p in pred_boxes)))
    pred = torch.cat(pred_boxes)
    gt = torch.cat(gt_boxes)
    strides = torch.cat(box_strides)[:, None]
    heat = torch.stack(heat)  # [B, scales, Hs, Ws]

    terms = {
        "classification": focal_loss(logits, cls_targets) / num_pos,
        "giou": giou_loss(pred, gt) / num_pos,
        "l1": ((pred - gt).abs() / strides).sum() / num_pos,
    }
    sal = out["saliency_logits"]
    bce = F.binary_cross_entropy_with_logits(sal, heat, reduction="none")
    terms["saliency"] = (bce * (1.0 + 10.0 * heat)).mean()
    # Relaxed selection: softmax mass of the priority map on the wanted cells.
    prio = out["priority_logits"].flatten(2)
    wanted = (heat.flatten(2) > 0.5).float()
    has = wanted.sum(dim=2) > 0
    mass = (torch.softmax(prio, dim=2) * wanted).sum(dim=2)
    terms["selection"] = -torch.log(mass[has] + 1e-6).mean() if has.any() else prio.new_zeros(())
    total = torch.zeros((), device=device)
    for name, value in terms.items():
        total = total + getattr(weights, name) * value
    terms["total"] = total
    terms["positives"] = torch.tensor(num_pos / b)
    return terms
