"""The model in two parts (look, detect) gives the one graph's windows and detections, in
PyTorch and in ONNX Runtime, and `pdn-export --two-part` writes both parts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from node_support import DEMO_MODEL
from parity import assert_same_detections
from pdn_tiny import HEIGHT, WIDTH, random_inputs, tiny_model

from pdn_model.backbone import downsample_frame
from pdn_model.checkpoint import save_checkpoint
from pdn_model.crop import crop_windows
from pdn_model.onnx_graph import read_metadata
from pdn_model.two_part import DetectPart, LookPart, frame_patches
from pdn_model.two_part_contract import two_part_paths
from pdn_runtime.errors import ModelContractError, ModelNotFoundError
from pdn_runtime.export_cli import main as export_main
from pdn_runtime.onnxruntime_backend import OnnxRuntimeBackend
from pdn_runtime.stream import StreamState
from pdn_runtime.two_part import TwoPartModel, global_view, window_patch
from training.synth import SceneConfig, SceneSequence

FRAMES = 3


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[torch.nn.Module, Path]:
    """A tiny trained-looking model exported by `pdn-export --two-part` from a checkpoint."""
    folder = tmp_path_factory.mktemp("two_part")
    model = tiny_model(seed=2)
    checkpoint = save_checkpoint(model, folder / "tiny.pt")
    out = folder / "tiny.onnx"
    code = export_main(
        [
            *("--checkpoint", str(checkpoint), "--out", str(out)),
            *("--height", str(HEIGHT), "--width", str(WIDTH), "--two-part"),
        ]
    )
    assert code == 0
    return model, out


def frames(count: int) -> list[torch.Tensor]:
    """Random uint8 frames [1,3,H,W] of the tiny model's size."""
    gen = torch.Generator().manual_seed(7)
    return [
        torch.randint(0, 256, (1, 3, HEIGHT, WIDTH), dtype=torch.uint8, generator=gen)
        for _ in range(count)
    ]


def test_torch_parts_give_the_one_graphs_windows_and_detections_over_frames():
    model = tiny_model(seed=2)
    look, detect = LookPart(model).eval(), DetectPart(model).eval()
    _, memory, valid, control = random_inputs(model)
    state = (memory, valid, control)
    with torch.no_grad():
        for image in frames(FRAMES):
            ref = model(image, *state)
            view = downsample_frame(image.to(torch.float32), model.config)
            boxes, scores, scale, tokens, seen = look(view, state[2])
            got = detect(frame_patches(model, image, boxes), boxes, tokens, seen, *state[:2])
            assert torch.equal(boxes, ref["patch_boxes"])
            assert torch.equal(scores, ref["patch_scores"])
            assert torch.equal(scale, ref["patch_scale"])
            names = ("boxes", "scores", "labels", "frame_tokens", "next_controller_state")
            for name, value in zip(names, got, strict=True):
                assert torch.equal(value, ref[name]), name
            assert (ref["scores"] > 0.05).sum() > 3
            memory = torch.cat([ref["frame_tokens"][:, None], memory[:, :-1]], 1)
            valid = torch.cat([torch.ones(1, 1), valid[:, :-1]], 1)
            state = (memory, valid, ref["next_controller_state"])


def test_numpy_view_and_patches_equal_the_graphs_own():
    model = tiny_model()
    cfg = model.config
    image = frames(1)[0]
    pixels = image[0].permute(1, 2, 0).numpy()
    ref = downsample_frame(image.to(torch.float32), cfg)[0].numpy()
    np.testing.assert_array_equal(global_view(pixels, cfg), ref)
    for scale in (32, 64, 128):  # factors 1, 2 and 4 of a 32-pixel patch
        x0, y0 = torch.tensor([[32]]), torch.tensor([[16]])
        crop = crop_windows(image.to(torch.float32), x0, y0, scale, 32, 16)[0].numpy()
        window = pixels[16 : 16 + scale, 32 : 32 + scale]
        np.testing.assert_array_equal(window_patch(window, 32), crop)


def test_onnx_parts_give_the_one_graphs_windows_and_detections(exported):
    _, path = exported
    one = OnnxRuntimeBackend(path, device="cpu", threads=1)
    two = TwoPartModel(path, threads=1)
    assert two.info == one.info
    cfg = two.config
    one_state, two_state = StreamState(one.info), StreamState(two.info)
    for image in frames(FRAMES):
        ref = one.run(image.numpy(), **one_state.inputs())
        pixels = image[0].permute(1, 2, 0).numpy()
        look = two.look(global_view(pixels, cfg)[None], two_state)
        np.testing.assert_array_equal(look.patch_boxes, ref["patch_boxes"])
        np.testing.assert_array_equal(look.patch_scale, ref["patch_scale"])
        np.testing.assert_allclose(look.patch_scores, ref["patch_scores"], atol=1e-5)
        patches = np.stack(
            [
                window_patch(pixels[int(y0) : int(y1), int(x0) : int(x1)], cfg.patch_size)
                for x0, y0, x1, y1 in look.patch_boxes[0]
            ]
        )[None]
        got = two.detect(patches, look, two_state)
        assert_same_detections(got, ref, min_score=0.05, min_clear=3)
        one_state.update(ref)
        np.testing.assert_allclose(two_state.memory, one_state.memory, atol=1e-4)
        np.testing.assert_allclose(
            two_state.controller_state, one_state.controller_state, atol=1e-4
        )


def test_export_writes_both_parts_beside_the_one_graph_with_its_metadata(exported):
    _, path = exported
    look, detect = two_part_paths(path)
    assert (look.name, detect.name) == ("tiny.look.onnx", "tiny.detect.onnx")
    one = read_metadata(onnx.load(path))
    for part, file in (("look", look), ("detect", detect)):
        meta = read_metadata(onnx.load(file))
        assert meta.pop("part") == part
        assert meta == one


def test_missing_or_mixed_up_parts_are_refused_naming_the_files(exported, tmp_path):
    _, path = exported
    with pytest.raises(ModelNotFoundError, match=r"other\.look\.onnx.*--two-part"):
        TwoPartModel(tmp_path / "other.onnx")
    look, detect = two_part_paths(path)
    swapped = tmp_path / "swapped.onnx"
    for source, target in zip((detect, look), two_part_paths(swapped), strict=True):
        target.write_bytes(source.read_bytes())
    with pytest.raises(ModelContractError, match=r"swapped\.look\.onnx is not the look part"):
        TwoPartModel(swapped)
    assert TwoPartModel(look).look_path == look


def test_the_committed_demo_parts_match_the_committed_demo_model():
    """The demo model's two parts come from the same weights as its one graph (re-export them
    with pdn-export --two-part whenever the demo model changes)."""
    frame = SceneSequence(3, SceneConfig(frames=1)).render(0).image
    one = OnnxRuntimeBackend(DEMO_MODEL, device="cpu")
    two = TwoPartModel(DEMO_MODEL)
    ref = one.run(
        np.ascontiguousarray(frame.transpose(2, 0, 1)[None]), **StreamState(one.info).inputs()
    )
    state = StreamState(two.info)
    look = two.look(global_view(frame, two.config)[None], state)
    np.testing.assert_array_equal(look.patch_boxes, ref["patch_boxes"])
    patches = np.stack(
        [
            window_patch(frame[int(y0) : int(y1), int(x0) : int(x1)], two.config.patch_size)
            for x0, y0, x1, y1 in look.patch_boxes[0]
        ]
    )[None]
    assert_same_detections(two.detect(patches, look, state), ref, min_score=0.05, min_clear=10)
