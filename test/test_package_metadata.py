"""Package metadata stays consistent: package.xml, setup.py, pdn_msgs and requirements.txt."""

from __future__ import annotations

import importlib
import re
import runpy
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
import setuptools

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def setup_kwargs() -> dict[str, Any]:
    """Run setup.py with setuptools.setup replaced, returning the keyword arguments it got."""
    captured: dict[str, Any] = {}
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(ROOT)
        mp.setattr(setuptools, "setup", lambda **kwargs: captured.update(kwargs))
        runpy.run_path(str(ROOT / "setup.py"), run_name="__main__")
    assert captured, "setup.py did not call setuptools.setup"
    return captured


def _package_xml(path: Path) -> ET.Element:
    """Parse a package.xml and check it is format 3."""
    root = ET.parse(path).getroot()
    assert root.tag == "package" and root.get("format") == "3", path
    return root


def test_setup_matches_package_xml(setup_kwargs: dict[str, Any]) -> None:
    """Name and version agree between package.xml and setup.py."""
    root = _package_xml(ROOT / "package.xml")
    assert setup_kwargs["name"] == root.findtext("name") == "pdn_ros"
    assert setup_kwargs["version"] == root.findtext("version")
    assert root.findtext("export/build_type") == "ament_python"
    assert setup_kwargs["license"] == root.findtext("license")


def test_test_dependencies_in_extras(setup_kwargs: dict[str, Any]) -> None:
    """Test deps are an extra: setuptools >= 72 ignores tests_require and colcon runs nothing."""
    assert "tests_require" not in setup_kwargs
    assert "pytest" in setup_kwargs["extras_require"]["test"]


def test_ament_index_and_scripts(setup_kwargs: dict[str, Any]) -> None:
    """The ament index marker and package.xml are installed; every console script resolves."""
    data = dict(setup_kwargs["data_files"])
    assert data["share/ament_index/resource_index/packages"] == ["resource/pdn_ros"]
    assert (ROOT / "resource" / "pdn_ros").is_file()
    assert "package.xml" in data["share/pdn_ros"]
    assert "config/fastdds_shm.xml" in data["share/pdn_ros/config"]
    scripts = dict(
        (part.strip() for part in line.split("="))
        for line in setup_kwargs["entry_points"]["console_scripts"]
    )
    assert {"pdn-export", "pdn-bench", "pdn-synth", "pdn-train", "pdn-eval"} <= set(scripts)
    for name, target in scripts.items():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), name


def test_interface_package_lists_every_message() -> None:
    """pdn_msgs has the same version and generates exactly the .msg files it ships."""
    root = _package_xml(ROOT / "msg" / "package.xml")
    assert root.findtext("name") == "pdn_msgs"
    assert root.findtext("version") == _package_xml(ROOT / "package.xml").findtext("version")
    assert root.findtext("member_of_group") == "rosidl_interface_packages"
    cmake = (ROOT / "msg" / "CMakeLists.txt").read_text()
    listed = set(re.findall(r'"(msg/\w+\.msg)"', cmake))
    shipped = {f"msg/{p.name}" for p in (ROOT / "msg" / "msg").glob("*.msg")}
    assert listed == shipped


def test_requirements_pin_everything() -> None:
    """requirements.txt pins torch first and every other requirement exactly."""
    lines = [
        line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()
    ]
    reqs = [line for line in lines if line]
    assert reqs[0] == "torch==2.13.0"
    unpinned = [r for r in reqs if not re.fullmatch(r"[A-Za-z0-9._-]+(\[[a-z0-9,]+\])?==\S+", r)]
    assert not unpinned
    names = {re.split(r"[\[=]", r)[0].lower().replace("_", "-") for r in reqs}
    assert not names & {"launch", "cv-bridge"}, "packages that break this project"
