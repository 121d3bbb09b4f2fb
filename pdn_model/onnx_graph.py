"""ONNX graph tools that need no torch: TensorRT rule check, the ONNX Runtime input-cast
rewrite, and the model metadata stored in an exported file.
"""

from __future__ import annotations

import json

import onnx
import onnx.inliner
from onnx import TensorProto, numpy_helper

from pdn_model.config import TENSORRT_MAX_TOPK

METADATA_PREFIX = "pdn."
# Ops that only move or select elements: casting before or after them gives equal results.
DATA_MOVEMENT_OPS = frozenset(
    {"Reshape", "Slice", "Gather", "Squeeze", "Unsqueeze", "Flatten", "Transpose", "Identity",
     "Expand"}
)


def _constant_values(graph: onnx.GraphProto) -> dict[str, object]:
    """Values of initializers and Constant nodes, by tensor name."""
    values: dict[str, object] = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def check_tensorrt_rules(model: onnx.ModelProto) -> list[str]:
    """Violations of the TensorRT build rules of docs/model.md (empty: buildable).

    Rules: uint8 only as a graph input or output, and an input only feeds Cast nodes; no
    AffineGrid; no antialiased Resize; every TopK has a constant K < 3840.
    """
    model = onnx.inliner.inline_local_functions(model)
    model = onnx.shape_inference.infer_shapes(model)
    graph = model.graph
    problems: list[str] = []
    io_names = {v.name for v in graph.input} | {v.name for v in graph.output}
    for value in list(graph.value_info) + list(graph.output):
        if value.type.tensor_type.elem_type == TensorProto.UINT8 and value.name not in io_names:
            problems.append(f"uint8 tensor inside the graph: {value.name}")
    for init in graph.initializer:
        if init.data_type == TensorProto.UINT8:
            problems.append(f"uint8 initializer: {init.name}")
    uint8_inputs = {
        v.name for v in graph.input if v.type.tensor_type.elem_type == TensorProto.UINT8
    }
    constants = _constant_values(graph)
    for node in graph.node:
        label = f"{node.op_type} node {node.name or node.output[0]}"
        if node.op_type != "Cast" and uint8_inputs.intersection(node.input):
            problems.append(f"{label} reads a uint8 graph input directly (cast it first)")
        if node.op_type == "AffineGrid":
            problems.append(f"{label}: TensorRT has no AffineGrid")
        if node.op_type == "Resize":
            for attr in node.attribute:
                if attr.name == "antialias" and attr.i:
                    problems.append(f"{label}: antialiased Resize")
        if node.op_type == "TopK":
            k = constants.get(node.input[1])
            if k is None:
                problems.append(f"{label}: K is not a constant")
            elif int(k.reshape(-1)[0]) >= TENSORRT_MAX_TOPK:
                problems.append(f"{label}: K={int(k.reshape(-1)[0])} >= {TENSORRT_MAX_TOPK}")
    return problems


def sink_input_cast(model: onnx.ModelProto, input_name: str = "image") -> onnx.ModelProto:
    """Copy of `model` in which the float Cast of the uint8 input runs after the
    data-movement ops (Reshape, Slice, Gather, ...) that follow it.

    The exported graph casts the whole frame at once, as TensorRT requires; on a CPU that
    cast writes 4 bytes for every full-resolution pixel although the model reads only a
    small share of them. Casting uint8 to float is exact, so moving it past ops that only
    select elements leaves every output bit-identical.
    """
    model = onnx.ModelProto.FromString(model.SerializeToString())
    graph = model.graph
    casts = [n for n in graph.node if n.op_type == "Cast" and n.input[0] == input_name]
    if len(casts) != 1:
        raise ValueError(f"expected one Cast of input {input_name!r}, found {len(casts)}")
    cast = casts[0]
    to_type = next(a.i for a in cast.attribute if a.name == "to")
    source = {cast.output[0]: input_name}  # still-uint8 tensor -> its name after the rewrite
    float_of: dict[str, str] = {}
    nodes: list[onnx.NodeProto] = []
    for node in graph.node:
        if node is cast:
            continue
        passes_through = node.op_type in DATA_MOVEMENT_OPS and node.input[0] in source
        for i, name in enumerate(node.input):
            if name not in source:
                continue
            if passes_through and i == 0:
                node.input[0] = source[name]
                continue
            if name not in float_of:
                float_of[name] = f"{name}__as_float"
                nodes.append(
                    onnx.helper.make_node(
                        "Cast", [source[name]], [float_of[name]], to=to_type,
                        name=f"{name}__sunk_cast",
                    )
                )
            node.input[i] = float_of[name]
        if passes_through:
            source.update({out: out for out in node.output})
        nodes.append(node)
    if any(out.name in source for out in graph.output):
        raise ValueError("a graph output would become uint8; refusing to rewrite")
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [v for v in graph.value_info if v.name not in source]
    del graph.value_info[:]
    graph.value_info.extend(kept)
    return model


def write_metadata(model: onnx.ModelProto, metadata: dict[str, object]) -> None:
    """Store JSON-encoded values as `pdn.<key>` metadata properties."""
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key = METADATA_PREFIX + key
        entry.value = json.dumps(value)


def read_metadata(model: onnx.ModelProto) -> dict[str, object]:
    """The `pdn.<key>` metadata of an exported model, decoded."""
    return {
        p.key[len(METADATA_PREFIX) :]: json.loads(p.value)
        for p in model.metadata_props
        if p.key.startswith(METADATA_PREFIX)
    }
