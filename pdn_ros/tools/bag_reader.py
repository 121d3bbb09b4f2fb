"""Reading rosbag2 bags (sqlite3 or mcap) for the replay tools, in recorded order, with what
was readable before a damaged part.

`open_bag(path)` takes a bag folder, or one `.mcap` / `.db3` file, and reads it with
`rosbags`. When the mcap index cannot be read (a recording cut short has no summary and no
footer), each `.mcap` file is read record by record from its start instead, with rosbags'
own scanning reader, so every message before the damage is still delivered. Any error while
reading becomes a `BagReadError` raised at the failing message: the messages yielded before
it are intact.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Collection, Iterator, Sequence
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from pathlib import Path

from rosbags.interfaces import Connection
from rosbags.rosbag2 import Reader, ReaderError
from rosbags.rosbag2.storage_mcap import McapReader

IMAGE_TYPES = ("sensor_msgs/msg/Image", "sensor_msgs/msg/CompressedImage")
DETECTIONS_TYPE = "pdn_msgs/msg/DetectionArray"


class BagReadError(RuntimeError):
    """The bag cannot be opened, or a message in it cannot be read (the message says which)."""


@dataclass(frozen=True)
class Message:
    """One recorded message: topic, type, log time (ns) and its serialized CDR bytes."""

    topic: str
    msgtype: str
    log_time_ns: int
    raw: bytes


class Bag:
    """An open bag: its topics and a reader of their messages in recorded order."""

    def __init__(
        self,
        path: Path,
        connections: Sequence[Connection],
        read: Callable[[Collection[Connection]], Iterator[tuple[Connection, int, bytes]]],
        recovered: str | None,
        duration_ns: int | None = None,
    ) -> None:
        self.path = path
        self.duration_ns = duration_ns  # the recorded span, when the index tells it
        self.connections = list(connections)
        self._read = read
        self.recovered = recovered  # why the index was not used, when it was not

    @property
    def topics(self) -> dict[str, str]:
        """Topic name -> message type."""
        return {c.topic: c.msgtype for c in self.connections}

    def count(self, topic: str) -> int | None:
        """Messages on `topic` according to the bag's metadata (None when unknown)."""
        total = sum(c.msgcount for c in self.connections if c.topic == topic)
        return total if total and self.recovered is None else None

    def rate(self, topic: str) -> float | None:
        """Messages per second on `topic` over the bag's recorded span (None when unknown)."""
        count = self.count(topic)
        if count is None or count < 2 or not self.duration_ns:
            return None
        return (count - 1) / (self.duration_ns / 1e9)

    def topic_of_type(
        self, msgtypes: Sequence[str], wanted: str | None, what: str, required: bool = True
    ) -> str | None:
        """The topic to read: `wanted` when given (checked), else the only topic of one of
        `msgtypes` (None when there is none and it is not `required`); BagReadError naming
        the candidates otherwise."""
        candidates = sorted(t for t, m in self.topics.items() if m in msgtypes)
        if wanted is not None:
            self._check_named(wanted, msgtypes, what)
            return wanted
        if not candidates and not required:
            return None
        if len(candidates) != 1:
            found = "none" if not candidates else ", ".join(candidates)
            raise BagReadError(
                f"{self.path}: expected exactly one {what} topic ({' or '.join(msgtypes)}), "
                f"found {found}; name one"
            )
        return candidates[0]

    def _check_named(self, wanted: str, msgtypes: Sequence[str], what: str) -> None:
        """BagReadError unless the bag has topic `wanted` with one of `msgtypes`."""
        if wanted not in self.topics:
            raise BagReadError(
                f"{self.path}: no topic {wanted!r} in this bag; its topics: "
                + ", ".join(f"{t} ({m})" for t, m in sorted(self.topics.items()))
            )
        if self.topics[wanted] not in msgtypes:
            raise BagReadError(
                f"{self.path}: topic {wanted!r} is a {self.topics[wanted]}, not a {what} "
                f"topic ({' or '.join(msgtypes)})"
            )

    def image_topic(self, wanted: str | None) -> tuple[str, str]:
        """The image topic to read and why it was chosen: `wanted` when given, else the one
        camera's stream, its raw Image topic when it is also recorded compressed (the
        image_transport name `T/compressed`: the same frames, without JPEG loss).
        BagReadError listing the streams when there is no camera or more than one."""
        if wanted is not None:
            self._check_named(wanted, IMAGE_TYPES, "image")
            return wanted, f"named with --image-topic ({self.topics[wanted]})"
        streams = camera_streams(self.topics)
        if len(streams) != 1:
            listed = "; ".join(" + ".join(f"{t} ({self.topics[t]})" for t in s) for s in streams)
            raise BagReadError(
                f"{self.path}: expected the image topics of one camera "
                f"({' or '.join(IMAGE_TYPES)}), found "
                + (f"{len(streams)} different streams: {listed}" if streams else "none")
                + "; name one with --image-topic"
            )
        chosen, *others = streams[0]
        if not others:
            return chosen, f"the bag's only image topic ({self.topics[chosen]})"
        return chosen, (
            f"raw {IMAGE_TYPES[0]} preferred over the same stream's compressed version "
            f"{others[0]} (not read)"
        )

    def messages(self, topics: Collection[str]) -> Iterator[Message]:
        """Messages of `topics` in recorded order; BagReadError at the first unreadable one."""
        connections = [c for c in self.connections if c.topic in topics]
        read = 0
        try:
            for connection, log_time, raw in self._read(connections):
                yield Message(connection.topic, connection.msgtype, log_time, bytes(raw))
                read += 1
        except Exception as err:  # any reader failure (rosbags, struct, lz4, zstd, I/O)
            raise BagReadError(
                f"{self.path}: reading failed after {read} messages of {sorted(topics)}: "
                f"{type(err).__name__}: {err}"
            ) from err


def camera_streams(topics: dict[str, str]) -> list[list[str]]:
    """Image topics (name -> type) grouped by camera stream, each group raw topic first: an
    Image topic `T` and a CompressedImage topic `T/compressed` (image_transport's name) are
    one stream; any other image topic is a stream of its own."""
    raw = sorted(t for t, m in topics.items() if m == IMAGE_TYPES[0])
    compressed = {t for t, m in topics.items() if m == IMAGE_TYPES[1]}
    streams = [[t, f"{t}/compressed"] if f"{t}/compressed" in compressed else [t] for t in raw]
    paired = {s[1] for s in streams if len(s) == 2}
    return sorted(streams + [[t] for t in sorted(compressed - paired)])


def storage_files(path: Path) -> list[Path]:
    """The .mcap files of a bag folder (or the file itself), in name order."""
    if path.is_file():
        return [path] if path.suffix == ".mcap" else []
    return sorted(path.glob("*.mcap"))


def _scanning_mcap(path: Path, stack: ExitStack) -> McapReader:
    """rosbags' McapReader set up to read `path` record by record from the start, for a file
    whose summary or footer is missing or damaged.

    McapReader's open() needs the footer; its scanning methods do not. So this opens the file
    itself, lets McapReader parse the header (it stops at the missing footer after setting
    `data_start`), takes the whole rest of the file as data and collects the schemas and
    channels with `meta_scan` up to the damage. With no chunk index, `messages()` then scans.
    """
    storage = McapReader(path)
    storage.bio = stack.enter_context(path.open("rb"))
    with suppress(ReaderError, struct.error, AssertionError):
        storage._open()  # parses the header, then fails at the missing footer
    if not storage.data_start:
        raise BagReadError(f"{path}: not an MCAP file (bad magic or header)")
    storage.chunks.clear()
    storage.data_end = path.stat().st_size
    with suppress(ReaderError, struct.error):  # stops at the damage; what came before is known
        storage.meta_scan()
    return storage


def _scan(readers: Sequence[McapReader]) -> Callable[..., Iterator[tuple[Connection, int, bytes]]]:
    """A message reader over scanning McapReaders, file after file."""

    def read(connections: Collection[Connection]) -> Iterator[tuple[Connection, int, bytes]]:
        wanted = {(c.topic, c.msgtype) for c in connections}
        for storage in readers:
            own = [c for c in storage.connections if (c.topic, c.msgtype) in wanted]
            yield from storage.messages(own)

    return read


def open_bag(path: str | Path, stack: ExitStack) -> Bag:
    """Open a bag for reading until `stack` closes; BagReadError when nothing can be read."""
    path = Path(path)
    if not path.exists():
        raise BagReadError(f"bag {path} does not exist")
    source = path
    if path.is_dir() and not (path / "metadata.yaml").is_file() and len(storage_files(path)) == 1:
        source = storage_files(path)[0]  # a recording that never wrote its metadata.yaml
    try:
        reader = Reader(source)
        reader.open()
    except (ReaderError, struct.error, OSError, ValueError) as err:
        files = storage_files(path)
        if not files:
            raise BagReadError(f"cannot open bag {path}: {err}") from err
        readers = [_scanning_mcap(f, stack) for f in files]
        connections = [c for r in readers for c in r.connections]
        if not connections:
            raise BagReadError(f"cannot open bag {path}: {err}; no topic is readable") from err
        return Bag(path, connections, _scan(readers), f"{type(err).__name__}: {err}")
    stack.callback(reader.close)
    return Bag(
        path, reader.connections, lambda c: reader.messages(connections=c), None, reader.duration
    )
