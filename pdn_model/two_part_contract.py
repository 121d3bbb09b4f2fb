"""The two-part form of the model (docs/detect.md): input/output names and file names of the
look and detect graphs, shared by the exporter (`pdn_model.two_part`) and the runtime
(`pdn_runtime.two_part`).

Imports no torch. look: the global view -> the chosen windows and the global tokens; detect:
the windows' pixels and what look made of the frame -> detections. Run one after the other
they compute what the one-graph export computes (`pdn_model.contract`).
"""

from __future__ import annotations

from pathlib import Path

# look: view float32 [B,3,H/ds,W/ds], 0..255, the frame as `backbone.downsample_frame` sees
# it; outputs the chosen windows (as in the one graph), the global tokens [B,Ng,C] and the
# controller's state after looking, `look_state` [B,S].
LOOK_INPUTS: tuple[str, ...] = ("view", "controller_state")
LOOK_OUTPUTS: tuple[str, ...] = (
    "patch_boxes",
    "patch_scores",
    "patch_scale",
    "global_tokens",
    "look_state",
)
# detect: patches float32 [B,P,3,p,p], 0..255, each window area-averaged to the patch input
# size (as `crop.crop_windows` does); outputs as the one graph.
DETECT_INPUTS: tuple[str, ...] = (
    "patches",
    "patch_boxes",
    "global_tokens",
    "look_state",
    "memory",
    "memory_valid",
)
DETECT_OUTPUTS: tuple[str, ...] = (
    "boxes",
    "scores",
    "labels",
    "frame_tokens",
    "next_controller_state",
)
PARTS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "look": (LOOK_INPUTS, LOOK_OUTPUTS),
    "detect": (DETECT_INPUTS, DETECT_OUTPUTS),
}


def two_part_paths(model_path: str | Path) -> tuple[Path, Path]:
    """The look and detect files that belong to the one-graph export `model_path`:
    `X.onnx` -> (`X.look.onnx`, `X.detect.onnx`), side by side."""
    path = Path(model_path)
    stem = path.name.removesuffix(".onnx")
    return path.with_name(f"{stem}.look.onnx"), path.with_name(f"{stem}.detect.onnx")
