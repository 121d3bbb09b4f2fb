"""keep_large_buffers: frame-sized buffers freed and allocated again reuse their pages."""

from __future__ import annotations

import subprocess
import sys

FRAME_BYTES = 3840 * 2160 * 3
# Three 4K frames alive at once, freed, allocated again: the receive path of a node holds the
# DDS buffer, the C message and the Python array of one frame at a time.
PROBE = f"""
import resource, sys
import numpy as np
from pdn_ros.allocator import keep_large_buffers
if sys.argv[1] == "keep":
    assert keep_large_buffers()
def cycle():
    frames = [np.ones({FRAME_BYTES}, np.uint8) for _ in range(3)]
    return sum(int(f[::4096].sum()) for f in frames)
for _ in range(3):
    cycle()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(5):
    cycle()
print((resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / 5)
"""


def faults_per_cycle(mode: str) -> float:
    """Minor page faults per allocate-touch-free cycle of three 4K frames, in a fresh process
    (mallopt settings are process-wide)."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE, mode], check=True, capture_output=True, text=True
    )
    return float(out.stdout)


def test_freed_frames_are_reused_without_page_faults() -> None:
    pages_per_cycle = 3 * FRAME_BYTES / 4096
    faults = faults_per_cycle("keep")
    assert faults < 0.01 * pages_per_cycle, f"{faults:.0f} page faults per cycle of 3 frames"
