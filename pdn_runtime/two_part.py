"""The model in two parts (look, then detect; `pdn_model.two_part_contract`) in ONNX Runtime,
and the two things the caller makes between them in NumPy: the global view of a frame and the
patches of the chosen windows.

`global_view` and `window_patch` compute exactly what the one graph computes inside
(`backbone.downsample_frame`, `crop.crop_windows`): point samples and area averages of
integers over a power of two are exact in float32. So look + detect on a frame gives the
one graph's windows and detections (test/test_two_part.py), while a caller that reads a huge
image tile by tile hands over only the view and the windows' pixels.

Imports no torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import onnx

from pdn_model.config import ModelConfig
from pdn_model.onnx_graph import read_metadata
from pdn_model.two_part_contract import PARTS, two_part_paths
from pdn_runtime.errors import FrameError, ModelContractError, ModelNotFoundError
from pdn_runtime.interface import ModelInfo
from pdn_runtime.onnx_file import load_onnx
from pdn_runtime.onnxruntime_backend import CPU, create_session
from pdn_runtime.stream import StreamState


def resolve_two_part(model_path: str | Path) -> tuple[Path, Path]:
    """The look and detect files of a model: given the one-graph export `X.onnx` (which need
    not exist), `X.look.onnx` or `X.detect.onnx`; ModelNotFoundError (with the command that
    writes them) when either is missing."""
    path = Path(model_path)
    for suffix in (".look.onnx", ".detect.onnx"):
        if path.name.endswith(suffix):
            path = path.with_name(path.name.removesuffix(suffix) + ".onnx")
    look, detect = two_part_paths(path)
    missing = [str(p) for p in (look, detect) if not p.is_file()]
    if missing:
        raise ModelNotFoundError(
            f"the two-part export of {path} is missing ({', '.join(missing)}): write it with "
            f"pdn-export --checkpoint CHECKPOINT --out {path} --two-part (docs/detect.md)"
        )
    return look, detect


def global_view(pixels: np.ndarray, config: ModelConfig) -> np.ndarray:
    """The look part's view of RGB pixels [h, w, 3] uint8 (h, w multiples of the global
    downsample): [3, h/ds, w/ds] float32, the same numbers as `downsample_frame`."""
    step, ds = config.global_sample_stride, config.global_downsample
    pool = ds // step
    h, w = pixels.shape[:2]
    if h % ds or w % ds:
        raise FrameError(f"a view needs sides that are multiples of {ds}, got {w}x{h}")
    sampled = pixels[::step, ::step].reshape(h // ds, pool, w // ds, pool, 3)
    view = sampled.sum(axis=(1, 3), dtype=np.float32) / np.float32(pool * pool)
    return view.transpose(2, 0, 1)


def window_patch(pixels: np.ndarray, patch_size: int) -> np.ndarray:
    """One window's RGB pixels [s, s, 3] uint8 area-averaged to [3, p, p] float32 (as
    `crop.crop_windows`; s a multiple of p)."""
    side = pixels.shape[0]
    factor = side // patch_size
    if pixels.shape[:2] != (side, side) or side % patch_size:
        raise FrameError(f"a window must be square and a multiple of {patch_size}: {pixels.shape}")
    blocks = pixels.reshape(patch_size, factor, patch_size, factor, 3)
    patch = blocks.sum(axis=(1, 3), dtype=np.float32) / np.float32(factor * factor)
    return patch.transpose(2, 0, 1)


class Look(NamedTuple):
    """What the look part made of one view (copies, batch 1)."""

    patch_boxes: np.ndarray  # [1, P, 4] float32 xyxy, model-frame pixels
    patch_scores: np.ndarray  # [1, P] float32
    patch_scale: np.ndarray  # [1, P] int32
    global_tokens: np.ndarray  # [1, Ng, C] float32
    look_state: np.ndarray  # [1, S] float32


class TwoPartModel:
    """The look and detect graphs of one export, each in an ONNX Runtime session on the CPU
    (`threads` intra-op threads, 0: one per core). Batch 1.

    `info` is the `ModelInfo` of the equivalent one graph, so a `StreamState(info)` holds a
    stream's memory and controller state for both parts.
    """

    def __init__(self, model_path: str | Path, threads: int = 0) -> None:
        self.look_path, self.detect_path = resolve_two_part(model_path)
        graphs = {"look": load_onnx(self.look_path), "detect": load_onnx(self.detect_path)}
        paths = {"look": self.look_path, "detect": self.detect_path}
        shapes: dict[str, tuple[int, ...]] = {}
        metas = {}
        for part, graph in graphs.items():
            shapes.update(_check_part(graph, part, paths[part]))
            metas[part] = read_metadata(graph)
        meta = metas["look"]
        if metas["detect"].get("config") != meta.get("config") or meta.get("batch") != 1:
            raise ModelContractError(
                f"{self.look_path} and {self.detect_path} are not the two parts of one batch-1 "
                "export: export them together with pdn-export --two-part"
            )
        self.config = ModelConfig.from_dict(meta["config"])
        cfg = self.config
        self.info = ModelInfo.from_shapes(
            {
                "image": (1, 3, cfg.height, cfg.width),
                "memory": shapes["memory"],
                "memory_valid": shapes["memory_valid"],
                "controller_state": shapes["controller_state"],
            },
            shapes,
            meta["class_names"],
            str(self.look_path),
        )
        self.num_windows = shapes["patches"][1]
        self._sessions = {
            part: create_session(graph, [CPU], threads) for part, graph in graphs.items()
        }

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.info.class_names

    def look(self, view: np.ndarray, state: StreamState) -> Look:
        """The look part on a view [1, 3, H/ds, W/ds] float32 with the stream's controller
        state: the windows to read and what detect needs."""
        out = self._sessions["look"].run(
            None, {"view": view, "controller_state": state.controller_state}
        )
        return Look(*out)

    def detect(self, patches: np.ndarray, look: Look, state: StreamState) -> dict[str, np.ndarray]:
        """The detect part on the windows' patches [1, P, 3, p, p] float32; pushes this frame
        onto `state` and returns boxes [1,D,4], scores [1,D], labels [1,D] (model-frame
        pixels, as the one graph) and the state outputs."""
        feeds = {
            "patches": patches,
            "patch_boxes": look.patch_boxes,
            "global_tokens": look.global_tokens,
            "look_state": look.look_state,
            "memory": state.memory,
            "memory_valid": state.memory_valid,
        }
        names = PARTS["detect"][1]
        out = dict(zip(names, self._sessions["detect"].run(None, feeds), strict=True))
        state.update(out)
        return out


def _check_part(graph: onnx.ModelProto, part: str, path: Path) -> dict[str, tuple[int, ...]]:
    """The static shapes of a part's inputs and outputs by name, or ModelContractError when
    the file is not that part of a two-part export."""
    inputs, outputs = PARTS[part]
    got_in = tuple(v.name for v in graph.graph.input)
    got_out = tuple(v.name for v in graph.graph.output)
    if got_in != inputs or got_out != outputs or read_metadata(graph).get("part") != part:
        raise ModelContractError(
            f"{path} is not the {part} part of a two-part export (inputs {list(got_in)}, "
            f"outputs {list(got_out)}; expected {list(inputs)} -> {list(outputs)})"
        )
    return {
        v.name: tuple(d.dim_value for d in v.type.tensor_type.shape.dim)
        for v in [*graph.graph.input, *graph.graph.output]
    }
