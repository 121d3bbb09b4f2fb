"""The model in two parts from the same weights, for images too large to hand over whole
(docs/detect.md): `LookPart` (global view -> windows, global tokens) and `DetectPart`
(the windows' pixels + what look made -> detections), and their ONNX export.

Both wrap one `PatchDriveNet` and call its stages, so `DetectPart(LookPart(view(frame)),
patches(frame))` computes what `PatchDriveNet.forward(frame)` does in eval mode; the caller
makes the view (`backbone.downsample_frame`) and the patches (`crop.crop_windows`) itself,
from a frame in memory or from an image read tile by tile.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from pdn_model.backbone import downsample_frame, normalize
from pdn_model.export import example_inputs, export_graph, model_metadata
from pdn_model.model import GlobalView, PatchDriveNet, Windows
from pdn_model.postprocess import select_detections
from pdn_model.two_part_contract import PARTS, two_part_paths


class LookPart(nn.Module):
    """Stages 1-4: view [B,3,H/ds,W/ds] (0..255), controller_state [B,S] -> patch_boxes
    [B,P,4], patch_scores [B,P], patch_scale [B,P] (as the one graph), global_tokens
    [B,Ng,C] and look_state [B,S] (the controller's state after looking)."""

    def __init__(self, model: PatchDriveNet):
        super().__init__()
        self.model = model

    def forward(
        self, view: torch.Tensor, controller_state: torch.Tensor
    ) -> tuple[torch.Tensor, ...]:
        seen = self.model.look(view, controller_state)
        windows = self.model.select(seen.priority)
        return (
            windows.boxes(),
            torch.sigmoid(windows.logits),
            windows.scale_ids[None].expand(len(view), -1),
            seen.tokens,
            seen.hidden,
        )


class DetectPart(nn.Module):
    """Stages 6-9: patches [B,P,3,p,p] (0..255, each window area-averaged to the patch
    size), patch_boxes, global_tokens and look_state from `LookPart`, memory [B,T,M,C],
    memory_valid [B,T] -> boxes, scores, labels, frame_tokens, next_controller_state (as the
    one graph)."""

    def __init__(self, model: PatchDriveNet):
        super().__init__()
        self.model = model
        counts = model.window_counts()
        if sum(counts) == 0:
            raise ValueError("the two-part model needs at least one window (patches 0 everywhere)")
        scale_ids = torch.cat(
            [torch.full((k,), i, dtype=torch.int32) for i, k in enumerate(counts)]
        )
        sizes = torch.tensor(model.config.patch_scales, dtype=torch.float32)[scale_ids.long()]
        self.register_buffer("scale_ids", scale_ids, persistent=False)
        self.register_buffer("sizes", sizes, persistent=False)

    def forward(
        self,
        patches: torch.Tensor,
        patch_boxes: torch.Tensor,
        global_tokens: torch.Tensor,
        look_state: torch.Tensor,
        memory: torch.Tensor,
        memory_valid: torch.Tensor,
    ) -> tuple[torch.Tensor, ...]:
        model = self.model
        b, p = patches.shape[:2]
        origins = patch_boxes[..., :2]
        windows = Windows(origins, self.sizes, origins.new_zeros(b, p), self.scale_ids)
        seen = GlobalView(None, None, look_state, global_tokens, model.global_pos.expand(b, -1, -1))
        maps, tokens, summary = model.fuse_patches(normalize(patches.flatten(0, 1)), windows, seen)
        frame_tokens, found = model.recall_and_decode(
            seen, windows, maps, tokens, memory, memory_valid
        )
        boxes, scores, labels = select_detections(found.boxes, found.logits, model.config)
        next_state = model.priority.controller.next_state(look_state, summary)
        return boxes, scores, labels, frame_tokens, next_state


def frame_patches(
    model: PatchDriveNet, frame: torch.Tensor, patch_boxes: torch.Tensor
) -> torch.Tensor:
    """The `patches` input of `DetectPart` [B,P,3,p,p] (0..255) for a frame [B,3,H,W] and
    the windows `patch_boxes` [B,P,4] that `LookPart` chose."""
    b, p = patch_boxes.shape[:2]
    size = model.config.patch_size
    crops = model.crop_pixels(frame.to(torch.float32), patch_boxes[..., :2])
    return crops.reshape(b, p, 3, size, size)


def export_two_part(model: PatchDriveNet, path: str | Path, batch: int = 1) -> tuple[Path, Path]:
    """Write the look and detect graphs of `model` (eval mode, its current patch counts) next
    to the one-graph export `path` (`two_part_contract.two_part_paths`), with the one graph's
    `pdn.*` metadata plus `pdn.part`; checked like `export.to_onnx`."""
    model = model.eval()
    look, detect = LookPart(model), DetectPart(model)
    image, memory, memory_valid, controller_state = example_inputs(model, batch)
    view = downsample_frame(image.to(torch.float32), model.config)
    with torch.no_grad():
        boxes, _, _, tokens, look_state = look(view, controller_state)
        patches = frame_patches(model, image, boxes)
    examples = {
        "look": (view, controller_state),
        "detect": (patches, boxes, tokens, look_state, memory, memory_valid),
    }
    written = []
    for (part, names), module, target in zip(
        PARTS.items(), (look, detect), two_part_paths(path), strict=True
    ):
        metadata = {**model_metadata(model, batch), "part": part}
        written.append(export_graph(module, examples[part], names, target, metadata))
    return written[0], written[1]
