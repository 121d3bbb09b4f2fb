"""Reading an exported ONNX model: clear errors for files that are missing, not ONNX, or not
a PatchDriveNet export, and its `ModelInfo` from the graph's inputs and `pdn.*` metadata.

Imports neither torch nor tensorrt.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto

from pdn_model.contract import INPUT_NAMES
from pdn_model.onnx_graph import read_metadata
from pdn_runtime.errors import ModelContractError, ModelFileError, ModelNotFoundError
from pdn_runtime.interface import INPUT_DTYPES, OUTPUT_DTYPES, ModelInfo

# The repository's trained demo model (a path relative to the repository root): the default
# of the tools that need a model, and the example in messages.
DEMO_MODEL = Path("models/pdn-s-synth4k-3840x2160.onnx")

_ONNX_DTYPES = {
    "uint8": TensorProto.UINT8,
    "float32": TensorProto.FLOAT,
    "int32": TensorProto.INT32,
}


def require_file(path: str | Path, what: str = "model") -> Path:
    """`path` as a Path if it is an existing file, else ModelNotFoundError / ModelFileError."""
    path = Path(path)
    if not path.exists():
        raise ModelNotFoundError(f"{what} file not found: {path}")
    if not path.is_file():
        raise ModelFileError(f"{what} path is not a file: {path}")
    return path


def load_onnx(path: str | Path) -> onnx.ModelProto:
    """The ONNX model in `path` (external data included), or a ModelFileError naming the file."""
    path = require_file(path)
    try:
        model = onnx.load(str(path))
    except Exception as err:  # protobuf raises DecodeError, RuntimeWarning-derived, OSError...
        raise ModelFileError(f"{path} is not an ONNX model: it does not parse ({err})") from err
    if model.ir_version == 0 or not model.graph.input or not model.graph.node:
        raise ModelFileError(f"{path} is not an ONNX model: it parses but holds no graph")
    return model


def _static_shape(value: onnx.ValueInfoProto) -> tuple[int, ...]:
    """The dims of a graph input or output (0 for a dimension that is not a fixed number)."""
    return tuple(d.dim_value for d in value.type.tensor_type.shape.dim)


def onnx_model_info(model: onnx.ModelProto, source: str | Path) -> ModelInfo:
    """The `ModelInfo` of an exported model, or ModelContractError when its inputs, dtypes or
    metadata differ from the contract (`source` names the file in messages)."""
    graph = model.graph
    names = [v.name for v in graph.input]
    if sorted(names) != sorted(INPUT_NAMES):
        raise ModelContractError(
            f"{source}: the model's inputs are {names}, but a PatchDriveNet model takes "
            f"{list(INPUT_NAMES)} (pdn_model.contract); export it with pdn-export"
        )
    dtypes = {**INPUT_DTYPES, **OUTPUT_DTYPES}
    for value in [*graph.input, *graph.output]:
        want = dtypes.get(value.name)
        got = value.type.tensor_type.elem_type
        if want is not None and got != _ONNX_DTYPES[want.name]:
            raise ModelContractError(
                f"{source}: {value.name!r} has ONNX type "
                f"{TensorProto.DataType.Name(got)}, the contract says {want.name}"
            )
    inputs = {v.name: _static_shape(v) for v in graph.input}
    outputs = {v.name: _static_shape(v) for v in graph.output}
    meta = read_metadata(model)
    if "class_names" not in meta:
        raise ModelContractError(
            f"{source}: no pdn.class_names metadata, so the labels cannot be named; "
            "export the model with pdn-export"
        )
    info = ModelInfo.from_shapes(inputs, outputs, meta["class_names"], str(source))
    claimed = {
        "input_size": [info.height, info.width],
        "batch": info.batch,
        "memory_shape": list(info.memory_shape),
        "controller_dim": info.controller_dim,
    }
    wrong = {k: (meta[k], v) for k, v in claimed.items() if k in meta and meta[k] != v}
    if wrong:
        raise ModelContractError(
            f"{source}: pdn.* metadata disagrees with the graph's input shapes "
            f"(metadata, graph): {wrong}"
        )
    return info
