"""docs/parameters.md, config/pdn.yaml and the parameters the running node declares agree:
names, types, defaults, ranges and read-only flags."""

from __future__ import annotations

import json
import re

import pytest
import yaml
from node_support import REPO, make_node, tiny_onnx
from rcl_interfaces.msg import ParameterType
from rclpy.node import Node

from pdn_ros.params import PARAMETERS, RELOAD

TYPES = {
    ParameterType.PARAMETER_STRING: "string",
    ParameterType.PARAMETER_INTEGER: "integer",
    ParameterType.PARAMETER_DOUBLE: "double",
    ParameterType.PARAMETER_BOOL: "bool",
    ParameterType.PARAMETER_STRING_ARRAY: "string array",
}


def documented() -> dict[str, dict[str, str]]:
    """The rows of the table in docs/parameters.md by parameter name."""
    rows = {}
    for line in (REPO / "docs" / "parameters.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        match = re.fullmatch(r"`(\w+)`", cells[0]) if len(cells) == 6 else None
        if match:
            rows[match.group(1)] = dict(
                zip(
                    ("type", "default", "values", "changeable", "description"),
                    cells[1:],
                    strict=True,
                )
            )
    return rows


@pytest.fixture
def node_parameters(ros_context, tmp_path_factory):
    """The node's declared parameters: name -> (descriptor, value), rclpy's own left out."""
    model = tiny_onnx(tmp_path_factory)
    node = make_node(ros_context, model)
    plain = Node("pdn_plain", context=ros_context)
    try:
        rclpy_own = set(plain.list_parameters([], 0).names)
        names = sorted(set(node.list_parameters([], 0).names) - rclpy_own)
        descriptors = node.describe_parameters(names)
        values = {name: node.get_parameter(name).value for name in names}
        yield {d.name: (d, values[d.name]) for d in descriptors}, str(model)
    finally:
        node.close()
        plain.destroy_node()


def test_the_doc_lists_every_declared_parameter_with_its_type_default_and_range(node_parameters):
    declared, model = node_parameters
    rows = documented()
    assert list(rows) == [spec.name for spec in PARAMETERS]
    assert set(rows) == set(declared)
    for name, (descriptor, value) in declared.items():
        row = rows[name]
        assert row["type"] == TYPES[descriptor.type], name
        default = json.loads(row["default"].strip("`"))
        assert default == (value if name != "model_path" else "")
        if name == "model_path":
            assert value == model
        changeable = "no" if descriptor.read_only else "yes"
        changeable = "unconfigured" if name in RELOAD else changeable
        assert row["changeable"] == changeable, name
        assert row["description"] and descriptor.description, name
        ranges = descriptor.integer_range or descriptor.floating_point_range
        if ranges:
            low, high = (float(v) for v in row["values"].split(".."))
            assert (low, high) == (ranges[0].from_value, ranges[0].to_value), name


def test_the_yaml_holds_every_parameter_with_the_documented_default():
    config = yaml.safe_load((REPO / "config" / "pdn.yaml").read_text())
    values = config["pdn_node"]["ros__parameters"]
    assert list(values) == [spec.name for spec in PARAMETERS]
    rows = documented()
    for name, value in values.items():
        assert value == json.loads(rows[name]["default"].strip("`")), name
