"""Stage 5: cut the chosen windows out of the full-resolution frame in one batched gather.

The frame is viewed as rows of `chunk`-pixel pieces and the gather takes whole pieces, so it
reads only the pixels that the windows cover, with one index per piece rather than per
pixel. Larger scales are area-averaged down to the patch input size. Gather, Reshape and
AveragePool all build in TensorRT (no AffineGrid, no antialiased Resize).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def crop_windows(
    image: torch.Tensor,
    x0: torch.Tensor,
    y0: torch.Tensor,
    scale: int,
    out_size: int,
    chunk: int,
) -> torch.Tensor:
    """Crops [B*k, 3, out_size, out_size] of the windows (x0, y0, scale) [B, k] of image.

    `image` is [B, 3, H, W]; every x0 and W must be multiples of `chunk`, and `scale` a
    multiple of `out_size`. Patch n*k + j is window j of frame n.
    """
    b, c, h, w = image.shape
    k = x0.shape[1]
    row_chunks = w // chunk
    pieces = image.reshape(b * c * h * row_chunks, chunk)
    line = torch.arange(scale, device=image.device)
    rows = (y0[..., None] + line) * row_chunks  # [B, k, s]
    cols = x0[..., None] // chunk + torch.arange(scale // chunk, device=image.device)
    plane = torch.arange(b * c, device=image.device).reshape(b, 1, c, 1, 1) * (h * row_chunks)
    index = plane + rows[:, :, None, :, None] + cols[:, :, None, None, :]  # [B, k, 3, s, s/c]
    crops = torch.index_select(pieces, 0, index.reshape(-1)).reshape(b * k, c, scale, scale)
    factor = scale // out_size
    return F.avg_pool2d(crops, factor) if factor > 1 else crops
