"""Large images tile by tile: the tile plan, tiled and striped TIFF reading (padding, corrupt
and truncated files), boxes mapped back to full-resolution pixels (a frame pasted at a known
offset), and the demo model finding a pasted synthetic 4K frame's objects in a tiled TIFF."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import tifffile
from pdn_tiny import HEIGHT, WIDTH, tiny_model

from pdn_model.two_part import export_two_part
from pdn_runtime.image_reader import PAD_VALUE, ArrayReader, ImageReadError, TiffReader
from pdn_runtime.large_image import TiledDetector, axis_tiles
from pdn_runtime.onnx_file import DEMO_MODEL
from pdn_runtime.two_part import TwoPartModel
from training.metrics import FrameResult, matched_ground_truth
from training.synth import SceneConfig, SceneSequence

REPO = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize(("length", "tile"), [(700, 320), (320, 320), (100, 192), (2000, 192)])
def test_tiles_cover_the_axis_overlap_and_their_cores_split_it(length: int, tile: int):
    tiles = axis_tiles(length, tile, overlap=128, align=8)
    padded = max(tile, -(-length // 8) * 8)
    assert tiles[0].start == 0 and tiles[-1].start + tile == padded
    assert tiles[0].core_start == 0 and tiles[-1].core_end == padded
    for a, b in zip(tiles, tiles[1:], strict=False):
        assert b.start % 8 == 0 and a.start + tile - b.start >= 128  # overlap
        assert a.core_end == b.core_start
        # an object up to the overlap with its centre in a core lies inside that tile
        assert a.core_end + 64 <= a.start + tile and b.core_start - 64 >= b.start
    assert axis_tiles(700, 320, 128, 8)[1].start == 192


def write_tiff(path: Path, pixels: np.ndarray, **layout: object) -> Path:
    tifffile.imwrite(path, pixels, photometric="rgb", compression="zlib", **layout)
    return path


@pytest.mark.parametrize("layout", [{"tile": (64, 48)}, {"rowsperstrip": 24}])
def test_tiff_reader_returns_any_rectangle_padding_outside(tmp_path, layout):
    pixels = np.random.default_rng(0).integers(0, 256, (203, 171, 3), dtype=np.uint8)
    reader = TiffReader(write_tiff(tmp_path / "a.tif", pixels, **layout), cache_bytes=30_000)
    assert (reader.height, reader.width) == (203, 171)
    for y0, y1, x0, x1 in [(0, 203, 0, 171), (10, 77, 45, 170), (190, 260, -20, 40)]:
        got = reader.read(y0, y1, x0, x1)
        want = np.full((y1 - y0, x1 - x0, 3), PAD_VALUE, np.uint8)
        cy0, cx0 = max(y0, 0), max(x0, 0)
        inside = pixels[cy0:y1, cx0:x1]
        want[cy0 - y0 : cy0 - y0 + inside.shape[0], cx0 - x0 : cx0 - x0 + inside.shape[1]] = inside
        np.testing.assert_array_equal(got, want)
    reader.close()


def test_corrupt_or_truncated_tiff_tiles_name_the_file_and_the_tile(tmp_path):
    pixels = np.random.default_rng(1).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    path = write_tiff(tmp_path / "b.tif", pixels, tile=(64, 64))
    with tifffile.TiffFile(path) as tiff:
        offset = tiff.pages.first.dataoffsets[3]
    data = bytearray(path.read_bytes())
    data[offset : offset + 40] = bytes(40)
    broken = tmp_path / "broken.tif"
    broken.write_bytes(bytes(data))
    reader = TiffReader(broken)
    reader.read(0, 64, 0, 128)  # tiles 0 and 1 are intact
    with pytest.raises(
        ImageReadError, match=r"broken\.tif: tile 3 \(rows 64-127, columns 64-127\)"
    ):
        reader.read(64, 128, 0, 128)
    cut = tmp_path / "cut.tif"
    cut.write_bytes(path.read_bytes()[: offset + 10])
    with pytest.raises(ImageReadError, match=r"cut\.tif: tile 3 .*ends \d+ bytes early"):
        TiffReader(cut).read(100, 110, 100, 110)
    (tmp_path / "text.tif").write_text("no tiff")
    with pytest.raises(ImageReadError, match=r"text\.tif: not a readable TIFF"):
        TiffReader(tmp_path / "text.tif")


@pytest.fixture(scope="module")
def tiny_parts(tmp_path_factory) -> TwoPartModel:
    path = tmp_path_factory.mktemp("large") / "tiny.onnx"
    export_two_part(tiny_model(seed=4), path)
    return TwoPartModel(path, threads=1)


def in_core(boxes: np.ndarray, x0: int, y0: int, x1: int, y1: int) -> np.ndarray:
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    return (cx >= x0) & (cx < x1) & (cy >= y0) & (cy < y1)


def test_a_frame_pasted_on_a_tile_gives_its_own_detections_moved_by_the_offset(
    tiny_parts, tmp_path
):
    rng = np.random.default_rng(2)
    canvas = rng.integers(0, 256, (500, 700, 3), dtype=np.uint8)
    frame = rng.integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
    detector = TiledDetector(tiny_parts, score_threshold=0.05)
    rows, cols = detector.plan(500, 700)
    row, col = rows[1], cols[1]  # paste the frame exactly onto tile (1, 1)
    canvas[row.start : row.start + HEIGHT, col.start : col.start + WIDTH] = frame
    reader = TiffReader(write_tiff(tmp_path / "c.tif", canvas, tile=(64, 64)))
    found = detector.detect(reader)
    assert found.tiles == len(rows) * len(cols) == 6 * 3
    detector.new_stream()
    alone = detector.detect(ArrayReader(frame))
    core = (col.core_start, row.core_start, col.core_end, row.core_end)
    offset = np.array([col.start, row.start] * 2, np.float32)
    want = alone.boxes + offset
    want_keep = in_core(want, *core)
    got_keep = in_core(found.boxes, *core)
    assert want_keep.sum() >= 3
    np.testing.assert_array_equal(found.boxes[got_keep], want[want_keep])
    np.testing.assert_array_equal(found.scores[got_keep], alone.scores[want_keep])
    np.testing.assert_array_equal(found.labels[got_keep], alone.labels[want_keep])
    assert np.isin(alone.windows + offset, found.windows).all()


def test_demo_model_finds_a_pasted_4k_frames_objects_in_a_tiled_tiff(tmp_path):
    frame = SceneSequence(11, SceneConfig(frames=1)).render(0, degrade=False)
    offset_x, offset_y = 389, 411
    canvas = np.full((2160 + 720, 3840 + 768, 3), 120, np.uint8)
    canvas += np.random.default_rng(3).integers(0, 12, canvas.shape, dtype=np.uint8)
    canvas[offset_y : offset_y + 2160, offset_x : offset_x + 3840] = frame.image
    path = write_tiff(tmp_path / "d.tif", canvas, tile=(512, 512))
    del canvas
    detector = TiledDetector(TwoPartModel(REPO / DEMO_MODEL), score_threshold=0.3)
    found = detector.detect(TiffReader(path))
    assert found.tiles == 4
    detector.new_stream()
    alone = detector.detect(ArrayReader(frame.image))
    keep = ~frame.ignore
    truth = frame.boxes[keep]
    shift = np.array([offset_x, offset_y] * 2, np.float32)

    def recall(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, gt: np.ndarray) -> float:
        result = FrameResult(0, canvas_w, canvas_h, gt, frame.labels[keep], boxes, scores, labels)
        return float(matched_ground_truth(result).mean())

    canvas_h, canvas_w = found.height, found.width
    in_tiff = recall(found.boxes, found.scores, found.labels, truth + shift)
    direct = recall(alone.boxes, alone.scores, alone.labels, truth)
    assert len(truth) >= 30
    assert direct >= 0.5
    assert in_tiff >= 0.9 * direct
    outside = ~in_core(found.boxes, offset_x, offset_y, offset_x + 3840, offset_y + 2160)
    assert outside.sum() <= 0.1 * len(found.boxes)
