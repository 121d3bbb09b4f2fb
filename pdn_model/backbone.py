"""Stages 1 and 6: the low-resolution global stream and the high-resolution patch backbone."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pdn_model.config import ModelConfig
from pdn_model.layers import ConvBNAct, conv_stages

# Pixel normalisation, applied after pooling so that it touches only the small images.
PIXEL_MEAN = 0.45 * 255.0
PIXEL_STD = 0.25 * 255.0


def normalize(pixels: torch.Tensor) -> torch.Tensor:
    """0..255 float pixels to roughly zero-mean unit-variance network input."""
    return (pixels - PIXEL_MEAN) / PIXEL_STD


def downsample_frame(image: torch.Tensor, config: ModelConfig) -> torch.Tensor:
    """Full-resolution float frame [B,3,H,W] to the global view [B,3,H/ds,W/ds], 0..255.

    Point-samples every `global_sample_stride` pixels and area-averages the rest of the
    factor: only 1/stride^2 of the frame is read, and any object wider than the stride
    still leaves a trace in the global view.
    """
    step = config.global_sample_stride
    sampled = image[:, :, ::step, ::step]
    pool = config.global_downsample // step
    return F.avg_pool2d(sampled, pool) if pool > 1 else sampled


class GlobalBackbone(nn.Module):
    """Light CNN over the global view.

    Returns the saliency-level map [B, w1, Hs, Ws] (stride 4 in the global view, one cell per
    `cell_size` pixels) and the token-level map [B, w2, Ht, Wt] (stride 8).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        w0, w1, w2 = config.global_widths
        self.stages = conv_stages(3, (w0, w1, w2), (0, 1, 2))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.stages[0](x)
        cells = self.stages[1](x)
        tokens = self.stages[2](cells)
        return cells, tokens


class PatchBackbone(nn.Module):
    """CNN over the batch of patches: [N,3,p,p] normalised -> [N, C, p/8, p/8] (stride 8)."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        w0, w1, w2 = config.patch_widths
        self.stages = conv_stages(3, (w0, w1, w2), (0, 1, 2))
        self.project = ConvBNAct(w2, config.token_dim, kernel=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return self.project(x)
