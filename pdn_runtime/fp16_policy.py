"""Which layers of an FP16 TensorRT build stay in FP32, decided on a plain description of the
network so that the rule is testable without TensorRT (see docs/deployment.md).

A layer stays in FP32 when
1. it is precision-sensitive by type: softmax (attention weights), normalisation (variance),
   reductions (sums and means over many values) and top-k / argmax (the order of nearly
   equal scores decides which patches and detections survive); or
2. no convolution or matrix multiply follows it: the heads' last layers and everything after
   them, i.e. box decoding in full-resolution pixels, areas and IoU for NMS, score sorting
   and the patch rectangles. FP16 has a spacing of 2 px above 2048 and 4 px above 4096, so
   a 4K/8K coordinate cannot even be stored to the pixel, and a box area above 65504 px^2
   overflows it. This tail is small, so keeping it in FP32 costs little.
Everything else (the backbones, fusion, attention projections) runs in FP16.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

# TensorRT LayerType names.
COMPUTE_KINDS = frozenset({"CONVOLUTION", "DECONVOLUTION", "MATRIX_MULTIPLY"})
SENSITIVE_KINDS = frozenset({"SOFTMAX", "NORMALIZATION", "REDUCE", "TOPK"})
# Layers whose precision is not a computation of theirs (weights are stored as given).
UNCONSTRAINED_KINDS = frozenset({"CONSTANT"})


@dataclass(frozen=True)
class LayerView:
    """What the policy needs to know about one layer of a network in topological order."""

    kind: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    float_output: bool  # at least one output is a float tensor (others are not constrained)


@dataclass(frozen=True)
class PrecisionPlan:
    """Indices of the layers pinned to FP32, split by the rule that pinned them."""

    sensitive: tuple[int, ...]
    tail: tuple[int, ...]

    @property
    def fp32(self) -> frozenset[int]:
        """Every pinned layer."""
        return frozenset(self.sensitive + self.tail)


def plan_fp32_layers(layers: Sequence[LayerView]) -> PrecisionPlan:
    """Apply the module's rule to `layers` (topologically ordered, as TensorRT lists them)."""
    consumers: dict[str, list[int]] = defaultdict(list)
    for i, layer in enumerate(layers):
        for name in layer.inputs:
            consumers[name].append(i)
    feeds_compute = [False] * len(layers)
    for i in range(len(layers) - 1, -1, -1):
        feeds_compute[i] = any(
            layers[j].kind in COMPUTE_KINDS or feeds_compute[j]
            for name in layers[i].outputs
            for j in consumers[name]
        )
    sensitive, tail = [], []
    for i, layer in enumerate(layers):
        if not layer.float_output or layer.kind in UNCONSTRAINED_KINDS:
            continue
        if layer.kind in SENSITIVE_KINDS:
            sensitive.append(i)
        elif not feeds_compute[i]:
            tail.append(i)
    return PrecisionPlan(tuple(sensitive), tuple(tail))
