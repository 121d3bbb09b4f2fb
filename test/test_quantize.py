"""INT8 quantisation (`pdn_runtime.quantize`, `pdn-export --int8`): a valid, TensorRT-rule
abiding QDQ graph that loads like any export and picks the float model's windows, and clear
errors for calibration folders that cannot be used."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import onnx
import onnx.numpy_helper
import pytest
from pdn_tiny import HEIGHT, WIDTH, tiny_model

from pdn_model.checkpoint import save_checkpoint
from pdn_model.export import to_onnx
from pdn_model.onnx_graph import check_tensorrt_rules, read_metadata
from pdn_runtime import StreamRunner, create_backend
from pdn_runtime.export_cli import main as export_main
from pdn_runtime.graph_stages import node_stages
from pdn_runtime.quantize import (
    FLOAT_STAGES,
    CalibrationError,
    calibration_files,
    nonzero_zero_points,
    quantize_model,
    read_frame,
)

FRAMES = 6
# Share of windows the INT8 model must choose exactly as the float model does after a
# stream's first frame (see test_int8_chooses_the_float_models_windows).
WINDOW_AGREEMENT = 0.9


def scene(seed: int, height: int = HEIGHT, width: int = WIDTH) -> np.ndarray:
    """An RGB frame: smooth noise with a few bright and dark rectangles."""
    rng = np.random.default_rng(seed)
    small = rng.integers(40, 200, (height // 16, width // 16, 3), dtype=np.uint8)
    rgb = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)
    for _ in range(8):
        x, y = int(rng.integers(0, width - 24)), int(rng.integers(0, height - 24))
        w, h = (int(v) for v in rng.integers(4, 24, 2))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.rectangle(rgb, (x, y), (x + w, y + h), color, -1)
    return rgb


def write_frames(folder: Path, seeds: range) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for seed in seeds:
        cv2.imwrite(
            str(folder / f"frame{seed:03d}.jpg"), cv2.cvtColor(scene(seed), cv2.COLOR_RGB2BGR)
        )
    return folder


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> tuple[Path, Path, Path]:
    """(float export, its INT8 copy, calibration folder) of the tiny model."""
    work = tmp_path_factory.mktemp("int8")
    float_path = to_onnx(tiny_model(seed=3), work / "tiny.onnx")
    frames = write_frames(work / "calibration", range(FRAMES))
    int8 = quantize_model(float_path, work / "tiny-int8.onnx", frames, say=lambda _: None)
    return float_path, int8, frames


def test_int8_graph_passes_the_checker_and_the_tensorrt_rules(models):
    float_path, int8_path, frames = models
    graph = onnx.load(int8_path)
    onnx.checker.check_model(graph, full_check=True)
    assert check_tensorrt_rules(graph) == []
    quantize = [n for n in graph.graph.node if n.op_type == "QuantizeLinear"]
    assert len(quantize) >= 10
    assert nonzero_zero_points(graph) == []  # symmetric INT8, as TensorRT needs
    meta = read_metadata(graph)
    assert meta["precision"] == "int8"
    assert meta["calibration"]["folder"] == str(frames)
    assert meta["calibration"]["frames"] == FRAMES
    assert meta["class_names"] == read_metadata(onnx.load(float_path))["class_names"]


def test_stages_kept_float_hold_no_int8_weights(models):
    """Only the patch backbone's convolutions get INT8 weights (a
    float stage may read an INT8 stage's output, dequantised)."""
    graph = onnx.load(models[1])
    stages = node_stages(graph)
    weights = {t.name for t in graph.graph.initializer}
    int8_weights = {
        out
        for n in graph.graph.node
        if n.op_type == "DequantizeLinear" and n.input[0] in weights
        for out in n.output
    }
    quantized = [n for n in graph.graph.node if int8_weights.intersection(n.input)]
    assert {n.op_type for n in quantized} <= {"Conv", "MatMul", "Gemm"}
    assert all(stages[n.name] not in FLOAT_STAGES for n in quantized)
    assert {stages[n.name] for n in quantized} == {"patch backbone"}
    float_convs = [
        n for n in graph.graph.node if n.op_type == "Conv" and stages[n.name] in FLOAT_STAGES
    ]
    assert float_convs and all(n.input[1] in weights for n in float_convs)


def test_qdq_pairs_that_tensorrt_refuses_are_reported(models):
    graph = onnx.load(models[1])
    zero = next(t for t in graph.graph.initializer if t.data_type == onnx.TensorProto.INT8)
    moved = onnx.numpy_helper.from_array(onnx.numpy_helper.to_array(zero) + 3, zero.name)
    zero.CopyFrom(moved)
    assert len(nonzero_zero_points(graph)) >= 1
    zero.data_type = onnx.TensorProto.UINT8  # uint8 activations: not for TensorRT
    assert any("uint8" in p for p in check_tensorrt_rules(graph))


def test_int8_chooses_the_float_models_windows(models):
    """Tolerance: none on a stream's first frame. Everything the window choice reads (global
    stream, saliency, priorities, controller, top-k) stays float, so the first frame's
    windows and their priority scores are bit-identical to the float model's. On later
    frames the controller state also carries the mean patch feature, which the INT8 patch
    backbone computes, so scores may move by the quantisation error: windows must still be
    the same on at least WINDOW_AGREEMENT of them, scores within 1e-3 (measured: all
    windows equal, scores equal). Detection scores read the INT8 patch features: within 0.05
    (measured at most 0.017)."""
    float_path, int8_path, _ = models
    runs = {}
    for name, path in (("float", float_path), ("int8", int8_path)):
        runner = StreamRunner(create_backend("onnxruntime", path, device="cpu", threads=1))
        found = []
        for i, seed in enumerate(range(100, 110)):  # frames calibration has not seen
            runner.image[0] = scene(seed).transpose(2, 0, 1)
            one = runner.step(new_stream=i % 5 == 0)  # two streams of five frames
            found.append((one.patch_boxes.copy(), one.patch_scores.copy(), one.scores[:10]))
        runs[name] = found
    same = total = 0
    for i, (a, b) in enumerate(zip(runs["float"], runs["int8"], strict=True)):
        if i % 5 == 0:
            np.testing.assert_array_equal(b[0], a[0])
            np.testing.assert_array_equal(b[1], a[1])
        agree = np.all(a[0] == b[0], axis=1)
        same, total = same + int(agree.sum()), total + len(agree)
        np.testing.assert_allclose(b[1][agree], a[1][agree], atol=1e-3)
        np.testing.assert_allclose(b[2], a[2], atol=0.05)
    assert same / total >= WINDOW_AGREEMENT, f"{same} of {total} windows agree"


def test_int8_model_runs_on_every_backend_path(models):
    _, int8_path, _ = models
    for kind in ("onnxruntime", "auto"):
        backend = create_backend(kind, int8_path, threads=1)
        assert (backend.info.height, backend.info.width) == (HEIGHT, WIDTH)
        runner = StreamRunner(backend)
        runner.image[0] = scene(7).transpose(2, 0, 1)
        first = runner.step()
        second = runner.step()
        assert len(first.patch_boxes) == 5 and len(second.patch_boxes) == 5
        assert np.all(first.scores >= 0) and first.boxes.shape[1] == 4


def test_frames_are_read_as_the_node_converts_them(tmp_path):
    rgb = scene(5)
    path = tmp_path / "f.png"
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    np.testing.assert_array_equal(read_frame(path, HEIGHT, WIDTH), rgb.transpose(2, 0, 1))
    half = read_frame(path, HEIGHT // 2, WIDTH // 2)
    assert half.shape == (3, HEIGHT // 2, WIDTH // 2)
    assert abs(float(half.mean()) - float(rgb.mean())) < 2.0


def test_calibration_files_are_spread_over_the_folder(tmp_path):
    write_frames(tmp_path, range(10))
    picked = calibration_files(tmp_path, 4)
    assert [p.name for p in picked] == [
        "frame000.jpg",
        "frame003.jpg",
        "frame006.jpg",
        "frame009.jpg",
    ]


def test_unusable_calibration_folders_fail_clearly(tmp_path, models):
    float_path = models[0]
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("no images here")
    with pytest.raises(CalibrationError, match=f"{empty} holds no image files"):
        quantize_model(float_path, tmp_path / "x.onnx", empty)
    with pytest.raises(CalibrationError, match="does not exist"):
        quantize_model(float_path, tmp_path / "x.onnx", tmp_path / "missing")
    broken = write_frames(tmp_path / "broken", range(2))
    (broken / "frame001.jpg").write_bytes(b"\xff\xd8\xff not really a jpeg")
    with pytest.raises(CalibrationError, match=r"frame001\.jpg is not a readable image"):
        quantize_model(float_path, tmp_path / "x.onnx", broken)
    bag = tmp_path / "bag"
    bag.mkdir()
    (bag / "metadata.yaml").write_text("rosbag2_bagfile_information: {}")
    (bag / "bag_0.mcap").write_bytes(b"")
    with pytest.raises(CalibrationError, match="rosbag2 bag.*imports no ROS"):
        calibration_files(bag)
    assert not (tmp_path / "x.onnx").exists()


def test_pdn_export_int8_writes_both_models_and_refuses_an_empty_folder(tmp_path, capsys, models):
    ckpt = save_checkpoint(tiny_model(seed=4), tmp_path / "tiny.pt")
    out = tmp_path / "cli.onnx"
    common = ["--checkpoint", str(ckpt), "--height", str(HEIGHT), "--width", str(WIDTH)]
    empty = tmp_path / "empty"
    empty.mkdir()
    code = export_main([*common, "--out", str(out), "--int8", "--calibration", str(empty)])
    assert code == 2 and "holds no image files" in capsys.readouterr().err
    assert not out.exists()  # refused before exporting
    code = export_main([*common, "--out", str(out), "--int8"])
    assert code == 2 and "--int8 needs --calibration" in capsys.readouterr().err
    cache = ["--tensorrt-cache", str(tmp_path / "int8.cache")]  # TensorRT is absent here
    code = export_main(
        [*common, "--out", str(out), "--int8", "--calibration", str(models[2]), *cache]
    )
    assert code == 2 and "tensorrt" in capsys.readouterr().err
    assert not out.exists()
    code = export_main(
        [
            *common,
            "--out",
            str(out),
            "--int8",
            "--calibration",
            str(models[2]),
            "--calibration-frames",
            "2",
        ]
    )
    assert code == 0, capsys.readouterr().err
    int8 = tmp_path / "cli-int8.onnx"
    assert out.is_file() and int8.is_file()
    assert read_metadata(onnx.load(int8))["calibration"]["frames"] == 2
    assert "precision" not in read_metadata(onnx.load(out))
