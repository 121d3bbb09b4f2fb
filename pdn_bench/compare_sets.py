"""What `pdn-bench compare` compares, on what: the method names and colours, and the held-out
sets (the defaults made with pdn-synth when missing, or --data NAME=PATH)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

from pdn_bench.sahi_model import SAHI, SAHI_GREEDY

PDN, GLOBAL, DENSE_TILED = "patchdrivenet", "global only", "dense tiled"
METHODS = (PDN, GLOBAL, DENSE_TILED, SAHI, SAHI_GREEDY)
COLORS = {
    PDN: "tab:green",
    GLOBAL: "tab:gray",
    DENSE_TILED: "tab:red",
    SAHI: "tab:purple",
    SAHI_GREEDY: "tab:pink",
}


@dataclass(frozen=True)
class DataSet:
    """A held-out COCO set and, for the defaults, the pdn-synth arguments that make it."""

    name: str
    path: Path
    synth: tuple[str, ...] = ()


def load_set(data: DataSet, limit: int, tool: str) -> tuple[list, list[str]]:
    """The first `limit` frames of a set and its class names; prints the set's size under
    `tool`'s name (e.g. "pdn-bench int8"), refuses an empty set."""
    from training.data import load_frames

    frames, class_names = load_frames(data.path)
    frames = frames[:limit]
    if not frames:
        raise ValueError(f"{data.path} holds no frames")
    height, width = frames[0].height, frames[0].width
    print(f"{tool}: {data.name} ({width}x{height}, {len(frames)} frames)", flush=True)
    return frames, class_names


def _synth_args(height: int, width: int, sequences: int, seed: int) -> tuple[str, ...]:
    """pdn-synth arguments of a default set: 10 frames per sequence."""
    return (
        "--height",
        str(height),
        "--width",
        str(width),
        "--sequences",
        str(sequences),
        "--frames",
        "10",
        "--seed",
        str(seed),
    )


DEFAULT_DATA = (
    DataSet(
        "1080p", Path("data/synth1080p_val/annotations.json"), _synth_args(1080, 1920, 6, 9100)
    ),
    DataSet("4K", Path("data/synth4k_val/annotations.json"), _synth_args(2160, 3840, 6, 9000)),
    DataSet("8K", Path("data/synth8k_val/annotations.json"), _synth_args(4320, 7680, 2, 9200)),
)


def synth_command(data: DataSet) -> str:
    """The pdn-synth command line that makes a default set."""
    return f"pdn-synth --out {data.path.parent} {' '.join(data.synth)}"


def datasets(args: argparse.Namespace) -> list[DataSet]:
    """--data NAME=PATH sets, else the defaults, making a missing default set with pdn-synth."""
    if args.data:
        sets = []
        for spec in args.data:
            name, _, path = spec.partition("=")
            if not name or not path:
                raise ValueError(f"--data {spec}: expected NAME=PATH of an annotations.json")
            if not Path(path).is_file():
                raise FileNotFoundError(f"--data {spec}: no annotations file at {path}")
            sets.append(DataSet(name, Path(path)))
        return sets
    from training.synth_cli import main as synth_main

    for data in DEFAULT_DATA:
        if not data.path.is_file():
            print(
                f"pdn-bench compare: making the {data.name} set ({synth_command(data)})",
                flush=True,
            )
            if synth_main(["--out", str(data.path.parent), *data.synth]) != 0:
                raise ValueError(f"pdn-synth failed for {data.path.parent}")
    return list(DEFAULT_DATA)
