"""Stage 4: choosing the windows. Peak suppression + top-k on the priority map, or the
dense tiling of every window (the baseline that runs the same weights everywhere).

Windows are squares of a patch scale, in full-resolution pixels, given by their top-left
origin (x0, y0); they always lie inside the frame.
"""

from __future__ import annotations

import torch

from pdn_model.config import ModelConfig

# Subtracted from a cell each time a chosen peak suppresses it: suppressed cells then rank
# after every free cell but keep their order, so k may exceed the number of free peaks.
SUPPRESSION_PENALTY = 1.0e3
# A chosen cell drops below everything, so no cell is chosen twice.
CHOSEN = -1.0e30


def select_peaks(logits: torch.Tensor, k: int, radius: int) -> torch.Tensor:
    """Greedy peak suppression: k cell indices [B, k] (row-major) from logits [B, Hs, Ws].

    Each step takes the highest cell (the lowest index among equals, in PyTorch and ONNX
    alike), then suppresses the cells within `radius` (Chebyshev distance) of it.
    """
    b, h, w = logits.shape
    if k > h * w:
        raise ValueError(f"cannot select {k} patches from a {h}x{w} cell grid")
    work = logits.reshape(b, h * w)
    index = torch.arange(h * w, device=logits.device)
    rows, cols = index // w, index % w
    picks = []
    for _ in range(k):
        pick = work.argmax(dim=1)  # [B]
        near = ((rows - (pick // w)[:, None]).abs() <= radius) & (
            (cols - (pick % w)[:, None]).abs() <= radius
        )
        work = work - near.to(work.dtype) * SUPPRESSION_PENALTY
        work = torch.where(index == pick[:, None], torch.full_like(work, CHOSEN), work)
        picks.append(pick)
    if not picks:
        return torch.zeros(b, 0, dtype=torch.long, device=logits.device)
    return torch.stack(picks, dim=1)


def cell_window_origins(
    cells: torch.Tensor, grid_width: int, scale: int, config: ModelConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """Origins (x0, y0), each [B, k] int64, of `scale` windows centred on cells [B, k].

    Windows that would cross the frame border are shifted inside it.
    """
    cell = config.cell_size
    row = (cells // grid_width).to(torch.float32)
    col = (cells % grid_width).to(torch.float32)
    offset = cell // 2 - scale // 2
    x0 = torch.clamp(col * cell + offset, 0.0, float(config.width - scale))
    y0 = torch.clamp(row * cell + offset, 0.0, float(config.height - scale))
    return x0.to(torch.long), y0.to(torch.long)


def tile_starts(length: int, scale: int) -> list[int]:
    """Starts of non-overlapping `scale` tiles covering [0, length); the last one is shifted
    back inside when `length` is not a multiple of `scale`."""
    starts = list(range(0, length - scale + 1, scale))
    if starts[-1] + scale < length:
        starts.append(length - scale)
    return starts


def dense_window_origins(config: ModelConfig, scale: int) -> tuple[list[int], list[int]]:
    """Origins of every window of one scale, row-major: the dense tiled baseline."""
    xs, ys = tile_starts(config.width, scale), tile_starts(config.height, scale)
    return [x for _ in ys for x in xs], [y for y in ys for _ in xs]


def window_cells(
    x0: torch.Tensor, y0: torch.Tensor, scale: int, config: ModelConfig
) -> torch.Tensor:
    """Row-major index of the saliency cell under each window's centre."""
    rows, cols = config.saliency_grid
    cell = config.cell_size
    r = torch.clamp((y0 + scale // 2) // cell, max=rows - 1)
    c = torch.clamp((x0 + scale // 2) // cell, max=cols - 1)
    return r * cols + c
