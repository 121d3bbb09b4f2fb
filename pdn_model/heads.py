"""Stage 9a: detection heads and box decoding to full-resolution pixels.

One head type serves the global grid (large objects) and the patches (small objects):
per cell, class logits and the distances from the cell centre to the four box sides.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pdn_model.layers import ConvBNAct, cell_centers

# Initial class probability 0.01, the usual start for focal-loss training.
CLASS_PRIOR_LOGIT = -math.log((1 - 0.01) / 0.01)


class DetectionHead(nn.Module):
    """Map [N, C, h, w] -> class logits [N, K, h, w] and side distances [N, 4, h, w].

    Distances (left, top, right, bottom) are in units of the map's stride, >= 0.
    """

    def __init__(self, dim: int, num_classes: int):
        super().__init__()
        self.tower = nn.Sequential(ConvBNAct(dim, dim, groups=dim), ConvBNAct(dim, dim, kernel=1))
        self.classes = nn.Conv2d(dim, num_classes, 1)
        self.sides = nn.Conv2d(dim, 4, 1)
        nn.init.constant_(self.classes.bias, CLASS_PRIOR_LOGIT)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.tower(x)
        return self.classes(x), F.softplus(self.sides(x))


def decode_boxes(
    sides: torch.Tensor, stride: torch.Tensor, origin: torch.Tensor, height: int, width: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Boxes xyxy [N, h*w, 4] in full-resolution pixels, clipped to the frame, and the cell
    centres [N, h*w, 2] in pixels.

    sides: [N, 4, h, w] distances in cells; stride: [N] pixels per cell; origin: [N, 2]
    pixel offset (x0, y0) of each map (0 for the global grid, the window for a patch).
    """
    n, _, h, w = sides.shape
    centers = cell_centers(h, w, sides.device)[None] * stride[:, None, None] + origin[:, None, :]
    d = sides.flatten(2).transpose(1, 2) * stride[:, None, None]  # [N, hw, 4]
    x1 = torch.clamp(centers[..., 0] - d[..., 0], 0.0, float(width))
    y1 = torch.clamp(centers[..., 1] - d[..., 1], 0.0, float(height))
    x2 = torch.clamp(centers[..., 0] + d[..., 2], 0.0, float(width))
    y2 = torch.clamp(centers[..., 1] + d[..., 3], 0.0, float(height))
    return torch.stack([x1, y1, x2, y2], dim=-1), centers
