"""A small PatchDriveNet configuration and inputs for fast model tests."""

from __future__ import annotations

import torch

from pdn_model.config import ModelConfig, preset_config
from pdn_model.model import PatchDriveNet

HEIGHT, WIDTH = 192, 320


def tiny_config(**overrides: object) -> ModelConfig:
    """pdn-s shrunk to a 320x192 frame: 6x10 saliency cells, windows of 64 and 128 px."""
    fields = {
        "patch_scales": (64, 128),
        "patches_per_scale": (3, 2),
        "patch_size": 64,
        "max_detections": 40,
        "pre_nms_topk": 120,
        **overrides,
    }
    return preset_config("pdn-s", HEIGHT, WIDTH, **fields)


def tiny_model(seed: int = 0, **overrides: object) -> PatchDriveNet:
    """A tiny model with random weights; class logits spread so scores rarely tie."""
    torch.manual_seed(seed)
    model = PatchDriveNet(tiny_config(**overrides))
    with torch.no_grad():
        for head in (model.global_head, model.patch_head):
            head.classes.weight.normal_(0.0, 0.5)
            head.classes.bias.normal_(0.0, 1.0)
    return model.eval()


def random_inputs(model: PatchDriveNet, batch: int = 1, seed: int = 0) -> tuple[torch.Tensor, ...]:
    """A random frame with the zero state of a first frame."""
    gen = torch.Generator().manual_seed(seed)
    cfg = model.config
    shape = (batch, 3, cfg.height, cfg.width)
    image = torch.randint(0, 256, shape, dtype=torch.uint8, generator=gen)
    state = model.initial_state(batch)
    return image, state["memory"], state["memory_valid"], state["controller_state"]
