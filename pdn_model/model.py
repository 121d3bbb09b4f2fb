"""PatchDriveNet: look at a cheap global view, choose where detail matters, spend
high-resolution compute only on the chosen windows.

The forward pass is one exportable graph with the inputs and outputs of docs/model.md; see
`PatchDriveNet.forward` for keys, shapes and conventions.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from pdn_model.backbone import GlobalBackbone, PatchBackbone, downsample_frame, normalize
from pdn_model.config import ModelConfig, preset_config
from pdn_model.crop import crop_windows
from pdn_model.fusion import PatchGlobalFusion
from pdn_model.heads import DetectionHead, decode_boxes
from pdn_model.layers import cell_centers, sine_position
from pdn_model.postprocess import select_detections
from pdn_model.priority import PatchPriority
from pdn_model.saliency import SaliencyHead
from pdn_model.selection import (
    cell_window_origins,
    dense_window_origins,
    select_peaks,
    window_cells,
)
from pdn_model.temporal import FrameTokenizer, TemporalAttention

DENSE = "all"


class GlobalView(NamedTuple):
    """What the global stream (stages 1-3) makes of a frame."""

    saliency: torch.Tensor  # [B, num_scales, Hs, Ws] logits
    priority: torch.Tensor  # [B, num_scales, Hs, Ws] logits: saliency + bounded learned terms
    hidden: torch.Tensor  # [B, S] controller state after looking at this frame
    tokens: torch.Tensor  # [B, Ng, C] global tokens (row-major over the token grid)
    pos: torch.Tensor  # [B, Ng, C] their position embeddings


class Windows(NamedTuple):
    """The chosen windows (stage 4), scale by scale in `patch_scales` order."""

    origins: torch.Tensor  # [B, P, 2] float (x0, y0) full-resolution pixels
    sizes: torch.Tensor  # [P] window side in pixels
    logits: torch.Tensor  # [B, P] priority logit of each window
    scale_ids: torch.Tensor  # [P] int32 index into `patch_scales`

    def boxes(self) -> torch.Tensor:
        """The windows as xyxy boxes [B, P, 4] in full-resolution pixels."""
        return torch.cat([self.origins, self.origins + self.sizes[None, :, None]], -1)


class Candidates(NamedTuple):
    """Every detection candidate before NMS: global cells first, then patch cells."""

    boxes: torch.Tensor  # [B, N, 4] xyxy full-resolution pixels
    logits: torch.Tensor  # [B, N, K] class logits
    centers: torch.Tensor  # [B, N, 2] cell centres, pixels
    strides: torch.Tensor  # [B, N] pixels per cell (identifies the head)


class PatchDriveNet(nn.Module):
    """PatchDriveNet as one exportable graph (docs/model.md). Build with `build()`."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        dim, classes = config.token_dim, config.num_classes
        self.global_backbone = GlobalBackbone(config)
        self.saliency = SaliencyHead(config)
        self.priority = PatchPriority(config)
        self.patch_backbone = PatchBackbone(config)
        self.global_project = nn.Conv2d(config.global_widths[2], dim, 1)
        self.fusion = PatchGlobalFusion(config)
        self.tokenizer = FrameTokenizer(config)
        self.temporal = TemporalAttention(config)
        self.global_head = DetectionHead(dim, classes)
        self.patch_head = DetectionHead(dim, classes)
        self.patch_counts: tuple[int, ...] | None = config.patches_per_scale
        rows, cols = config.token_grid
        per_cell = torch.tensor(
            [config.token_stride / config.width, config.token_stride / config.height]
        )
        self.register_buffer(
            "global_pos", sine_position(cell_centers(rows, cols) * per_cell, dim), persistent=False
        )

    # ---- patch budget -----------------------------------------------------------------
    def set_patches(self, counts: Sequence[int] | str) -> None:
        """Choose how many windows each scale looks at from now on: a count per scale
        (0 everywhere = global stream only), or "all" for every window of the frame (the
        dense tiled baseline, same weights)."""
        if counts == DENSE:
            self.patch_counts = None
            return
        counts = tuple(int(k) for k in counts)
        rows, cols = self.config.saliency_grid
        if len(counts) != self.config.num_scales or any(not 0 <= k <= rows * cols for k in counts):
            raise ValueError(
                f"need {self.config.num_scales} patch counts in [0, {rows * cols}], got {counts}"
            )
        self.patch_counts = counts

    def window_counts(self) -> tuple[int, ...]:
        """Windows per scale in the current mode (P is their sum)."""
        if self.patch_counts is not None:
            return self.patch_counts
        return tuple(len(dense_window_origins(self.config, s)[0]) for s in self.config.patch_scales)

    # ---- stages -------------------------------------------------------------------------
    def choose_windows(
        self, priority: torch.Tensor, bias: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Window origins x0, y0 [B, P] (int64 pixels), their priority logits [B, P] and
        scale indices [P], scale by scale in `patch_scales` order. `bias` (shaped like
        `priority`) is added for the choice only."""
        cfg = self.config
        b, _, rows, cols = priority.shape
        x0s, y0s, logits, scale_ids = [], [], [], []
        for i, (scale, k) in enumerate(zip(cfg.patch_scales, self.window_counts(), strict=True)):
            if k == 0:
                continue
            plane = priority[:, i]
            if self.patch_counts is None:
                xs, ys = dense_window_origins(cfg, scale)
                x0 = torch.tensor(xs, device=priority.device).expand(b, -1)
                y0 = torch.tensor(ys, device=priority.device).expand(b, -1)
                cells = window_cells(x0, y0, scale, cfg)
            else:
                ranked = plane.detach() if bias is None else plane.detach() + bias[:, i]
                if self.training and cfg.selection_noise > 0:
                    uniform = torch.rand_like(ranked).clamp(1e-6, 1 - 1e-6)
                    ranked = ranked - cfg.selection_noise * torch.log(-torch.log(uniform))
                cells = select_peaks(ranked, k, cfg.suppression_radius(i))
                x0, y0 = cell_window_origins(cells, cols, scale, cfg)
            x0s.append(x0)
            y0s.append(y0)
            logits.append(torch.gather(plane.reshape(b, rows * cols), 1, cells))
            scale_ids.append(torch.full((k,), i, dtype=torch.int32, device=priority.device))
        if not x0s:
            empty = priority.new_zeros(b, 0)
            return empty.long(), empty.long(), empty, empty[0].to(torch.int32)
        return torch.cat(x0s, 1), torch.cat(y0s, 1), torch.cat(logits, 1), torch.cat(scale_ids)

    def crop_patches(self, frame: torch.Tensor, origins: torch.Tensor) -> torch.Tensor:
        """Normalised patch batch [B*P, 3, p, p], frame-major, from the float frame."""
        return normalize(self.crop_pixels(frame, origins))

    def crop_pixels(self, frame: torch.Tensor, origins: torch.Tensor) -> torch.Tensor:
        """The windows at `origins` [B, P, 2] of the float frame, each area-averaged to the
        patch size: [B*P, 3, p, p] frame-major, 0..255."""
        cfg = self.config
        b = frame.shape[0]
        x0, y0 = origins.long().unbind(-1)
        crops, start = [], 0
        for scale, k in zip(cfg.patch_scales, self.window_counts(), strict=True):
            if k == 0:
                continue
            part = crop_windows(
                frame,
                x0[:, start : start + k],
                y0[:, start : start + k],
                scale,
                cfg.patch_size,
                cfg.crop_chunk,
            )
            crops.append(part.reshape(b, k, 3, cfg.patch_size, cfg.patch_size))
            start += k
        return torch.cat(crops, 1).flatten(0, 1)

    def patch_tokens(
        self, maps: torch.Tensor, origins: torch.Tensor, sizes: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pool patch maps [B*P, C, f, f] to g x g tokens: ([B, P*g*g, C], positions)."""
        cfg = self.config
        b, p = origins.shape[:2]
        g = cfg.patch_token_grid
        pooled = F.avg_pool2d(maps, cfg.patch_feature_size // g)  # [B*P, C, g, g]
        tokens = pooled.flatten(2).transpose(1, 2).reshape(b, p * g * g, -1)
        offsets = cell_centers(g, g, maps.device)[None, None] * (sizes / g)[None, :, None, None]
        xy = (origins[:, :, None, :] + offsets).reshape(b, p * g * g, 2)
        xy = xy / torch.tensor([cfg.width, cfg.height], dtype=torch.float32, device=maps.device)
        return tokens, sine_position(xy, cfg.token_dim)

    def global_stream(self, frame: torch.Tensor, controller_state: torch.Tensor) -> GlobalView:
        """Stages 1-3: global view, saliency, priorities and the global tokens."""
        return self.look(downsample_frame(frame, self.config), controller_state)

    def look(self, view: torch.Tensor, controller_state: torch.Tensor) -> GlobalView:
        """Stages 1-3 from the global view [B,3,H/ds,W/ds] (0..255 floats, as
        `downsample_frame` makes it): saliency, priorities and the global tokens."""
        cells, token_map = self.global_backbone(normalize(view))
        saliency = self.saliency(cells, token_map)
        priority, hidden = self.priority(
            saliency, cells, token_map.mean(dim=(2, 3)), controller_state
        )
        tokens = self.global_project(token_map).flatten(2).transpose(1, 2)
        return GlobalView(
            saliency, priority, hidden, tokens, self.global_pos.expand(len(view), -1, -1)
        )

    def select(self, priority: torch.Tensor, bias: torch.Tensor | None = None) -> Windows:
        """Stage 4: the windows to look at, with their sizes and priority logits."""
        x0, y0, logits, scale_ids = self.choose_windows(priority, bias)
        sizes = torch.tensor(self.config.patch_scales, dtype=torch.float32, device=priority.device)
        origins = torch.stack([x0, y0], dim=-1).to(torch.float32)
        return Windows(origins, sizes[scale_ids.long()], logits, scale_ids)

    def patch_stream(
        self, frame: torch.Tensor, windows: Windows, view: GlobalView
    ) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor]:
        """Stages 5-7: crop, patch backbone, fusion with the global tokens.

        Returns (patch maps [B*P, C, f, f] or None without windows, updated global tokens
        [B, Ng, C], the mean patch feature [B, C] that the controller remembers).
        """
        cfg = self.config
        b, p = windows.logits.shape
        if p == 0:
            return None, view.tokens, view.tokens.new_zeros(b, cfg.token_dim)
        return self.fuse_patches(self.crop_patches(frame, windows.origins), windows, view)

    def fuse_patches(
        self, patches: torch.Tensor, windows: Windows, view: GlobalView
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Stages 6-7 on the normalised patch batch [B*P, 3, p, p] (frame-major, as
        `crop_patches` makes it): returns what `patch_stream` does, for P > 0."""
        cfg = self.config
        b, p = windows.logits.shape
        maps = self.patch_backbone(patches)
        summary = maps.mean(dim=(2, 3)).reshape(b, p, -1).mean(dim=1)
        tokens, token_pos = self.patch_tokens(maps, windows.origins, windows.sizes)
        global_tokens, fused = self.fusion(view.tokens, view.pos, tokens, token_pos)
        # The patch tokens' update is broadcast back onto the patch maps.
        g = cfg.patch_token_grid
        delta = (fused - tokens).reshape(b * p, g, g, -1).permute(0, 3, 1, 2)
        maps = maps + F.interpolate(delta, scale_factor=cfg.patch_feature_size // g)
        return maps, global_tokens, summary

    def candidates(
        self, global_tokens: torch.Tensor, maps: torch.Tensor | None, windows: Windows
    ) -> Candidates:
        """Stage 9a: both heads, decoded to full-resolution boxes."""
        cfg = self.config
        b = global_tokens.shape[0]
        rows, cols = cfg.token_grid
        global_map = global_tokens.transpose(1, 2).reshape(b, cfg.token_dim, rows, cols)
        logits, sides = self.global_head(global_map)
        stride = global_tokens.new_full((b,), float(cfg.token_stride))
        boxes, centers = decode_boxes(
            sides, stride, global_tokens.new_zeros(b, 2), cfg.height, cfg.width
        )
        parts = [
            (
                boxes,
                logits.flatten(2).transpose(1, 2),
                centers,
                stride[:, None].expand(b, rows * cols),
            )
        ]
        if maps is not None:
            p = windows.logits.shape[1]
            logits, sides = self.patch_head(maps)
            stride = windows.sizes.repeat(b) * (8.0 / cfg.patch_size)  # [B*P]
            boxes, centers = decode_boxes(
                sides, stride, windows.origins.reshape(b * p, 2), cfg.height, cfg.width
            )
            n = p * boxes.shape[1]
            parts.append(
                (
                    boxes.reshape(b, n, 4),
                    logits.flatten(2).transpose(1, 2).reshape(b, n, -1),
                    centers.reshape(b, n, 2),
                    stride.reshape(b, p, 1).expand(b, p, n // p).reshape(b, n),
                )
            )
        return Candidates(*(torch.cat(list(column), 1) for column in zip(*parts, strict=True)))

    def recall_and_decode(
        self,
        view: GlobalView,
        windows: Windows,
        maps: torch.Tensor | None,
        global_tokens: torch.Tensor,
        memory: torch.Tensor,
        memory_valid: torch.Tensor,
    ) -> tuple[torch.Tensor, Candidates]:
        """Stages 8-9a: this frame's tokens for the memory [B,M,C], then the global tokens
        attend to the memory and both heads decode their candidates."""
        frame_tokens = self.tokenizer(global_tokens, view.pos)
        global_tokens = self.temporal(global_tokens, view.pos, memory, memory_valid)
        return frame_tokens, self.candidates(global_tokens, maps, windows)

    def forward(
        self,
        image: torch.Tensor,
        memory: torch.Tensor,
        memory_valid: torch.Tensor,
        controller_state: torch.Tensor,
        selection_bias: torch.Tensor | None = None,
    ) -> dict[str, torch.Tensor]:
        """Detect objects in a batch of full-resolution frames.

        Inputs: image uint8 [B,3,H,W] RGB; memory float [B,T,M,C] (slot 0 = newest);
        memory_valid float [B,T]; controller_state float [B,S].

        Outputs, always (pixels are full-resolution, origin top-left, boxes xyxy):
        - patch_boxes [B,P,4] the chosen windows; patch_scores [B,P] their priority
          (sigmoid: the predicted chance that the window holds an object of its scale);
          patch_scale [B,P] int32 index into `config.patch_scales`.
        - frame_tokens [B,M,C] to push onto memory; next_controller_state [B,S].
        In eval mode: boxes [B,D,4], scores [B,D], labels [B,D] int32 after class-aware NMS,
        sorted, padded with score 0.
        In training mode instead (no NMS), for the losses: saliency_logits and
        priority_logits [B,num_scales,Hs,Ws]; candidate_boxes [B,N,4], candidate_logits
        [B,N,K], candidate_centers [B,N,2] and candidate_strides [B,N] (pixels) for every
        global cell and then every patch cell; patch_logits [B,P] (pre-sigmoid priority).

        `selection_bias` [B,num_scales,Hs,Ws] (training only, not exported) is added to the
        priority when choosing windows, to steer exploration toward annotated objects.
        """
        # Cast at once: TensorRT accepts uint8 only as a graph input feeding a Cast. The
        # ONNX Runtime backend moves this Cast after the gathers (onnx_graph.sink_input_cast).
        frame = image.to(torch.float32)
        view = self.global_stream(frame, controller_state)
        windows = self.select(view.priority, selection_bias)
        maps, global_tokens, summary = self.patch_stream(frame, windows, view)
        frame_tokens, found = self.recall_and_decode(
            view, windows, maps, global_tokens, memory, memory_valid
        )
        out = {
            "patch_boxes": windows.boxes(),
            "patch_scores": torch.sigmoid(windows.logits),
            "patch_scale": windows.scale_ids[None].expand(len(image), -1),
            "frame_tokens": frame_tokens,
            "next_controller_state": self.priority.controller.next_state(view.hidden, summary),
        }
        if self.training:
            out.update(training_outputs(view, windows, found))
        else:
            out["boxes"], out["scores"], out["labels"] = select_detections(
                found.boxes, found.logits, self.config
            )
        return out

    def initial_state(self, batch: int = 1) -> dict[str, torch.Tensor]:
        """Zero memory, no valid slot, zero controller state: the inputs of a first frame."""
        cfg = self.config
        device = self.global_pos.device
        return {
            "memory": torch.zeros(
                batch, cfg.memory_length, cfg.frame_tokens, cfg.token_dim, device=device
            ),
            "memory_valid": torch.zeros(batch, cfg.memory_length, device=device),
            "controller_state": torch.zeros(batch, cfg.controller_dim, device=device),
        }


def training_outputs(view: GlobalView, windows: Windows, found: Candidates) -> dict:
    """The extra outputs of training mode that the losses read (see `forward`)."""
    return {
        "saliency_logits": view.saliency,
        "priority_logits": view.priority,
        "patch_logits": windows.logits,
        "candidate_boxes": found.boxes,
        "candidate_logits": found.logits,
        "candidate_centers": found.centers,
        "candidate_strides": found.strides,
    }


def build(
    preset: str = "pdn-s", height: int = 2160, width: int = 3840, **overrides: object
) -> PatchDriveNet:
    """A PatchDriveNet of a named preset for one input size, with config overrides."""
    return PatchDriveNet(preset_config(preset, height, width, **overrides))
