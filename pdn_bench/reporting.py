"""What every benchmark shares: its output options and where its report goes.

A run with `--out DIR` writes its report, plots and results.json into DIR and leaves the
docs folder alone unless `--report` is given; a run without `--out` writes its report and
plots into the docs folder (`--docs`, default docs/), as the committed reports were made."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from pathlib import Path


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """--docs, --out, --report."""
    parser.add_argument("--docs", type=Path, default=Path("docs"), help="docs folder")
    parser.add_argument(
        "--out",
        type=Path,
        help="write the report, plots and results.json here (docs/ untouched unless --report)",
    )
    parser.add_argument(
        "--report", action="store_true", help="with --out: also rewrite the report in --docs"
    )


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    """--preset, --threads, --quick and the output options."""
    parser.add_argument("--preset", default="pdn-s", help="model preset (default pdn-s)")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    parser.add_argument("--quick", action="store_true", help="few frames, for a smoke run")
    add_output_arguments(parser)


def report_dirs(args: argparse.Namespace) -> list[Path]:
    """The folders a report goes to: --out (and --docs with --report), else --docs."""
    if args.out is None:
        return [args.docs]
    return [args.out, args.docs] if args.report else [args.out]


def write_report(
    args: argparse.Namespace,
    stem: str,
    markdown: str,
    results: dict,
    plots: Callable[[Path], None] | None = None,
) -> Path:
    """Write STEM.md (and the plots, drawn into a folder by `plots`) into every folder of
    `report_dirs`, and results.json into --out; returns the first .md path."""
    paths = []
    for folder in report_dirs(args):
        folder.mkdir(parents=True, exist_ok=True)
        paths.append(folder / f"{stem}.md")
        paths[-1].write_text(markdown)
        if plots is not None:
            plots(folder)
    if args.out:
        (args.out / "results.json").write_text(json.dumps(results, indent=2))
    return paths[0]
