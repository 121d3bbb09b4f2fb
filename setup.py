"""Build script of the ROS 2 package pdn_ros (ament_python)."""

from glob import glob
from os.path import isfile

from setuptools import find_packages, setup

PACKAGE_NAME = "pdn_ros"


def _files(pattern: str) -> list[str]:
    """Return the regular files matching a glob pattern, sorted."""
    return sorted(p for p in glob(pattern) if isfile(p))


data_files = [
    ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE_NAME}"]),
    (f"share/{PACKAGE_NAME}", ["package.xml"]),
]
for folder, pattern in (("launch", "launch/*.py"), ("config", "config/*")):
    found = _files(pattern)
    if found:
        data_files.append((f"share/{PACKAGE_NAME}/{folder}", found))

setup(
    name=PACKAGE_NAME,
    version="0.1.0",
    packages=find_packages(
        include=[
            "pdn_ros",
            "pdn_ros.*",
            "pdn_model",
            "pdn_model.*",
            "pdn_runtime",
            "pdn_runtime.*",
            "training",
            "training.*",
            "pdn_bench",
            "pdn_bench.*",
        ]
    ),
    data_files=data_files,
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="PatchDriveNet maintainers",
    maintainer_email="pdn@example.com",
    description="PatchDriveNet: learned patch selection for small objects in 4K/8K frames.",
    license="Apache-2.0",
    # Test dependencies go in an extra: setuptools >= 72 ignores tests_require, and colcon
    # then silently runs no test at all.
    extras_require={"test": ["pytest"]},
    entry_points={
        "console_scripts": [
            "pdn-export = pdn_runtime.export_cli:main",
            "pdn-detect = pdn_runtime.detect_cli:main",
            "pdn-bench = pdn_bench.cli:main",
            "pdn-synth = training.synth_cli:main",
            "pdn-train = training.train:main",
            "pdn-eval = training.evaluate:main",
            "pdn-bag-eval = pdn_ros.tools.bag_eval.cli:main",
            "pdn-bag-play = pdn_ros.tools.bag_play:main",
            "pdn_node = pdn_ros.node:main",
            "pdn_synth_camera = pdn_ros.tools.synth_camera:main",
            "pdn-launch = pdn_ros.launcher:main",
        ],
    },
)
