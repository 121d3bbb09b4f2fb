"""Training diagnostics: the figures in log.csv mean what their names say."""

from __future__ import annotations

import math

import pytest
import torch
from pdn_tiny import random_inputs, tiny_config, tiny_model

from training.diagnostics import (
    DRIFT_LIMIT,
    drift_warnings,
    module_grad_norms,
    priority_stats,
    window_stats,
)
from training.losses import Target


def test_window_stats_count_windows_holding_objects_and_small_objects_inside_windows():
    cfg = tiny_config()  # scales 64 and 128 px
    out = {
        "patch_boxes": torch.tensor(
            [[[0.0, 0.0, 64.0, 64.0], [100.0, 0.0, 164.0, 64.0], [0.0, 0.0, 128.0, 128.0]]]
        ),
        "patch_scale": torch.tensor([[0, 0, 1]]),
    }
    boxes = [[10.0, 10.0, 20.0, 20.0], [150.0, 10.0, 170.0, 30.0], [200.0, 100.0, 240.0, 120.0]]
    target = Target(torch.tensor(boxes), torch.zeros(3, dtype=torch.long))
    stats = window_stats(out, [target], cfg)
    # 64-px windows: the first holds object 0, the second cuts object 1. The 128-px one holds 0.
    assert stats["window_precision_p64"] == pytest.approx(0.5)
    assert stats["window_precision_p128"] == pytest.approx(1.0)
    # Small (< 32 px) objects: 0 and 1 (object 2 is 40 px); only object 0 is inside a window.
    assert stats["patch_recall_small"] == pytest.approx(0.5)
    empty = Target(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    assert math.isnan(window_stats(out, [empty], cfg)["patch_recall_small"])
    # A global-only step (no window) measures no placement at all.
    none = {"patch_boxes": torch.zeros(1, 0, 4), "patch_scale": torch.zeros(1, 0, dtype=torch.long)}
    blank = window_stats(none, [target], cfg)
    assert all(math.isnan(v) for v in blank.values())


def test_priority_stats_and_drift_warning():
    cfg = tiny_config()
    priority = torch.zeros(2, 2, 6, 10)
    priority[:, 1] = -3 * DRIFT_LIMIT
    stats = priority_stats(priority, cfg)
    assert stats["prio_mean_p64"] == 0.0 and stats["prio_absmax_p128"] == 3 * DRIFT_LIMIT
    lines = drift_warnings(stats, cfg)
    assert len(lines) == 1 and "128-px windows has drifted" in lines[0]


def test_gradient_norm_per_module():
    model = tiny_model().train()
    out = model(*random_inputs(model))
    out["saliency_logits"].sum().backward()
    norms = module_grad_norms(model)
    assert norms["grad_saliency"] > 0.0 and norms["grad_global_backbone"] > 0.0
    assert norms["grad_patch_head"] == 0.0 and norms["grad_patch_backbone"] == 0.0
    expected = torch.stack([p.grad.norm() for p in model.saliency.parameters()]).norm()
    assert norms["grad_saliency"] == pytest.approx(float(expected))
