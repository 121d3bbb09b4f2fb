"""TensorRT backend without TensorRT: the engine cache (keys, invalidation, corrupt files),
the FP32 fallback policy, the engine I/O check, the errors when TensorRT is absent, and the
build/run plumbing driven through a stand-in of the tensorrt and cuda-python modules.

The stand-in (`FakeTensorRT`, `FakeCuda`) follows our reading of the TensorRT 10 Python API
and runs the ONNX graph with ONNX Runtime. It checks that our code calls what we believe
TensorRT offers, in a consistent order, and moves the right bytes; it is no evidence that
real TensorRT accepts the calls (docs/deployment.md says what has run where).
"""

from __future__ import annotations

import ctypes
import dataclasses
import json
import logging
import sys
import types
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import onnx.inliner
import onnxruntime as ort
import pytest
from onnx import TensorProto
from pdn_tiny import tiny_model

from pdn_model.checkpoint import save_checkpoint
from pdn_model.contract import INPUT_NAMES, OUTPUT_NAMES
from pdn_model.export import to_onnx
from pdn_runtime import (
    BackendError,
    BackendUnavailableError,
    ModelContractError,
    ModelFileError,
    ModelInfo,
    StreamRunner,
    StreamState,
    create_backend,
    gpu_runtime,
)
from pdn_runtime import tensorrt_backend as trt_backend
from pdn_runtime.engine_cache import (
    EngineKey,
    cached_engine_path,
    load_or_build,
    read_engine_file,
    sidecar_path,
    stale_reason,
    timing_cache_path,
    write_engine,
)
from pdn_runtime.export_cli import main as export_main
from pdn_runtime.fp16_policy import LayerView, plan_fp32_layers
from pdn_runtime.interface import INPUT_DTYPES, OUTPUT_DTYPES

KEY = EngineKey(
    gpu_name="NVIDIA Jetson AGX Orin",
    compute_capability="8.7",
    tensorrt_version="10.3.0",
    precision="fp16",
    input_shape=(1, 3, 2160, 3840),
    onnx_sha256="a" * 64,
)
OTHER_VALUES = {
    "gpu_name": "NVIDIA GeForce RTX 4090",
    "compute_capability": "8.9",
    "tensorrt_version": "10.4.0",
    "precision": "fp32",
    "input_shape": (1, 3, 4320, 7680),
    "onnx_sha256": "b" * 64,
}
INFO = ModelInfo(2160, 3840, 1, ("person",), (4, 16, 96), 64, {n: (1, 4) for n in OUTPUT_NAMES})


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    """The tiny model exported once for this module."""
    return to_onnx(tiny_model(seed=2), tmp_path_factory.mktemp("trt") / "tiny.onnx")


# ---- cache keys ------------------------------------------------------------------------


def test_every_key_component_changes_the_key_and_the_cache_file():
    assert set(OTHER_VALUES) == {f.name for f in dataclasses.fields(EngineKey)}
    paths = {cached_engine_path(Path("/c"), Path("m/pdn-s.onnx"), KEY)}
    for field, value in OTHER_VALUES.items():
        other = dataclasses.replace(KEY, **{field: value})
        assert other.digest() != KEY.digest(), field
        assert other.differences(KEY.to_dict()) == [
            f"{field}: {KEY.to_dict()[field]!r} -> {other.to_dict()[field]!r}"
        ]
        paths.add(cached_engine_path(Path("/c"), Path("m/pdn-s.onnx"), other))
    assert len(paths) == 1 + len(OTHER_VALUES)
    assert all(p.parent == Path("/c") and p.name.startswith("pdn-s-") for p in paths)
    assert KEY.digest() == dataclasses.replace(KEY).digest()  # stable


def test_the_timing_cache_is_per_gpu_and_tensorrt_version_only():
    path = timing_cache_path(Path("/c"), KEY)
    assert path == Path("/c/timing-nvidia-jetson-agx-orin-sm87-trt10.3.0.cache")
    for field, value in OTHER_VALUES.items():
        other = timing_cache_path(Path("/c"), dataclasses.replace(KEY, **{field: value}))
        device_specific = field in ("gpu_name", "compute_capability", "tensorrt_version")
        assert (other != path) == device_specific, field


# ---- load_or_build with a fake builder and deserializer --------------------------------


class FakeEngines:
    """Builds plans that name their key; deserializes only plans it built and calls valid."""

    def __init__(self) -> None:
        self.builds = 0
        self.unreadable: set[bytes] = set()

    def builder(self, key: EngineKey):
        def build() -> bytes:
            self.builds += 1
            return f"plan {key.digest()} #{self.builds}".encode()

        return build

    def deserialize(self, blob: bytes) -> str | None:
        if not blob.startswith(b"plan ") or blob in self.unreadable:
            return None
        return blob.decode()


def test_an_engine_is_built_once_then_loaded_from_the_cache(tmp_path):
    fake, path = FakeEngines(), tmp_path / "m.engine"
    first = load_or_build(path, KEY, INFO, fake.builder(KEY), fake.deserialize)
    second = load_or_build(path, KEY, INFO, fake.builder(KEY), fake.deserialize)
    assert first == second and fake.builds == 1
    record = json.loads(sidecar_path(path).read_text())
    assert record["key"] == KEY.to_dict() and ModelInfo.from_dict(record["model"]) == INFO
    assert stale_reason(path, KEY) is None


@pytest.mark.parametrize("field", list(OTHER_VALUES))
def test_a_changed_key_component_rebuilds(tmp_path, field, caplog):
    fake, path = FakeEngines(), tmp_path / "fixed.engine"  # fixed path, as pdn-export --engine
    load_or_build(path, KEY, INFO, fake.builder(KEY), fake.deserialize)
    other = dataclasses.replace(KEY, **{field: OTHER_VALUES[field]})
    with caplog.at_level(logging.INFO):
        engine = load_or_build(path, other, INFO, fake.builder(other), fake.deserialize)
    assert fake.builds == 2 and other.digest() in engine
    assert f"key changed: {field}:" in caplog.text
    assert stale_reason(path, other) is None and stale_reason(path, KEY) is not None


def _corrupt_engine(path: Path, fake: FakeEngines) -> str:
    path.write_bytes(path.read_bytes()[:5])
    return "SHA-256 differs"


def _unreadable_plan(path: Path, fake: FakeEngines) -> str:
    fake.unreadable.add(path.read_bytes())  # hash fine, but TensorRT refuses the plan
    return "could not deserialize"


def _raising_plan(path: Path, fake: FakeEngines) -> str:
    def explode(blob: bytes) -> str:
        raise RuntimeError("plan from another TensorRT build")

    real = fake.deserialize
    fake.deserialize = lambda blob: explode(blob) if fake.builds == 1 else real(blob)
    return "could not deserialize"


def _garbage_sidecar(path: Path, fake: FakeEngines) -> str:
    sidecar_path(path).write_text("{not json")
    return "unreadable"


def _foreign_sidecar(path: Path, fake: FakeEngines) -> str:
    sidecar_path(path).write_text(json.dumps({"format": 99}))
    return "not a format-1 engine record"


def _missing_sidecar(path: Path, fake: FakeEngines) -> str:
    sidecar_path(path).unlink()
    return "no sidecar"


def _missing_engine(path: Path, fake: FakeEngines) -> str:
    path.unlink()
    return "no engine file"


@pytest.mark.parametrize(
    "damage",
    [
        _corrupt_engine,
        _unreadable_plan,
        _raising_plan,
        _garbage_sidecar,
        _foreign_sidecar,
        _missing_sidecar,
        _missing_engine,
    ],
)
def test_a_damaged_cache_entry_is_rebuilt(tmp_path, damage, caplog):
    fake, path = FakeEngines(), tmp_path / "m.engine"
    load_or_build(path, KEY, INFO, fake.builder(KEY), fake.deserialize)
    reason = damage(path, fake)
    with caplog.at_level(logging.INFO):
        engine = load_or_build(path, KEY, INFO, fake.builder(KEY), fake.deserialize)
    assert fake.builds == 2 and engine.endswith("#2")
    assert reason in caplog.text
    assert stale_reason(path, KEY) is None  # the rebuilt entry is whole again


def test_a_fresh_build_that_does_not_deserialize_is_an_error(tmp_path):
    with pytest.raises(BackendError, match="cannot deserialize the engine it just built"):
        load_or_build(tmp_path / "m.engine", KEY, INFO, lambda: b"junk", lambda blob: None)


def test_a_prebuilt_engine_file_is_checked_against_this_machine(tmp_path):
    path = tmp_path / "pdn-s.engine"
    write_engine(path, b"plan", KEY, INFO)
    here = (KEY.gpu_name, KEY.compute_capability, KEY.tensorrt_version)
    assert read_engine_file(path, *here) == (b"plan", INFO, "fp16")
    with pytest.raises(ModelFileError, match=r"another machine: tensorrt_version '10\.3\.0'"):
        read_engine_file(path, KEY.gpu_name, KEY.compute_capability, "10.4.0")
    with pytest.raises(ModelFileError, match="gpu_name 'NVIDIA Jetson AGX Orin'"):
        read_engine_file(path, "NVIDIA A100", KEY.compute_capability, KEY.tensorrt_version)
    path.write_bytes(b"plan, modified")
    with pytest.raises(ModelFileError, match="pdn-s.engine cannot be used: .*SHA-256"):
        read_engine_file(path, *here)
    sidecar_path(path).unlink()
    with pytest.raises(ModelFileError, match="no sidecar"):
        read_engine_file(path, *here)


# ---- FP32 fallback policy --------------------------------------------------------------

ONNX_KINDS = {
    "Conv": "CONVOLUTION",
    "ConvTranspose": "DECONVOLUTION",
    "MatMul": "MATRIX_MULTIPLY",
    "Gemm": "MATRIX_MULTIPLY",
    "Softmax": "SOFTMAX",
    "LayerNormalization": "NORMALIZATION",
    "ReduceMean": "REDUCE",
    "ReduceMax": "REDUCE",
    "ReduceSum": "REDUCE",
    "TopK": "TOPK",
    "ArgMax": "TOPK",
    "Constant": "CONSTANT",
}
FLOATS = (TensorProto.FLOAT, TensorProto.FLOAT16)


def onnx_layers(path: Path) -> tuple[onnx.GraphProto, list[LayerView]]:
    """The graph and its nodes as the policy sees TensorRT layers (ONNX ops -> layer kinds)."""
    model = onnx.shape_inference.infer_shapes(onnx.inliner.inline_local_functions(onnx.load(path)))
    graph = model.graph
    types_ = {
        v.name: v.type.tensor_type.elem_type
        for v in [*graph.value_info, *graph.input, *graph.output]
    }
    views = [
        LayerView(
            kind=ONNX_KINDS.get(node.op_type, node.op_type.upper()),
            inputs=tuple(name for name in node.input if name),
            outputs=tuple(node.output),
            float_output=any(types_.get(name) in FLOATS for name in node.output),
        )
        for node in graph.node
    ]
    return graph, views


def test_policy_on_a_small_chain():
    views = [
        LayerView("CONSTANT", (), ("w",), True),
        LayerView("CAST", ("image",), ("x",), True),
        LayerView("CONVOLUTION", ("x", "w"), ("a",), True),
        LayerView("SOFTMAX", ("a",), ("s",), True),
        LayerView("ELEMENTWISE", ("s", "a"), ("b",), True),
        LayerView("CONVOLUTION", ("b", "w"), ("c",), True),  # the head: no compute after it
        LayerView("ELEMENTWISE", ("c",), ("boxes",), True),  # decoding in pixels
        LayerView("TOPK", ("c",), ("idx",), False),  # integer output only: unconstrained
    ]
    plan = plan_fp32_layers(views)
    assert plan.sensitive == (3,) and plan.tail == (5, 6)


def test_policy_on_the_exported_model_keeps_sensitive_and_pixel_layers_in_fp32(tiny_onnx):
    graph, views = onnx_layers(tiny_onnx)
    plan = plan_fp32_layers(views)
    nodes = list(graph.node)
    sensitive_ops = {"Softmax", "LayerNormalization", "ReduceMean", "ReduceMax", "TopK"}
    sensitive = {i for i, n in enumerate(nodes) if n.op_type in sensitive_ops}
    assert sensitive == set(plan.sensitive)  # (ONNX ArgMax has no float output; TensorRT's has)
    producer = {out: i for i, n in enumerate(nodes) for out in n.output}
    float_outputs = [o.name for o in graph.output if o.type.tensor_type.elem_type in FLOATS]
    assert set(float_outputs) == set(OUTPUT_NAMES) - {"labels", "patch_scale"}
    assert all(producer[name] in plan.fp32 for name in float_outputs)
    convs = [i for i, n in enumerate(nodes) if n.op_type == "Conv"]
    fp16_convs = [i for i in convs if i not in plan.fp32]
    assert len(fp16_convs) >= 0.8 * len(convs)  # the backbones run in FP16
    image_cast = next(i for i, n in enumerate(nodes) if "image" in n.input)
    assert image_cast not in plan.fp32
    assert len(plan.fp32) < 0.4 * sum(v.float_output for v in views)


# ---- engine I/O check ------------------------------------------------------------------


def _engine_io(info: ModelInfo) -> dict:
    io = {n: (True, s, INPUT_DTYPES[n]) for n, s in info.input_shapes.items()}
    io.update({n: (False, s, OUTPUT_DTYPES[n]) for n, s in info.output_shapes.items()})
    return io


def test_engine_io_must_match_the_contract():
    trt_backend.check_engine_io(_engine_io(INFO), INFO, "m.engine")
    io = _engine_io(INFO)
    io["images"] = io.pop("image")
    with pytest.raises(ModelContractError, match="m.engine: engine tensors"):
        trt_backend.check_engine_io(io, INFO, "m.engine")
    io = _engine_io(INFO)
    io["labels"] = (False, io["labels"][1], np.dtype(np.int64))
    with pytest.raises(ModelContractError, match="'labels' is int64"):
        trt_backend.check_engine_io(io, INFO, "m.engine")
    io = _engine_io(INFO)
    io["memory"] = (True, (1, 2, 16, 96), np.dtype(np.float32))
    with pytest.raises(ModelContractError, match=r"'memory' is float32 \(1, 2, 16, 96\)"):
        trt_backend.check_engine_io(io, INFO, "m.engine")


# ---- TensorRT absent -------------------------------------------------------------------


@pytest.fixture
def no_tensorrt(monkeypatch):
    """Make `import tensorrt` fail, as on every machine here (and on CI with TensorRT)."""
    monkeypatch.setitem(sys.modules, "tensorrt", None)


def test_asking_for_tensorrt_without_it_is_a_clear_error(tiny_onnx, no_tensorrt):
    with pytest.raises(BackendUnavailableError, match="needs the tensorrt Python package") as err:
        create_backend("tensorrt", tiny_onnx)
    assert "with backend 'onnxruntime'" in str(err.value)
    assert gpu_runtime.tensorrt_problem().startswith("tensorrt does not import")


def test_pdn_export_engine_without_tensorrt_fails_before_exporting(tmp_path, no_tensorrt, capsys):
    out = tmp_path / "m.onnx"
    code = export_main(["--out", str(out), "--engine", str(tmp_path / "m.engine")])
    assert code == 2 and not out.exists()
    assert "needs the tensorrt Python package" in capsys.readouterr().err


# ---- build and run through stand-ins of tensorrt and cuda-python -----------------------


class FakeStream:
    """A cudaStream_t: an object whose int() is the handle TensorRT takes."""

    def __init__(self, handle: int) -> None:
        self.handle = handle

    def __int__(self) -> int:
        return self.handle


class FakeCuda(types.SimpleNamespace):
    """cuda.bindings.runtime as the backend uses it: host memory stands in for the GPU, and
    work on a stream (copies, the engine's execution) is queued and only happens at
    cudaStreamSynchronize, as on a GPU. `fail[name] = n` makes the call `name` fail with
    error 700 after n more successful calls."""

    ERROR = 700

    def __init__(self, devices: int = 1) -> None:
        super().__init__(
            cudaError_t=types.SimpleNamespace(cudaSuccess=0),
            cudaMemcpyKind=types.SimpleNamespace(
                cudaMemcpyHostToDevice=1, cudaMemcpyDeviceToHost=2
            ),
        )
        self.devices = devices
        self.buffers: dict[int, ctypes.Array] = {}
        self.copies: list[int] = []
        self.queues: dict[int, list[Callable[[], None]]] = {}
        self.fail: dict[str, int] = {}

    def _fails(self, name: str) -> bool:
        """Whether the call `name` fails this time (see the class docstring)."""
        if name not in self.fail:
            return False
        self.fail[name] -= 1
        return self.fail[name] < 0

    def _alloc(self, nbytes: int, name: str) -> tuple[int, int]:
        if self._fails(name):
            return self.ERROR, 0
        buffer = (ctypes.c_uint8 * nbytes)()
        self.buffers[ctypes.addressof(buffer)] = buffer
        return 0, ctypes.addressof(buffer)

    def cudaMalloc(self, nbytes: int):
        return self._alloc(nbytes, "cudaMalloc")

    def cudaMallocHost(self, nbytes: int):
        return self._alloc(nbytes, "cudaMallocHost")

    def _free(self, pointer: int) -> tuple[int]:
        del self.buffers[pointer]
        return (0,)

    cudaFree = cudaFreeHost = _free

    def cudaGetDeviceCount(self):
        return 0, self.devices

    def cudaSetDevice(self, device):
        return (0,)

    def cudaGetDeviceProperties(self, device):
        return 0, types.SimpleNamespace(name=b"Fake GPU\0\0\0", major=8, minor=7)

    def cudaGetErrorString(self, err):
        return 0, b"an illegal memory access was encountered"

    def cudaStreamCreate(self):
        handle = 0x5000 + len(self.queues)
        self.queues[handle] = []
        return 0, FakeStream(handle)

    def cudaStreamDestroy(self, stream):
        del self.queues[int(stream)]  # work still queued is dropped with the stream
        return (0,)

    def enqueue(self, handle: int, work: Callable[[], None]) -> bool:
        """Queue work on the stream with this handle; False for a stream that does not exist
        (the default stream 0 included: the backend must use its own)."""
        if handle not in self.queues:
            return False
        self.queues[handle].append(work)
        return True

    def cudaStreamSynchronize(self, stream):
        if self._fails("cudaStreamSynchronize"):
            return (self.ERROR,)
        queue = self.queues[int(stream)]
        while queue:
            queue.pop(0)()
        return (0,)

    def cudaMemcpyAsync(self, dst, src, nbytes, kind, stream):
        if self._fails("cudaMemcpyAsync"):
            return (self.ERROR,)
        assert self.enqueue(int(stream), lambda: ctypes.memmove(dst, src, nbytes))
        self.copies.append(kind)
        return (0,)


def fake_tensorrt(
    version: str = "10.3.0", fp16: bool = True, cuda: FakeCuda | None = None
) -> types.ModuleType:
    """A stand-in tensorrt module whose 'engine' runs the parsed ONNX file in ONNX Runtime,
    queued on `cuda`'s stream. `trt.fail` names what fails: "parse", "build",
    "set_tensor_address" or "execute"."""
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.float32, trt.float16 = "FLOAT", "HALF"
    to_trt = {TensorProto.FLOAT: "FLOAT", TensorProto.INT32: "INT32", TensorProto.UINT8: "UINT8"}
    trt.nptype = {
        "FLOAT": np.float32,
        "HALF": np.float16,
        "INT32": np.int32,
        "UINT8": np.uint8,
    }.__getitem__
    flags = ["OBEY_PRECISION_CONSTRAINTS", "TF32"] + (["FP16"] if fp16 else [])
    trt.BuilderFlag = types.SimpleNamespace(**{f: f for f in flags})
    trt.TensorIOMode = types.SimpleNamespace(INPUT="INPUT", OUTPUT="OUTPUT")
    trt.builds = []
    trt.fail = set()

    class Logger:
        WARNING = 2

        def __init__(self, level: int) -> None:
            self.level = level

    class Tensor(types.SimpleNamespace):
        pass

    class Layer:
        def __init__(self, kind: str, inputs: list, outputs: list) -> None:
            self.type = types.SimpleNamespace(name=kind)
            self._inputs, self._outputs = inputs, outputs
            self.num_inputs, self.num_outputs = len(inputs), len(outputs)
            self.precision, self.output_types = None, {}

        def get_input(self, j):
            return self._inputs[j]

        def get_output(self, j):
            return self._outputs[j]

        def set_output_type(self, j, dtype):
            self.output_types[j] = dtype

    class Network:
        def __init__(self) -> None:
            self.layers, self.onnx_path = [], None

        @property
        def num_layers(self) -> int:
            return len(self.layers)

        def get_layer(self, i):
            return self.layers[i]

    class OnnxParser:
        def __init__(self, network, logger) -> None:
            self.network, self.num_errors = network, 0

        def parse_from_file(self, path: str) -> bool:
            if "parse" in trt.fail:
                self.num_errors = 2
                return False
            _, views = onnx_layers(Path(path))
            for v in views:
                dtype = "FLOAT" if v.float_output else "INT32"
                self.network.layers.append(
                    Layer(
                        v.kind,
                        [Tensor(name=n) for n in v.inputs],
                        [Tensor(name=n, dtype=dtype) for n in v.outputs],
                    )
                )
            self.network.onnx_path = path
            return True

        def get_error(self, i: int) -> str:
            return f"fake parser error {i}: unsupported node"

    class TimingCache:
        def __init__(self, blob: bytes) -> None:
            self.blob = blob

        def serialize(self) -> bytes:
            return self.blob + b"+timings"

    class Config:
        def __init__(self) -> None:
            self.flags, self.timing_cache, self.progress_monitor = {"TF32"}, None, None

        def set_flag(self, flag):
            self.flags.add(flag)

        def clear_flag(self, flag):
            self.flags.discard(flag)

        def create_timing_cache(self, blob: bytes):
            return TimingCache(blob)

        def set_timing_cache(self, cache, ignore_mismatch: bool) -> bool:
            self.timing_cache = cache
            return True

        def get_timing_cache(self):
            return self.timing_cache

    class HostMemory(bytes):
        @property
        def nbytes(self) -> int:
            return len(self)

    class Builder:
        def __init__(self, logger) -> None:
            pass

        def create_network(self, flags: int):
            assert flags == 0
            return Network()

        def create_builder_config(self):
            return Config()

        def build_serialized_network(self, network, config):
            if "build" in trt.fail:
                return None
            monitor = config.progress_monitor
            monitor.phase_start("Building engine", None, 20)
            monitor.phase_start("Tactic timing", "Building engine", 3)
            for step in range(20):
                assert monitor.step_complete("Building engine", step)
            monitor.phase_finish("Tactic timing")
            monitor.phase_finish("Building engine")
            trt.builds.append((network, config))
            return HostMemory(b"FAKEPLAN " + network.onnx_path.encode())

    class IProgressMonitor:
        def __init__(self) -> None:
            pass

    class Context:
        def __init__(self, engine) -> None:
            self.engine, self.addresses = engine, {}

        def set_tensor_address(self, name: str, pointer: int) -> bool:
            self.addresses[name] = pointer
            return "set_tensor_address" not in trt.fail

        def _array(self, name: str) -> np.ndarray:
            shape, dtype = self.engine.io[name][1], trt.nptype(self.engine.io[name][2])
            nbytes = int(np.prod(shape)) * np.dtype(dtype).itemsize
            raw = (ctypes.c_uint8 * nbytes).from_address(self.addresses[name])
            return np.frombuffer(raw, dtype).reshape(shape)

        def execute_async_v3(self, stream_handle: int) -> bool:
            assert isinstance(stream_handle, int)

            def execute() -> None:
                feeds = {n: self._array(n).copy() for n in INPUT_NAMES}
                names = [o.name for o in self.engine.session.get_outputs()]
                for name, value in zip(names, self.engine.session.run(None, feeds), strict=True):
                    self._array(name)[...] = value

            if "execute" in trt.fail or cuda is None:
                return False
            return cuda.enqueue(stream_handle, execute)

    class Engine:
        def __init__(self, onnx_path: str) -> None:
            graph = onnx.load(onnx_path).graph
            self.io = {
                v.name: (
                    "INPUT" if v in graph.input else "OUTPUT",
                    tuple(d.dim_value for d in v.type.tensor_type.shape.dim),
                    to_trt[v.type.tensor_type.elem_type],
                )
                for v in [*graph.input, *graph.output]
            }
            self.names = list(self.io)
            self.num_io_tensors = len(self.names)
            self.session = ort.InferenceSession(onnx_path, providers=["CPUExecutionProvider"])

        def get_tensor_name(self, i):
            return self.names[i]

        def get_tensor_mode(self, name):
            return self.io[name][0]

        def get_tensor_shape(self, name):
            return self.io[name][1]

        def get_tensor_dtype(self, name):
            return self.io[name][2]

        def create_execution_context(self):
            return Context(self)

    class Runtime:
        def __init__(self, logger) -> None:
            pass

        def deserialize_cuda_engine(self, blob: bytes):
            if not bytes(blob).startswith(b"FAKEPLAN "):
                return None
            return Engine(bytes(blob)[len(b"FAKEPLAN ") :].decode())

    for cls in (Logger, Builder, OnnxParser, Runtime, IProgressMonitor):
        setattr(trt, cls.__name__, cls)
    return trt


@pytest.fixture
def fakes(monkeypatch):
    """tensorrt and cuda-python stand-ins installed where the backend imports them."""
    cuda = FakeCuda()
    trt = fake_tensorrt(cuda=cuda)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(gpu_runtime, "import_cuda_runtime", lambda: cuda)
    return trt, cuda


def test_the_backend_builds_caches_and_runs_like_onnxruntime(tiny_onnx, tmp_path, fakes, caplog):
    trt, cuda = fakes
    with caplog.at_level(logging.INFO, logger="pdn_runtime"):
        backend = create_backend("tensorrt", tiny_onnx, cache_dir=tmp_path)
    assert backend.info == create_backend("onnxruntime", tiny_onnx, device="cpu").info
    ((network, config),) = trt.builds
    assert {"FP16", "OBEY_PRECISION_CONSTRAINTS"} <= config.flags
    _, views = onnx_layers(tiny_onnx)
    pinned = {i for i, layer in enumerate(network.layers) if layer.precision == "FLOAT"}
    assert pinned == plan_fp32_layers(views).fp32
    assert all(set(network.layers[i].output_types.values()) == {"FLOAT"} for i in pinned)
    assert "kept in FP32" in caplog.text and "Building engine (20 steps)" in caplog.text
    assert "Building engine: 20/20" in caplog.text and "Tactic timing done" in caplog.text
    (engine_file,) = tmp_path.glob("tiny-*.engine")
    assert sidecar_path(engine_file).is_file()
    (timing,) = tmp_path.glob("timing-fake-gpu-sm87-trt10.3.0.cache")
    assert timing.read_bytes() == b"+timings"

    reference = create_backend("onnxruntime", tiny_onnx, device="cpu")
    state = StreamState(backend.info)
    image = np.random.default_rng(3).integers(0, 256, backend.info.input_shapes["image"], np.uint8)
    view = np.ascontiguousarray(image.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)  # not C-order
    got = backend.run(view, **state.inputs())
    want = reference.run(image, **state.inputs())
    for name in OUTPUT_NAMES:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    assert cuda.copies == [1] * len(INPUT_NAMES) + [2] * len(OUTPUT_NAMES)
    assert backend.run(view, **state.inputs())["boxes"] is got["boxes"]  # pinned buffers reused

    again = create_backend("tensorrt", tiny_onnx, cache_dir=tmp_path)  # from the cache
    assert len(trt.builds) == 1 and again.info == backend.info
    for b in (backend, again):
        b.close()
    assert not cuda.buffers


def test_pdn_export_builds_an_engine_file_the_backend_loads(tmp_path, fakes, capsys):
    trt, _ = fakes
    checkpoint = save_checkpoint(tiny_model(seed=2), tmp_path / "tiny.pt")
    engine = tmp_path / "out" / "tiny.engine"
    args = [
        "--checkpoint",
        str(checkpoint),
        "--height",
        "192",
        "--width",
        "320",
        "--out",
        str(tmp_path / "tiny.onnx"),
        "--engine",
        str(engine),
    ]
    assert export_main(args) == 0
    printed = capsys.readouterr().out
    assert "engine for Fake GPU (sm 8.7), TensorRT 10.3.0, fp16" in printed
    assert "Building engine (20 steps)" in printed and f"{engine} ready" in printed
    assert (tmp_path / "out" / "timing-fake-gpu-sm87-trt10.3.0.cache").is_file()
    backend = create_backend("tensorrt", engine, precision="fp32")
    assert backend.info.class_names == tiny_model().config.class_names
    assert backend.precision == "fp16"  # as built
    assert export_main(args) == 0 and len(trt.builds) == 1  # same key: not rebuilt
    assert f"{engine} is up to date" in capsys.readouterr().out
    backend.close()


def test_tensorrt_11_builds_fp32_only(tiny_onnx, tmp_path, monkeypatch):
    trt = fake_tensorrt(version="11.4.0", fp16=False)
    monkeypatch.setitem(sys.modules, "tensorrt", trt)
    monkeypatch.setattr(gpu_runtime, "import_cuda_runtime", FakeCuda)
    with pytest.raises(BackendUnavailableError, match="TensorRT 11.4.0 has no weakly typed FP16"):
        create_backend("tensorrt", tiny_onnx, cache_dir=tmp_path)
    backend = create_backend("tensorrt", tiny_onnx, cache_dir=tmp_path, precision="fp32")
    ((_, config),) = trt.builds
    assert "FP16" not in config.flags and "TF32" not in config.flags
    backend.close()


def test_a_stream_of_frames_matches_onnxruntime_when_work_lands_only_at_synchronize(
    tiny_onnx, tmp_path, fakes
):
    _, cuda = fakes
    backend = create_backend("tensorrt", tiny_onnx, cache_dir=tmp_path)
    reference = create_backend("onnxruntime", tiny_onnx, device="cpu")
    runners = [StreamRunner(b) for b in (backend, reference)]
    rng = np.random.default_rng(5)
    for index in range(3):
        image = rng.integers(0, 256, backend.info.input_shapes["image"], np.uint8)
        got, want = (r.step(image, new_stream=index == 0) for r in runners)
        assert not any(cuda.queues.values())  # everything queued has run
        for name in ("boxes", "scores", "labels", "patch_boxes", "patch_scale"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name), err_msg=name)
        np.testing.assert_array_equal(
            runners[0].streams[0].state.memory, runners[1].streams[0].state.memory
        )
    assert runners[0].streams[0].state.memory_valid.sum() == 3
    backend.close()
    assert not cuda.buffers and not cuda.queues


def inject(fakes: tuple, fail: dict[str, int] | str) -> None:
    """Make a CUDA call fail after some successes ({name: n}) or a TensorRT step fail (name)."""
    trt, cuda = fakes
    if isinstance(fail, dict):
        cuda.fail.update(fail)
    else:
        trt.fail.add(fail)


@pytest.mark.parametrize(
    ("fail", "message"),
    [
        ({"cudaMalloc": 3}, "CUDA error 700: an illegal memory access"),
        ({"cudaMallocHost": 5}, "CUDA error 700: an illegal memory access"),
        ("set_tensor_address", "TensorRT refused the address of tensor"),
        ("parse", "(?s)TensorRT cannot parse .*error 0: unsupported node\n  fake parser error 1"),
        ("build", "TensorRT could not build an engine"),
    ],
)
def test_a_failure_while_loading_is_a_backend_error_and_frees_what_was_allocated(
    tiny_onnx, tmp_path, fakes, fail, message
):
    _, cuda = fakes
    inject(fakes, fail)
    with pytest.raises(BackendError, match=message):
        create_backend("tensorrt", tiny_onnx, cache_dir=tmp_path)
    assert not cuda.buffers and not cuda.queues


@pytest.mark.parametrize(
    ("fail", "message"),
    [
        ({"cudaMemcpyAsync": 2}, "CUDA error 700"),
        ({"cudaStreamSynchronize": 0}, "CUDA error 700"),
        ("execute", "TensorRT execution failed"),
    ],
)
def test_a_failure_while_running_is_a_backend_error(tiny_onnx, tmp_path, fakes, fail, message):
    _, cuda = fakes
    backend = create_backend("tensorrt", tiny_onnx, cache_dir=tmp_path)
    state = StreamState(backend.info)
    image = np.zeros(backend.info.input_shapes["image"], np.uint8)
    inject(fakes, fail)
    with pytest.raises(BackendError, match=message):
        backend.run(image, **state.inputs())
    backend.close()
    assert not cuda.buffers and not cuda.queues


def test_no_gpu_or_no_cuda_python_is_named_by_the_probe_and_the_backend(
    tiny_onnx, tmp_path, monkeypatch
):
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt())
    monkeypatch.setattr(gpu_runtime, "import_cuda_runtime", lambda: FakeCuda(devices=0))
    assert gpu_runtime.tensorrt_problem().startswith("no CUDA GPU")
    with pytest.raises(BackendUnavailableError, match="CUDA device 0 asked for, 0 present"):
        create_backend("tensorrt", tiny_onnx, cache_dir=tmp_path)
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "tensorrt", fake_tensorrt())
    for name in ("cuda", "cuda.bindings", "cuda.cudart"):
        monkeypatch.setitem(sys.modules, name, None)
    assert gpu_runtime.tensorrt_problem().startswith("cuda-python does not import")
    with pytest.raises(BackendUnavailableError, match="pip install cuda-python"):
        create_backend("tensorrt", tiny_onnx, cache_dir=tmp_path)
