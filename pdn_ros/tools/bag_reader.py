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
    ) -> None:
        self.path = path
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

    def topic_of_type(self, msgtypes: Sequence[str], wanted: str | None, what: str) -> str:
        """The topic to read: `wanted` when given (checked), else the only topic of one of
        `msgtypes`; BagReadError naming the candidates otherwise."""
        candidates = sorted(t for t, m in self.topics.items() if m in msgtypes)
        if wanted is not None:
            if self.topics.get(wanted) not in msgtypes:
                raise BagReadError(
                    f"{self.path}: topic {wanted!r} is not a {what} topic of this bag "
                    f"({' or '.join(msgtypes)}); its topics: {self.topics}"
                )
            return wanted
        if len(candidates) != 1:
            found = "none" if not candidates else ", ".join(candidates)
            raise BagReadError(
                f"{self.path}: expected exactly one {what} topic ({' or '.join(msgtypes)}), "
                f"found {found}; name one"
            )
        return candidates[0]

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
    return Bag(path, reader.connections, lambda c: reader.messages(connections=c), None)
