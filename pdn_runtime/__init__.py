"""PatchDriveNet runtime: load an exported model and run camera streams through it, without
ROS and without torch at import.

Backends behind one interface: ONNX Runtime (default; CPU or CUDA), TensorRT (engine built
from the exported ONNX, cached per GPU) and PyTorch (checkpoints, for debugging and parity).
`StreamRunner` is the one per-stream loop (temporal state, reset policy, detections):

    from pdn_runtime import StreamRunner, create_backend
    backend = create_backend("auto", "models/pdn-s.onnx")   # or "onnxruntime", ...
    runner = StreamRunner(backend)
    found = runner.step(image)        # image: uint8 [1,3,H,W]; found: FrameDetections

Importing this package loads neither torch nor tensorrt (nor rclpy): each backend imports
its runtime when it is created. See docs/deployment.md and docs/architecture.md.
"""

from pdn_runtime.errors import (
    BackendError,
    BackendUnavailableError,
    FrameError,
    ModelContractError,
    ModelFileError,
    ModelNotFoundError,
    StateError,
)
from pdn_runtime.factory import KINDS, Choice, choose_auto, create_backend, options_for
from pdn_runtime.interface import Backend, ModelInfo, check_inputs
from pdn_runtime.stream import (
    RESET_REASONS,
    FrameDetections,
    FrameMark,
    Stream,
    StreamPolicy,
    StreamRunner,
    StreamState,
)

__all__ = [
    "KINDS",
    "RESET_REASONS",
    "Backend",
    "BackendError",
    "BackendUnavailableError",
    "Choice",
    "FrameDetections",
    "FrameError",
    "FrameMark",
    "ModelContractError",
    "ModelFileError",
    "ModelInfo",
    "ModelNotFoundError",
    "StateError",
    "Stream",
    "StreamPolicy",
    "StreamRunner",
    "StreamState",
    "check_inputs",
    "choose_auto",
    "create_backend",
    "options_for",
]
