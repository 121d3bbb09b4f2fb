"""Per-camera counters and latencies, and their /diagnostics status.

Latency is from the image's header stamp to the moment the detections are published (what
a consumer of the detections waits). It splits into TIMINGS: `transport` (stamp to the
image callback: the camera's publish, DDS, deserialising), `wait` (in the newest-frame slot
until the worker takes the frame), `convert` (to the model's RGB buffer) and `inference` (the
model call); the rest is building and publishing the messages. Percentiles cover the last
`window_s` seconds; rates cover the time since the previous snapshot.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, deque
from collections.abc import Callable

from diagnostic_msgs.msg import DiagnosticArray, DiagnosticStatus, KeyValue

from pdn_ros.image_convert import BAD_KINDS
from pdn_runtime import RESET_REASONS
from pdn_runtime.timing import percentiles_ms

TIMINGS: tuple[str, ...] = ("latency", "transport", "wait", "convert", "inference")
COUNTERS: tuple[str, ...] = (
    "received",
    "processed",
    "dropped",
    "bad_frames",
    "resets",
    "detections",
    "qos_incompatible",
)


class CameraStats:
    """Thread-safe counters of one camera: the callback, the worker and the diagnostics timer
    each write or read them from their own thread."""

    def __init__(self, window_s: float = 10.0, clock: Callable[[], float] = time.monotonic):
        self.window_s = window_s
        self.clock = clock
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter({name: 0 for name in COUNTERS})
        self.bad: Counter[str] = Counter({kind: 0 for kind in BAD_KINDS})
        self.reset_reasons: Counter[str] = Counter({reason: 0 for reason in RESET_REASONS})
        self._timings: deque[tuple[float, dict[str, float]]] = deque()  # (when, TIMINGS in s)
        self._last_time = clock()
        self._last_counts: Counter[str] = Counter(self.counts)

    def received(self, dropped: bool) -> None:
        """A frame arrived; `dropped` when it replaced one the worker had not taken."""
        with self._lock:
            self.counts["received"] += 1
            self.counts["dropped"] += int(dropped)

    def bad_frame(self, kind: str) -> None:
        """A frame was skipped as bad (a kind of BAD_KINDS)."""
        with self._lock:
            self.counts["bad_frames"] += 1
            self.bad[kind] += 1

    def reset(self, reason: str) -> None:
        """The temporal state was reset (a reason of RESET_REASONS)."""
        with self._lock:
            self.counts["resets"] += 1
            self.reset_reasons[reason] += 1

    def qos_incompatible(self) -> None:
        """A publisher with an incompatible QoS was found on an input topic."""
        with self._lock:
            self.counts["qos_incompatible"] += 1

    def processed(self, detections: int, **seconds: float) -> None:
        """A frame went through the model and its results were published; `seconds` holds
        each of TIMINGS."""
        now = self.clock()
        with self._lock:
            self.counts["processed"] += 1
            self.counts["detections"] += detections
            self._timings.append((now, seconds))
            while self._timings and self._timings[0][0] < now - self.window_s:
                self._timings.popleft()

    def snapshot(self) -> dict[str, float | int]:
        """Totals, rates since the previous snapshot, and latency percentiles of the window."""
        now = self.clock()
        with self._lock:
            counts = Counter(self.counts)
            elapsed = max(now - self._last_time, 1e-9)
            since = {name: counts[name] - self._last_counts[name] for name in COUNTERS}
            self._last_time, self._last_counts = now, counts
            recent = [t for t in self._timings if t[0] >= now - self.window_s]
            bad, resets = dict(self.bad), dict(self.reset_reasons)
        timings = {}
        for name in TIMINGS:
            p50, p99 = percentiles_ms([t[1][name] for t in recent])
            timings |= {f"{name}_p50_ms": p50, f"{name}_p99_ms": p99}
        return {
            **counts,
            **{f"bad_{kind}": n for kind, n in bad.items()},
            **{f"reset_{reason}": n for reason, n in resets.items()},
            "received_hz": since["received"] / elapsed,
            "processed_hz": since["processed"] / elapsed,
            "new_received": since["received"],
            "new_bad_frames": since["bad_frames"],
            **timings,
        }


def diagnostic_status(
    name: str, hardware_id: str, snapshot: dict[str, float | int], extra: dict[str, str]
) -> DiagnosticStatus:
    """One camera's DiagnosticStatus: WARN when no image arrived since the last report (the
    classic wrong topic or QoS mismatch) or when bad frames were skipped, else OK."""
    if snapshot["new_received"] == 0:
        level, message = DiagnosticStatus.WARN, "no images received"
        if snapshot["qos_incompatible"]:
            message += " (a publisher has an incompatible QoS: see the node log)"
    elif snapshot["new_bad_frames"]:
        level, message = DiagnosticStatus.WARN, f"{snapshot['new_bad_frames']} bad frames skipped"
    else:
        level = DiagnosticStatus.OK
        message = (
            f"{snapshot['processed_hz']:.1f} Hz processed, "
            f"latency p50 {snapshot['latency_p50_ms']:.0f} ms"
        )
    values = [KeyValue(key=key, value=_text(value)) for key, value in snapshot.items()]
    values += [KeyValue(key=key, value=value) for key, value in extra.items()]
    return DiagnosticStatus(
        level=level, name=name, message=message, hardware_id=hardware_id, values=values
    )


def status_values(message: DiagnosticArray, hardware_id: str) -> dict[str, str] | None:
    """The key-value pairs of `hardware_id`'s status in one /diagnostics message (the last,
    should it hold several), or None when it holds none: what listeners of the node read back
    from `diagnostic_status`."""
    found = None
    for status in message.status:
        if status.hardware_id == hardware_id:
            found = {kv.key: kv.value for kv in status.values}
    return found


def _text(value: float | int) -> str:
    """A diagnostics value: integers as they are, rates and times with 2 decimals."""
    return str(value) if isinstance(value, int) else f"{value:.2f}"
