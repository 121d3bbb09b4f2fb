"""Inference backends behind one interface: ONNX Runtime (default; CPU or CUDA), TensorRT
(engine built from the exported ONNX, cached per GPU) and PyTorch (checkpoints, for
debugging and parity).

    from pdn_ros.backends import StreamState, create_backend
    backend = create_backend("auto", "models/pdn-s.onnx")   # or "onnxruntime", ...
    state = StreamState(backend.info)
    out = backend.run(image, **state.inputs())   # image: uint8 [B,3,H,W]
    state.update(out)                            # memory and controller for the next frame

Importing this package loads neither torch nor tensorrt (nor rclpy): each backend imports
its runtime when it is created. See docs/deployment.md.
"""

from pdn_ros.backends.base import Backend, ModelInfo, check_inputs
from pdn_ros.backends.errors import (
    BackendError,
    BackendUnavailableError,
    FrameError,
    ModelContractError,
    ModelFileError,
    ModelNotFoundError,
    StateError,
)
from pdn_ros.backends.factory import KINDS, Choice, choose_auto, create_backend
from pdn_ros.backends.state import StreamState

__all__ = [
    "KINDS",
    "Backend",
    "BackendError",
    "BackendUnavailableError",
    "Choice",
    "FrameError",
    "ModelContractError",
    "ModelFileError",
    "ModelInfo",
    "ModelNotFoundError",
    "StateError",
    "StreamState",
    "check_inputs",
    "choose_auto",
    "create_backend",
]
