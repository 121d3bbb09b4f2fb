"""COCO-format datasets with video and track fields: a streaming writer and a validating reader.

Layout written: `out_dir/annotations.json` and `out_dir/images/<video>_<frame>.jpg`. Image
`file_name`s are relative to the folder of `annotations.json`. Besides the standard COCO
fields, images carry `video_id` and `frame_id`, annotations `track_id`, and the file has a
`videos` list. Imports no torch.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import cv2

from pdn_model.config import DEFAULT_CLASSES

if TYPE_CHECKING:
    from training.synth import Frame

ANNOTATIONS_FILE = "annotations.json"
IMAGES_DIR = "images"
# JPEG quality of the datasets (COCO files, and the bags whose CompressedImages are the same
# bytes: training.rosbag_io)
JPEG_QUALITY = 95
_VIDEO_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


class CocoFormatError(ValueError):
    """A COCO file that cannot be used; the message names the file and the offending entry."""


@dataclass(frozen=True)
class CocoImage:
    """One image entry; `file_name` is relative to the annotation file's folder."""

    id: int
    file_name: str
    width: int
    height: int
    video_id: int | None = None
    frame_id: int | None = None


@dataclass(frozen=True)
class CocoAnnotation:
    """One box; `bbox` is (x, y, width, height) in pixels, `category_id` 1-based."""

    id: int
    image_id: int
    category_id: int
    bbox: tuple[float, float, float, float]
    area: float
    iscrowd: bool
    track_id: int | None = None


@dataclass(frozen=True)
class CocoCategory:
    """One class."""

    id: int
    name: str


@dataclass(frozen=True)
class CocoVideo:
    """One video (a sequence of images sharing `video_id`)."""

    id: int
    name: str


@dataclass(frozen=True)
class CocoDataset:
    """A parsed and validated COCO file."""

    path: Path
    images: list[CocoImage]
    annotations: list[CocoAnnotation]
    categories: list[CocoCategory]
    videos: list[CocoVideo]

    def image_path(self, image: CocoImage) -> Path:
        """Where an image's file is: relative to the annotation file's folder."""
        return self.path.parent / image.file_name

    def annotations_by_image(self) -> dict[int, list[CocoAnnotation]]:
        """Annotations grouped by image id (every image present, possibly with an empty list)."""
        grouped: dict[int, list[CocoAnnotation]] = {image.id: [] for image in self.images}
        for annotation in self.annotations:
            grouped[annotation.image_id].append(annotation)
        return grouped


class CocoWriter:
    """Streams frames to `out_dir/images/*.jpg`; `close()` writes `out_dir/annotations.json`.

    As a context manager it writes the annotation file only when the block succeeds, so a
    crashed run leaves no annotation file that claims to be complete.
    """

    def __init__(
        self,
        out_dir: str | os.PathLike[str],
        class_names: Sequence[str] = DEFAULT_CLASSES,
        info: dict[str, Any] | None = None,
    ) -> None:
        self.out_dir = Path(out_dir)
        (self.out_dir / IMAGES_DIR).mkdir(parents=True, exist_ok=True)
        self._videos: list[dict[str, Any]] = []
        self._images: list[dict[str, Any]] = []
        self._annotations: list[dict[str, Any]] = []
        self._categories = [{"id": i + 1, "name": name} for i, name in enumerate(class_names)]
        self._info = info or {}

    def __enter__(self) -> CocoWriter:
        """Use as a context manager."""
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        """Write the annotation file unless the block raised."""
        if kind is None:
            self.close()

    def add_video(self, name: str) -> int:
        """Start a video; returns its id. The name becomes part of image file names."""
        if not _VIDEO_NAME.fullmatch(name) or any(v["name"] == name for v in self._videos):
            raise ValueError(f"video name {name!r} is not a unique, file-name-safe name")
        self._videos.append({"id": len(self._videos) + 1, "name": name})
        return len(self._videos)

    def add_frame(self, video_id: int, frame: Frame) -> int:
        """Write a frame's JPEG (quality 95) and record its boxes; returns the image id."""
        if not 1 <= video_id <= len(self._videos):
            raise ValueError(f"unknown video id {video_id}")
        name = f"{self._videos[video_id - 1]['name']}_{frame.frame_index:06d}.jpg"
        path = self.out_dir / IMAGES_DIR / name
        bgr = cv2.cvtColor(frame.image, cv2.COLOR_RGB2BGR)
        if not cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise OSError(f"could not write {path}")
        height, width = frame.image.shape[:2]
        image_id = len(self._images) + 1
        self._images.append(
            {
                "id": image_id,
                "file_name": f"{IMAGES_DIR}/{name}",
                "width": width,
                "height": height,
                "video_id": video_id,
                "frame_id": frame.frame_index,
            }
        )
        for box, label, track, ignore in zip(
            frame.boxes.tolist(),
            frame.labels.tolist(),
            frame.track_ids.tolist(),
            frame.ignore.tolist(),
            strict=True,
        ):
            w, h = box[2] - box[0], box[3] - box[1]
            self._annotations.append(
                {
                    "id": len(self._annotations) + 1,
                    "image_id": image_id,
                    "category_id": label + 1,
                    "bbox": [box[0], box[1], w, h],
                    "area": w * h,
                    "iscrowd": int(ignore),
                    "track_id": track,
                }
            )
        return image_id

    def close(self) -> Path:
        """Write annotations.json (atomically: a temporary file, then a rename); returns it."""
        path = self.out_dir / ANNOTATIONS_FILE
        partial = path.with_suffix(".json.partial")
        document = {
            "info": self._info,
            "videos": self._videos,
            "images": self._images,
            "annotations": self._annotations,
            "categories": self._categories,
        }
        partial.write_text(json.dumps(document, separators=(",", ":")) + "\n")
        os.replace(partial, path)
        return path


def write_coco(
    out_dir: str | os.PathLike[str],
    sequences: Iterable[tuple[str, Iterable[Frame]]],
    class_names: Sequence[str] = DEFAULT_CLASSES,
) -> Path:
    """Write (video name, frames) sequences as a COCO dataset; returns the annotation file."""
    with CocoWriter(out_dir, class_names) as writer:
        for name, frames in sequences:
            video = writer.add_video(name)
            for frame in frames:
                writer.add_frame(video, frame)
    return Path(out_dir) / ANNOTATIONS_FILE


class _Entries:
    """Reads typed fields of the entries of one list, raising errors that say where."""

    def __init__(self, path: Path, document: dict[str, Any], key: str, required: bool) -> None:
        self.path, self.key = path, key
        if key not in document:
            if required:
                raise CocoFormatError(f"{path}: missing top-level key {key!r}")
            document = {key: []}
        if not isinstance(document[key], list):
            raise CocoFormatError(f"{path}: {key!r} must be a list")
        self.items: list[Any] = document[key]

    def error(self, index: int, message: str) -> CocoFormatError:
        """An error naming the file and the entry."""
        entry = self.items[index]
        ident = f" (id {entry['id']!r})" if isinstance(entry, dict) and "id" in entry else ""
        return CocoFormatError(f"{self.path}: {self.key}[{index}]{ident}: {message}")

    def get(self, index: int, name: str, kind: type, default: Any = ...) -> Any:
        """A field of an entry, checked against a type (int fields refuse bools)."""
        entry = self.items[index]
        if not isinstance(entry, dict):
            raise self.error(index, "must be an object")
        if name not in entry:
            if default is ...:
                raise self.error(index, f"missing key {name!r}")
            return default
        value = entry[name]
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            if not math.isfinite(value):
                raise self.error(index, f"{name!r} must be finite, got {value!r}")
            return float(value)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            raise self.error(index, f"{name!r} must be {kind.__name__}, got {value!r}")
        return value

    def ids(self, entries: list[Any]) -> dict[int, Any]:
        """Map id -> parsed entry, refusing duplicate ids."""
        by_id: dict[int, Any] = {}
        for index, entry in enumerate(entries):
            if entry.id in by_id:
                raise self.error(index, f"duplicate id {entry.id}")
            by_id[entry.id] = entry
        return by_id


def read_coco(path: str | os.PathLike[str]) -> CocoDataset:
    """Parse and validate a COCO annotation file (videos and track ids optional).

    Raises FileNotFoundError for a missing file and CocoFormatError, naming the file and the
    entry, for invalid JSON, missing keys, wrong types, a bbox that is not 4 numbers or has a
    negative size, and references to unknown images, categories or videos.
    """
    path = Path(path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise FileNotFoundError(f"COCO annotation file not found: {path}") from None
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise CocoFormatError(f"{path}: invalid JSON: {error}") from None
    if not isinstance(document, dict):
        raise CocoFormatError(f"{path}: top level must be a JSON object")

    rows = _Entries(path, document, "videos", required=False)
    videos = [
        CocoVideo(rows.get(i, "id", int), rows.get(i, "name", str)) for i in range(len(rows.items))
    ]
    video_ids = rows.ids(videos)

    rows = _Entries(path, document, "categories", required=True)
    categories = [
        CocoCategory(rows.get(i, "id", int), rows.get(i, "name", str))
        for i in range(len(rows.items))
    ]
    category_ids = rows.ids(categories)

    rows = _Entries(path, document, "images", required=True)
    images = []
    for i in range(len(rows.items)):
        image = CocoImage(
            id=rows.get(i, "id", int),
            file_name=rows.get(i, "file_name", str),
            width=rows.get(i, "width", int),
            height=rows.get(i, "height", int),
            video_id=rows.get(i, "video_id", int, None),
            frame_id=rows.get(i, "frame_id", int, None),
        )
        if image.width < 1 or image.height < 1:
            raise rows.error(i, f"size must be positive, got {image.width}x{image.height}")
        if image.video_id is not None and image.video_id not in video_ids:
            raise rows.error(i, f"unknown video_id {image.video_id}")
        images.append(image)
    image_ids = rows.ids(images)

    rows = _Entries(path, document, "annotations", required=True)
    annotations = []
    for i in range(len(rows.items)):
        bbox = rows.get(i, "bbox", list)
        if len(bbox) != 4:
            raise rows.error(i, f"bbox must have 4 numbers [x, y, w, h], got {len(bbox)}")
        if not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for v in bbox
        ):
            raise rows.error(i, f"bbox must hold finite numbers, got {bbox!r}")
        if bbox[2] < 0 or bbox[3] < 0:
            raise rows.error(i, f"bbox has a negative size: {bbox!r}")
        iscrowd = rows.get(i, "iscrowd", int, 0)
        if iscrowd not in (0, 1):
            raise rows.error(i, f"'iscrowd' must be 0 or 1, got {iscrowd!r}")
        annotation = CocoAnnotation(
            id=rows.get(i, "id", int),
            image_id=rows.get(i, "image_id", int),
            category_id=rows.get(i, "category_id", int),
            bbox=(float(bbox[0]), float(bbox[1]), float(bbox[2]), float(bbox[3])),
            area=rows.get(i, "area", float, float(bbox[2]) * float(bbox[3])),
            iscrowd=bool(iscrowd),
            track_id=rows.get(i, "track_id", int, None),
        )
        if annotation.image_id not in image_ids:
            raise rows.error(i, f"unknown image_id {annotation.image_id}")
        if annotation.category_id not in category_ids:
            raise rows.error(i, f"unknown category_id {annotation.category_id}")
        annotations.append(annotation)
    rows.ids(annotations)
    return CocoDataset(path, images, annotations, categories, videos)
