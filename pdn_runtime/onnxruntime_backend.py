"""ONNX Runtime backend, the default: the CPU, or the CUDA provider where it is installed.

Every frame runs through one IOBinding. Outputs go into NumPy arrays allocated once (wrapped
as OrtValues without a copy), and the caller's input arrays are bound by pointer when they
are C-contiguous; other layouts are copied into a staging buffer allocated on first use. So
no full-frame buffer is allocated per frame on the Python side.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from pdn_model.onnx_graph import sink_input_cast
from pdn_runtime.errors import BackendError, BackendUnavailableError, ModelFileError
from pdn_runtime.interface import OUTPUT_DTYPES, Backend
from pdn_runtime.onnx_file import load_onnx, onnx_model_info

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
DEVICES = ("auto", "cpu", "cuda")


def cuda_provider_available() -> bool:
    """Whether this ONNX Runtime build offers the CUDA execution provider."""
    return CUDA in ort.get_available_providers()


def create_session(
    model: onnx.ModelProto,
    providers: list[str],
    threads: int = 0,
    spin: bool = False,
    profile: str | None = None,
) -> ort.InferenceSession:
    """An ONNX Runtime session of `model`: `threads` intra-op threads (0: one per core), one
    inter-op thread, and idle intra-op threads sleeping unless `spin`: in pdn_node, spinning
    ones take the CPU that receiving the next frame needs (docs/deployment.md, "CPU
    threads"); ONNX Runtime's own default is to spin. With `profile` (a file prefix) ONNX
    Runtime's profiler records every kernel (`pdn-bench profile`)."""
    options = ort.SessionOptions()
    if profile is not None:
        options.enable_profiling = True
        options.profile_file_prefix = profile
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spin else "0")
    return ort.InferenceSession(model.SerializeToString(), options, providers=providers)


class OnnxRuntimeBackend(Backend):
    """An exported ONNX model in an ONNX Runtime session with preallocated I/O buffers.

    device: "cpu", "cuda", or "auto" (CUDA where the provider is available).
    threads: intra-op threads on the CPU (0: ONNX Runtime's default, one per core).
    On the CPU the graph runs with its input cast sunk past the gathers
    (`pdn_model.onnx_graph.sink_input_cast`), which leaves every output bit-identical but
    converts only the pixels the model reads instead of the whole frame.
    """

    kind = "onnxruntime"
    OPTIONS = frozenset({"device", "threads", "spin"})

    def __init__(
        self, model_path: str | Path, device: str = "auto", threads: int = 0, spin: bool = False
    ):
        if device not in DEVICES:
            raise BackendError(f"onnxruntime device must be one of {DEVICES}, got {device!r}")
        if device == "cuda" and not cuda_provider_available():
            raise BackendUnavailableError(
                f"onnxruntime device 'cuda' asked for, but this ONNX Runtime offers only "
                f"{ort.get_available_providers()} (install onnxruntime-gpu)"
            )
        if threads < 0:
            raise BackendError(f"threads must be >= 0, got {threads}")
        self.path = Path(model_path)
        model = load_onnx(self.path)
        self.info = onnx_model_info(model, self.path)
        use_cuda = device == "cuda" or (device == "auto" and cuda_provider_available())
        self.provider = CUDA if use_cuda else CPU
        if not use_cuda:
            model = sink_input_cast(model)
        self.threads = threads
        self.spin = spin
        providers = [CUDA, CPU] if use_cuda else [CPU]
        try:
            self.session = create_session(model, providers, threads, spin)
        except Exception as err:  # ONNX Runtime raises its own Fail/InvalidGraph types
            raise ModelFileError(f"{self.path}: ONNX Runtime cannot load the model: {err}") from err
        if self.session.get_providers()[0] != self.provider:
            raise BackendUnavailableError(
                f"{self.provider} did not start (ONNX Runtime fell back to "
                f"{self.session.get_providers()}); is a GPU present?"
            )
        self.outputs = {
            name: np.empty(shape, OUTPUT_DTYPES[name])
            for name, shape in self.info.output_shapes.items()
        }
        self._binding = self.session.io_binding()
        # OrtValues that wrap the output arrays (no copy); kept referenced with them.
        self._output_values = {
            name: ort.OrtValue.ortvalue_from_numpy(array) for name, array in self.outputs.items()
        }
        for name, value in self._output_values.items():
            self._binding.bind_ortvalue_output(name, value)
        self._staging: dict[str, np.ndarray] = {}

    def _run(self, inputs: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Bind the inputs by pointer (staging non-contiguous ones), run, return the buffers."""
        for name, array in inputs.items():
            if not array.flags.c_contiguous:
                staged = self._staging.get(name)
                if staged is None:
                    staged = self._staging[name] = np.empty(array.shape, array.dtype)
                np.copyto(staged, array)
                array = staged
            self._binding.bind_input(name, "cpu", 0, array.dtype, array.shape, array.ctypes.data)
        self.session.run_with_iobinding(self._binding)
        return dict(self.outputs)

    def describe(self) -> str:
        """Runtime, provider and threads."""
        threads = self.threads or "default"
        idle = "spinning" if self.spin else "sleeping"
        cast = ", input cast sunk" if self.provider == CPU else ""
        return f"onnxruntime {ort.__version__} {self.provider} ({threads} {idle} threads{cast})"
