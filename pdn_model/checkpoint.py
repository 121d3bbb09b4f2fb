"""Checkpoint files: the config and weights of a PatchDriveNet, loadable with
`weights_only=True` (plain types and tensors only)."""

from __future__ import annotations

from pathlib import Path

import torch

from pdn_model import __version__
from pdn_model.config import ModelConfig
from pdn_model.model import PatchDriveNet

CHECKPOINT_FORMAT = 1


def save_checkpoint(model: PatchDriveNet, path: str | Path, **extra: object) -> Path:
    """Write the model's config and weights (and plain-typed `extra` entries) to `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "version": __version__,
            "config": model.config.to_dict(),
            "model": model.state_dict(),
            **extra,
        },
        path,
    )
    return path


def with_config(model: PatchDriveNet, **changes: object) -> PatchDriveNet:
    """The same weights under the model's config with `changes` (fields the weights do not
    depend on: the frame size, NMS settings), in eval mode, with the config's window budget."""
    new = PatchDriveNet(model.config.replace(**changes))
    new.load_state_dict(model.state_dict())
    return new.eval()


def load_checkpoint(
    path: str | Path, map_location: str = "cpu", input_size: tuple[int, int] | None = None
) -> PatchDriveNet:
    """The PatchDriveNet stored in `path`, in eval mode; clear errors for bad files.

    `input_size` (height, width) builds the model for another frame size: the weights do
    not depend on it, so one checkpoint serves every resolution.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    try:
        data = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        raise ValueError(f"{path} is not a readable PatchDriveNet checkpoint: {err}") from err
    if not isinstance(data, dict) or data.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a PatchDriveNet checkpoint (format {CHECKPOINT_FORMAT})")
    model = PatchDriveNet(ModelConfig.from_dict(data["config"]))
    model.load_state_dict(data["model"])
    if input_size is not None:
        return with_config(model, height=input_size[0], width=input_size[1])
    return model.eval()
