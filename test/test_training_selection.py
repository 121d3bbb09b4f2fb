"""Where-to-look training stays stable: the priority maps stay bounded and keep following
the saliency through a few hundred optimisation steps."""

from __future__ import annotations

import torch
from pdn_tiny import tiny_model

from pdn_model.temporal import push_frame
from training.diagnostics import DRIFT_LIMIT, priority_stats
from training.losses import LossWeights, Target, detection_criterion, saliency_targets

STEPS = 240


def planted_batch(seed: int) -> tuple[torch.Tensor, list[Target]]:
    """Two grey 192x320 frames with a few bright squares (the annotated objects)."""
    gen = torch.Generator().manual_seed(seed)
    images = torch.full((2, 3, 192, 320), 90, dtype=torch.uint8)
    images += torch.randint(0, 20, images.shape, generator=gen, dtype=torch.uint8)
    targets = []
    for b in range(2):
        boxes = []
        for side in (8, 12, 40, 100):
            x = int(torch.randint(0, 320 - side, (1,), generator=gen))
            y = int(torch.randint(0, 192 - side, (1,), generator=gen))
            images[b, :, y : y + side, x : x + side] = 230
            boxes.append([x, y, x + side, y + side])
        targets.append(Target(torch.tensor(boxes, dtype=torch.float32), torch.tensor([0, 1, 2, 3])))
    return images, targets


def test_priorities_stay_bounded_through_hundreds_of_steps():
    torch.manual_seed(0)
    model = tiny_model().train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.05)
    batches = [planted_batch(seed) for seed in range(4)]
    worst = 0.0
    for step in range(STEPS):
        images, targets = batches[step % len(batches)]
        state = model.initial_state(2)
        memory, valid, control = state["memory"], state["memory_valid"], state["controller_state"]
        guide = 2.0 * torch.stack([saliency_targets(t, model.config) for t in targets])
        total = 0.0
        for _ in range(2):  # two frames: the controller's recurrent state is trained too
            out = model(images, memory, valid, control, selection_bias=guide)
            total = total + detection_criterion(out, targets, model.config, LossWeights())["total"]
            memory, valid = push_frame(memory, valid, out["frame_tokens"])
            control = out["next_controller_state"]
        opt.zero_grad()
        total.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        opt.step()
        stats = priority_stats(out["priority_logits"], model.config)
        worst = max(worst, *(abs(stats[f"prio_mean_p{s}"]) for s in model.config.patch_scales))
        worst = max(worst, *(stats[f"prio_std_p{s}"] for s in model.config.patch_scales))
    assert worst < DRIFT_LIMIT / 2, worst
    # The learned part stays inside its bound: priority - saliency never exceeds it.
    gap = (out["priority_logits"] - out["saliency_logits"]).abs().max().item()
    assert gap <= model.config.priority_bound + 1e-5
