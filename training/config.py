"""Typed training configuration, read from YAML (`training/configs/*.yaml`)."""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from training.losses import LossWeights


@dataclass(frozen=True)
class DataConfig:
    """Where the frames come from and how training clips are cut from them."""

    train: str | tuple[str, ...]  # COCO annotation file(s); several are concatenated
    crop: tuple[int, int] = (1024, 1024)  # height, width at full resolution
    clip_length: int = 2  # consecutive frames per sample (temporal memory is unrolled)
    scale_jitter: tuple[float, float] = (0.8, 1.25)
    flip: bool = True
    color_jitter: float = 0.2
    haze: float = 0.0  # blend each clip toward a random colour by up to this share (contrast)
    camera: float = 0.0  # share of clips given a randomised camera's noise, blur and JPEG
    workers: int = 1
    frame_cache: bool = True  # decode each frame once into IMAGES/.frame_cache (data.py)


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warmup then cosine annealing, by optimisation step."""

    steps: int = 3000
    batch_size: int = 2
    lr: float = 2e-3
    weight_decay: float = 0.05
    warmup_steps: int = 200
    min_lr_ratio: float = 0.05
    grad_clip: float = 10.0


@dataclass(frozen=True)
class TrainConfig:
    """One training run."""

    name: str
    data: DataConfig
    optim: OptimConfig = field(default_factory=OptimConfig)
    loss: LossWeights = field(default_factory=LossWeights)
    preset: str = "pdn-s"
    model: dict = field(default_factory=dict)  # ModelConfig overrides (saved with the model)
    train_patches: tuple[int, ...] | None = None  # windows per scale while training
    guide: float = 2.0  # selection bias toward annotated objects, decayed to 0
    guide_steps: int = 1000
    global_only_share: float = 0.25  # steps trained with 0 windows (the global stream alone)
    long_clip_share: float = 0.25  # steps that unroll the whole clip (others: its first frame)
    init: str | None = None  # start from this checkpoint's weights (optimizer, schedule fresh)
    seed: int = 0
    out: str = "runs"
    log_every: int = 10
    checkpoint_every: int = 250
    amp: bool = True  # mixed precision on CUDA; ignored on CPU
    device: str = "auto"


def _build(cls: type, data: dict, where: str) -> object:
    """Instantiate a (nested) dataclass from a dict, refusing unknown keys."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(data) - names
    if unknown:
        raise ValueError(f"{where}: unknown keys {sorted(unknown)}; known: {sorted(names)}")
    values = {}
    for key, value in data.items():
        kind = hints[key]
        if dataclasses.is_dataclass(kind):
            value = _build(kind, value, f"{where}.{key}")
        elif isinstance(value, list) and _is_tuple(kind):
            value = tuple(value)
        values[key] = value
    try:
        return cls(**values)
    except TypeError as err:
        raise ValueError(f"{where}: {err}") from err


def _is_tuple(kind: object) -> bool:
    if typing.get_origin(kind) is tuple:
        return True
    if typing.get_origin(kind) in (typing.Union, types.UnionType):
        return any(typing.get_origin(a) is tuple for a in typing.get_args(kind))
    return False


def load_train_config(path: str | Path, **overrides: object) -> TrainConfig:
    """Read a YAML training config; `overrides` replace top-level keys."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"training config not found: {path}")
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise ValueError(f"{path}: not valid YAML: {err}") from err
    data.update(overrides)
    config = _build(TrainConfig, data, str(path))
    assert isinstance(config, TrainConfig)
    return config
