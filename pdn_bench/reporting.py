"""What every benchmark shares: its common options and where its report goes."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """--preset, --threads, --quick, --docs, --out."""
    parser.add_argument("--preset", default="pdn-s", help="model preset (default pdn-s)")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    parser.add_argument("--quick", action="store_true", help="few frames, for a smoke run")
    parser.add_argument("--docs", type=Path, default=Path("docs"), help="report folder")
    parser.add_argument("--out", type=Path, help="also write results.json here")


def write_report(args: argparse.Namespace, stem: str, markdown: str, results: dict) -> Path:
    """Write DOCS/STEM.md, and OUT/results.json when --out is given; returns the .md path."""
    args.docs.mkdir(parents=True, exist_ok=True)
    path = args.docs / f"{stem}.md"
    path.write_text(markdown)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "results.json").write_text(json.dumps(results, indent=2))
    return path
