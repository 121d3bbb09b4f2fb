"""Stage 2: the patch proposal network, a saliency map per patch scale on the cell grid."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pdn_model.config import ModelConfig
from pdn_model.layers import ConvBNAct

# Initial saliency logit: most of a frame (sky, road, walls) holds nothing worth a patch.
SALIENCY_PRIOR_LOGIT = -2.0


class SaliencyHead(nn.Module):
    """Fuses the cell-level and (upsampled) token-level global maps into saliency logits.

    Output: [B, num_scales, Hs, Ws], one logit per saliency cell and patch scale; high where
    a window of that scale centred on the cell would hold objects that the global stream
    alone resolves badly.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        _, w1, w2 = config.global_widths
        self.lateral = nn.Conv2d(w2, w1, 1)
        self.mix = ConvBNAct(w1, w1)
        self.logits = nn.Conv2d(w1, config.num_scales, 1)
        nn.init.constant_(self.logits.bias, SALIENCY_PRIOR_LOGIT)

    def forward(self, cells: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
        h, w = cells.shape[-2:]
        up = F.interpolate(self.lateral(tokens), scale_factor=2.0, mode="nearest")[..., :h, :w]
        return self.logits(self.mix(cells + up))
