"""Training diagnostics: is the model learning where to look?

Per training step, from the training-mode outputs and the gradients: statistics of each
scale's priority map (a map that drifts far from the saliency's range means the selection
training has run away), window precision (share of chosen windows that wholly hold an
annotated object), patch recall of small objects (share of objects under `SMALL_SIDE` px
that lie wholly inside a chosen window) and the gradient norm of each top-level module.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from pdn_model.config import ModelConfig
from pdn_runtime.boxes import contains, longer_side
from training.losses import Target
from training.metrics import SMALL_SIDE

# A priority map whose mean or spread leaves this range has drifted: the saliency logits it
# is built on stay within a few units, and the learned part is bounded by priority_bound.
DRIFT_LIMIT = 20.0


def priority_stats(priority: torch.Tensor, config: ModelConfig) -> dict[str, float]:
    """Mean, std and largest |value| of each scale's priority map [B, S, Hs, Ws]."""
    stats = {}
    for i, scale in enumerate(config.patch_scales):
        plane = priority[:, i].detach().float()
        stats[f"prio_mean_p{scale}"] = float(plane.mean())
        stats[f"prio_std_p{scale}"] = float(plane.std())
        stats[f"prio_absmax_p{scale}"] = float(plane.abs().max())
    return stats


def window_stats(
    out: dict[str, torch.Tensor], targets: list[Target], config: ModelConfig
) -> dict[str, float]:
    """Window precision per scale and patch recall of small objects over a batch (NaN when
    there was nothing to count)."""
    chosen = {i: [0, 0] for i in range(config.num_scales)}  # scale -> [holding, total]
    small_found = small_total = 0
    windows = out["patch_boxes"].detach().cpu().numpy()
    scales = out["patch_scale"].detach().cpu().numpy()
    for b, target in enumerate(targets):
        boxes = target.boxes.cpu().numpy()
        inside = contains(windows[b], boxes)  # [P, G]
        for i in range(config.num_scales):
            mine = scales[b] == i
            chosen[i][0] += int(inside[mine].any(axis=1).sum())
            chosen[i][1] += int(mine.sum())
        small = longer_side(boxes) < SMALL_SIDE
        small_found += int(inside[:, small].any(axis=0).sum())
        small_total += int(small.sum())
    stats = {
        f"window_precision_p{config.patch_scales[i]}": held / total if total else math.nan
        for i, (held, total) in chosen.items()
    }
    looked = windows.shape[1] > 0  # global-only steps choose no window: nothing to measure
    stats["patch_recall_small"] = small_found / small_total if small_total and looked else math.nan
    return stats


def module_grad_norms(model: nn.Module) -> dict[str, float]:
    """L2 norm of the gradient of each top-level module (0 where it got none)."""
    norms = {}
    for name, module in model.named_children():
        grads = [p.grad for p in module.parameters() if p.grad is not None]
        total = torch.stack([g.detach().float().norm() for g in grads]).norm() if grads else 0.0
        norms[f"grad_{name}"] = float(total)
    return norms


def drift_warnings(stats: dict[str, float], config: ModelConfig) -> list[str]:
    """A line for each scale whose priority map has drifted (see DRIFT_LIMIT)."""
    lines = []
    for scale in config.patch_scales:
        mean, std = stats[f"prio_mean_p{scale}"], stats[f"prio_std_p{scale}"]
        if not (abs(mean) <= DRIFT_LIMIT and std <= DRIFT_LIMIT):
            lines.append(
                f"priority map of the {scale}-px windows has drifted: mean {mean:.1f}, "
                f"std {std:.1f} (limit {DRIFT_LIMIT:g}); window choice no longer follows "
                "the saliency"
            )
    return lines
