"""Inference backends: ONNX Runtime and PyTorch agree frame after frame, buffers are reused,
bad models and inputs give specific errors, and "auto" picks as documented."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import tracemalloc

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from parity import assert_same_detections
from pdn_tiny import tiny_config, tiny_model

from pdn_model.checkpoint import save_checkpoint
from pdn_model.contract import OUTPUT_NAMES
from pdn_model.export import to_onnx
from pdn_model.temporal import push_frame
from pdn_runtime import (
    BackendError,
    FrameError,
    ModelContractError,
    ModelFileError,
    ModelInfo,
    ModelNotFoundError,
    StateError,
    StreamState,
    choose_auto,
    create_backend,
    factory,
)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """One tiny model as an ONNX export and as a checkpoint (exported once per module)."""
    folder = tmp_path_factory.mktemp("backends")
    model = tiny_model(seed=1)
    return {
        "model": model,
        "onnx": to_onnx(model, folder / "tiny.onnx"),
        "checkpoint": save_checkpoint(model, folder / "tiny.pt"),
        "folder": folder,
    }


@pytest.fixture(scope="module")
def ort_backend(files):
    return create_backend("onnxruntime", files["onnx"], device="cpu", threads=1)


def frames(seed: int, count: int, shape: tuple[int, ...]) -> list[np.ndarray]:
    """Fresh random uint8 frames."""
    rng = np.random.default_rng(seed)
    return [rng.integers(0, 256, shape, dtype=np.uint8) for _ in range(count)]


def assert_same_outputs(got: dict, ref: dict) -> None:
    """Equal patches, close state outputs, detections equal where clear of score ties."""
    np.testing.assert_array_equal(got["patch_boxes"], ref["patch_boxes"])
    np.testing.assert_array_equal(got["patch_scale"], ref["patch_scale"])
    np.testing.assert_allclose(got["patch_scores"], ref["patch_scores"], atol=1e-5)
    for name in ("frame_tokens", "next_controller_state"):
        np.testing.assert_allclose(got[name], ref[name], atol=1e-4, err_msg=name)
    assert_same_detections(got, ref, min_clear=11)


# ---- model info ------------------------------------------------------------------------


def test_model_info_is_read_from_the_onnx_graph_and_the_checkpoint(files, ort_backend):
    cfg = files["model"].config
    info = ort_backend.info
    assert (info.height, info.width, info.batch) == (cfg.height, cfg.width, 1)
    assert info.class_names == cfg.class_names
    assert info.memory_shape == (cfg.memory_length, cfg.frame_tokens, cfg.token_dim)
    assert info.controller_dim == cfg.controller_dim
    assert info.output_shapes["boxes"] == (1, cfg.max_detections, 4)
    assert info.output_shapes["patch_boxes"] == (1, cfg.num_patches, 4)
    torch_info = create_backend("torch", files["checkpoint"]).info
    assert torch_info == info
    assert ModelInfo.from_dict(json.loads(json.dumps(info.to_dict()))) == info


def test_class_names_come_from_the_metadata(files, tmp_path):
    graph = onnx.load(files["onnx"])
    for prop in graph.metadata_props:
        if prop.key == "pdn.class_names":
            prop.value = json.dumps(["drone", "buoy"])
    onnx.save(graph, tmp_path / "renamed.onnx")
    info = create_backend("onnxruntime", tmp_path / "renamed.onnx", device="cpu").info
    assert info.class_names == ("drone", "buoy")


def test_metadata_that_contradicts_the_graph_is_refused(files, tmp_path):
    graph = onnx.load(files["onnx"])
    for prop in graph.metadata_props:
        if prop.key == "pdn.input_size":
            prop.value = json.dumps([2160, 3840])
    path = tmp_path / "lying.onnx"
    onnx.save(graph, path)
    with pytest.raises(ModelContractError, match=r"lying\.onnx.*input_size"):
        create_backend("onnxruntime", path, device="cpu")


# ---- parity and state ------------------------------------------------------------------


def test_onnxruntime_and_torch_agree_over_frames_with_state_fed_back(files, ort_backend):
    reference = create_backend("torch", files["checkpoint"], device="cpu")
    states = {"ort": StreamState(ort_backend.info), "torch": StreamState(reference.info)}
    backends = {"ort": ort_backend, "torch": reference}
    shape = ort_backend.info.input_shapes["image"]
    for i, image in enumerate(frames(seed=5, count=2, shape=shape)):
        out = {k: b.run(image, **states[k].inputs()) for k, b in backends.items()}
        assert_same_outputs(out["ort"], out["torch"])
        for k in backends:
            states[k].update(out[k])
        filled = [[1.0] * (i + 1) + [0.0] * (T - 1 - i)]
        np.testing.assert_array_equal(states["ort"].memory_valid, filled)
        np.testing.assert_allclose(states["ort"].memory, states["torch"].memory, atol=1e-4)
    # The second frame really used the carried state: without it the outputs differ.
    fresh = StreamState(ort_backend.info)
    alone = ort_backend.run(image, **fresh.inputs())
    assert not np.allclose(alone["next_controller_state"], out["torch"]["next_controller_state"])


def test_stream_state_follows_push_frame():
    info = ModelInfo(8, 8, 2, ("a",), (4, 3, 5), 6, {n: (2, 1) for n in OUTPUT_NAMES})
    state = StreamState(info)
    memory, valid = torch.zeros(2, 4, 3, 5), torch.zeros(2, 4)
    rng = np.random.default_rng(0)
    for _ in range(6):  # more frames than slots: the oldest drop out
        tokens = rng.standard_normal((2, 3, 5)).astype(np.float32)
        controller = rng.standard_normal((2, 6)).astype(np.float32)
        state.update({"frame_tokens": tokens, "next_controller_state": controller})
        memory, valid = push_frame(memory, valid, torch.from_numpy(tokens))
        np.testing.assert_array_equal(state.memory, memory.numpy())
        np.testing.assert_array_equal(state.memory_valid, valid.numpy())
        np.testing.assert_array_equal(state.controller_state, controller)
    state.reset()
    assert not state.memory.any() and not state.memory_valid.any()
    assert not state.controller_state.any()


# ---- preallocated buffers --------------------------------------------------------------


def test_runs_reuse_the_output_buffers(ort_backend):
    state = StreamState(ort_backend.info)
    first, second = frames(seed=7, count=2, shape=ort_backend.info.input_shapes["image"])
    out1 = ort_backend.run(first, **state.inputs())
    kept = {name: array.copy() for name, array in out1.items()}
    out2 = ort_backend.run(second, **state.inputs())
    for name in OUTPUT_NAMES:
        assert out2[name] is out1[name] is ort_backend.outputs[name], name
    assert not np.array_equal(kept["frame_tokens"], out2["frame_tokens"])  # really rewritten


def test_intra_op_threads_sleep_unless_asked_to_spin(files, ort_backend):
    # In the node, spinning threads take the CPU that receiving the next frame needs.
    key = "session.intra_op.allow_spinning"
    assert ort_backend.session.get_session_options().get_session_config_entry(key) == "0"
    assert "sleeping threads" in ort_backend.describe()
    spinning = create_backend("onnxruntime", files["onnx"], device="cpu", spin=True)
    assert spinning.session.get_session_options().get_session_config_entry(key) == "1"
    assert "spinning threads" in spinning.describe()


def test_a_run_allocates_no_frame_sized_array(ort_backend):
    state = StreamState(ort_backend.info)
    (image,) = frames(seed=8, count=1, shape=ort_backend.info.input_shapes["image"])
    wide = np.zeros(image.shape[:3] + (2 * image.shape[3],), np.uint8)
    view = wide[..., : image.shape[3]]  # not C-contiguous: goes through the staging buffer
    view[...] = image
    assert not view.flags.c_contiguous

    def peak_bytes(call) -> int:
        tracemalloc.start()
        try:
            call()
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    # The measurement sees a frame copy when there is one ...
    assert peak_bytes(lambda: np.ascontiguousarray(view)) >= image.nbytes
    for frame in (image, view):
        ort_backend.run(frame, **state.inputs())  # first use may allocate the staging buffer
        # ... and a run allocates none.
        assert peak_bytes(lambda f=frame: ort_backend.run(f, **state.inputs())) < image.nbytes / 4


def test_non_contiguous_input_gives_the_same_result(ort_backend):
    state = StreamState(ort_backend.info)
    (image,) = frames(seed=9, count=1, shape=ort_backend.info.input_shapes["image"])
    expected = {k: v.copy() for k, v in ort_backend.run(image, **state.inputs()).items()}
    hwc = np.ascontiguousarray(image[0].transpose(1, 2, 0))
    got = ort_backend.run(hwc.transpose(2, 0, 1)[None], **state.inputs())
    for name in OUTPUT_NAMES:
        np.testing.assert_array_equal(got[name], expected[name], err_msg=name)


def test_importing_the_package_loads_no_torch_tensorrt_or_rclpy(files):
    code = (
        "import sys, numpy as np\n"
        "from pdn_runtime import create_backend, StreamState\n"
        f"b = create_backend('onnxruntime', {str(files['onnx'])!r}, device='cpu')\n"
        "s = StreamState(b.info)\n"
        "b.run(np.zeros(b.info.input_shapes['image'], np.uint8), **s.inputs())\n"
        "print(sorted(m for m in ('torch', 'tensorrt', 'rclpy') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"


# ---- bad models ------------------------------------------------------------------------


def test_missing_model_file(tmp_path):
    missing = tmp_path / "nowhere.onnx"
    for kind in ("onnxruntime", "torch"):
        path = missing.with_suffix(".pt") if kind == "torch" else missing
        with pytest.raises(ModelNotFoundError, match=f"not found: {path}") as err:
            create_backend(kind, path)
        assert isinstance(err.value, FileNotFoundError)


@pytest.mark.parametrize(
    "content",
    [np.random.default_rng(0).bytes(4096), b"input: image\nthis is a text file, not a model\n"],
    ids=["random-bytes", "text"],
)
def test_a_file_that_is_not_onnx(tmp_path, content):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(ModelFileError, match=f"{path} is not an ONNX model"):
        create_backend("onnxruntime", path, device="cpu")


def test_an_onnx_file_is_not_a_checkpoint(files):
    with pytest.raises(ModelFileError, match="checkpoint"):
        create_backend("torch", files["onnx"])


def _model_with_inputs(path, inputs: dict[str, tuple[int, list]]):
    """A valid ONNX graph that sums float casts of the given inputs (other names/shapes)."""
    values = [helper.make_tensor_value_info(n, t, s) for n, (t, s) in inputs.items()]
    nodes = [helper.make_node("ReduceSum", [n], [f"{n}_sum"], keepdims=0) for n in inputs]
    casts = [
        helper.make_node("Cast", [f"{n}_sum"], [f"{n}_f"], to=TensorProto.FLOAT) for n in inputs
    ]
    names = [f"{n}_f" for n in inputs]
    out = helper.make_tensor_value_info("total", TensorProto.FLOAT, [])
    graph = helper.make_graph(
        [*nodes, *casts, helper.make_node("Sum", names, ["total"])], "other", values, [out]
    )
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), path)
    return path


def test_an_onnx_model_with_other_inputs(tmp_path):
    path = _model_with_inputs(
        tmp_path / "detector.onnx",
        {"images": (TensorProto.UINT8, [1, 3, 64, 64]), "state": (TensorProto.FLOAT, [1, 8])},
    )
    onnx.checker.check_model(onnx.load(path))
    with pytest.raises(ModelContractError, match=r"detector\.onnx.*\['images', 'state'\]"):
        create_backend("onnxruntime", path, device="cpu")


def test_an_onnx_model_with_dynamic_shapes(tmp_path):
    path = _model_with_inputs(
        tmp_path / "dynamic.onnx",
        {
            "image": (TensorProto.UINT8, ["batch", 3, 64, 64]),
            "memory": (TensorProto.FLOAT, ["batch", 4, 2, 8]),
            "memory_valid": (TensorProto.FLOAT, ["batch", 4]),
            "controller_state": (TensorProto.FLOAT, ["batch", 8]),
        },
    )
    graph = onnx.load(path)
    graph.metadata_props.add(key="pdn.class_names", value='["a"]')
    onnx.save(graph, path)
    with pytest.raises(ModelContractError, match="'image' has shape.*static"):
        create_backend("onnxruntime", path, device="cpu")


# ---- bad inputs ------------------------------------------------------------------------


CFG = tiny_config()
H, W, T, M, C = CFG.height, CFG.width, CFG.memory_length, CFG.frame_tokens, CFG.token_dim
IMAGE = np.zeros((1, 3, H, W), np.uint8)
BAD_INPUTS = {  # case -> (inputs replaced, error type, message pattern)
    "interleaved frame HxWx3": (
        {"image": IMAGE[0].transpose(1, 2, 0)},
        FrameError,
        r"height x width x channels",
    ),
    "interleaved batch BxHxWx3": (
        {"image": IMAGE.transpose(0, 2, 3, 1)},
        FrameError,
        r"planar RGB \[B,3,H,W\]",
    ),
    "float frame": ({"image": IMAGE.astype(np.float32)}, FrameError, r"dtype float32.*uint8"),
    "wrong size": (
        {"image": np.zeros((1, 3, 2 * H, 2 * W), np.uint8)},
        FrameError,
        rf"is {2 * W}x{2 * H} pixels but the model was exported for {W}x{H}",
    ),
    "wrong batch": (
        {"image": np.zeros((2, 3, H, W), np.uint8)},
        FrameError,
        r"batch 2, the model takes batch 1",
    ),
    "not an array": ({"image": IMAGE.tolist()}, FrameError, r"numpy array, got list"),
    "memory too short": (
        {"memory": np.zeros((1, T - 1, M, C), np.float32)},
        StateError,
        rf"memory has shape \(1, {T - 1}, {M}, {C}\), the model takes \(1, {T}, {M}, {C}\)",
    ),
    "memory float64": ({"memory": np.zeros((1, T, M, C))}, StateError, r"memory has dtype float64"),
    "controller size": (
        {"controller_state": np.zeros((1, 3), np.float32)},
        StateError,
        r"controller_state has shape \(1, 3\)",
    ),
    "validity shape": (
        {"memory_valid": np.zeros((1, T, 1), np.float32)},
        StateError,
        r"memory_valid has shape",
    ),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_inputs_give_specific_errors(ort_backend, case):
    replaced, error, pattern = BAD_INPUTS[case]
    inputs = {"image": IMAGE, **StreamState(ort_backend.info).inputs(), **replaced}
    with pytest.raises(error, match=pattern):
        ort_backend.run(**inputs)


def test_bad_backend_choices(files):
    with pytest.raises(BackendError, match="unknown backend 'openvino'"):
        create_backend("openvino", files["onnx"])
    options = r"options \['device', 'spin', 'threads'\], not \['fp16'\]"
    with pytest.raises(BackendError, match=options):
        create_backend("onnxruntime", files["onnx"], fp16=True)
    with pytest.raises(BackendError, match="is a PyTorch checkpoint: run it with backend 'torch'"):
        create_backend("auto", files["checkpoint"])
    with pytest.raises(BackendError, match="device must be one of"):
        create_backend("onnxruntime", files["onnx"], device="gpu")


# ---- auto ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tensorrt", "ort_cuda", "expected"),
    [
        (None, None, ("tensorrt", {})),
        ("tensorrt does not import", None, ("onnxruntime", {"device": "cuda"})),
        (
            "no CUDA GPU",
            "its providers are ['CPUExecutionProvider']",
            ("onnxruntime", {"device": "cpu"}),
        ),
    ],
    ids=["tensorrt-and-gpu", "onnxruntime-cuda", "cpu-only"],
)
def test_auto_choice(monkeypatch, tensorrt, ort_cuda, expected):
    monkeypatch.setattr(factory, "probe_tensorrt", lambda: tensorrt)
    monkeypatch.setattr(factory, "probe_onnxruntime_cuda", lambda: ort_cuda)
    choice = choose_auto()
    assert (choice.kind, choice.options) == expected
    for problem in (tensorrt, ort_cuda):
        if problem and choice.kind != "tensorrt":
            assert problem in choice.reason


def test_auto_logs_its_choice_and_passes_on_the_options_that_fit(files, monkeypatch, caplog):
    monkeypatch.setattr(factory, "probe_tensorrt", lambda: "tensorrt does not import")
    monkeypatch.setattr(factory, "probe_onnxruntime_cuda", lambda: "no CUDA provider")
    with caplog.at_level(logging.INFO, logger="pdn_runtime"):
        backend = create_backend("auto", files["onnx"], threads=1, precision="fp16")
    assert backend.kind == "onnxruntime" and backend.provider == "CPUExecutionProvider"
    assert backend.threads == 1
    assert "auto -> onnxruntime: TensorRT unusable (tensorrt does not import)" in caplog.text
    with pytest.raises(BackendError, match="backend 'auto' takes options"):
        create_backend("auto", files["onnx"], device="cuda")
