"""Training mode: the parts that decide where to look receive a real gradient."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pdn_tiny import random_inputs, tiny_model

from pdn_model.temporal import push_frame
from training.losses import selection_loss


def detection_loss(out: dict[str, torch.Tensor], seed: int = 0) -> torch.Tensor:
    """A loss on detections only (no direct saliency term), against random targets."""
    logits = out["candidate_logits"]
    gen = torch.Generator().manual_seed(seed)
    targets = (torch.rand(logits.shape, generator=gen) > 0.9).float()
    return F.binary_cross_entropy_with_logits(logits, targets)


def grad_norm(param: torch.nn.Parameter) -> float:
    return 0.0 if param.grad is None else float(param.grad.abs().sum())


def wanted_everywhere_but_one_corner(out: dict[str, torch.Tensor]) -> torch.Tensor:
    wanted = torch.zeros_like(out["priority_logits"], dtype=torch.bool)
    wanted[..., :2, :3] = True
    return wanted


def live_controller(model: torch.nn.Module) -> torch.nn.Module:
    """The model with a non-zero controller map (it starts at zero, as if untrained)."""
    with torch.no_grad():
        model.priority.controller.queries.weight.normal_(0.0, 0.1)
    return model


def test_selection_is_trained_by_the_selection_losses_not_by_detection_credit():
    model = live_controller(tiny_model().train())
    priority = model.priority
    selection = {
        "saliency head": model.saliency.logits.weight,
        "scale prior": priority.scale_prior,
        "position prior": priority.position_prior,
        "controller look GRU": priority.controller.look.weight_ih,
        "controller queries": priority.controller.queries.weight,
        "controller keys": priority.controller.keys.weight,
    }
    out = model(*random_inputs(model, batch=2))
    detection_loss(out).backward(retain_graph=True)
    # No straight-through product: what the windows found does not push the priority.
    for name in ("scale prior", "position prior", "controller queries", "controller keys"):
        assert grad_norm(selection[name]) == 0.0, name
    model.zero_grad()
    wanted = wanted_everywhere_but_one_corner(out)
    (selection_loss(out["priority_logits"], wanted)).backward()
    for name, param in selection.items():
        assert grad_norm(param) > 0.0, f"{name} got no gradient from the selection loss"
    # The controller reads the backbone's features detached: no selection gradient there.
    assert grad_norm(model.global_backbone.stages[0][0][0].weight) > 0.0  # via the saliency
    assert all(p.grad is None or not p.grad.any() for p in model.patch_backbone.parameters())


def test_controller_memory_gets_gradient_across_frames():
    model = live_controller(tiny_model().train())
    image, memory, valid, state = random_inputs(model)

    def second_frame() -> dict[str, torch.Tensor]:
        first = model(image, memory, valid, state)
        pushed, pushed_valid = push_frame(memory, valid, first["frame_tokens"])
        return model(image, pushed, pushed_valid, first["next_controller_state"])

    second = second_frame()
    selection_loss(second["priority_logits"], wanted_everywhere_but_one_corner(second)).backward()
    assert grad_norm(model.priority.controller.remember.weight_ih) > 0.0
    model.zero_grad()
    detection_loss(second_frame()).backward()
    assert grad_norm(model.tokenizer.queries) > 0.0


def test_eval_selection_is_deterministic_and_training_explores():
    model = tiny_model()
    inputs = random_inputs(model, seed=5)
    with torch.no_grad():
        a = model(*inputs)["patch_boxes"]
        b = model(*inputs)["patch_boxes"]
        assert torch.equal(a, b)
        model.train()
        torch.manual_seed(0)
        explored = [model(*inputs)["patch_boxes"] for _ in range(4)]
    assert any(not torch.equal(a, e) for e in explored)


def test_one_step_changes_saliency_towards_a_target():
    model = tiny_model().train()
    inputs = random_inputs(model)
    opt = torch.optim.SGD(model.saliency.parameters(), lr=0.5)
    target = torch.zeros(1, 2, 6, 10)
    target[0, :, 2, 3] = 1.0
    losses = []
    for _ in range(2):
        out = model(*inputs)
        loss = F.binary_cross_entropy_with_logits(out["saliency_logits"], target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[1] < losses[0]


def test_gradients_stay_finite_when_chosen_windows_have_hopeless_priority():
    model = tiny_model().train()
    with torch.no_grad():
        model.saliency.logits.bias.fill_(-200.0)  # sigmoid underflows to exactly 0
    out = model(*random_inputs(model))
    assert (out["patch_scores"] == 0).any()
    detection_loss(out).backward()
    for name, param in model.named_parameters():
        assert param.grad is None or torch.isfinite(param.grad).all(), name
