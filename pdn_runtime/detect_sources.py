"""What `pdn-detect` runs on: command-line sources (files, folders, globs) expanded into image
and video files in order, each image marked when it continues a numbered sequence
(frame_0001.jpg, frame_0002.jpg, ...), so that the temporal memory carries across its frames
and resets between unrelated images."""

from __future__ import annotations

import glob
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v")
_NUMBERED = re.compile(r"^(.*?)(\d+)$")
_DIGITS = re.compile(r"(\d+)")
_GLOB = re.compile(r"[*?[]")


@dataclass(frozen=True)
class Source:
    """One file to run: an image or a video; `continues` when the image is the next frame of
    the numbered sequence that the previous source belongs to."""

    path: Path
    kind: str  # "image" or "video"
    continues: bool = False


def natural_key(path: Path) -> list[object]:
    """Sort key that orders frame_2 before frame_10."""
    return [int(p) if p.isdigit() else p for p in _DIGITS.split(str(path))]


def media_kind(path: Path) -> str | None:
    """ "image", "video", or None for a file pdn-detect does not read."""
    suffix = path.suffix.lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    return None


def expand(specs: Sequence[str]) -> tuple[list[Path], list[str]]:
    """The files that the command-line sources name, in order (a folder's images and videos
    and a glob's matches in natural order), and one message per source that names nothing
    readable."""
    files: list[Path] = []
    problems: list[str] = []
    for spec in specs:
        path = Path(spec)
        if path.is_dir():
            found = sorted((p for p in path.iterdir() if media_kind(p)), key=natural_key)
            if not found:
                problems.append(f"{spec}: the folder holds no image or video file")
        elif path.exists():
            found = [path]
        elif _GLOB.search(spec):
            found = sorted(
                (Path(p) for p in glob.glob(spec) if media_kind(Path(p))), key=natural_key
            )
            if not found:
                problems.append(f"{spec}: no image or video file matches")
        else:
            found = []
            problems.append(f"{spec}: no such file or folder")
        files.extend(found)
    return files, problems


def sequence_position(path: Path) -> tuple[tuple[Path, str, str], int] | None:
    """(folder, name before the number, suffix) and the number of a numbered file name."""
    match = _NUMBERED.match(path.stem)
    if match is None:
        return None
    return (path.parent, match.group(1), path.suffix.lower()), int(match.group(2))


def plan(files: Sequence[Path]) -> list[Source]:
    """Sources for the files, in order. An image continues the stream of the one before it
    when both are numbered in the same folder with the same name and suffix, and its number
    is the next one; files of unknown type are kept as images (reading them says why not)."""
    sources: list[Source] = []
    previous = None
    for path in files:
        kind = media_kind(path) or "image"
        position = sequence_position(path) if kind == "image" else None
        continues = (
            position is not None
            and previous is not None
            and position[0] == previous[0]
            and position[1] == previous[1] + 1
        )
        sources.append(Source(path, kind, continues))
        previous = position
    return sources
