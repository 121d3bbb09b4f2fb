"""Exceptions of the inference backends: one type per kind of problem, each a ValueError."""

from __future__ import annotations


class BackendError(ValueError):
    """A model, an input or a backend that cannot work; the message says what and where."""


class ModelNotFoundError(BackendError, FileNotFoundError):
    """The model file does not exist."""


class ModelFileError(BackendError):
    """The model file exists but is not a model this backend can read (not ONNX, corrupt)."""


class ModelContractError(BackendError):
    """The model's inputs, outputs or metadata differ from `pdn_model.contract`."""


class FrameError(BackendError):
    """The image has the wrong type, dtype, layout, size or batch for the model."""


class StateError(BackendError):
    """memory, memory_valid or controller_state has the wrong type, dtype or shape."""


class BackendUnavailableError(BackendError):
    """The requested backend (or its device) is not installed or not present here."""
