"""Where a benchmark's report goes: --out only (docs untouched) unless --report, docs when
there is no --out."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from pdn_bench.reporting import add_output_arguments, write_report


def _write(tmp_path: Path, *argv: str) -> Path:
    parser = argparse.ArgumentParser()
    add_output_arguments(parser)
    args = parser.parse_args(["--docs", str(tmp_path / "docs"), *argv])

    def plots(folder: Path) -> None:
        (folder / "r.png").write_text("plot")

    return write_report(args, "r", "# report\n", {"x": 1}, plots=plots)


def _files(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir()} if folder.exists() else set()


def test_out_without_report_leaves_docs_alone(tmp_path: Path) -> None:
    path = _write(tmp_path, "--out", str(tmp_path / "out"))
    assert path == tmp_path / "out" / "r.md" and path.read_text() == "# report\n"
    assert _files(tmp_path / "out") == {"r.md", "r.png", "results.json"}
    assert json.loads((tmp_path / "out" / "results.json").read_text()) == {"x": 1}
    assert _files(tmp_path / "docs") == set()


def test_report_also_rewrites_docs(tmp_path: Path) -> None:
    _write(tmp_path, "--out", str(tmp_path / "out"), "--report")
    assert _files(tmp_path / "out") == {"r.md", "r.png", "results.json"}
    assert _files(tmp_path / "docs") == {"r.md", "r.png"}
    assert (tmp_path / "docs" / "r.md").read_text() == "# report\n"


def test_no_out_writes_docs(tmp_path: Path) -> None:
    assert _write(tmp_path) == tmp_path / "docs" / "r.md"
    assert _files(tmp_path / "docs") == {"r.md", "r.png"}
