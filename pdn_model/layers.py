"""Small building blocks shared by the stages: conv blocks, attention, position encodings."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class ConvBNAct(nn.Sequential):
    """3x3 (or k x k) convolution, batch norm, ReLU."""

    def __init__(self, cin: int, cout: int, stride: int = 1, kernel: int = 3, groups: int = 1):
        super().__init__(
            nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
        )


class SeparableBlock(nn.Module):
    """Residual depthwise-separable block: cheap receptive field at constant width."""

    def __init__(self, channels: int):
        super().__init__()
        self.depthwise = ConvBNAct(channels, channels, groups=channels)
        self.pointwise = nn.Sequential(
            nn.Conv2d(channels, channels, 1, bias=False), nn.BatchNorm2d(channels)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(x + self.pointwise(self.depthwise(x)))


def conv_stages(cin: int, widths: tuple[int, ...], blocks: tuple[int, ...]) -> nn.ModuleList:
    """Stride-2 stages: each halves the resolution, then runs `blocks[i]` separable blocks."""
    stages = nn.ModuleList()
    for width, n in zip(widths, blocks, strict=True):
        body = [SeparableBlock(width) for _ in range(n)]
        stages.append(nn.Sequential(ConvBNAct(cin, width, stride=2), *body))
        cin = width
    return stages


class Attention(nn.Module):
    """Multi-head cross-attention written with matmul and softmax.

    An additive `bias` [B, Nk] masks keys (large negative = ignored) without boolean
    tensors, which keeps the graph TensorRT-friendly.
    """

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.scale = 1.0 / math.sqrt(dim // heads)
        self.q = nn.Linear(dim, dim)
        self.k = nn.Linear(dim, dim)
        self.v = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, dim)

    def forward(
        self,
        query: torch.Tensor,
        key: torch.Tensor,
        value: torch.Tensor,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        b, nq, c = query.shape
        nk = key.shape[1]
        h = self.heads
        q = self.q(query).reshape(b, nq, h, c // h).transpose(1, 2)
        k = self.k(key).reshape(b, nk, h, c // h).transpose(1, 2)
        v = self.v(value).reshape(b, nk, h, c // h).transpose(1, 2)
        logits = torch.matmul(q, k.transpose(-1, -2)) * self.scale
        if bias is not None:
            logits = logits + bias[:, None, None, :]
        attn = torch.softmax(logits, dim=-1)
        return self.out(torch.matmul(attn, v).transpose(1, 2).reshape(b, nq, c))


class FeedForward(nn.Sequential):
    """Pre-norm MLP used after every attention."""

    def __init__(self, dim: int, hidden: int):
        super().__init__(
            nn.LayerNorm(dim), nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, dim)
        )


class CrossAttentionBlock(nn.Module):
    """Pre-norm residual cross-attention (queries attend to a context) and an MLP."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_kv = nn.LayerNorm(dim)
        self.attn = Attention(dim, heads)
        self.ffn = FeedForward(dim, 2 * dim)

    def forward(
        self,
        x: torch.Tensor,
        x_pos: torch.Tensor,
        context: torch.Tensor,
        context_pos: torch.Tensor,
        bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        q = self.norm_q(x)
        kv = self.norm_kv(context)
        x = x + self.attn(q + x_pos, kv + context_pos, kv, bias)
        return x + self.ffn(x)


def sine_position(xy: torch.Tensor, dim: int) -> torch.Tensor:
    """Sine/cosine embedding [..., dim] of normalised (x, y) positions [..., 2] in [0, 1].

    Global and patch tokens share it, so attention can match them by image position.
    """
    quarter = dim // 4
    freqs = torch.exp(
        torch.arange(quarter, dtype=torch.float32, device=xy.device) * (-math.log(1000.0) / quarter)
    )
    angles = xy[..., :, None] * (2 * math.pi * 64.0) * freqs  # [..., 2, quarter]
    emb = torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1)  # [..., 2, dim/2]
    return emb.flatten(-2)


def cell_centers(rows: int, cols: int, device: torch.device | None = None) -> torch.Tensor:
    """Centres (x, y) [rows*cols, 2] of a row-major grid, in cell units."""
    ys = torch.arange(rows, dtype=torch.float32, device=device) + 0.5
    xs = torch.arange(cols, dtype=torch.float32, device=device) + 0.5
    yy, xx = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([xx.flatten(), yy.flatten()], dim=-1)
