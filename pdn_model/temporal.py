"""Stage 8: temporal cross-attention over the memory of earlier frames, and the compact
frame tokens that the caller pushes onto that memory.

Memory convention: `memory[:, 0]` is the most recent earlier frame, `memory[:, T-1]` the
oldest; `memory_valid[:, t]` is 1 where slot t holds a real frame. Invalid slots get an
additive -1e4 on their attention logits, which makes their weight exactly 0 in float32, and
a learned null token keeps the softmax defined when no slot is valid.
"""

from __future__ import annotations

import torch
from torch import nn

from pdn_model.config import ModelConfig
from pdn_model.layers import CrossAttentionBlock

INVALID_SLOT_BIAS = -1.0e4


class FrameTokenizer(nn.Module):
    """M learned queries attend to the global tokens: frame_tokens [B, M, C]."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        dim = config.token_dim
        self.queries = nn.Parameter(torch.randn(config.frame_tokens, dim) * 0.02)
        self.block = CrossAttentionBlock(dim, config.attention_heads)

    def forward(self, global_tokens: torch.Tensor, global_pos: torch.Tensor) -> torch.Tensor:
        b = global_tokens.shape[0]
        queries = self.queries.expand(b, -1, -1)
        return self.block(queries, torch.zeros_like(queries), global_tokens, global_pos)


class TemporalAttention(nn.Module):
    """Current global tokens [B,Ng,C] attend to memory [B,T,M,C] masked by validity [B,T]."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        dim = config.token_dim
        self.slot_embed = nn.Parameter(torch.randn(config.memory_length, dim) * 0.02)
        self.null_token = nn.Parameter(torch.zeros(1, 1, dim))
        self.block = CrossAttentionBlock(dim, config.attention_heads)

    def forward(
        self,
        global_tokens: torch.Tensor,
        global_pos: torch.Tensor,
        memory: torch.Tensor,
        memory_valid: torch.Tensor,
    ) -> torch.Tensor:
        b, t, m, c = memory.shape
        context = torch.cat([self.null_token.expand(b, 1, c), memory.reshape(b, t * m, c)], dim=1)
        slot_pos = self.slot_embed[:, None, :].expand(t, m, c).reshape(1, t * m, c)
        context_pos = torch.cat([torch.zeros(1, 1, c, device=memory.device), slot_pos], dim=1)
        slot_bias = (1.0 - memory_valid)[:, :, None].expand(b, t, m).reshape(b, t * m)
        bias = torch.cat(
            [torch.zeros(b, 1, device=memory.device), slot_bias * INVALID_SLOT_BIAS], dim=1
        )
        return self.block(
            global_tokens, global_pos, context, context_pos.expand(b, -1, -1), bias
        )


def push_frame(
    memory: torch.Tensor, memory_valid: torch.Tensor, frame_tokens: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Memory after one more frame: `frame_tokens` [B,M,C] become slot 0, the oldest slot
    drops out."""
    memory = torch.cat([frame_tokens[:, None], memory[:, :-1]], dim=1)
    valid = torch.cat([torch.ones_like(memory_valid[:, :1]), memory_valid[:, :-1]], dim=1)
    return memory, valid
