"""Training losses: assignment, saliency targets, and that the loss can be optimised."""

from __future__ import annotations

import pytest
import torch
from pdn_tiny import random_inputs, tiny_config, tiny_model

from training.losses import (
    LossWeights,
    Target,
    assign,
    detection_criterion,
    focal_loss,
    giou_loss,
    saliency_targets,
    size_range,
)


def test_size_ranges_cover_every_size_across_levels():
    cfg = tiny_config()  # strides: 8 (64-px windows), 16 (128-px windows), 64 (global)
    ranges = [size_range(s, cfg) for s in (8.0, 16.0, 64.0)]
    assert ranges[0] == (0.0, 96.0) and ranges[1] == (24.0, 192.0)
    assert ranges[2] == (48.0, float("inf"))


def test_assignment_picks_nearby_cells_of_the_right_stride_and_the_smallest_box():
    cfg = tiny_config()
    centers = torch.tensor([[100.0, 100.0], [104.0, 100.0], [200.0, 100.0], [96.0, 96.0]])
    strides = torch.tensor([8.0, 8.0, 8.0, 64.0])
    small = [95.0, 95.0, 107.0, 105.0]  # 12 px, centre (101, 100)
    big = [40.0, 40.0, 160.0, 160.0]  # 120 px, centre (100, 100)
    target = Target(torch.tensor([big, small]), torch.tensor([1, 0]))
    matched = assign(centers, strides, target, cfg)
    # Cells 0 and 1 are near both centres; only the small box fits stride 8 at all.
    assert matched.tolist() == [1, 1, -1, 0]
    assert (
        assign(
            centers, strides, Target(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long)), cfg
        ).tolist()
        == [-1] * 4
    )


def test_saliency_targets_peak_at_small_objects_only():
    cfg = tiny_config()  # 6x10 cells of 32 px
    target = Target(
        torch.tensor([[70.0, 70.0, 80.0, 80.0], [0.0, 0.0, 300.0, 190.0]]), torch.tensor([0, 1])
    )
    heat = saliency_targets(target, cfg)
    assert heat.shape == (2, 6, 10)
    # The 10-px object at (75, 75) sits in cell (row 1.84, col 1.84) -> peak near (2, 2).
    r, c = divmod(int(heat[0].argmax()), 10)
    assert (r, c) == (2, 2) and heat[0].max() > 0.7
    # The 300-px object is for the global head: it adds nothing anywhere.
    far = Target(target.boxes[1:], target.labels[1:])
    assert saliency_targets(far, cfg).max() == 0.0


def test_focal_and_giou_values():
    logits = torch.tensor([[10.0, -10.0]])
    assert focal_loss(logits, torch.tensor([[1.0, 0.0]])) < 1e-6
    assert focal_loss(logits, torch.tensor([[0.0, 1.0]])) > 1.0
    box = torch.tensor([[0.0, 0.0, 10.0, 10.0]])
    assert giou_loss(box, box) == pytest.approx(0.0, abs=1e-6)
    far = torch.tensor([[20.0, 0.0, 30.0, 10.0]])
    # IoU 0, hull 30x10 = 300, union 200: GIoU = -1/3, loss 4/3.
    assert giou_loss(box, far) == pytest.approx(4 / 3, abs=1e-5)


def test_one_optimisation_step_lowers_the_loss_on_a_fixed_batch():
    model = tiny_model().train()
    model.config = model.config.replace(selection_noise=0.0)
    image, memory, valid, state = random_inputs(model, batch=2, seed=7)
    targets = [
        Target(
            torch.tensor([[40.0, 40.0, 52.0, 50.0], [150.0, 60.0, 280.0, 170.0]]),
            torch.tensor([0, 2]),
        ),
        Target(torch.tensor([[200.0, 100.0, 216.0, 120.0]]), torch.tensor([3])),
    ]
    bias = 5.0 * torch.stack([saliency_targets(t, model.config) for t in targets])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(2):
        torch.manual_seed(0)
        out = model(image, memory, valid, state, selection_bias=bias)
        terms = detection_criterion(out, targets, model.config, LossWeights())
        assert terms["positives"] > 0
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
        losses.append(terms["total"].item())
    assert losses[1] < losses[0]
