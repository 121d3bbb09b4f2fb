"""Training losses: assignment, saliency targets, and that the loss can be optimised."""

from __future__ import annotations

import pytest
import torch
from pdn_tiny import random_inputs, tiny_config, tiny_model

from pdn_model.config import preset_config
from training.losses import (
    LossWeights,
    Target,
    assign,
    detection_criterion,
    focal_loss,
    giou_loss,
    saliency_targets,
    scale_size_range,
    selection_loss,
    size_range,
    window_targets,
)


def test_size_ranges_cover_every_size_across_levels():
    cfg = tiny_config()  # strides: 8 (64-px windows), 16 (128-px windows), 64 (global)
    ranges = [size_range(s, cfg) for s in (8.0, 16.0, 64.0)]
    assert ranges[0] == (0.0, 32.0) and ranges[1] == (32.0, 64.0)
    assert ranges[2] == (48.0, float("inf"))
    # Overlapping, no gap: every size from 0 up has at least one head.
    assert ranges[1][0] <= ranges[0][1] and ranges[2][0] < ranges[1][1]
    at_4k = preset_config("pdn-s", 2160, 3840)  # 256-px and 512-px windows, 256-px patches
    assert [size_range(s, at_4k) for s in (8.0, 16.0)] == [(0.0, 64.0), (32.0, 128.0)]


def one_object(side: float, cx: float = 160.0, cy: float = 96.0) -> Target:
    half = side / 2
    return Target(torch.tensor([[cx - half, cy - half, cx + half, cy + half]]), torch.tensor([0]))


@pytest.mark.parametrize("scale_index", [0, 1])
def test_each_scale_targets_cover_exactly_its_size_range(scale_index):
    cfg = preset_config("pdn-s", 384, 640, patch_scales=(64, 128), patch_size=64)
    low, high = scale_size_range(scale_index, cfg)
    for side in (6.0, 20.0, 31.0, 40.0, 60.0, 64.0, 90.0):
        target = one_object(side, cx=320.0, cy=192.0)
        heat = saliency_targets(target, cfg)[scale_index]
        wanted = window_targets(target, cfg)[scale_index]
        inside = low <= side <= high
        assert (heat.max() > 0.3) == inside, (side, heat.max())
        assert bool(wanted.any()) == inside, side
        if inside:
            # The windows it marks really hold the object, and the peak sits on it.
            rows, cols = wanted.nonzero().unbind(1)
            scale = cfg.patch_scales[scale_index]
            x0 = cols * cfg.cell_size + cfg.cell_size // 2 - scale // 2
            y0 = rows * cfg.cell_size + cfg.cell_size // 2 - scale // 2
            box = target.boxes[0]
            assert ((x0 <= box[0]) & (x0 + scale >= box[2])).all()
            assert ((y0 <= box[1]) & (y0 + scale >= box[3])).all()
            r, c = divmod(int(heat.argmax()), heat.shape[1])
            assert (r, c) == (5, 9)  # the cell of (320, 192), 32-px cells: centre 5.5, 9.5


def test_selection_loss_keeps_its_gradient_when_the_wanted_mass_is_tiny():
    priority = torch.zeros(1, 1, 4, 5)
    priority[0, 0, 0, 0] = -40.0  # wanted cell: softmax mass about e^-40, far below 1e-6
    priority.requires_grad_(True)
    wanted = torch.zeros(1, 1, 4, 5, dtype=torch.bool)
    wanted[0, 0, 0, 0] = True
    loss = selection_loss(priority, wanted)
    loss.backward()
    # -log(mass) exactly: log(19 + e^-40) + 40, no floor.
    assert loss.item() == pytest.approx(40.0 + torch.tensor(19.0).log().item(), rel=1e-5)
    assert priority.grad[0, 0, 0, 0].item() == pytest.approx(-1.0, abs=1e-6)
    assert (priority.grad[0, 0].flatten()[1:] > 0).all()  # pushes every other window down
    # A map with nothing wanted contributes nothing (and no NaN).
    assert selection_loss(priority, torch.zeros_like(wanted)).item() == 0.0


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
        assert terms["positives_global"] > 0 and terms["positives_p64"] > 0
        opt.zero_grad()
        terms["total"].backward()
        opt.step()
        losses.append(terms["total"].item())
    assert losses[1] < losses[0]
