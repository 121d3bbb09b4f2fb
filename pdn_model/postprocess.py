"""Stage 9b: class-aware NMS and the top D detections, with static shapes.

NMS is done on a score-sorted IoU matrix rather than with a data-dependent loop, so the
graph keeps fixed shapes for TensorRT. One pass of "suppressed by any higher-scored box"
over-suppresses chains (A hides B, B would have hidden C); each further pass lets only the
boxes kept so far suppress, and `iterations` passes reproduce greedy NMS on chains up to
that length.
"""

from __future__ import annotations

import torch

from pdn_model.config import ModelConfig


def box_iou_matrix(boxes: torch.Tensor) -> torch.Tensor:
    """Pairwise IoU [B, n, n] of xyxy boxes [B, n, 4]."""
    area = (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1])
    lt = torch.maximum(boxes[:, :, None, :2], boxes[:, None, :, :2])
    rb = torch.minimum(boxes[:, :, None, 2:], boxes[:, None, :, 2:])
    wh = torch.clamp(rb - lt, min=0.0)
    inter = wh[..., 0] * wh[..., 1]
    return inter / (area[:, :, None] + area[:, None, :] - inter + 1e-6)


def matrix_nms(
    boxes: torch.Tensor, labels: torch.Tensor, iou: float, iterations: int, offset: float
) -> torch.Tensor:
    """Keep mask [B, n] (1.0 kept) for boxes [B, n, 4] sorted by descending score.

    Boxes of different labels are moved `offset` pixels apart so that they never overlap.
    """
    n = boxes.shape[1]
    shifted = boxes + (labels.to(boxes.dtype) * offset)[..., None]
    higher = torch.triu(torch.ones(n, n, device=boxes.device), diagonal=1)  # [i, j]: i before j
    overlaps = (box_iou_matrix(shifted) > iou).to(boxes.dtype) * higher
    keep = torch.ones_like(boxes[..., 0])
    for _ in range(iterations):
        keep = 1.0 - (overlaps * keep[:, :, None]).amax(dim=1)
    return keep


def select_detections(
    boxes: torch.Tensor, logits: torch.Tensor, config: ModelConfig
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Candidates (xyxy [B, N, 4], class logits [B, N, K]) -> the top D after NMS.

    Returns boxes [B, D, 4], scores [B, D] and labels [B, D] (int32), sorted by score;
    slots past the last detection have score 0.
    """
    b, n, _ = boxes.shape
    scores, labels = torch.sigmoid(logits).max(dim=-1)
    n_pre = min(config.pre_nms_topk, n)
    scores, order = scores.topk(n_pre, dim=1)
    boxes = torch.gather(boxes, 1, order[..., None].expand(b, n_pre, 4))
    labels = torch.gather(labels, 1, order)
    offset = float(max(config.height, config.width) + 1)
    scores = scores * matrix_nms(boxes, labels, config.nms_iou, config.nms_iterations, offset)
    d = min(config.max_detections, n_pre)
    scores, order = scores.topk(d, dim=1)
    boxes = torch.gather(boxes, 1, order[..., None].expand(b, d, 4))
    labels = torch.gather(labels, 1, order).to(torch.int32)
    pad = config.max_detections - d
    if pad:
        boxes = torch.cat([boxes, boxes.new_zeros(b, pad, 4)], dim=1)
        scores = torch.cat([scores, scores.new_zeros(b, pad)], dim=1)
        labels = torch.cat([labels, labels.new_zeros(b, pad)], dim=1)
    return boxes, scores, labels
