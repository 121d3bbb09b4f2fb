"""Shared helpers of the pdn_node tests: a tiny exported model, raw image messages in every
encoding, an in-process node, spinning until something happened, and child processes with
their output in a log file."""

from __future__ import annotations

import subprocess
import time
from array import array
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from pdn_tiny import HEIGHT, WIDTH, tiny_model

from pdn_ros import launcher
from pdn_ros.stats import status_values

REPO = Path(__file__).resolve().parent.parent
INSTALLED_LIB = REPO / "install" / "pdn_ros" / "lib" / "pdn_ros"
DEMO_MODEL = REPO / "models" / "pdn-s-synth4k-3840x2160.onnx"
TINY_SIZE = (HEIGHT, WIDTH)


def tiny_onnx(factory: pytest.TempPathFactory, batch: int = 1) -> Path:
    """The tiny model (320x192) exported once per test session and batch."""
    from pdn_model.export import to_onnx

    path = factory.getbasetemp() / f"pdn_node_tiny_b{batch}.onnx"
    if not path.exists():
        to_onnx(tiny_model(seed=1), path, batch=batch)
    return path


def diagnostics_values(messages: list[Any], camera: str) -> dict[str, str]:
    """The key-value pairs of the newest /diagnostics status of one camera (hardware_id)."""
    for message in reversed(messages):
        values = status_values(message, camera)
        if values is not None:
            return values
    return {}


def installed(executable: str) -> Path:
    """An installed console script; fails with the command that installs it."""
    path = INSTALLED_LIB / executable
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make setup` (colcon build) first")
    return path


def raw_message(
    pixels: np.ndarray, encoding: str, stamp_ns: int = 0, padding: int = 0, bigendian: bool = False
) -> Any:
    """A sensor_msgs/Image of an H x W x C array (C = 1 for mono) with `padding` extra bytes
    at the end of every row."""
    from sensor_msgs.msg import Image

    height, width = pixels.shape[:2]
    if pixels.dtype == np.uint16:
        pixels = pixels.astype(">u2" if bigendian else "<u2")
    rows = pixels.reshape(height, -1).view(np.uint8)
    padded = np.zeros((height, rows.shape[1] + padding), np.uint8)
    padded[:, : rows.shape[1]] = rows
    data = array("B")
    data.frombytes(padded.tobytes())
    msg = Image(
        height=height,
        width=width,
        encoding=encoding,
        is_bigendian=int(bigendian),
        step=padded.shape[1],
        data=data,
    )
    msg.header.stamp.sec, msg.header.stamp.nanosec = divmod(stamp_ns, 1_000_000_000)
    msg.header.frame_id = "test_optical_frame"
    return msg


def spin_until(executor: Any, done: Callable[[], bool], timeout_s: float = 10.0) -> bool:
    """Spin until `done()` or the timeout; returns done()."""
    deadline = time.monotonic() + timeout_s
    while not done() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.02)
    return done()


def make_node(context: Any, model: Path, **parameters: Any) -> Any:
    """An in-process PdnNode on `model` with parameter overrides."""
    from rclpy.parameter import Parameter

    from pdn_ros.node import PdnNode

    overrides = [Parameter("model_path", value=str(model))]
    overrides += [Parameter(name, value=value) for name, value in parameters.items()]
    return PdnNode(context=context, parameter_overrides=overrides)


def start_logged(argv: list[str], log: Path) -> subprocess.Popen[bytes]:
    """A child in its own process group (`pdn_ros.launcher.start`), its output into `log`."""
    with log.open("wb") as output:
        return launcher.start(argv, output=output)


def stop_logged(child: subprocess.Popen[bytes], log: Path) -> str:
    """Stop a child (`pdn_ros.launcher.stop`: SIGINT, SIGTERM, SIGKILL as needed) and return
    the end of its output, saying whether it had ended by itself."""
    ended = child.poll()
    launcher.stop([child])
    state = "stopped by the test" if ended is None else f"ended by itself, status {ended}"
    return f"{log.read_text(errors='replace')[-3000:]}({state})"
