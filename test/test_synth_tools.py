"""The synthetic-scene commands: contact sheet and timing (training.synth.contact_sheet,
training.synth.timing), run at tiny sizes."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from training.synth import SceneConfig, SceneSequence, timing
from training.synth import contact_sheet as sheet_command


def test_contact_sheet_tiles_first_frames_with_their_boxes(tmp_path: Path) -> None:
    """The grid holds the first frames of sequences (seed, 0..) in reading order, with their
    annotated boxes outlined in green just outside each box."""
    sheet = sheet_command.contact_sheet(columns=2, rows=2, height=72, width=128, seed=3)
    assert sheet.shape == (144, 256, 3)
    config = SceneConfig(height=72, width=128, frames=1, randomize=True)
    third = SceneSequence((3, 2), config).render(0)
    tile = sheet[72:, :128]
    inside = [box for box in third.boxes.astype(int) if box[0] >= 1 and box[1] >= 1]
    assert inside
    for x1, y1, _, _ in inside:  # outline corner: green (annotated) or yellow (ignore)
        assert tuple(tile[y1 - 1, x1 - 1]) in {(60, 230, 60), (240, 220, 40)}
    untouched = np.ones((72, 128), bool)
    for bx1, by1, bx2, by2 in third.boxes.astype(int):
        untouched[max(by1 - 1, 0) : by2 + 1, max(bx1 - 1, 0) : bx2 + 1] = False
    np.testing.assert_array_equal(tile[untouched], third.image[untouched])
    out = tmp_path / "sheet.jpg"
    assert (
        sheet_command.main(
            ["--out", str(out), "--columns", "2", "--rows", "1", "--height", "72", "--width", "128"]
        )
        == 0
    )
    assert cv2.imread(str(out)).shape == (72, 256, 3)


def test_contact_sheet_refuses_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        sheet_command.main(["--out", str(tmp_path / "x.jpg"), "--rows", "0"])


def test_timing_prints_both_looks(capsys: pytest.CaptureFixture[str]) -> None:
    assert (
        timing.main(["--sequences", "1", "--frames", "2", "--height", "36", "--width", "64"]) == 0
    )
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].startswith("fixed look: first frame") and "JPEG round trip" in lines[1]
    assert lines[2].startswith("randomized: first frame") and "truth only" in lines[2]
    with pytest.raises(SystemExit):
        timing.main(["--frames", "1"])
