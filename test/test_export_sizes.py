"""`pdn-export --sizes`: one export per size, each file named for its size, the single-size
command unchanged. The real exports of two sizes from one checkpoint run in
test_node_multires.py (its models fixture); here the export itself is stood in for."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

import pdn_model.export
from pdn_runtime.export_cli import main, parse_sizes, per_size, sized_path


@pytest.fixture
def exports(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int, Path, int]]:
    """Every export `main` asks for, as (width, height, out, batch); all succeed."""
    calls: list[tuple[int, int, Path, int]] = []

    def export(args: argparse.Namespace) -> int:
        calls.append((args.width, args.height, args.out, args.batch))
        return 0

    monkeypatch.setattr(pdn_model.export, "export_from_args", export)
    return calls


def test_sizes_parse_as_width_by_height_and_bad_ones_are_refused():
    assert parse_sizes("1920x1080, 3840x2160") == [(1920, 1080), (3840, 2160)]
    assert parse_sizes("320x192") == [(320, 192)]
    for text, reason in (
        ("1920*1080", "WIDTHxHEIGHT"),
        ("1920x", "WIDTHxHEIGHT"),
        ("0x1080", "WIDTHxHEIGHT"),
        ("320x192,320x192", "given twice"),
    ):
        with pytest.raises(argparse.ArgumentTypeError, match=reason):
            parse_sizes(text)


def test_each_file_is_named_for_its_size_as_the_repository_models_are():
    assert sized_path(Path("out/m.onnx"), 1920, 1080) == Path("out/m-1920x1080.onnx")
    # a size already in the name is replaced, not appended to
    assert sized_path(Path("models/pdn-s-synth4k-3840x2160.onnx"), 1920, 1080) == Path(
        "models/pdn-s-synth4k-1920x1080.onnx"
    )
    args = argparse.Namespace(
        sizes=[(320, 192), (256, 160)],
        width=3840,
        height=2160,
        out=Path("m.onnx"),
        engine=Path("m.engine"),
        int8_out=None,
        tensorrt_cache=Path("c/int8.cache"),
    )
    runs = per_size(args)
    assert [(r.width, r.height, r.out, r.engine, r.int8_out) for r in runs] == [
        (320, 192, Path("m-320x192.onnx"), Path("m-320x192.engine"), None),
        (256, 160, Path("m-256x160.onnx"), Path("m-256x160.engine"), None),
    ]
    assert runs[1].tensorrt_cache == Path("c/int8-256x160.cache")
    assert args.out == Path("m.onnx")  # the caller's arguments are left alone


def test_sizes_export_one_model_per_size_and_one_size_stays_as_it_was(exports, tmp_path):
    out = tmp_path / "tiny.onnx"
    assert main(["--out", str(out), "--sizes", "1920x1080,3840x2160", "--batch", "2"]) == 0
    assert exports == [
        (1920, 1080, tmp_path / "tiny-1920x1080.onnx", 2),
        (3840, 2160, tmp_path / "tiny-3840x2160.onnx", 2),
    ]
    exports.clear()
    assert main(["--out", str(out), "--width", "640", "--height", "480"]) == 0
    assert exports == [(640, 480, out, 1)]


def test_a_failed_size_stops_the_command_with_its_status(monkeypatch, tmp_path):
    sizes = []

    def export(args: argparse.Namespace) -> int:
        sizes.append(args.width)
        return 2

    monkeypatch.setattr(pdn_model.export, "export_from_args", export)
    assert main(["--out", str(tmp_path / "m.onnx"), "--sizes", "320x192,256x160"]) == 2
    assert sizes == [320]


def test_bad_sizes_end_the_command_with_the_reason(exports, capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--out", "m.onnx", "--sizes", "1920by1080"])
    assert stop.value.code == 2
    assert "WIDTHxHEIGHT" in capsys.readouterr().err and exports == []
