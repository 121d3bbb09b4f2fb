"""launch/camera.launch.py (run here with stub `launch` / `launch_ros` modules, which cannot be
installed on this machine) starts the real executables with parameters the node declares and
files that exist, and with autostart brings the lifecycle node to active by emitting the
configure and activate transitions; `pdn-launch` starts the same commands, forwards signals
and leaves nothing running; config/pdn.rviz shows the node's topics."""

from __future__ import annotations

import json
import os
import re
import runpy
import signal
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Any

import pytest
import yaml
from lifecycle_msgs.msg import Transition
from node_support import REPO, installed, tiny_onnx

from pdn_ros import launcher
from pdn_ros.params import SPECS
from pdn_ros.tools.synth_camera import DEFAULTS as CAMERA_PARAMETERS

SHARE = Path("/opt/fake_ws/install/pdn_ros/share/pdn_ros")


class Recorded:
    """A stub launch action: remembers its constructor's arguments."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args, self.kwargs = args, kwargs


class LaunchConfiguration:
    """Stub substitution: perform(context) reads the context dict."""

    def __init__(self, name: str) -> None:
        self.name = name

    def perform(self, context: dict[str, str]) -> str:
        return context[self.name]


@pytest.fixture
def launch_file(monkeypatch) -> dict[str, Any]:
    """The launch file's globals, executed against stub launch, launch_ros and ament_index."""
    names = (
        "launch",
        "launch.actions",
        "launch.events",
        "launch.launch_description",
        "launch.substitutions",
        "launch_ros",
        "launch_ros.actions",
        "launch_ros.event_handlers",
        "launch_ros.events",
        "launch_ros.events.lifecycle",
        "ament_index_python.packages",
    )
    modules = {name: types.ModuleType(name) for name in names}
    for module, name in (
        ("launch.actions", "DeclareLaunchArgument"),
        ("launch.actions", "OpaqueFunction"),
        ("launch.actions", "EmitEvent"),
        ("launch.actions", "RegisterEventHandler"),
        ("launch.launch_description", "LaunchDescription"),
        ("launch_ros.actions", "Node"),
        ("launch_ros.actions", "LifecycleNode"),
        ("launch_ros.event_handlers", "OnStateTransition"),
        ("launch_ros.events.lifecycle", "ChangeState"),
    ):
        setattr(modules[module], name, type(name, (Recorded,), {}))
    modules["launch.events"].matches_action = lambda action: ("matches", action)
    modules["launch.substitutions"].LaunchConfiguration = LaunchConfiguration
    from ament_index_python.packages import get_package_prefix

    shares = {"pdn_ros": str(SHARE)}
    modules["ament_index_python.packages"].get_package_share_directory = shares.__getitem__
    modules["ament_index_python.packages"].get_package_prefix = get_package_prefix  # the real one
    for name, module in modules.items():
        monkeypatch.setitem(sys.modules, name, module)
    return runpy.run_path(str(REPO / "launch" / "camera.launch.py"))


def console_scripts() -> dict[str, str]:
    """setup.py's console scripts (name -> module:function), read from its text."""
    text = (REPO / "setup.py").read_text()
    return dict(re.findall(r'"([\w-]+) = ([\w.]+:\w+)"', text))


def launch(launch_file: dict[str, Any], **arguments: str) -> tuple[dict[str, str], list[Any]]:
    """Declared defaults overridden by `arguments`, and the nodes the launch file returns
    (its lifecycle events left out: `events`)."""
    declared, actions = launch_actions(launch_file, **arguments)
    return declared, [a for a in actions if type(a).__name__ in ("Node", "LifecycleNode")]


def launch_actions(launch_file: dict[str, Any], **arguments: str) -> tuple[dict, list[Any]]:
    """Declared defaults overridden by `arguments`, and every action the launch file returns."""
    description = launch_file["generate_launch_description"]()
    entities = description.args[0]
    declared = {e.args[0]: e.kwargs["default_value"] for e in entities[:-1]}
    opaque = entities[-1]
    context = {**declared, **arguments}
    return declared, opaque.kwargs["function"](context)


def test_launch_file_autostart_configures_then_activates_the_lifecycle_node(launch_file):
    _, (node, on_inactive, configure) = launch_actions(launch_file)
    assert type(node).__name__ == "LifecycleNode"
    assert node.kwargs["parameters"][1]["autostart"] is False  # the events drive it
    (handler,) = on_inactive.args
    assert handler.kwargs["target_lifecycle_node"] is node
    assert handler.kwargs["goal_state"] == "inactive"
    (activate,) = handler.kwargs["entities"]
    for action, transition in (
        (configure, Transition.TRANSITION_CONFIGURE),
        (activate, Transition.TRANSITION_ACTIVATE),
    ):
        event = action.kwargs["event"]
        assert event.kwargs["transition_id"] == transition
        assert event.kwargs["lifecycle_node_matcher"] == ("matches", node)
    _, actions = launch_actions(launch_file, autostart="false")
    assert [type(a).__name__ for a in actions] == ["LifecycleNode"]


def test_launch_file_declares_every_argument_with_the_installed_params_file(launch_file):
    declared, _ = launch(launch_file)
    assert tuple(declared) == launcher.ARGUMENT_NAMES
    assert {"cameras", "model", "params_file", "backend", "rviz"} <= set(declared)
    assert declared["params_file"] == str(SHARE / "config" / "pdn.yaml")


def test_launch_file_starts_the_real_node_with_declared_parameters(launch_file):
    scripts = console_scripts()
    _, nodes = launch(launch_file)
    (node,) = nodes
    assert node.kwargs["package"] == "pdn_ros"
    assert scripts[node.kwargs["executable"]] == "pdn_ros.node:main"
    params_file, overrides = node.kwargs["parameters"]
    assert params_file == str(SHARE / "config" / "pdn.yaml")
    assert overrides == {"autostart": False}
    assert (REPO / "config" / "pdn.yaml").is_file()
    _, nodes = launch(
        launch_file,
        model="/m.onnx",
        cameras="front, rear",
        transport="compressed",
        backend="onnxruntime",
        synthetic_camera="true",
        rviz="true",
        params_file="/p.yaml",
    )
    node, camera, rviz = nodes
    params_file, overrides = node.kwargs["parameters"]
    assert params_file == "/p.yaml"
    assert overrides == {
        "cameras": ["front", "rear"],
        "transport": "compressed",
        "model_path": "/m.onnx",
        "backend": "onnxruntime",
        "autostart": False,
    }
    assert set(overrides) <= set(SPECS)
    assert scripts[camera.kwargs["executable"]] == "pdn_ros.tools.synth_camera:main"
    (camera_overrides,) = camera.kwargs["parameters"]
    assert camera_overrides == {"cameras": ["front", "rear"], "transport": "compressed"}
    assert set(camera_overrides) <= set(CAMERA_PARAMETERS)
    assert rviz.kwargs["executable"] == "rviz2"
    assert rviz.kwargs["arguments"] == ["-d", str(SHARE / "config" / "pdn.rviz")]
    assert (REPO / "config" / "pdn.rviz").is_file()


def test_installed_files_are_where_the_launch_file_looks():
    assert (REPO / "install/pdn_ros/share/pdn_ros/config/pdn.yaml").exists()
    assert (REPO / "install/pdn_ros/share/pdn_ros/config/pdn.rviz").exists()
    assert (REPO / "install/pdn_ros/share/pdn_ros/launch/camera.launch.py").exists()


def test_pdn_launch_builds_the_same_commands_as_the_launch_file(launch_file):
    arguments = {"model": "/m.onnx", "cameras": "front,rear", "synthetic_camera": "true"}
    _, (node, camera) = launch(launch_file, **arguments)
    words = [f"{name}:={value}" for name, value in arguments.items()]
    commands = launcher.commands(launcher.parse_arguments(words))
    (camera_name, camera_argv), (node_name, node_argv) = commands
    assert (camera_name, node_name) == ("pdn_synth_camera", "pdn_node")
    assert Path(node_argv[0]) == installed("pdn_node")
    assert Path(camera_argv[0]) == installed("pdn_synth_camera")
    share = installed("pdn_node").parents[2] / "share" / "pdn_ros"
    assert node_argv[1:4] == ["--ros-args", "--params-file", str(share / "config" / "pdn.yaml")]
    pairs = [node_argv[i + 1] for i, word in enumerate(node_argv) if word == "-p"]
    parsed = {p.split(":=")[0]: yaml.safe_load(p.split(":=", 1)[1]) for p in pairs}
    # the launch file's node starts with autostart off and gets the transitions as events;
    # pdn-launch has no event system and lets the node autostart itself
    assert parsed == {**node.kwargs["parameters"][1], "autostart": True}
    off = launcher.commands(launcher.parse_arguments([*words, "autostart:=false"]))
    assert off[1][1][-2:] == ["-p", "autostart:=false"]
    camera_pairs = [camera_argv[i + 1] for i, word in enumerate(camera_argv) if word == "-p"]
    assert {p.split(":=")[0]: json.loads(p.split(":=", 1)[1]) for p in camera_pairs} == (
        camera.kwargs["parameters"][0]
    )


@pytest.mark.parametrize(
    ("words", "message"),
    [(["model"], "name:=value"), (["camera:=x"], "unknown argument 'camera'")],
)
def test_pdn_launch_refuses_bad_arguments(words, message):
    with pytest.raises(ValueError, match=message):
        launcher.parse_arguments(words)


def alive(pid: int) -> bool:
    """Whether a process exists and is not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def started_pids(output: str) -> list[int]:
    """Child pids from pdn-launch's 'started NAME (pid N)' lines."""
    return [int(pid) for pid in re.findall(r"started \S+ \(pid (\d+)\)", output)]


def read_until(child: subprocess.Popen[str], pattern: str, timeout_s: float) -> str:
    """Read a child's output lines until one matches `pattern`."""
    text, deadline = "", time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        line = child.stdout.readline()
        text += line
        if re.search(pattern, line) or (not line and child.poll() is not None):
            break
    return text


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGKILL])
def test_pdn_launch_stops_its_children_on_a_signal_and_when_killed(tmp_path_factory, stop):
    model = tiny_onnx(tmp_path_factory)
    child = subprocess.Popen(
        [sys.executable, str(installed("pdn-launch")), f"model:={model}", "synthetic_camera:=true"],
        env=os.environ.copy(),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        text = read_until(child, r"\[pdn_node\]: active", timeout_s=60)
        if "synthetic" not in text:
            text += read_until(child, r"\[pdn_synth_camera\]: 1 synthetic", timeout_s=30)
        pids = started_pids(text)
        assert len(pids) == 2 and all(alive(pid) for pid in pids), text
        child.send_signal(stop)
        child.wait(timeout=30)
        text += child.stdout.read()
        deadline = time.monotonic() + 20
        while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(alive(pid) for pid in pids), text
        if stop == signal.SIGINT:
            assert child.returncode == 0 and "Traceback" not in text, text
            assert text.count("exited with status 0") == 2
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()


def test_pdn_launch_exits_with_the_node_status_when_the_node_cannot_start(tmp_path):
    done = subprocess.run(
        [sys.executable, str(installed("pdn-launch")), f"model:={tmp_path / 'missing.onnx'}"],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "model file not found" in done.stderr + done.stdout


def test_rviz_config_shows_the_nodes_topics():
    config = yaml.safe_load((REPO / "config" / "pdn.rviz").read_text())
    manager = config["Visualization Manager"]
    displays = {d["Class"]: d for d in manager["Displays"]}
    camera = displays["rviz_default_plugins/Camera"]
    markers = displays["rviz_default_plugins/MarkerArray"]
    debug = displays["rviz_default_plugins/Image"]
    assert camera["Topic"]["Value"] == "/camera/image"
    assert camera["Image Rendering"] == "background and overlay"
    assert camera["Visibility"][markers["Name"]] is True
    assert markers["Topic"]["Value"] == "/camera/patch_markers"
    assert set(markers["Namespaces"]) == {
        "patches",
        "patch_labels",
        "detections",
        "detection_labels",
    }
    assert debug["Topic"]["Value"] == "/camera/debug_image"
    assert manager["Global Options"]["Fixed Frame"] == CAMERA_PARAMETERS["frame_id"].replace(
        "{camera}", "camera"
    )
    # The node publishes these topics reliably; the camera image is best effort (sensor data).
    assert camera["Topic"]["Reliability Policy"] == "Best Effort"
    assert (
        markers["Topic"]["Reliability Policy"] == debug["Topic"]["Reliability Policy"] == "Reliable"
    )
