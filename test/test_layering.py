"""The packages are layers and imports point down only (docs/architecture.md):

    pdn_model  <-  pdn_runtime  <-  training, pdn_ros  <-  pdn_bench

The sources are read with `ast`, so no import is executed: pdn_model imports no other project
package; pdn_runtime imports only pdn_model (never ROS) and torch or tensorrt only inside
functions; training never imports ROS, pdn_ros or pdn_bench; pdn_ros imports training only
in pdn_ros/tools, and pdn_bench never. One subprocess checks that importing pdn_runtime
really leaves torch unloaded.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PROJECT = ("pdn_model", "pdn_runtime", "training", "pdn_ros", "pdn_bench", "pdn_msgs")
ROS = ("rclpy", "pdn_msgs", "sensor_msgs", "std_msgs", "rosbags")
HEAVY = ("torch", "tensorrt")  # runtimes pdn_runtime may load only when a backend needs them


@dataclass(frozen=True)
class Rule:
    """Top-level packages a part of the tree may not import (anywhere, or at module level)."""

    never: tuple[str, ...]
    not_at_module_level: tuple[str, ...] = ()


RULES: dict[str, Rule] = {
    "pdn_model": Rule(never=tuple(p for p in PROJECT if p != "pdn_model")),
    "pdn_runtime": Rule(
        never=("training", "pdn_ros", "pdn_bench", *ROS), not_at_module_level=HEAVY
    ),
    "training": Rule(never=("pdn_ros", "pdn_bench", "rclpy", "pdn_msgs")),
    "pdn_ros/tools": Rule(never=("pdn_bench",)),
    "pdn_ros": Rule(never=("training", "pdn_bench")),
}


@dataclass(frozen=True)
class Edge:
    """One import statement: the file, its line, the top-level package, and whether it runs
    at module level (outside every function)."""

    path: Path
    line: int
    target: str
    module_level: bool


def imports(path: Path) -> list[Edge]:
    """Every absolute import of a Python file (relative ones stay inside its package)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    edges: list[Edge] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            inside = in_function or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            if isinstance(child, ast.Import):
                names = [alias.name for alias in child.names]
            elif isinstance(child, ast.ImportFrom) and child.level == 0 and child.module:
                names = [child.module]
            else:
                names = []
            for name in names:
                edges.append(Edge(path, child.lineno, name.split(".")[0], not in_function))
            visit(child, inside)

    visit(tree, False)
    return edges


def rule_of(relative: Path) -> Rule | None:
    """The most specific rule whose folder holds the file."""
    for folder in sorted(RULES, key=len, reverse=True):
        if relative.as_posix().startswith(folder + "/"):
            return RULES[folder]
    return None


def violations(root: Path) -> list[str]:
    """Every import under `root` that breaks RULES, as 'file:line imports X (why)'."""
    found = []
    for path in sorted(root.rglob("*.py")):
        relative = path.relative_to(root)
        rule = rule_of(relative)
        if rule is None:
            continue
        for edge in imports(path):
            if edge.target in rule.never:
                found.append(f"{relative}:{edge.line} imports {edge.target}")
            elif edge.module_level and edge.target in rule.not_at_module_level:
                found.append(f"{relative}:{edge.line} imports {edge.target} at module level")
    return found


def test_every_import_points_down_the_layers():
    assert violations(REPO) == []


def test_the_checker_finds_planted_violations(tmp_path: Path):
    planted = {
        "pdn_model/a.py": "from pdn_runtime import create_backend\n",
        "pdn_runtime/b.py": "import torch\n\ndef f():\n    import torch\n",
        "pdn_runtime/c.py": "def f():\n    import rclpy.node\n",
        "training/d.py": "from pdn_ros.tools import bag_eval\n",
        "pdn_ros/e.py": "import training.metrics\n",
        "pdn_ros/tools/f.py": "import training.metrics\nfrom pdn_bench import cli\n",
        "pdn_bench/g.py": "import training, pdn_ros, pdn_runtime, torch\n",
    }
    for name, text in planted.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert violations(tmp_path) == [
        "pdn_model/a.py:1 imports pdn_runtime",
        "pdn_ros/e.py:1 imports training",
        "pdn_ros/tools/f.py:2 imports pdn_bench",
        "pdn_runtime/b.py:1 imports torch at module level",
        "pdn_runtime/c.py:2 imports rclpy",
        "training/d.py:1 imports pdn_ros",
    ]


def runtime_modules() -> list[str]:
    """Every module of pdn_runtime but the torch backend, as dotted names."""
    return [
        f"pdn_runtime.{path.stem}"
        for path in sorted((REPO / "pdn_runtime").glob("*.py"))
        if path.stem not in ("__init__", "torch_backend")
    ]


def test_importing_the_runtime_loads_neither_torch_nor_ros():
    code = textwrap.dedent(
        f"""
        import importlib, sys
        for name in ["pdn_runtime", *{runtime_modules()!r}]:
            importlib.import_module(name)
        print(sorted(m for m in ("torch", "tensorrt", "rclpy", "training", "pdn_ros")
                     if m in sys.modules))
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
    assert len(runtime_modules()) > 10


@pytest.mark.parametrize("package", ["pdn_model", "pdn_runtime", "training", "pdn_ros"])
def test_each_layer_has_sources_to_check(package: str):
    assert len(list((REPO / package).rglob("*.py"))) >= 3
