"""Shared pytest setup: keep every ROS 2 participant on this host, and give tests a ROS context.

The DDS environment is fixed here, at import time, before any test module can import rclpy:
the repository's shared-memory-only Fast DDS profile (checked to really be SHM-only), the Fast
DDS RMW, and ROS_AUTOMATIC_DISCOVERY_RANGE=SYSTEM_DEFAULT so that the profile alone decides the
transports. (LOCALHOST would make rmw_fastrtps add a UDPv4 initial peer and unicast locator,
and Fast DDS then opens UDP sockets on 0.0.0.0 despite the SHM-only profile.) A conflicting
value already in the environment stops the run instead of being silently overridden.

rclpy is imported lazily inside the fixture, so suites that do not use ROS never load it.
"""

from __future__ import annotations

import os
import random
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from rclpy.context import Context

REPO_ROOT = Path(__file__).resolve().parent.parent
DDS_PROFILE = REPO_ROOT / "config" / "fastdds_shm.xml"

# variable -> value the tests require (set when absent, fail when different)
_REQUIRED_ENV = {
    "FASTDDS_DEFAULT_PROFILES_FILE": str(DDS_PROFILE),
    "ROS_AUTOMATIC_DISCOVERY_RANGE": "SYSTEM_DEFAULT",
    "RMW_IMPLEMENTATION": "rmw_fastrtps_cpp",
}


def _same_value(name: str, current: str, wanted: str) -> bool:
    """Tell whether an environment value already equals the required one."""
    if name == "FASTDDS_DEFAULT_PROFILES_FILE":
        return Path(current).resolve() == Path(wanted).resolve()
    return current == wanted


def _local(tag: str) -> str:
    """Strip an XML namespace from a tag."""
    return tag.rsplit("}", 1)[-1]


def _check_profile_is_shm_only(path: Path) -> None:
    """Abort unless the Fast DDS profile is a default participant profile with SHM only."""
    if not path.is_file():
        raise pytest.UsageError(f"Fast DDS profile missing: {path}")
    elements = list(ET.parse(path).getroot().iter())
    kinds = [
        child.text
        for e in elements
        if _local(e.tag) == "transport_descriptor"
        for child in e
        if _local(child.tag) == "type"
    ]
    defaults = [
        e
        for e in elements
        if _local(e.tag) == "participant" and e.get("is_default_profile") == "true"
    ]
    builtin = [e.text for e in elements if _local(e.tag) == "useBuiltinTransports"]
    if kinds != ["SHM"] or len(defaults) != 1 or builtin != ["false"]:
        raise pytest.UsageError(
            f"{path} must define exactly one SHM transport, one default participant profile and "
            f"useBuiltinTransports=false (found transports {kinds}, builtin {builtin})"
        )


def _enforce_ros_environment() -> None:
    """Set the DDS safety variables, or abort the run when they are set to something else."""
    _check_profile_is_shm_only(DDS_PROFILE)
    for name, wanted in _REQUIRED_ENV.items():
        current = os.environ.get(name)
        if current is None or current == "":
            os.environ[name] = wanted
        elif not _same_value(name, current, wanted):
            raise pytest.UsageError(
                f"{name}={current!r} but the tests must run with {wanted!r}: "
                "ROS traffic in tests must stay on this host. Unset it or use `make test`."
            )
    if os.environ.get("ROS_STATIC_PEERS"):
        raise pytest.UsageError("ROS_STATIC_PEERS is set; tests must not contact other hosts.")
    # A session-private domain keeps concurrent test runs on this host from seeing each other.
    os.environ.setdefault("ROS_DOMAIN_ID", str(random.SystemRandom().randint(1, 100)))


_enforce_ros_environment()


def pytest_report_header() -> list[str]:
    """Show the DDS settings the session runs with."""
    return [f"ROS: {name}={os.environ[name]}" for name in (*_REQUIRED_ENV, "ROS_DOMAIN_ID")]


@pytest.fixture
def ros_context() -> Iterator[Context]:
    """Yield a fresh, initialised rclpy Context for one test and shut it down afterwards."""
    import rclpy
    from rclpy.context import Context
    from rclpy.signals import SignalHandlerOptions

    context = Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    try:
        yield context
    finally:
        rclpy.try_shutdown(context=context)
        context.destroy()
