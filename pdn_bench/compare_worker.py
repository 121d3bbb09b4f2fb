"""One method of `pdn-bench compare` over one set's frames, in a fresh process:
`python -m pdn_bench.compare_worker JOB.json` writes JOB.out.json. It imports no torch, so
its peak resident memory (VmHWM) is what deployment would need."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pdn_bench.measure import peak_rss_mb
from pdn_bench.sahi_model import SAHI_SETTINGS, PdnSliceModel, sliced_detections
from pdn_ros.image_convert import copy_planar, decode_compressed
from pdn_runtime import Backend, StreamRunner, create_backend

Step = Callable[[np.ndarray, bool], tuple[np.ndarray, ...]]


def _stream_step(backend: Backend) -> Step:
    """One frame of a camera stream: the frame into the stream runner's planar buffer, then
    the runner (state reset at a new video); returns boxes, scores, labels."""
    runner = StreamRunner(backend)

    def step(rgb: np.ndarray, new_video: bool) -> tuple[np.ndarray, ...]:
        copy_planar(rgb, "rgb8", runner.image[0])
        found = runner.step(new_stream=new_video)
        return found.boxes, found.scores, found.labels

    return step


def worker(job: dict[str, Any]) -> dict[str, Any]:
    """Run one method over the frames in this (fresh) process: an untimed warm-up frame,
    then every frame timed from the decoded RGB frame to the detections."""
    backend = create_backend("onnxruntime", job["model"], device="cpu", threads=job["threads"])
    sahi_model = None
    if job["method"] in SAHI_SETTINGS:
        setting = SAHI_SETTINGS[job["method"]]
        sahi_model = PdnSliceModel(backend, backend.info.class_names, setting["confidence"])

        def step(rgb: np.ndarray, new_video: bool) -> tuple[np.ndarray, ...]:
            return sliced_detections(rgb, sahi_model, job["slice"], job["overlap"], setting)
    else:
        step = _stream_step(backend)
    frames = [(Path(path), video) for path, video in job["frames"]]
    step(decode_compressed(np.fromfile(frames[0][0], np.uint8)), True)
    detections, latencies, inference, previous = [], [], [], object()
    for path, video in frames:
        rgb = decode_compressed(np.fromfile(path, np.uint8))
        spent = sahi_model.inference_s if sahi_model else 0.0
        start = time.perf_counter()
        boxes, scores, labels = step(rgb, video is None or video != previous)
        latencies.append(time.perf_counter() - start)
        if sahi_model:
            inference.append(sahi_model.inference_s - spent)
        previous = video
        detections.append([boxes.tolist(), scores.tolist(), labels.tolist()])
    return {
        "latencies_s": latencies,
        "inference_s": inference,
        "detections": detections,
        "peak_rss_mb": peak_rss_mb(),
    }


def run_in_process(job: dict[str, Any], work: Path) -> dict[str, Any]:
    """Run `worker(job)` in a fresh Python process and return what it measured."""
    path = work / f"job-{job['name']}-{job['method'].replace(' ', '_')}.json"
    path.write_text(json.dumps(job))
    done = subprocess.run(
        [sys.executable, "-m", "pdn_bench.compare_worker", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{job['method']} at {job['name']} failed:\n{done.stderr[-3000:]}")
    return json.loads(path.with_suffix(".out.json").read_text())


def _main(job_file: Path) -> None:
    """`python -m pdn_bench.compare_worker JOB.json`: run the job, write JOB.out.json."""
    measured = worker(json.loads(job_file.read_text()))
    job_file.with_suffix(".out.json").write_text(json.dumps(measured))


if __name__ == "__main__":
    _main(Path(sys.argv[1]))
