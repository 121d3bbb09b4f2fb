"""pdn_node as a managed node, across processes through the standard lifecycle services
(`/pdn_node/get_state`, `/pdn_node/change_state`): `pdn-launch` brings it to active; it
publishes no detections while inactive and again after re-activation; a configure with a
missing model fails with the reason; `autostart:=false` leaves it unconfigured; a reload
parameter is refused while configured; a camera's reset service answers."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from lifecycle_msgs.msg import Transition
from lifecycle_msgs.srv import ChangeState, GetState
from node_support import (
    TINY_SIZE,
    installed,
    raw_message,
    start_logged,
    stop_logged,
    tiny_onnx,
)
from rcl_interfaces.msg import Log, Parameter, ParameterType, ParameterValue
from rcl_interfaces.srv import SetParameters
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import Image
from std_srvs.srv import Trigger

from pdn_msgs.msg import DetectionArray

NODE = "/pdn_node"


class Client:
    """A test process on the node's topics and services, spun by hand."""

    def __init__(self, context: Any) -> None:
        self.node = Node("pdn_lifecycle_test", context=context)
        self.executor = SingleThreadedExecutor(context=context)
        self.executor.add_node(self.node)
        self.detections: list[DetectionArray] = []
        self.logs: list[str] = []
        qos = QoSProfile(depth=50, reliability=QoSReliabilityPolicy.RELIABLE)
        self.node.create_subscription(
            DetectionArray, "camera/detections", self.detections.append, qos
        )
        self.node.create_subscription(Log, "/rosout", lambda m: self.logs.append(m.msg), qos)
        self.images = self.node.create_publisher(Image, "camera/image", qos)
        self.stamp = 1

    def until(self, done: Callable[[], bool], timeout_s: float) -> bool:
        """Spin until `done()` or the timeout."""
        deadline = time.monotonic() + timeout_s
        while not done() and time.monotonic() < deadline:
            self.executor.spin_once(timeout_sec=0.05)
        return done()

    def call(
        self,
        srv_type: Any,
        name: str,
        request: Any,
        timeout_s: float = 60.0,
        resend_s: float | None = None,
    ) -> Any:
        """Call a service of the node and wait for the answer. With `resend_s` (idempotent
        requests only), a request left unanswered that long is sent again: discovery may
        still list the service of a node an earlier test stopped, and a request sent to it
        is lost."""
        client = self.node.create_client(srv_type, name)
        deadline = time.monotonic() + timeout_s
        assert self.until(client.service_is_ready, timeout_s), f"no service {name}"
        future = client.call_async(request)
        while not self.until(future.done, resend_s or timeout_s):
            assert resend_s is not None and time.monotonic() < deadline, f"{name} did not answer"
            client.remove_pending_request(future)
            future = client.call_async(request)
        self.node.destroy_client(client)
        return future.result()

    def state(self) -> str:
        """The node's lifecycle state label."""
        request = GetState.Request()
        return self.call(GetState, f"{NODE}/get_state", request, resend_s=5.0).current_state.label

    def change(self, transition: int) -> bool:
        """Ask for a transition; whether it succeeded."""
        request = ChangeState.Request()
        request.transition.id = transition
        return self.call(ChangeState, f"{NODE}/change_state", request).success

    def frames_answered(self, frames: int, wait_s: float) -> int:
        """Publish `frames` small frames (0.1 s apart) and count the detections that come
        back for them within `wait_s` after the last."""
        before = len(self.detections)
        pixels = np.random.default_rng(0).integers(0, 255, (*TINY_SIZE, 3), np.uint8)
        for _ in range(frames):
            self.stamp += 1
            self.images.publish(raw_message(pixels, "rgb8", self.stamp * 100_000_000))
            self.until(lambda: False, 0.1)
        self.until(lambda: len(self.detections) - before >= frames, wait_s)
        return len(self.detections) - before

    def close(self) -> None:
        self.executor.shutdown()
        self.node.destroy_node()


@pytest.fixture
def client(ros_context: Any) -> Iterator[Client]:
    """A Client, destroyed after the test."""
    made = Client(ros_context)
    yield made
    made.close()


def launch(tmp_path: Path, *arguments: str) -> subprocess.Popen[bytes]:
    """`pdn-launch` with `arguments`, its output into tmp_path/launch.log."""
    return start_logged(
        [sys.executable, str(installed("pdn-launch")), *arguments], tmp_path / "launch.log"
    )


def string_parameter(name: str, value: str) -> SetParameters.Request:
    """A SetParameters request for one string parameter."""
    request = SetParameters.Request()
    request.parameters = [
        Parameter(
            name=name,
            value=ParameterValue(type=ParameterType.PARAMETER_STRING, string_value=value),
        )
    ]
    return request


def test_active_after_launch_inactive_publishes_nothing_and_reactivates(
    client: Client, tmp_path: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    model = tiny_onnx(tmp_path_factory)
    child = launch(tmp_path, f"model:={model}")
    try:
        assert client.state() == "active"
        assert client.until(lambda: client.node.count_subscribers("camera/image") > 0, 30)
        assert client.frames_answered(5, 20) >= 3

        refused = client.call(
            SetParameters, f"{NODE}/set_parameters", string_parameter("model_path", "/x.onnx")
        ).results[0]
        assert not refused.successful and "clean up the node" in refused.reason

        assert client.change(Transition.TRANSITION_DEACTIVATE)
        assert client.state() == "inactive"
        assert client.node.count_subscribers("camera/image") == 0
        assert client.frames_answered(5, 3) == 0

        reset = client.call(Trigger, "camera/reset_state", Trigger.Request())
        assert reset.success and "camera" in reset.message

        assert client.change(Transition.TRANSITION_ACTIVATE)
        assert client.state() == "active"
        assert client.until(lambda: client.node.count_subscribers("camera/image") > 0, 30)
        assert client.frames_answered(5, 20) >= 3
    finally:
        output = stop_logged(child, tmp_path / "launch.log")
    assert "Traceback" not in output, output


def test_unconfigured_without_autostart_and_a_missing_model_fails_configure(
    client: Client, tmp_path: Path
) -> None:
    missing = tmp_path / "absent.onnx"
    child = launch(tmp_path, f"model:={missing}", "autostart:=false")
    try:
        assert client.state() == "unconfigured"
        assert not client.change(Transition.TRANSITION_CONFIGURE)
        assert client.state() == "unconfigured"
        reason = f"configure failed: model file not found: {missing}"
        assert client.until(lambda: any(reason in text for text in client.logs), 10), client.logs
        assert child.poll() is None  # the node waits for a better model_path
    finally:
        output = stop_logged(child, tmp_path / "launch.log")
    assert reason in output
