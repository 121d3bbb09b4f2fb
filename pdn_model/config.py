"""Typed model configuration, named presets, and the geometry derived from them.

Imports no torch, so the ROS side can read a model's geometry without loading PyTorch.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

DEFAULT_CLASSES: tuple[str, ...] = ("person", "vehicle", "bicycle", "animal", "sign")

# TensorRT refuses TopK with K >= 3840 (the TensorRT rules of docs/model.md).
TENSORRT_MAX_TOPK = 3840


def conv_out(size: int, stride: int = 2) -> int:
    """Output length of a 3x3, padding 1 convolution with the given stride."""
    return (size + 2 - 3) // stride + 1


@dataclass(frozen=True)
class ModelConfig:
    """Everything that fixes a PatchDriveNet's shapes and weights.

    One config is one exportable graph: the input size is static (one engine per camera
    resolution). All sizes are in full-resolution pixels unless named otherwise.
    """

    height: int
    width: int
    class_names: tuple[str, ...] = DEFAULT_CLASSES
    preset: str = "custom"
    # Global stream: the frame is point-sampled every `global_sample_stride` pixels, then
    # area-averaged to 1/`global_downsample`, so full-resolution reads stay sparse.
    global_downsample: int = 8
    global_sample_stride: int = 4
    global_widths: tuple[int, int, int] = (16, 32, 64)
    # Patches: square windows of each scale, resized to `patch_size` for the patch backbone.
    patch_scales: tuple[int, ...] = (256, 512)
    patches_per_scale: tuple[int, ...] = (12, 4)
    patch_size: int = 256
    patch_widths: tuple[int, int, int] = (24, 48, 96)
    patch_token_grid: int = 4
    # Peak suppression radius as a fraction of the window size (0.5: centres of one scale's
    # windows are more than half a window apart).
    suppression_fraction: float = 0.5
    token_dim: int = 96
    attention_heads: int = 4
    memory_length: int = 4
    frame_tokens: int = 16
    controller_dim: int = 64
    max_detections: int = 300
    pre_nms_topk: int = 1000
    nms_iou: float = 0.6
    nms_iterations: int = 3
    # The learned part of the priority (scale and positional priors plus the controller map)
    # is squashed into (-priority_bound, +priority_bound) before it is added to the saliency,
    # so no learned term can outgrow the saliency and run away.
    priority_bound: float = 3.0
    # Training only: scale of the Gumbel noise that makes the patch choice explore.
    selection_noise: float = 1.0

    def __post_init__(self) -> None:
        self.validate()

    # ---- derived geometry -------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_scales(self) -> int:
        return len(self.patch_scales)

    @property
    def num_patches(self) -> int:
        """P: patches selected per frame (all scales together)."""
        return sum(self.patches_per_scale)

    @property
    def cell_size(self) -> int:
        """Pixels per saliency cell (the grid on which patch centres are chosen)."""
        return self.global_downsample * 4

    @property
    def token_stride(self) -> int:
        """Pixels per global token (the grid of the global detection head)."""
        return self.global_downsample * 8

    @property
    def global_input_size(self) -> tuple[int, int]:
        return self.height // self.global_downsample, self.width // self.global_downsample

    @property
    def saliency_grid(self) -> tuple[int, int]:
        h, w = self.global_input_size
        return conv_out(conv_out(h)), conv_out(conv_out(w))

    @property
    def token_grid(self) -> tuple[int, int]:
        h, w = self.saliency_grid
        return conv_out(h), conv_out(w)

    @property
    def patch_feature_size(self) -> int:
        """Side of the patch backbone's output map (stride 8 in patch pixels)."""
        return self.patch_size // 8

    @property
    def crop_chunk(self) -> int:
        """Width in pixels of the row chunks that the patch crop gathers in one index.

        Every window origin is a multiple of it, so a crop reads whole chunks.
        """
        c = math.gcd(self.width, self.cell_size // 2, 32)
        for s in self.patch_scales:
            c = math.gcd(c, s // 2)
        return c

    def suppression_radius(self, scale_index: int) -> int:
        """Peak suppression radius, in saliency cells, for one patch scale."""
        s = self.patch_scales[scale_index]
        return max(1, round(self.suppression_fraction * s / self.cell_size))

    def replace(self, **changes: object) -> ModelConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """Plain types only, so a checkpoint loads with `weights_only=True`."""
        d = dataclasses.asdict(self)
        return {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(f"unknown ModelConfig fields: {sorted(unknown)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})

    # ---- validation -------------------------------------------------------------------
    def validate(self) -> None:
        """Raise ValueError naming the first field that cannot make a valid graph."""
        ds = self.global_downsample
        if self.height <= 0 or self.width <= 0:
            raise ValueError(f"input size must be positive, got {self.height}x{self.width}")
        if self.height % ds or self.width % ds:
            raise ValueError(
                f"height and width ({self.height}x{self.width}) must be multiples of "
                f"global_downsample={ds}"
            )
        if ds % self.global_sample_stride:
            raise ValueError(
                f"global_sample_stride={self.global_sample_stride} must divide "
                f"global_downsample={ds}"
            )
        if not self.class_names:
            raise ValueError("class_names must not be empty")
        if len(self.patch_scales) != len(self.patches_per_scale):
            raise ValueError(
                f"patch_scales {self.patch_scales} and patches_per_scale "
                f"{self.patches_per_scale} must have the same length"
            )
        if not self.patch_scales:
            raise ValueError("at least one patch scale is needed")
        if self.patch_size % (8 * self.patch_token_grid):
            raise ValueError(
                f"patch_size={self.patch_size} must be a multiple of 8*patch_token_grid"
            )
        for s, k in zip(self.patch_scales, self.patches_per_scale, strict=True):
            if s % self.patch_size:
                raise ValueError(f"patch scale {s} must be a multiple of patch_size")
            if s > min(self.height, self.width):
                raise ValueError(
                    f"patch scale {s} does not fit in a {self.width}x{self.height} frame"
                )
            if k < 0:
                raise ValueError(f"patches_per_scale must be >= 0, got {k}")
        if self.token_dim % self.attention_heads:
            raise ValueError("token_dim must be a multiple of attention_heads")
        if not 0 < self.max_detections <= self.pre_nms_topk < TENSORRT_MAX_TOPK:
            raise ValueError(
                "need 0 < max_detections <= pre_nms_topk < "
                f"{TENSORRT_MAX_TOPK} (TensorRT's TopK limit)"
            )
        if not 0.0 < self.nms_iou < 1.0:
            raise ValueError(f"nms_iou must be in (0, 1), got {self.nms_iou}")
        if self.priority_bound <= 0:
            raise ValueError(f"priority_bound must be > 0, got {self.priority_bound}")
        if self.memory_length < 1 or self.frame_tokens < 1:
            raise ValueError("memory_length and frame_tokens must be >= 1")


# `patches_per_scale` is the window budget of a 4K frame. Larger frames get more windows in
# proportion to their linear size: at 8K, 32 windows reach SAHI's AP_small at over 10x lower
# latency and 16 do not (`pdn-bench compare` budget sweep, docs/benchmarks.md).
BUDGET_REFERENCE_PIXELS = 3840 * 2160


def default_patches(config: ModelConfig) -> tuple[int, ...]:
    """Windows per scale for the config's frame size: `patches_per_scale` up to 4K, scaled by
    sqrt(frame area / 4K area) above it (8K: twice as many), at most the cell grid."""
    factor = math.sqrt(config.height * config.width / BUDGET_REFERENCE_PIXELS)
    if factor <= 1.0:
        return config.patches_per_scale
    rows, cols = config.saliency_grid
    return tuple(min(rows * cols, round(k * factor)) for k in config.patches_per_scale)


PRESETS: dict[str, dict] = {
    # CPU-friendly default: about 8 GFLOP at 4K with 16 patches.
    "pdn-s": {},
    # Wider backbones and more patches, for a GPU.
    "pdn-m": {
        "global_widths": (24, 48, 96),
        "patch_widths": (32, 64, 128),
        "patches_per_scale": (24, 8),
        "token_dim": 128,
        "frame_tokens": 32,
        "controller_dim": 128,
    },
}


def preset_config(preset: str, height: int, width: int, **overrides: object) -> ModelConfig:
    """The config of a named preset at one input size, with field overrides."""
    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    fields = {**PRESETS[preset], **overrides}
    return ModelConfig(height=height, width=width, preset=preset, **fields)
