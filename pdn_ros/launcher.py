"""What `launch/camera.launch.py` starts, and `pdn-launch`, which starts the same without ROS
launch tools.

The launch file and `pdn-launch` take the same arguments (ARGUMENTS) and turn them into the
same parameters with the same functions, so they cannot drift apart:

    ros2 launch pdn_ros camera.launch.py model:=models/m.onnx cameras:=front,rear rviz:=true
    pdn-launch model:=models/m.onnx cameras:=front,rear
    pdn-launch model:=models/m-1920x1080.onnx,models/m-3840x2160.onnx cameras:=side,front

`pdn-launch` runs the installed executables as child processes
(`lib/pdn_ros/pdn_node --ros-args --params-file F -p name:=value ...`), each in its own
process group and tied to the launcher's life (they get SIGTERM if it dies), forwards
SIGINT/SIGTERM to them, and stops all of them when one exits. pdn_node is a lifecycle node:
the launch file emits its configure and activate transitions when `autostart` is true;
`pdn-launch`, which has no event system, passes `autostart` on as the node's parameter, so
the node brings itself to active (or stays unconfigured).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

PACKAGE = "pdn_ros"
NODE_EXECUTABLE = "pdn_node"
NODE_NAME = "pdn_node"
CAMERA_EXECUTABLE = "pdn_synth_camera"
PARAMS_FILE = ("config", "pdn.yaml")
RVIZ_CONFIG = ("config", "pdn.rviz")
STOP_TIMEOUT_S = 10.0
_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class LaunchArgument:
    """One launch argument: name, default (as text) and description."""

    name: str
    default: str
    description: str


# Node-parameter arguments default to '' = keep the value of params_file.
ARGUMENTS: tuple[LaunchArgument, ...] = (
    LaunchArgument(
        "cameras",
        "",
        "Comma-separated camera names; camera C reads C/image (or C/image/compressed) and "
        "C/camera_info ('': params_file's cameras)",
    ),
    LaunchArgument("transport", "", "raw or compressed ('': params_file's transport)"),
    LaunchArgument(
        "model",
        "",
        "Exported model file; several, comma-separated, one per camera frame size "
        "('': params_file's model_path)",
    ),
    LaunchArgument(
        "backend", "", "auto, onnxruntime, tensorrt or torch ('': params_file's backend)"
    ),
    LaunchArgument(
        "params_file", "", "Parameter YAML of pdn_node (default: the installed config/pdn.yaml)"
    ),
    LaunchArgument(
        "synthetic_camera",
        "false",
        "Also start pdn_synth_camera: a synthetic 4K scene on every camera's topics",
    ),
    LaunchArgument("rviz", "false", "Also start rviz2 with config/pdn.rviz"),
    LaunchArgument(
        "autostart",
        "true",
        "Bring pdn_node to active (configure, activate); false: it stays unconfigured and "
        "waits for lifecycle transitions",
    ),
)
ARGUMENT_NAMES = tuple(argument.name for argument in ARGUMENTS)


def truthy(text: str) -> bool:
    """A launch argument's text as a boolean (true/1/yes/on)."""
    return text.strip().lower() in ("true", "1", "yes", "on")


def camera_names(text: str) -> list[str]:
    """'front, rear' -> ['front', 'rear']."""
    return [name.strip() for name in text.split(",") if name.strip()]


def node_parameters(values: Mapping[str, str]) -> dict[str, Any]:
    """pdn_node parameters that the launch arguments set on top of params_file."""
    parameters: dict[str, Any] = {}
    if values["cameras"]:
        parameters["cameras"] = camera_names(values["cameras"])
    for argument, parameter in (
        ("transport", "transport"),
        ("model", "model_path"),
        ("backend", "backend"),
    ):
        if values[argument]:
            parameters[parameter] = values[argument]
    return parameters


def camera_parameters(values: Mapping[str, str]) -> dict[str, Any]:
    """pdn_synth_camera parameters: the cameras and transport of the launch arguments (its
    defaults, one raw camera named 'camera', are also the node's)."""
    parameters: dict[str, Any] = {}
    if values["cameras"]:
        parameters["cameras"] = camera_names(values["cameras"])
    if values["transport"]:
        parameters["transport"] = values["transport"]
    return parameters


def parse_arguments(argv: Sequence[str]) -> dict[str, str]:
    """`name:=value` words -> every argument's value (defaults filled in); ValueError for a
    word that is not one or for an unknown name."""
    values = {argument.name: argument.default for argument in ARGUMENTS}
    for word in argv:
        name, sep, value = word.partition(":=")
        if not sep:
            raise ValueError(f"arguments look like name:=value, got {word!r}")
        if name not in values:
            raise ValueError(f"unknown argument {name!r}; known: {', '.join(ARGUMENT_NAMES)}")
        values[name] = value
    return values


def ros_args(params_file: str | None, parameters: Mapping[str, Any]) -> list[str]:
    """`--ros-args --params-file F -p name:=value ...`; values as JSON, which the ROS
    parameter parser reads as YAML (so a list stays a list and a path a string)."""
    words = ["--ros-args"]
    if params_file:
        words += ["--params-file", params_file]
    for name, value in parameters.items():
        words += ["-p", f"{name}:={json.dumps(value)}"]
    return words


def installed(*parts: str) -> Path:
    """A path inside pdn_ros's install prefix (the workspace must be sourced)."""
    from ament_index_python.packages import get_package_prefix

    return Path(get_package_prefix(PACKAGE), *parts)


def commands(values: Mapping[str, str]) -> list[tuple[str, list[str]]]:
    """(name, argv) of every process the arguments ask for, in start order."""
    share = installed("share", PACKAGE)
    params_file = values["params_file"] or str(share.joinpath(*PARAMS_FILE))
    node_params = {**node_parameters(values), "autostart": truthy(values["autostart"])}
    lib = installed("lib", PACKAGE)
    result = [(NODE_NAME, [str(lib / NODE_EXECUTABLE), *ros_args(params_file, node_params)])]
    if truthy(values["synthetic_camera"]):
        camera = [str(lib / CAMERA_EXECUTABLE), *ros_args(None, camera_parameters(values))]
        result.insert(0, (CAMERA_EXECUTABLE, camera))
    if truthy(values["rviz"]):
        rviz = shutil.which("rviz2")
        if rviz is None:
            raise FileNotFoundError("rviz:=true but rviz2 is not installed (not on PATH)")
        result.append(("rviz2", [rviz, "-d", str(share.joinpath(*RVIZ_CONFIG))]))
    return result


def local_dds_environment() -> dict[str, str]:
    """This environment with the repository's SHM-only Fast DDS profile (installed copy) and
    the settings that keep ROS traffic on this host; a conflicting value is an error."""
    wanted = {
        "FASTDDS_DEFAULT_PROFILES_FILE": str(
            installed("share", PACKAGE, "config", "fastdds_shm.xml")
        ),
        "ROS_AUTOMATIC_DISCOVERY_RANGE": "SYSTEM_DEFAULT",
        "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
    }
    env = dict(os.environ)
    for name, value in wanted.items():
        current = env.setdefault(name, value)
        if name.startswith("FASTDDS"):
            current, value = str(Path(current).resolve()), str(Path(value).resolve())
        if current != value:
            raise RuntimeError(f"{name}={current!r}: demos and benchmarks run with {value!r} only")
    if env.get("ROS_STATIC_PEERS"):
        raise RuntimeError("ROS_STATIC_PEERS is set: demos and benchmarks stay on this host")
    return env


def _die_with_parent() -> None:
    """In the child, before exec: get SIGTERM when the launcher dies (Linux prctl)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def start(
    argv: list[str], env: Mapping[str, str] | None = None, output: IO[str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a child in its own process group that dies with this process; its stdout and
    stderr go to `output` when given (else they are this process's)."""
    return subprocess.Popen(
        argv,
        env=None if env is None else dict(env),
        stdout=output,
        stderr=None if output is None else subprocess.STDOUT,
        process_group=0,
        preexec_fn=_die_with_parent,
    )


def stop(children: Sequence[subprocess.Popen[bytes]], timeout_s: float = STOP_TIMEOUT_S) -> None:
    """SIGINT to every child's process group, then SIGTERM, then SIGKILL, as each is needed."""
    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGKILL):
        alive = [child for child in children if child.poll() is None]
        if not alive:
            return
        for child in alive:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child.pid, sig)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and any(c.poll() is None for c in alive):
            time.sleep(0.05)


def run(processes: Sequence[tuple[str, list[str]]]) -> int:
    """Start the processes; on SIGINT/SIGTERM or when any exits, stop the rest. Returns the
    first non-zero exit status (a child killed by a signal counts as 128 + signal)."""
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    children: list[subprocess.Popen[bytes]] = []
    try:
        for name, argv in processes:
            children.append(start(argv))
            print(
                f"[pdn-launch] started {name} (pid {children[-1].pid}): {' '.join(argv)}",
                flush=True,
            )
        while not stopping and all(child.poll() is None for child in children):
            time.sleep(0.1)
    finally:
        stop(children)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    codes = [child.returncode for child in children]
    for (name, _), code in zip(processes, codes, strict=True):
        print(f"[pdn-launch] {name} exited with status {code}", flush=True)
    failed = [code if code >= 0 else 128 - code for code in codes if code not in (0, None)]
    return failed[0] if failed and not stopping else 0


def main(argv: list[str] | None = None) -> int:
    """`pdn-launch [name:=value ...]`: see the module docstring; `--help` lists arguments."""
    argv = sys.argv[1:] if argv is None else argv
    if any(word in ("-h", "--help") for word in argv):
        print("usage: pdn-launch [name:=value ...]\n\narguments (as for camera.launch.py):")
        for argument in ARGUMENTS:
            print(f"  {argument.name}:={argument.default!r:8} {argument.description}")
        return 0
    try:
        processes = commands(parse_arguments(argv))
    except (ValueError, FileNotFoundError, LookupError) as err:
        print(f"pdn-launch: {err}", file=sys.stderr)
        return 2
    return run(processes)


if __name__ == "__main__":
    sys.exit(main())
