"""Stages of an exported graph (`pdn_runtime.graph_stages`) and `pdn-bench profile`'s mapping of
ONNX Runtime's profile onto them."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import pytest
from pdn_tiny import HEIGHT, WIDTH, tiny_model

from pdn_bench.profile import LAYOUT, UNMAPPED, profile_model, profiled_stage, stage_lookup
from pdn_model.export import to_onnx
from pdn_runtime import graph_stages as gs


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> Path:
    return to_onnx(tiny_model(seed=2), tmp_path_factory.mktemp("profile") / "tiny.onnx")


def test_every_node_gets_the_stage_of_the_code_that_made_it(exported):
    graph = onnx.load(exported)
    stages = gs.node_stages(graph)
    assert set(stages) == {n.name for n in graph.graph.node}
    ops = Counter((stages[n.name], n.op_type) for n in graph.graph.node)
    # PatchBackbone and GlobalBackbone have 10 convolutions each, the two heads 4 each, the
    # saliency head 2 and the priorities 2 (pdn_model/backbone.py, heads.py, saliency.py).
    assert ops[(gs.PATCH_BACKBONE, "Conv")] == 10
    assert ops[(gs.HEADS, "Conv")] == 8
    assert ops[(gs.GLOBAL, "Conv")] >= 10
    assert ops[(gs.PRIORITY, "Conv")] >= 2
    assert ops[(gs.SELECTION, "ArgMax")] == 5  # one per chosen window (3 + 2)
    assert ops[(gs.NMS, "TopK")] == 2
    assert ops[(gs.INPUT_CAST, "Cast")] == 1
    assert ops[(gs.FUSION, "MatMul")] >= 8 and ops[(gs.TEMPORAL, "Softmax")] >= 1
    assert gs.OTHER not in stages.values()
    # the crop is what feeds the patch backbone: its gather reads the cast frame
    crop = [n for n in graph.graph.node if stages[n.name] == gs.CROP]
    assert any(n.op_type == "Gather" for n in crop)
    assert all(stages[n.name] != gs.CROP for n in graph.graph.node if n.op_type == "MatMul")


def test_profile_names_map_to_stages():
    nodes = {"node_Conv_12": gs.PATCH_BACKBONE, "node_select_3": gs.SELECTION}
    tensors = {"relu_4": gs.GLOBAL, "_unsafe_view_13": gs.FUSION, "conv2d_9": gs.PRIORITY}
    assert profiled_stage("node_Conv_12", nodes, tensors) == gs.PATCH_BACKBONE
    assert profiled_stage("node_select_3/GatherSliceToSplitFusion", nodes, tensors) == gs.SELECTION
    assert profiled_stage("node_Conv_12_token_372", nodes, tensors) == gs.PATCH_BACKBONE
    assert profiled_stage("relu_4_nchwc", nodes, tensors) == gs.GLOBAL
    assert profiled_stage("_unsafe_view_13_dq", nodes, tensors) == gs.FUSION
    assert profiled_stage("conv2d_9_q", nodes, tensors) == gs.PRIORITY
    assert profiled_stage("ReorderOutput_token_347", nodes, tensors) == LAYOUT
    assert profiled_stage("Transpose_token_444", nodes, tensors) == LAYOUT
    assert profiled_stage("gemm_input_reshape", nodes, tensors) == LAYOUT
    assert profiled_stage("something_else", nodes, tensors) == UNMAPPED


def test_profile_of_a_model_adds_up_by_stage(exported, tmp_path):
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 256, (3, HEIGHT, WIDTH), dtype=np.uint8) for _ in range(2)]
    result = profile_model(exported, frames, threads=1, runs=3, work=tmp_path)
    stages = result["stages_ms"]
    total = sum(stages.values())
    assert total > 0 and result["runs"] == 3 and result["precision"] == "float32"
    assert {gs.GLOBAL, gs.PATCH_BACKBONE, gs.NMS, gs.SELECTION, gs.HEADS} <= set(stages)
    assert stages.get(UNMAPPED, 0.0) < 0.02 * total
    # kernels run inside the run's wall time (2 threads at most would double it; 1 here)
    assert total <= 1.05 * result["run_p99_ms"]
    nodes, tensors = stage_lookup(onnx.load(exported))
    assert len(nodes) == len(onnx.load(exported).graph.node) and len(tensors) >= len(nodes)
