"""Training config, schedule and sampler."""

from __future__ import annotations

import pytest

from training.config import OptimConfig, load_train_config
from training.train import StepSampler, lr_factor


def test_yaml_config_loads_nested_and_refuses_unknown_keys(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        "name: t\ndata: {train: d/annotations.json, crop: [512, 768]}\n"
        "optim: {steps: 10, lr: 0.01}\ntrain_patches: [2, 1]\nloss: {saliency: 2.0}\n"
    )
    cfg = load_train_config(path)
    assert cfg.data.crop == (512, 768) and cfg.optim.steps == 10 and cfg.optim.lr == 0.01
    assert cfg.train_patches == (2, 1) and cfg.loss.saliency == 2.0
    path.write_text("name: t\ndata: {train: x, crops: [1, 2]}\n")
    with pytest.raises(ValueError, match=r"c.yaml.data: unknown keys \['crops'\]"):
        load_train_config(path)
    with pytest.raises(FileNotFoundError, match="training config not found"):
        load_train_config(tmp_path / "missing.yaml")
    path.write_text("name: [unclosed\n")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_train_config(path)


def test_learning_rate_warms_up_then_anneals_to_the_floor():
    optim = OptimConfig(steps=100, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_factor(0, optim) == pytest.approx(0.1)
    assert lr_factor(9, optim) == pytest.approx(1.0)
    assert lr_factor(10, optim) == pytest.approx(1.0)
    assert lr_factor(55, optim) == pytest.approx(0.55)
    assert lr_factor(100, optim) == pytest.approx(0.1)
    factors = [lr_factor(s, optim) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(factors, factors[1:], strict=False))


def test_step_sampler_shards_ranks_and_resumes_at_a_step():
    take = lambda sampler, n: [next(it) for it in [iter(sampler)] for _ in range(n)]  # noqa: E731
    r0 = take(StepSampler(0, 2, rank=0, world=2), 6)
    r1 = take(StepSampler(0, 2, rank=1, world=2), 6)
    assert r0 == [0, 1, 4, 5, 8, 9] and r1 == [2, 3, 6, 7, 10, 11]
    assert take(StepSampler(2, 2, rank=0, world=2), 2) == [8, 9]
