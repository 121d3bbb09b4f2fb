"""Which stage of the model (docs/model.md) each node of an exported graph belongs to.

The exporter stores, on every node, the PyTorch call stack that made it: the statement of
`PatchDriveNet.forward` it came from and the modules it ran in. That is enough to name the
stage of almost every node; nodes without that record (added by graph rewrites such as
quantisation) take the stage of the node that reads their output, else of the one that
wrote their input. INT8 quantisation (`quantize.py`) keeps some stages in float by these
names, and `pdn-bench profile` adds up ONNX Runtime's per-node times by them.
"""

from __future__ import annotations

import ast
import re

import onnx

INPUT_CAST = "input cast"
GLOBAL = "global stream"
PRIORITY = "saliency and priority"
SELECTION = "selection"
CROP = "crop"
PATCH_BACKBONE = "patch backbone"
FUSION = "fusion"
TEMPORAL = "temporal"
HEADS = "heads"
DECODE = "box decoding"
NMS = "nms"
OUTPUTS = "outputs"
OTHER = "other"
STAGES: tuple[str, ...] = (
    INPUT_CAST, GLOBAL, PRIORITY, SELECTION, CROP, PATCH_BACKBONE, FUSION, TEMPORAL, HEADS,
    DECODE, NMS, OUTPUTS, OTHER,
)  # fmt: skip

# The statement of PatchDriveNet.forward a node came from (a call it contains) -> stage.
_STATEMENTS: tuple[tuple[str, str], ...] = (
    ("image.to(", INPUT_CAST),
    ("self.global_stream(", GLOBAL),
    ("self.select(", SELECTION),
    ("self.patch_stream(", FUSION),
    ("self.tokenizer(", TEMPORAL),
    ("self.temporal(", TEMPORAL),
    ("self.candidates(", DECODE),
    ("self.recall_and_decode(", DECODE),  # tokenizer, temporal and heads: by module below
    ("select_detections(", NMS),
    ("controller.next_state(", PRIORITY),
)
# A module the node ran in, within its statement -> stage (more precise than the statement).
_MODULES: dict[str, str] = {
    "GlobalBackbone": GLOBAL,
    "SaliencyHead": PRIORITY,
    "PatchPriority": PRIORITY,
    "PatchBackbone": PATCH_BACKBONE,
    "PatchGlobalFusion": FUSION,
    "FrameTokenizer": TEMPORAL,
    "TemporalAttention": TEMPORAL,
    "DetectionHead": HEADS,
}
_FORWARD_LINE = re.compile(r'model\.py", line \d+, in forward\n\s*(.*)')


def _recorded_stage(node: onnx.NodeProto) -> str | None:
    """The stage the exporter's record on `node` names, or None without a record."""
    props = {p.key: p.value for p in node.metadata_props}
    match = _FORWARD_LINE.search(props.get("pkg.torch.onnx.stack_trace", ""))
    if match is None:
        return None
    statement = match.group(1)
    stage = next((s for call, s in _STATEMENTS if call in statement), OUTPUTS)
    hierarchy = props.get("pkg.torch.onnx.class_hierarchy")
    classes = [c.rsplit(".", 1)[-1] for c in ast.literal_eval(hierarchy)] if hierarchy else []
    return next((_MODULES[c] for c in classes if c in _MODULES), stage)


def node_stages(model: onnx.ModelProto) -> dict[str, str]:
    """Node name -> stage (one of STAGES) for every node of the top-level graph.

    Within the patch stream, the nodes that feed the patch backbone (directly or through
    unrecorded nodes) are the crop and the rest is fusion (pooling patch maps to tokens and
    the fused update broadcast back).
    """
    graph = model.graph
    stages = {node.name: _recorded_stage(node) for node in graph.node}
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    todo = [n for n in graph.node if stages[n.name] == PATCH_BACKBONE]
    seen: set[str] = set()
    while todo:  # walk up from the patch backbone through the patch stream's own nodes
        for name in todo.pop().input:
            source = producer.get(name)
            if source is None or source.name in seen or stages[source.name] not in (FUSION, None):
                continue
            seen.add(source.name)
            if stages[source.name] == FUSION:
                stages[source.name] = CROP
            todo.append(source)
    for _ in range(len(graph.node)):  # unrecorded nodes: a reader's stage, else a writer's
        missing = [n for n in graph.node if stages[n.name] is None]
        if not missing:
            break
        for node in missing:
            near = [stages[c.name] for out in node.output for c in consumers.get(out, [])]
            near += [stages[producer[i].name] for i in node.input if i in producer]
            stages[node.name] = next((s for s in near if s is not None), None)
    return {name: stage or OTHER for name, stage in stages.items()}
