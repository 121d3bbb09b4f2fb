"""Keep freed frame-sized buffers inside the process instead of handing them back to the
kernel after every frame.

rclpy builds each received image in fresh memory (the C message, then the Python array),
and glibc serves blocks that large with mmap and returns them with munmap when they are
freed, so every 4K frame is faulted in page by page again. Raising glibc's mmap threshold to
its maximum and its trim threshold well above a few frames lets the next frame reuse the
same pages (test/test_allocator.py counts the page faults).
"""

from __future__ import annotations

import ctypes

# mallopt parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc's upper bound for the mmap threshold on 64-bit: 4 MiB * sizeof(long)
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024
TRIM_THRESHOLD = 512 * 1024 * 1024


def keep_large_buffers() -> bool:
    """Serve blocks up to 32 MiB (a 4K rgb8 or bgra8 frame) from the heap and keep up to
    512 MiB of freed heap. True when glibc took both settings; False without glibc's
    `mallopt` (musl, macOS), where nothing changes."""
    mallopt = getattr(ctypes.CDLL(None), "mallopt", None)
    if mallopt is None:
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return bool(
        mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) and mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
