"""COCO-format high-resolution data for training: frames in sequence order, clips of
consecutive frames, and augmentations that keep small objects small.

Decoded frames are cached as .npy files beside the images (`DataConfig.frame_cache`) and
read memory-mapped, so a step reads only the pixels of its crop instead of decoding a
whole 4K JPEG per frame.

Augmentations work at full resolution: a mild scale jitter, a crop (centred on a random
object most of the time, so crops of large sparse frames are rarely empty), a horizontal
flip, colour jitter, optional haze and optional camera degradations (the sensor noise, blur
and JPEG of pdn-synth's randomised looks, drawn per clip), the same for every frame of a
clip. Nothing downsamples the frame, so a 6-pixel object stays about 6 pixels (a soft or
motion blur spreads it as a real camera would).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from training.coco import read_coco
from training.config import DataConfig
from training.losses import Target
from training.synth.randomize import Look, degrade_frame, draw_look

# Share of crops centred on a random object (the rest are uniform over the frame).
OBJECT_CROP_SHARE = 0.7
# A box cut by the crop is kept when at least this share of it is inside.
MIN_VISIBLE = 0.5
MIN_SIDE = 2.0
# Source pixels read around a crop, so interpolation at its edges sees real neighbours.
CROP_MARGIN = 4
CACHE_DIR = ".frame_cache"


@dataclass(frozen=True)
class FrameRecord:
    """One annotated frame: boxes [N, 4] xyxy pixels, labels [N] 0-based (crowd boxes left out)."""

    path: Path
    image_id: int
    video_id: int | None
    frame_id: int | None
    width: int
    height: int
    boxes: np.ndarray
    labels: np.ndarray


def load_frames(annotation_path: str | Path) -> tuple[list[FrameRecord], list[str]]:
    """Frames of a COCO file in sequence order (by video, then frame id) and class names.

    Labels are the category's position among the categories sorted by id.
    """
    coco = read_coco(annotation_path)
    categories = sorted(coco.categories, key=lambda c: c.id)
    index = {c.id: i for i, c in enumerate(categories)}
    grouped = coco.annotations_by_image()
    frames = []
    for image in coco.images:
        kept = [a for a in grouped[image.id] if not a.iscrowd]
        boxes = np.array([a.bbox for a in kept], dtype=np.float32).reshape(-1, 4)
        boxes[:, 2:] += boxes[:, :2]
        frames.append(
            FrameRecord(
                path=coco.image_path(image),
                image_id=image.id,
                video_id=image.video_id,
                frame_id=image.frame_id,
                width=image.width,
                height=image.height,
                boxes=boxes,
                labels=np.array([index[a.category_id] for a in kept], dtype=np.int64),
            )
        )
    frames.sort(
        key=lambda f: (
            -1 if f.video_id is None else f.video_id,
            f.image_id if f.frame_id is None else f.frame_id,
        )
    )
    return frames, [c.name for c in categories]


def read_image(path: Path) -> np.ndarray:
    """An image file as RGB uint8 [H, W, 3]; a clear error naming a missing or corrupt file."""
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        raise ValueError(f"cannot decode image {path}: corrupt or not an image")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def cached_pixels(frame: FrameRecord) -> np.ndarray:
    """The frame as RGB uint8 [H, W, 3], memory-mapped from IMAGES/.frame_cache/ (decoded
    there on first use).

    An entry is named after the image file's name, size and modification time, so an image
    rewritten in place is decoded again. Entries are written to a temporary name and
    renamed, so data-loader workers filling the cache at once never see half a file.
    """
    if not frame.path.is_file():
        raise FileNotFoundError(f"image not found: {frame.path}")
    stat = frame.path.stat()
    folder = frame.path.parent / CACHE_DIR
    entry = folder / f"{frame.path.stem}-{stat.st_size}-{stat.st_mtime_ns}.npy"
    if not entry.is_file():
        folder.mkdir(exist_ok=True)
        tmp = entry.with_suffix(f".{os.getpid()}.tmp")
        with tmp.open("wb") as f:
            np.save(f, read_image(frame.path))
        tmp.replace(entry)
    return np.load(entry, mmap_mode="r")


def load_datasets(paths: str | tuple[str, ...]) -> tuple[list[FrameRecord], list[str]]:
    """`load_frames` over one or several COCO files with the same classes; video ids are
    renumbered so that no clip spans two datasets."""
    frames: list[FrameRecord] = []
    names: list[str] | None = None
    for path in (paths,) if isinstance(paths, str) else paths:
        more, classes = load_frames(path)
        if names is not None and classes != names:
            raise ValueError(f"{path}: classes {classes} differ from the first dataset's {names}")
        names = classes
        offset = 1 + max((f.video_id or 0 for f in frames), default=0) if frames else 0
        frames += [
            replace(f, video_id=None if f.video_id is None else f.video_id + offset) for f in more
        ]
    if names is None:
        raise ValueError("no training dataset given")
    return frames, names


def sequence_clips(frames: list[FrameRecord], length: int) -> list[list[int]]:
    """Every run of `length` consecutive frames within one video (indices into `frames`)."""
    if length == 1:
        return [[i] for i in range(len(frames))]
    if any(f.video_id is None for f in frames):
        raise ValueError(
            f"clip_length={length} needs video ids on every image; this dataset has images "
            "without one (use clip_length: 1)"
        )
    clips = []
    start = 0
    for end in range(1, len(frames) + 1):
        if end == len(frames) or frames[end].video_id != frames[start].video_id:
            clips += [list(range(s, s + length)) for s in range(start, end - length + 1)]
            start = end
    if not clips:
        raise ValueError(f"no video has {length} frames for a clip")
    return clips


@dataclass(frozen=True)
class ClipAugment:
    """Augmentation parameters drawn once per clip."""

    scale: float
    origin: tuple[float, float]  # crop origin (x, y) in original pixels
    flip: bool
    gain: np.ndarray  # per-channel multiplier
    offset: float
    haze: float = 0.0  # share of `haze_colour` blended in (lowers the contrast)
    haze_colour: np.ndarray | None = None  # RGB
    camera: Look | None = None  # noise, blur and JPEG of a randomised look (other fields unused)
    camera_seed: int = 0  # per-frame draws of the camera (noise, blur strength)


class ClipDataset(Dataset):
    """Training clips: item i is a pure function of (seed, i), so runs are reproducible
    and resumable whatever the worker layout.

    Returns (images uint8 [L, 3, h, w], [Target] * L) with (h, w) = `config.crop`.
    """

    def __init__(self, config: DataConfig, seed: int = 0):
        self.config = config
        self.seed = seed
        self.frames, self.class_names = load_datasets(config.train)
        self.clips = sequence_clips(self.frames, config.clip_length)

    def __len__(self) -> int:
        return len(self.clips)

    def draw(self, rng: np.random.Generator, first: FrameRecord) -> ClipAugment:
        """Scale, crop origin, flip, colour jitter, haze and camera for one clip."""
        cfg = self.config
        lo, hi = cfg.scale_jitter
        scale = float(np.exp(rng.uniform(np.log(lo), np.log(hi))))
        crop_h, crop_w = cfg.crop[0] / scale, cfg.crop[1] / scale  # crop size in original pixels
        if len(first.boxes) and rng.random() < OBJECT_CROP_SHARE:
            box = first.boxes[rng.integers(len(first.boxes))]
            cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
            x = cx - crop_w * rng.uniform(0.2, 0.8)
            y = cy - crop_h * rng.uniform(0.2, 0.8)
        else:
            x = rng.uniform(0, max(0.0, first.width - crop_w))
            y = rng.uniform(0, max(0.0, first.height - crop_h))
        x = float(np.clip(x, min(0.0, first.width - crop_w), max(0.0, first.width - crop_w)))
        y = float(np.clip(y, min(0.0, first.height - crop_h), max(0.0, first.height - crop_h)))
        c = cfg.color_jitter
        aug = ClipAugment(
            scale=scale,
            origin=(x, y),
            flip=cfg.flip and bool(rng.random() < 0.5),
            gain=rng.uniform(1 - c, 1 + c, size=3).astype(np.float32),
            offset=float(rng.uniform(-c, c) * 64),
        )
        if cfg.haze > 0:  # no draw without it: runs without haze stay as they were
            colour = rng.uniform(0, 255, size=3).astype(np.float32)
            aug = replace(aug, haze=float(rng.uniform(0, cfg.haze)), haze_colour=colour)
        if cfg.camera > 0 and rng.random() < cfg.camera:
            # Blur strengths are drawn in pixels at 2160 rows: scale them to this crop.
            look = draw_look(rng, first.height / 2160 * scale)
            aug = replace(aug, camera=look, camera_seed=int(rng.integers(2**31)))
        return aug

    def apply(self, frame: FrameRecord, aug: ClipAugment) -> tuple[np.ndarray, Target]:
        """Crop, scale, flip, colour and degrade one frame and its boxes."""
        out_h, out_w = self.config.crop
        x0, y0 = aug.origin
        # One affine warp: crop and scale in a single pass over only the pixels needed.
        matrix = np.array([[aug.scale, 0, -x0 * aug.scale], [0, aug.scale, -y0 * aug.scale]])
        interp = cv2.INTER_AREA if aug.scale < 1 else cv2.INTER_LINEAR
        source = cached_pixels(frame) if self.config.frame_cache else read_image(frame.path)
        # Warp only the source region the crop reads (plus a margin): the same pixels, and a
        # memory-mapped frame then reads just that region from disk.
        left = max(0, int(np.floor(x0)) - CROP_MARGIN)
        top = max(0, int(np.floor(y0)) - CROP_MARGIN)
        right = int(np.ceil(x0 + out_w / aug.scale)) + CROP_MARGIN
        bottom = int(np.ceil(y0 + out_h / aug.scale)) + CROP_MARGIN
        region = np.ascontiguousarray(source[top:bottom, left:right])
        matrix[:, 2] += matrix[:, :2] @ np.array([left, top], dtype=np.float64)
        image = cv2.warpAffine(region, matrix, (out_w, out_h), flags=interp)
        boxes = (frame.boxes - np.array([x0, y0, x0, y0], np.float32)) * aug.scale
        clipped = boxes.copy()
        clipped[:, 0::2] = boxes[:, 0::2].clip(0, out_w)
        clipped[:, 1::2] = boxes[:, 1::2].clip(0, out_h)
        area = (boxes[:, 2:] - boxes[:, :2]).prod(axis=1)
        sides = clipped[:, 2:] - clipped[:, :2]
        keep = (sides.prod(axis=1) >= MIN_VISIBLE * area) & (sides.min(axis=1) >= MIN_SIDE)
        boxes, labels = clipped[keep], frame.labels[keep]
        if aug.flip:
            image = image[:, ::-1]
            boxes = np.stack(
                [out_w - boxes[:, 2], boxes[:, 1], out_w - boxes[:, 0], boxes[:, 3]], 1
            )
        pixels = image.astype(np.float32)
        if aug.haze_colour is not None:
            pixels = pixels * (1 - aug.haze) + aug.haze_colour * aug.haze
        pixels = pixels * aug.gain + aug.offset
        if aug.camera is not None:
            rng = np.random.default_rng([aug.camera_seed, frame.image_id])
            pixels += rng.standard_normal(pixels.shape, np.float32) * aug.camera.noise
            image = degrade_frame(np.clip(pixels, 0, 255).astype(np.uint8), aug.camera, rng)
        else:
            image = np.clip(pixels, 0, 255).astype(np.uint8)
        target = Target(
            torch.from_numpy(np.ascontiguousarray(boxes, dtype=np.float32)).reshape(-1, 4),
            torch.from_numpy(labels),
        )
        return np.ascontiguousarray(image.transpose(2, 0, 1)), target

    def __getitem__(self, index: int) -> tuple[torch.Tensor, list[Target]]:
        rng = np.random.default_rng([self.seed, index])
        clip = self.clips[int(rng.integers(len(self.clips)))]
        aug = self.draw(rng, self.frames[clip[0]])
        images, targets = [], []
        for i in clip:
            image, target = self.apply(self.frames[i], aug)
            images.append(torch.from_numpy(image))
            targets.append(target)
        return torch.stack(images), targets


def collate_clips(
    batch: list[tuple[torch.Tensor, list[Target]]],
) -> tuple[torch.Tensor, list[list[Target]]]:
    """Stack clips: images [B, L, 3, h, w] and targets[b][t]."""
    return torch.stack([images for images, _ in batch]), [targets for _, targets in batch]
