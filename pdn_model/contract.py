"""The model's input/output contract (docs/model.md), shared by PyTorch, ONNX and the backends.

Imports no torch. Shapes use B = batch (cameras), T = memory length, M = tokens per frame,
C = token dim, S = controller state size, D = max detections, P = selected patches.
"""

from __future__ import annotations

from pdn_model.config import ModelConfig

INPUT_NAMES: tuple[str, ...] = ("image", "memory", "memory_valid", "controller_state")
OUTPUT_NAMES: tuple[str, ...] = (
    "boxes",
    "scores",
    "labels",
    "patch_boxes",
    "patch_scores",
    "patch_scale",
    "frame_tokens",
    "next_controller_state",
)


def input_shapes(config: ModelConfig, batch: int = 1) -> dict[str, tuple[int, ...]]:
    """Static input shapes of one export."""
    return {
        "image": (batch, 3, config.height, config.width),
        "memory": (batch, config.memory_length, config.frame_tokens, config.token_dim),
        "memory_valid": (batch, config.memory_length),
        "controller_state": (batch, config.controller_dim),
    }


def output_shapes(config: ModelConfig, batch: int = 1) -> dict[str, tuple[int, ...]]:
    """Static output shapes of one export with the config's patch counts."""
    d, p = config.max_detections, config.num_patches
    return {
        "boxes": (batch, d, 4),
        "scores": (batch, d),
        "labels": (batch, d),
        "patch_boxes": (batch, p, 4),
        "patch_scores": (batch, p),
        "patch_scale": (batch, p),
        "frame_tokens": (batch, config.frame_tokens, config.token_dim),
        "next_controller_state": (batch, config.controller_dim),
    }
