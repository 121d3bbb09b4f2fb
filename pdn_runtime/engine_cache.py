"""TensorRT engine cache: one engine file per key, a JSON sidecar that records the key and the
engine's SHA-256, and the rebuild rules. Needs no TensorRT: the build and deserialize steps
are passed in, so the logic is testable with fakes.

Layout of a cache folder (default `$XDG_CACHE_HOME/pdn/engines`, else `~/.cache/pdn/engines`):

    <onnx stem>-<key digest[:16]>.engine        the serialized engine
    <onnx stem>-<key digest[:16]>.engine.json   sidecar: key, engine SHA-256, ModelInfo
    timing-<gpu>-sm<cc>-trt<version>.cache      TensorRT timing cache, shared by every model
                                                built on that GPU with that TensorRT

An engine is rebuilt when its file or sidecar is missing or unreadable, when the recorded key
differs from the wanted one (GPU, compute capability, TensorRT version, precision, input
shape, ONNX SHA-256), when the file's SHA-256 differs from the recorded one (truncated or
modified), or when TensorRT cannot deserialize it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from pdn_runtime.errors import BackendError, ModelFileError
from pdn_runtime.interface import ModelInfo

log = logging.getLogger(__name__)

CACHE_FORMAT = 1
Engine = TypeVar("Engine")


@dataclass(frozen=True)
class EngineKey:
    """Everything a serialized TensorRT engine depends on: any change needs a new build."""

    gpu_name: str
    compute_capability: str  # "major.minor", e.g. "8.7"
    tensorrt_version: str
    precision: str  # "fp16" or "fp32"
    input_shape: tuple[int, ...]  # the image input [B,3,H,W]
    onnx_sha256: str

    def to_dict(self) -> dict[str, object]:
        """Plain JSON types."""
        data = dataclasses.asdict(self)
        data["input_shape"] = list(self.input_shape)
        return data

    def digest(self) -> str:
        """SHA-256 of the canonical JSON form of the key."""
        text = json.dumps(self.to_dict(), sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def differences(self, recorded: dict[str, object]) -> list[str]:
        """'field: recorded -> wanted' for every field where a recorded key differs."""
        return [
            f"{name}: {recorded.get(name)!r} -> {value!r}"
            for name, value in self.to_dict().items()
            if recorded.get(name) != value
        ]


def file_sha256(path: Path) -> str:
    """SHA-256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/pdn/engines`, or `~/.cache/pdn/engines`."""
    root = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(root) / "pdn" / "engines"


def cached_engine_path(cache_dir: Path, onnx_path: Path, key: EngineKey) -> Path:
    """Where the engine of `onnx_path` for `key` lives in a cache folder."""
    return Path(cache_dir) / f"{Path(onnx_path).stem}-{key.digest()[:16]}.engine"


def sidecar_path(engine_path: Path) -> Path:
    """The JSON sidecar next to an engine file."""
    return engine_path.with_name(engine_path.name + ".json")


def timing_cache_path(directory: Path, key: EngineKey) -> Path:
    """The timing cache for the key's GPU and TensorRT version in `directory` (TensorRT's
    timings are only valid on the device and version that measured them)."""
    gpu = re.sub(r"[^A-Za-z0-9]+", "-", key.gpu_name).strip("-").lower() or "gpu"
    cc = key.compute_capability.replace(".", "")
    return Path(directory) / f"timing-{gpu}-sm{cc}-trt{key.tensorrt_version}.cache"


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` through a temporary file and a rename, so readers never see a
    half-written file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read_record(engine_path: Path) -> tuple[dict | None, str | None]:
    """(sidecar record, None), or (None, why it cannot be used)."""
    sidecar = sidecar_path(engine_path)
    if not engine_path.is_file():
        return None, f"no engine file {engine_path}"
    if not sidecar.is_file():
        return None, f"no sidecar {sidecar.name}"
    try:
        record = json.loads(sidecar.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return None, f"sidecar {sidecar.name} is unreadable ({err})"
    if not isinstance(record, dict) or record.get("format") != CACHE_FORMAT:
        return None, f"sidecar {sidecar.name} is not a format-{CACHE_FORMAT} engine record"
    if file_sha256(engine_path) != record.get("engine_sha256"):
        return None, "the engine file's SHA-256 differs from its sidecar (truncated or modified)"
    return record, None


def stale_reason(engine_path: Path, key: EngineKey) -> str | None:
    """Why the engine at `engine_path` cannot serve `key` (None: it can, if it deserializes)."""
    record, problem = _read_record(engine_path)
    if record is None:
        return problem
    changed = key.differences(record.get("key") or {})
    return "key changed: " + "; ".join(changed) if changed else None


def write_engine(engine_path: Path, blob: bytes, key: EngineKey, info: ModelInfo) -> None:
    """Store an engine and then its sidecar (a crash in between leaves no sidecar, which
    `stale_reason` treats as a cache miss)."""
    atomic_write(engine_path, blob)
    record = {
        "format": CACHE_FORMAT,
        "key": key.to_dict(),
        "engine_sha256": hashlib.sha256(blob).hexdigest(),
        "model": info.to_dict(),
    }
    atomic_write(sidecar_path(engine_path), json.dumps(record, indent=2).encode())


def _deserialize(deserialize: Callable[[bytes], Engine | None], blob: bytes) -> Engine | None:
    """The engine, or None when the deserializer returns None or raises."""
    try:
        return deserialize(blob)
    except Exception as err:  # TensorRT raises its own types for some broken plans
        log.warning("engine deserialization raised %s: %s", type(err).__name__, err)
        return None


def load_or_build(
    engine_path: Path,
    key: EngineKey,
    info: ModelInfo,
    build: Callable[[], bytes],
    deserialize: Callable[[bytes], Engine | None],
) -> Engine:
    """The engine at `engine_path` if it is valid for `key`, else a fresh build stored there.

    `build` returns a serialized engine; `deserialize` turns bytes into an engine or None.
    """
    reason = stale_reason(engine_path, key)
    if reason is None:
        engine = _deserialize(deserialize, engine_path.read_bytes())
        if engine is not None:
            log.info("TensorRT engine from cache: %s", engine_path)
            return engine
        reason = "TensorRT could not deserialize it"
    log.info("building TensorRT engine %s: %s", engine_path, reason)
    blob = build()
    write_engine(engine_path, blob, key, info)
    engine = _deserialize(deserialize, blob)
    if engine is None:
        raise BackendError(f"TensorRT cannot deserialize the engine it just built: {engine_path}")
    return engine


def read_engine_file(
    engine_path: Path, gpu_name: str, compute_capability: str, tensorrt_version: str
) -> tuple[bytes, ModelInfo, str]:
    """The bytes, ModelInfo and precision of a prebuilt engine (`pdn-export --engine`),
    checked against its sidecar and against this machine's GPU and TensorRT version."""
    record, problem = _read_record(engine_path)
    if record is None:
        raise ModelFileError(
            f"{engine_path} cannot be used: {problem}; build it with "
            "pdn-export --engine, which writes the sidecar, or pass the .onnx file instead"
        )
    recorded = record.get("key") or {}
    here = {
        "gpu_name": gpu_name,
        "compute_capability": compute_capability,
        "tensorrt_version": tensorrt_version,
    }
    wrong = [
        f"{k} {recorded.get(k)!r} (here {v!r})" for k, v in here.items() if recorded.get(k) != v
    ]
    if wrong:
        raise ModelFileError(
            f"{engine_path} was built for another machine: "
            + ", ".join(wrong)
            + "; rebuild it here with pdn-export --engine, or pass the .onnx file instead"
        )
    return engine_path.read_bytes(), ModelInfo.from_dict(record["model"]), recorded["precision"]
