"""Newest-frame slots (depth 1) and the worker thread that empties them.

A camera callback only puts its message into its slot: a frame still waiting there is
replaced (and counted as dropped), so a slow model always works on the newest frame and
latency never grows with a queue. A worker serves one slot (model batch 1, one worker per
camera) or all cameras (model batch = number of cameras: frames ready together run as one
batch).
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from typing import Generic, TypeVar

Item = TypeVar("Item")


class FrameSlots(Generic[Item]):
    """`size` newest-item slots sharing one condition, so one worker can wait on all."""

    def __init__(self, size: int) -> None:
        self._items: list[Item | None] = [None] * size
        self._ready = threading.Condition()
        self._closed = False

    def put(self, index: int, item: Item) -> bool:
        """Store `item` in slot `index`; True when it replaced one not taken yet (a drop)."""
        with self._ready:
            dropped = self._items[index] is not None
            self._items[index] = item
            self._ready.notify_all()
        return dropped

    def take(self, wait_all_s: float = 0.0) -> list[tuple[int, Item]] | None:
        """Block until some slot holds an item, then wait up to `wait_all_s` for the others to
        fill, and empty the filled ones: [(slot index, item)]. None once closed."""
        with self._ready:
            self._ready.wait_for(lambda: self._closed or any(i is not None for i in self._items))
            deadline = time.monotonic() + wait_all_s
            while not self._closed and any(i is None for i in self._items):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._ready.wait(remaining)
            if self._closed:
                return None
            taken = [(index, item) for index, item in enumerate(self._items) if item is not None]
            self._items = [None] * len(self._items)
            return taken

    def close(self) -> None:
        """Wake the worker and make every later `take` return None."""
        with self._ready:
            self._closed = True
            self._ready.notify_all()


class Worker(threading.Thread):
    """A daemon thread that takes batches from `slots` and hands them to `handle` until the
    slots close; an unexpected error goes to `on_error` (as a traceback text) and the worker
    goes on with the next frame."""

    def __init__(
        self,
        name: str,
        slots: FrameSlots[Item],
        handle: Callable[[list[tuple[int, Item]]], None],
        on_error: Callable[[str], None],
        wait_all_s: float = 0.0,
    ) -> None:
        super().__init__(name=name, daemon=True)
        self.slots = slots
        self.handle = handle
        self.on_error = on_error
        self.wait_all_s = wait_all_s

    def run(self) -> None:
        """Loop: take, handle."""
        while (batch := self.slots.take(self.wait_all_s)) is not None:
            try:
                self.handle(batch)
            except Exception:  # a worker must outlive any one frame
                self.on_error(traceback.format_exc())

    def stop(self, timeout: float = 5.0) -> None:
        """Close the slots and wait for the thread to finish its frame."""
        self.slots.close()
        self.join(timeout)
