"""Stage 7: cross-attention between global tokens and patch tokens.

Patch tokens learn their surroundings from the global view; global tokens take in the
high-resolution detail of the patches. Both carry sine embeddings of their image position,
so a patch token meets the global tokens around it.
"""

from __future__ import annotations

import torch
from torch import nn

from pdn_model.config import ModelConfig
from pdn_model.layers import CrossAttentionBlock


class PatchGlobalFusion(nn.Module):
    """(global [B,Ng,C], patch tokens [B,Np,C]) -> both, updated."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.patch_from_global = CrossAttentionBlock(config.token_dim, config.attention_heads)
        self.global_from_patch = CrossAttentionBlock(config.token_dim, config.attention_heads)

    def forward(
        self,
        global_tokens: torch.Tensor,
        global_pos: torch.Tensor,
        patch_tokens: torch.Tensor,
        patch_pos: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        patch_tokens = self.patch_from_global(patch_tokens, patch_pos, global_tokens, global_pos)
        global_tokens = self.global_from_patch(global_tokens, global_pos, patch_tokens, patch_pos)
        return global_tokens, patch_tokens
