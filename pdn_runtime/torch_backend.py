"""PyTorch backend: runs a training checkpoint directly, for debugging and parity checks
against the exported graphs. The only module of pdn_runtime that imports torch (when
the backend is created, not when the package is imported).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from pdn_model.contract import OUTPUT_NAMES, input_shapes, output_shapes
from pdn_runtime.errors import BackendError, BackendUnavailableError, ModelFileError
from pdn_runtime.interface import Backend, ModelInfo
from pdn_runtime.onnx_file import require_file


class TorchBackend(Backend):
    """A `pdn_model` checkpoint in eager PyTorch, in eval mode, without gradients.

    device: "cpu", "cuda" (or "cuda:N"), or "auto" (CUDA where torch sees a GPU).
    batch: cameras per call; a checkpoint has no fixed batch, the exported graphs do.
    input_size: (height, width) to run at, when not the checkpoint's own (weights do not
    depend on it). patches: windows per scale or "all" (see PatchDriveNet.set_patches).
    Outputs are fresh arrays each call (this backend is for checking, not for speed).
    """

    kind = "torch"
    OPTIONS = frozenset({"device", "batch", "input_size", "patches"})

    def __init__(
        self,
        model_path: str | Path,
        device: str = "cpu",
        batch: int = 1,
        input_size: tuple[int, int] | None = None,
        patches: Sequence[int] | str | None = None,
    ):
        import torch

        from pdn_model.checkpoint import load_checkpoint

        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        if not (device == "cpu" or device.startswith("cuda")):
            raise BackendError(f"torch device must be 'cpu', 'cuda[:N]' or 'auto', got {device!r}")
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailableError(
                f"torch device {device!r} asked for, but torch {torch.__version__} sees no CUDA GPU"
            )
        if batch < 1:
            raise BackendError(f"batch must be >= 1, got {batch}")
        self.path = require_file(model_path, "checkpoint")
        try:
            model = load_checkpoint(self.path, input_size=input_size)
        except ValueError as err:
            raise ModelFileError(str(err)) from err
        if patches is not None:
            model.set_patches(patches)
        self.device = torch.device(device)
        self.model = model.to(self.device)
        cfg = model.config
        self.info = ModelInfo.from_shapes(
            input_shapes(cfg, batch), output_shapes(cfg, batch), cfg.class_names, str(self.path)
        )
        self._torch = torch

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Forward pass on the device; outputs copied back to NumPy."""
        torch = self._torch
        with torch.inference_mode():
            tensors = [
                torch.from_numpy(np.ascontiguousarray(a)).to(self.device) for a in inputs.values()
            ]
            out = self.model(*tensors)
            return {name: out[name].cpu().numpy() for name in OUTPUT_NAMES}

    def describe(self) -> str:
        """Runtime and device."""
        return f"torch {self._torch.__version__} eager on {self.device}"
