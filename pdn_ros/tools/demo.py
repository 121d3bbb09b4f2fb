"""`make demo`: the synthetic 4K camera and pdn_node with the demo model, watched live.

Starts `pdn-launch model:=M backend:=onnxruntime synthetic_camera:=true` (SHM-only DDS, the
processes in their own process group, tied to this one), listens to the detections, the
debug image and /diagnostics, prints a status line every second, saves annotated frames and a
contact sheet in the output folder, and after `--seconds` stops everything it started and
prints a one-line summary. A demo tool: it imports nothing from `training`.
"""

from __future__ import annotations

import argparse
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.qos import QoSProfile, QoSReliabilityPolicy
from sensor_msgs.msg import Image

from pdn_msgs.msg import DetectionArray
from pdn_ros import launcher
from pdn_ros.messages import stamp_ns
from pdn_ros.stats import status_values

CAMERA = "camera"
SAVE_EVERY_S = 3.0
SHEET_COLUMNS = 3
SHEET_TILE = (640, 360)


class Listener(Node):
    """Counts detections (and those with a track id) and their latency, keeps the newest
    diagnostics of the camera and saves a debug image every SAVE_EVERY_S seconds."""

    def __init__(self, out: Path) -> None:
        super().__init__("pdn_demo_listener")
        self.out = out
        self.lock = threading.Lock()
        self.latencies_ms: list[float] = []
        self.detections = 0
        self.tracked = 0  # detections with a track id
        self.frames = 0
        self.diagnostics: dict[str, str] = {}
        self.saved: list[Path] = []
        self._last_save = -math.inf
        reliable = QoSProfile(depth=10, reliability=QoSReliabilityPolicy.RELIABLE)
        self.create_subscription(
            DetectionArray, f"{CAMERA}/detections", self._on_detections, reliable
        )
        self.create_subscription(Image, f"{CAMERA}/debug_image", self._on_debug, 1)
        self.create_subscription(DiagnosticArray, "/diagnostics", self._on_diagnostics, 10)

    def _on_detections(self, msg: DetectionArray) -> None:
        latency = (self.get_clock().now().nanoseconds - stamp_ns(msg.header)) / 1e6
        with self.lock:
            self.latencies_ms.append(latency)
            self.detections += len(msg.detections)
            self.tracked += sum(d.track_id != "" for d in msg.detections)
            self.frames += 1

    def _on_debug(self, msg: Image) -> None:
        now = time.monotonic()
        if now - self._last_save < SAVE_EVERY_S:
            return
        self._last_save = now
        rgb = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.width, 3)
        path = self.out / f"frame_{len(self.saved):03d}.png"
        cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
        self.saved.append(path)

    def _on_diagnostics(self, msg: DiagnosticArray) -> None:
        values = status_values(msg, CAMERA)
        if values is not None:
            with self.lock:
                self.diagnostics = values

    def status_line(self, elapsed: float, seconds: float) -> str:
        """One line of live progress."""
        with self.lock:
            d, frames, detections = dict(self.diagnostics), self.frames, self.detections
            tracked = self.tracked
            recent = self.latencies_ms[-30:]
        if not d:
            return f"[demo {elapsed:4.0f}/{seconds:.0f} s] waiting for the node..."
        latency = f"{np.median(recent):.0f} ms" if recent else "-"
        per_frame = detections / frames if frames else 0.0
        return (
            f"[demo {elapsed:4.0f}/{seconds:.0f} s] camera {float(d['received_hz']):4.1f} Hz in, "
            f"{float(d['processed_hz']):4.1f} Hz processed, {d['dropped']} dropped | latency p50 "
            f"{latency} | {per_frame:.0f} detections/frame, {tracked_share(tracked, detections)}"
        )


def tracked_share(tracked: int, detections: int) -> str:
    """The share of detections that carry a track id, as the demo prints it."""
    return (
        f"{100.0 * tracked / detections:.0f} % with a track id" if detections else "no detections"
    )


def contact_sheet(paths: list[Path], out: Path) -> Path | None:
    """Tile the saved frames (at most 9) into one PNG."""
    if not paths:
        return None
    tiles = [
        cv2.resize(cv2.imread(str(p)), SHEET_TILE, interpolation=cv2.INTER_AREA) for p in paths[-9:]
    ]
    while len(tiles) % SHEET_COLUMNS:
        tiles.append(np.zeros_like(tiles[0]))
    rows = [np.hstack(tiles[i : i + SHEET_COLUMNS]) for i in range(0, len(tiles), SHEET_COLUMNS)]
    path = out / "contact_sheet.png"
    cv2.imwrite(str(path), np.vstack(rows))
    return path


def run(model: Path, seconds: float, out: Path) -> int:
    """The demo; returns the exit status."""
    env = launcher.local_dds_environment()
    os.environ.update(env)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("frame_*.png"):
        old.unlink()
    log = (out / "launch.log").open("w")
    child = launcher.start(
        [
            str(launcher.installed("lib", launcher.PACKAGE, "pdn-launch")),
            f"model:={model}",
            "backend:=onnxruntime",
            "synthetic_camera:=true",
        ],
        env,
        output=log,
    )
    rclpy.init()
    listener = Listener(out)
    executor = SingleThreadedExecutor()
    executor.add_node(listener)
    spinner = threading.Thread(target=executor.spin, daemon=True)
    spinner.start()
    start = time.monotonic()
    try:
        while (elapsed := time.monotonic() - start) < seconds and child.poll() is None:
            line = listener.status_line(elapsed, seconds)
            print(f"\r{line:<110}" if sys.stdout.isatty() else line, end="", flush=True)
            if not sys.stdout.isatty():
                print(flush=True)
            time.sleep(1.0)
    finally:
        print(flush=True)
        launcher.stop([child])
        log.close()
        executor.shutdown()
        listener.destroy_node()
        rclpy.try_shutdown()
    sheet = contact_sheet(listener.saved, out)
    d = listener.diagnostics
    p50 = f"{np.median(listener.latencies_ms):.0f} ms" if listener.latencies_ms else "n/a"
    print(
        f"demo: {d.get('received', 0)} frames received, {d.get('processed', 0)} processed, "
        f"{listener.detections} detections "
        f"({tracked_share(listener.tracked, listener.detections)}), latency p50 {p50} "
        f"(image stamp to detections received); {len(listener.saved)} annotated frames"
        + (f" and {sheet}" if sheet else "")
        + f" in {out} (process logs: {out / 'launch.log'})"
    )
    return 0 if listener.frames else 1


def main(argv: list[str] | None = None) -> int:
    """`python -m pdn_ros.tools.demo --model M [--seconds 30] [--out out/demo]`."""
    parser = argparse.ArgumentParser(prog="pdn-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True, help="exported 4K model (.onnx)")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to run")
    parser.add_argument("--out", type=Path, default=Path("out/demo"), help="output folder")
    args = parser.parse_args(argv)
    if not args.model.is_file():
        print(
            f"demo: {args.model} is missing. It is the trained demo model exported at 4K; "
            "make it with the commands in docs/results.md (pdn-train, then pdn-export "
            "--height 2160 --width 3840), or pass DEMO_MODEL=path to make.",
            file=sys.stderr,
        )
        return 2
    signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(128 + signum))
    return run(args.model, args.seconds, args.out)


if __name__ == "__main__":
    sys.exit(main())
