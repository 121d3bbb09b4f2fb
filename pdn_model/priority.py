"""Stage 3: learnable patch priorities and the recurrent patch-drive controller.

priority = saliency + b*tanh((per-scale prior + positional prior + controller map) / b),
b = `priority_bound`: the learned terms re-rank the saliency by at most b logits, so they can
never run away from it. The controller is a GRU that, each frame, first looks at the pooled
global features (`look`) to decide where to look, and after the selection remembers what it
saw (`remember`); its hidden state crosses frames as `controller_state`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from pdn_model.config import ModelConfig

# Resolution of the learned positional prior (landscape frames); resized to the cell grid.
POSITION_PRIOR_GRID = (9, 16)


class PatchDriveController(nn.Module):
    """Recurrent state -> a content-dependent priority map per scale.

    The state queries the cell features (one query per scale), like attention but producing
    a map over the frame rather than a weighted sum.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        dim, cell_channels = config.controller_dim, config.global_widths[1]
        self.key_dim = 32
        self.look = nn.GRUCell(config.global_widths[2], dim)
        self.remember = nn.GRUCell(config.token_dim, dim)
        self.queries = nn.Linear(dim, config.num_scales * self.key_dim)
        self.keys = nn.Conv2d(cell_channels, self.key_dim, 1)
        # A zero map at the start: the saliency alone decides until the controller learns.
        nn.init.zeros_(self.queries.weight)
        nn.init.zeros_(self.queries.bias)

    def priority_map(
        self, state: torch.Tensor, pooled: torch.Tensor, cells: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Update the state with this frame's pooled features; return (map, hidden).

        map: [B, num_scales, Hs, Ws]; hidden: [B, S]. The keys read the cell features
        detached: the selection losses train where to look, not the global backbone.
        """
        hidden = self.look(pooled.detach(), state)
        b = hidden.shape[0]
        q = self.queries(hidden).reshape(b, -1, self.key_dim)  # [B, scales, K]
        k = self.keys(cells.detach()).flatten(2)  # [B, K, Hs*Ws]
        logits = torch.matmul(q, k) / math.sqrt(self.key_dim)
        return logits.reshape(b, -1, *cells.shape[-2:]), hidden

    def next_state(self, hidden: torch.Tensor, selection_summary: torch.Tensor) -> torch.Tensor:
        """Fold what the selected patches showed into the state for the next frame."""
        return self.remember(selection_summary, hidden)


class PatchPriority(nn.Module):
    """Learned per-scale and positional priors plus the controller, added to saliency."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.scale_prior = nn.Parameter(torch.zeros(config.num_scales))
        self.position_prior = nn.Parameter(torch.zeros(1, config.num_scales, *POSITION_PRIOR_GRID))
        self.controller = PatchDriveController(config)
        self.bound = config.priority_bound

    def forward(
        self,
        saliency: torch.Tensor,
        cells: torch.Tensor,
        pooled: torch.Tensor,
        state: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Priority logits [B, num_scales, Hs, Ws] and the controller's hidden state [B, S]."""
        control, hidden = self.controller.priority_map(state, pooled, cells)
        position = F.interpolate(
            self.position_prior, size=saliency.shape[-2:], mode="bilinear", align_corners=False
        )
        learned = self.scale_prior[None, :, None, None] + position + control
        return saliency + self.bound * torch.tanh(learned / self.bound), hidden
