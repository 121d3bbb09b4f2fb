"""ONNX export: a valid, TensorRT-buildable graph that ONNX Runtime runs like PyTorch."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper
from parity import assert_same_detections
from pdn_tiny import random_inputs, tiny_model

from pdn_model import __version__
from pdn_model.checkpoint import save_checkpoint, with_config
from pdn_model.contract import INPUT_NAMES, OUTPUT_NAMES, input_shapes, output_shapes
from pdn_model.export import to_onnx
from pdn_model.onnx_graph import check_tensorrt_rules, read_metadata, sink_input_cast
from pdn_runtime.export_cli import main as export_main


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = tiny_model(seed=1)
    path = to_onnx(model, tmp_path_factory.mktemp("onnx") / "tiny.onnx", batch=2)
    return model, onnx.load(path)


def session(graph: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(
        graph.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def run(sess: ort.InferenceSession, inputs: tuple[torch.Tensor, ...]) -> dict[str, np.ndarray]:
    feeds = {name: t.numpy() for name, t in zip(INPUT_NAMES, inputs, strict=True)}
    return dict(zip(OUTPUT_NAMES, sess.run(None, feeds), strict=True))


def test_graph_is_valid_with_the_contract_names_shapes_and_metadata(exported):
    model, graph = exported
    onnx.checker.check_model(graph, full_check=True)
    dims = {
        v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim)
        for v in list(graph.graph.input) + list(graph.graph.output)
    }
    expected = {**input_shapes(model.config, 2), **output_shapes(model.config, 2)}
    assert [v.name for v in graph.graph.input] == list(INPUT_NAMES)
    assert [v.name for v in graph.graph.output] == list(OUTPUT_NAMES)
    assert dims == expected
    meta = read_metadata(graph)
    assert meta["class_names"] == list(model.config.class_names)
    assert meta["input_size"] == [192, 320]
    assert meta["memory_shape"] == [4, 16, 96]
    assert meta["preset"] == "pdn-s" and meta["version"] == __version__
    assert meta["patch_counts"] == [3, 2]


def test_graph_follows_the_tensorrt_rules(exported):
    assert check_tensorrt_rules(exported[1]) == []


def _graph(nodes, inputs, outputs, initializers=()):
    return helper.make_model(
        helper.make_graph(nodes, "g", inputs, outputs, list(initializers)),
        opset_imports=[helper.make_opsetid("", 20)],
    )


def test_tensorrt_check_reports_each_broken_rule():
    u8 = helper.make_tensor_value_info("image", TensorProto.UINT8, [1, 3, 4, 4])
    f = helper.make_tensor_value_info("y", TensorProto.FLOAT, None)
    raw = _graph(
        [
            helper.make_node("Add", ["image", "image"], ["s"]),
            helper.make_node("Cast", ["s"], ["y"], to=TensorProto.FLOAT),
        ],
        [u8],
        [f],
    )
    assert any("reads a uint8 graph input" in p for p in check_tensorrt_rules(raw))
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 4, 4])
    k = helper.make_tensor("k", TensorProto.INT64, [1], [5000])
    topk = _graph(
        [
            helper.make_node("Flatten", ["x"], ["flat"]),
            helper.make_node("TopK", ["flat", "k"], ["y", "i"]),
        ],
        [x],
        [f],
        [k],
    )
    assert any("K=5000" in p for p in check_tensorrt_rules(topk))
    scales = helper.make_tensor("sc", TensorProto.FLOAT, [4], [1, 1, 0.5, 0.5])
    resize = _graph(
        [helper.make_node("Resize", ["x", "", "sc"], ["y"], mode="linear", antialias=1)],
        [x],
        [f],
        [scales],
    )
    assert any("antialiased Resize" in p for p in check_tensorrt_rules(resize))
    theta = helper.make_tensor_value_info("theta", TensorProto.FLOAT, [1, 2, 3])
    size = helper.make_tensor("size", TensorProto.INT64, [4], [1, 3, 4, 4])
    grid = _graph([helper.make_node("AffineGrid", ["theta", "size"], ["y"])], [theta], [f], [size])
    assert any("AffineGrid" in p for p in check_tensorrt_rules(grid))


def test_onnx_runtime_matches_pytorch_on_fresh_frames(exported):
    model, graph = exported
    sess = session(sink_input_cast(graph))
    for seed in (11, 12, 13):
        inputs = random_inputs(model, batch=2, seed=seed)
        with torch.no_grad():
            ref = {k: v.numpy() for k, v in model(*inputs).items()}
        got = run(sess, inputs)
        np.testing.assert_array_equal(got["patch_boxes"], ref["patch_boxes"])
        np.testing.assert_array_equal(got["patch_scale"], ref["patch_scale"])
        np.testing.assert_allclose(got["patch_scores"], ref["patch_scores"], atol=1e-5)
        np.testing.assert_allclose(got["frame_tokens"], ref["frame_tokens"], atol=1e-4)
        np.testing.assert_allclose(
            got["next_controller_state"], ref["next_controller_state"], atol=1e-4
        )
        assert_same_detections(got, ref, min_clear=20)


def test_flat_frame_ties_select_the_same_patches_in_both_runtimes(exported):
    model, graph = exported
    image, memory, valid, state = random_inputs(model, batch=2)
    flat = torch.full_like(image, 128)
    with torch.no_grad():
        ref = model(flat, memory, valid, state)["patch_boxes"].numpy()
    got = run(session(sink_input_cast(graph)), (flat, memory, valid, state))
    np.testing.assert_array_equal(got["patch_boxes"], ref)


def test_sunk_cast_reads_uint8_and_gives_identical_outputs(exported):
    model, graph = exported
    fast = sink_input_cast(graph)
    first = [n for n in fast.graph.node if "image" in n.input]
    assert first and all(n.op_type != "Cast" for n in first)
    assert sum(n.op_type == "Cast" and n.name.endswith("__sunk_cast") for n in fast.graph.node) >= 2
    inputs = random_inputs(model, batch=2, seed=21)
    a, b = run(session(graph), inputs), run(session(fast), inputs)
    for name in OUTPUT_NAMES:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def test_pdn_export_cli_from_a_checkpoint(tmp_path, capsys):
    model = tiny_model(seed=4)
    ckpt = save_checkpoint(model, tmp_path / "tiny.pt")
    out = tmp_path / "cli.onnx"
    code = export_main(
        [
            "--checkpoint",
            str(ckpt),
            "--height",
            "256",
            "--width",
            "320",
            "--out",
            str(out),
            "--patches",
            "1,1",
        ]
    )
    assert code == 0 and "wrote" in capsys.readouterr().out
    meta = read_metadata(onnx.load(out))
    assert meta["input_size"] == [256, 320] and meta["patch_counts"] == [1, 1]


def test_pdn_export_nms_options_change_the_graph_and_keep_the_weights(tmp_path, capsys):
    """--nms-iou and --pre-nms-topk reach the graph: its metadata says so, and a lower IoU
    keeps no more boxes than the checkpoint's own on the same frames."""
    model = tiny_model(seed=4)
    ckpt = save_checkpoint(model, tmp_path / "tiny.pt")
    size = ["--height", "256", "--width", "320", "--patches", "2,1"]
    outputs = {}
    for name, extra in (("own", []), ("tight", ["--nms-iou", "0.05", "--pre-nms-topk", "40"])):
        out = tmp_path / f"{name}.onnx"
        assert export_main(["--checkpoint", str(ckpt), *size, "--out", str(out), *extra]) == 0
        outputs[name] = (read_metadata(onnx.load(out))["config"], session(onnx.load(out)))
    own, tight = outputs["own"][0], outputs["tight"][0]
    assert (tight["nms_iou"], tight["pre_nms_topk"]) == (0.05, 40)
    assert (own["nms_iou"], own["pre_nms_topk"]) == (
        model.config.nms_iou,
        model.config.pre_nms_topk,
    )
    inputs = random_inputs(with_config(model, height=256, width=320), batch=1, seed=5)
    kept = {name: (run(s, inputs)["scores"] > 0).sum() for name, (_, s) in outputs.items()}
    assert 0 < kept["tight"] < kept["own"]
    assert "NMS IoU 0.05 over the best 40" in capsys.readouterr().out
    bad = export_main(["--checkpoint", str(ckpt), *size, "--out", "x.onnx", "--nms-iou", "1.5"])
    assert bad == 2 and "nms_iou" in capsys.readouterr().err


def test_pdn_export_cli_explains_bad_arguments(tmp_path, capsys):
    code = export_main(["--height", "192", "--width", "320", "--out", str(tmp_path / "x.onnx")])
    assert code == 2
    assert "does not fit" in capsys.readouterr().err
    code = export_main(["--checkpoint", str(tmp_path / "missing.pt"), "--out", "x.onnx"])
    assert code == 2
    assert "checkpoint not found" in capsys.readouterr().err
