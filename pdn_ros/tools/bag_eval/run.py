"""`pdn-bag-eval`, running a bag: every image through the node's code, with its ground truth.

Every image of the bag is taken in recorded order and goes through exactly what `pdn_node`
runs per frame (`pdn_ros.frame_processor.FrameProcessor`: the node's image conversion, then
`pdn_runtime.StreamRunner` with the node's reset policy, on the backend from
`create_backend`), one frame at a time and none dropped, so the result does not depend on
replay timing. A frame the node would skip (corrupt, or of another resolution than the
model's) is skipped here too, with the reason, and the run goes on. Ground truth, when there
is any, comes from the bag's pdn_msgs/DetectionArray topic (matched to images by header
stamp) or from a COCO file (matched by frame order). A bag that turns out truncated or
corrupt ends the run with the frames read before the damage and the error.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rclpy.serialization import deserialize_message
from sensor_msgs.msg import CompressedImage, Image

from pdn_ros.debug_draw import draw
from pdn_ros.frame_processor import Arrival, CameraResult, FrameProcessor, SkippedFrame
from pdn_ros.messages import stamp_ns
from pdn_ros.params import PARAMETERS, Settings
from pdn_ros.tools.bag_eval.video import RunVideo
from pdn_ros.tools.bag_reader import DETECTIONS_TYPE, IMAGE_TYPES, Bag, BagReadError
from pdn_runtime import Stream, create_backend, options_for
from pdn_runtime.boxes import center_size_to_xyxy
from pdn_runtime.camera_motion import CameraMotion
from training.metrics import RECALL_SCORE, FrameResult
from training.rosbag_io import typestore

# training.data imports torch, so it is imported where used: the node's path itself needs no
# torch (unless the model is a checkpoint).

SAMPLE_FRAMES = 4
SAMPLE_WIDTH = 1920  # annotated samples are downscaled to at most this width
TRUTH_COLOR = (255, 255, 255)  # ground truth in the samples (RGB); detections by class


@dataclass
class FrameRow:
    """One image of the bag: where it is, what the node's path made of it, its ground truth."""

    index: int
    stamp_ns: int
    status: str  # "ok" or "skipped <kind>: <message>"
    result: CameraResult | None
    processing_s: float  # conversion + state policy + model + copying out (FrameProcessor)
    skipped: str | None = None  # why the node skipped the frame (image_convert.BAD_KINDS)
    truth: tuple[np.ndarray, np.ndarray] | None = None  # boxes xyxy [N,4], labels [N]
    truth_tracks: tuple[str, ...] | None = None  # ground-truth track ids, where it has them
    image_id: int | None = None
    view_offset: tuple[float, float] = (0.0, 0.0)  # CameraMotion.offset after this frame


@dataclass
class BagRun:
    """What reading and running a bag produced."""

    rows: list[FrameRow]
    size: tuple[int, int]  # the model's frame width and height
    class_names: tuple[str, ...]
    backend: str
    image_topic: str
    image_choice: str  # why this image topic was read
    truth_source: str | None  # None: the run has no ground truth
    samples: dict[int, np.ndarray]  # frame index -> annotated RGB picture (truth added later)
    sample_scale: float
    error: str | None
    recovered: str | None
    video: str | None  # what became of the annotated video (file and frames, or why none)


def _settings(max_detections: int, reset_gap_s: float, memory: int) -> Settings:
    """The node's settings (its parameter defaults) with every detection kept, as AP needs,
    and the given state policy."""
    values = {spec.name: spec.default for spec in PARAMETERS}
    values.update(
        score_threshold=0.0,
        max_detections=max_detections,
        reset_gap_s=reset_gap_s,
        memory_length=memory,
    )
    return Settings.from_values(values)


def truth_from_message(msg: Any) -> tuple[np.ndarray, np.ndarray]:
    """Boxes xyxy [N,4] float32 and labels [N] of a pdn_msgs/DetectionArray (rosbags object)."""
    center_size = [[d.center_x, d.center_y, d.size_x, d.size_y] for d in msg.detections]
    boxes = center_size_to_xyxy(np.array(center_size, np.float64)).astype(np.float32)
    return boxes, np.array([d.class_id for d in msg.detections], dtype=np.int64)


def truth_tracks_from_message(msg: Any) -> tuple[str, ...] | None:
    """The `track_id` of each object of a pdn_msgs/DetectionArray; None when one has none."""
    tracks = tuple(d.track_id for d in msg.detections)
    return tracks if all(tracks) else None


def _sample_indices(total: int | None) -> set[int]:
    """Frames to annotate: evenly spread over `total`, or a few early ones when unknown."""
    if total is None:
        return {0, 10, 30, 60}
    return {int(i) for i in np.linspace(0, max(total - 1, 0), SAMPLE_FRAMES).round()}


def run_bag(
    bag: Bag,
    model: Path,
    backend: str,
    threads: int,
    image_topic: str | None,
    truth_topic: str | None,
    coco: Path | None,
    limit: int | None,
    reset_gap_s: float,
    memory_length: int,
    *,
    ground_truth: bool = True,
    video: Path | None = None,
    every: int = 1,
    camera_motion: bool = True,
) -> BagRun:
    """Read the bag in recorded order and run every `every`-th image through the node's
    FrameProcessor (the others are left out, as a node that keeps up with 1/`every` of the
    camera's rate drops them). Without `ground_truth` (or when the bag has no
    DetectionArray topic and no `coco` is given) nothing is scored; `video` is where the
    annotated MP4 goes (None: no video). `camera_motion` estimates each frame's view offset
    for the tracker (TrackerSettings.camera_motion); without it every offset stays (0, 0)."""
    if every < 1:
        raise ValueError(f"every must be >= 1, got {every}")
    image_topic, image_choice = bag.image_topic(image_topic)
    if coco is None and ground_truth:
        truth_topic = bag.topic_of_type(
            (DETECTIONS_TYPE,), truth_topic, "ground-truth", required=False
        )
    else:
        truth_topic = None
    runner = create_backend(backend, model, **options_for(backend, {"threads": threads}))
    info, described = runner.info, runner.describe()
    if info.batch != 1:
        raise ValueError(f"{model} takes batch {info.batch}; evaluate with a batch-1 export")
    settings = _settings(info.output_shapes["scores"][1], reset_gap_s, memory_length)
    processor = FrameProcessor(runner, threading.Lock(), [0], [Stream(info)])
    image_type = Image if bag.topics[image_topic] == IMAGE_TYPES[0] else CompressedImage
    store = typestore()
    total = bag.count(image_topic)
    total = None if total is None else -(-total // every)  # images that will be run
    samples_at = _sample_indices(total if limit is None else min(limit, total or limit))
    scale = min(1.0, SAMPLE_WIDTH / info.width)
    movie, video_note = None, None
    if video is not None:
        try:
            rate = bag.rate(image_topic)
            movie = RunVideo(video, (info.width, info.height), rate and rate / every)
        except RuntimeError as err:
            video_note = f"not written: {err}"
    rows: list[FrameRow] = []
    truths: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    truth_tracks: dict[int, tuple[str, ...] | None] = {}
    samples: dict[int, np.ndarray] = {}
    motion = CameraMotion() if camera_motion else None  # for the tracker (tracks.py)
    last_image_time, first_stamp, error = None, None, None
    images_read = 0
    topics = [image_topic] if truth_topic is None else [image_topic, truth_topic]
    try:
        for message in bag.messages(topics):
            done = limit is not None and len(rows) >= limit
            if done and message.log_time_ns > last_image_time:
                break  # the ground truth of the last frame has had its chance to arrive
            if message.topic == truth_topic:
                msg = store.deserialize_cdr(message.raw, message.msgtype)
                truths[stamp_ns(msg.header)] = truth_from_message(msg)
                truth_tracks[stamp_ns(msg.header)] = truth_tracks_from_message(msg)
                continue
            if done:
                continue
            images_read += 1
            if (images_read - 1) % every:
                continue  # dropped, as a node at 1/every of the camera's rate drops it
            msg = deserialize_message(message.raw, image_type)
            start = time.perf_counter()  # offline, a frame arrives when it is taken
            outcome = processor.process([(0, Arrival(msg, start, 0.0))], settings)[0]
            elapsed = time.perf_counter() - start
            stamp = stamp_ns(msg.header)
            last_image_time = message.log_time_ns
            first_stamp = stamp if first_stamp is None else first_stamp
            caption = f"frame {len(rows)}  {(stamp - first_stamp) / 1e9:+.3f} s"
            if isinstance(outcome, SkippedFrame):
                kind = outcome.error.kind
                status = f"skipped {kind}: {outcome.error}"
                if len(rows) in samples_at:
                    samples_at.add(len(rows) + 1)  # the next frame is the sample instead
                rows.append(FrameRow(len(rows), stamp, status, None, elapsed, kind))
                if movie is not None:
                    movie.skipped(f"{caption}  skipped: {kind}")
                continue
            found = outcome.found
            shown = found.subset(found.scores >= RECALL_SCORE)
            if len(rows) in samples_at:
                picture = draw(processor.runner.image[0], shown, scale, info.class_names)
                samples[len(rows)] = picture
            if movie is not None:
                picture = draw(processor.runner.image[0], shown, movie.scale, info.class_names)
                reset = f"  reset: {found.reset}" if found.reset else ""
                movie.frame(picture, caption + reset)
            offset = (0.0, 0.0) if motion is None else motion.update(processor.runner.image[0])
            rows.append(FrameRow(len(rows), stamp, "ok", outcome, elapsed, view_offset=offset))
    except BagReadError as err:
        error = str(err)
    finally:
        runner.close()
        if movie is not None:
            movie.close()
            video_note = f"{movie.path.name}: {movie.frames} frames at {movie.fps:.1f} frames/s"
    class_names, source = info.class_names, None
    if coco is not None:
        class_names = _attach_coco(rows, coco)
        source = f"{coco} (matched by frame order)"
    elif truth_topic is not None:
        for row in rows:
            row.truth = truths.get(row.stamp_ns)
            row.truth_tracks = truth_tracks.get(row.stamp_ns)
        source = f"topic {truth_topic} (matched by header stamp)"
    return BagRun(
        rows,
        (info.width, info.height),
        tuple(class_names),
        described,
        image_topic,
        image_choice,
        source,
        samples,
        scale,
        error,
        bag.recovered,
        video_note,
    )


def _attach_coco(rows: list[FrameRow], coco: Path) -> list[str]:
    """Give the i-th image the i-th frame of the COCO file (sequence order); returns the
    file's class names. A frame count or size that differs is an error."""
    from training.data import load_frames

    frames, class_names = load_frames(coco)
    if len(frames) < len(rows):
        raise ValueError(
            f"{coco} has {len(frames)} images but the bag has at least {len(rows)}: frame "
            "order matching needs one COCO image per bag image"
        )
    for row, frame in zip(rows, frames, strict=False):
        found = row.result.found if row.result is not None else None
        if found is not None and (found.width, found.height) != (frame.width, frame.height):
            raise ValueError(
                f"bag frame {row.index} is {found.width}x{found.height} but COCO "
                f"image {frame.image_id} ({frame.path.name}) is {frame.width}x{frame.height}"
            )
        row.truth = (frame.boxes, frame.labels)
        row.image_id = frame.image_id
    return class_names


def frame_results(run: BagRun) -> dict[int, FrameResult]:
    """training.metrics FrameResults of the frames that have ground truth, by frame index (a
    bad frame counts with no detections, as the node publishes none for it; a frame of
    another resolution than the model's is not scored: the model was not made for it)."""
    empty = np.zeros((0, 4), np.float32)
    results = {}
    for row in run.rows:
        if row.truth is None or row.skipped == "resolution":
            continue
        found = row.result.found if row.result is not None else None
        results[row.index] = FrameResult(
            image_id=row.image_id if row.image_id is not None else row.index + 1,
            width=run.size[0],
            height=run.size[1],
            gt_boxes=row.truth[0],
            gt_labels=row.truth[1],
            boxes=found.boxes if found is not None else empty,
            scores=found.scores if found is not None else np.zeros(0, np.float32),
            labels=found.labels if found is not None else np.zeros(0, np.int64),
            patch_boxes=found.patch_boxes if found is not None else empty,
            latency_s=found.inference_s if found is not None else float("nan"),
        )
    return results
