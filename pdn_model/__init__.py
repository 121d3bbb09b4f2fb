"""PatchDriveNet in plain PyTorch: one exportable graph; imports no ROS.

`pdn_model.config`, `pdn_model.contract` and `pdn_model.onnx_graph` import no torch, and
this package loads the torch modules only when one of their names is used, so deployment
code can read configs and ONNX graphs without PyTorch.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "PatchDriveNet": "pdn_model.model",
    "build": "pdn_model.model",
    "load_checkpoint": "pdn_model.checkpoint",
    "save_checkpoint": "pdn_model.checkpoint",
    "ModelConfig": "pdn_model.config",
    "PRESETS": "pdn_model.config",
    "preset_config": "pdn_model.config",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'pdn_model' has no attribute {name!r}")
