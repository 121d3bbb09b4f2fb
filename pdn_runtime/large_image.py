"""Detection on an image of any size through the two-part model, reading only what it needs.

The model sees native pixels: it was trained on full-resolution frames, its windows are 256
and 512 source pixels, and the objects it finds are a few to a few hundred pixels long.
Shrinking a 20000-pixel image to the model's frame would shrink those objects below what
it can see. So the image is cut into model-size frames ("tiles", overlapping by the largest
window), and each tile goes through the model as a camera frame would:

1. the tile's global view (1/8 of its side) is made from the image row band by row band, a
   few hundred rows at a time (`global_view`);
2. the look part picks the tile's windows on that view;
3. only those windows are read at full resolution (`RegionReader.read`), area-averaged to
   the patch size, and the detect part finds the objects;
4. boxes move by the tile's offset into image pixels; a tile keeps the boxes whose centre lies
   in its core (the tile less half of each overlap with a neighbour), so an object no longer
   than the overlap is kept once, from a tile that holds it whole.

An image smaller than the model is one tile, padded with grey (`image_reader.PAD_VALUE`);
an image of the model's size is one tile and gives the one graph's detections exactly.
Memory: one band of rows across the image, one tile's view and its windows, the reader's
cache; it grows with the image's width, not its area.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pdn_runtime.image_reader import RegionReader
from pdn_runtime.stream import StreamState, select_detections
from pdn_runtime.two_part import TwoPartModel, global_view, window_patch

# Rows read at once while building a band's global view (a multiple of every downsample).
BAND_CHUNK_ROWS = 256


@dataclass(frozen=True)
class AxisTile:
    """One tile along an axis: start, and its core [core_start, core_end) in image pixels."""

    start: int
    core_start: int
    core_end: int


def axis_tiles(length: int, tile: int, overlap: int, align: int) -> list[AxisTile]:
    """Tiles of `tile` pixels covering [0, length) (padded up to a multiple of `align`, and to
    one tile), overlapping by at least `overlap`, with starts on multiples of `align`; the
    cores split the axis at the middle of each overlap."""
    padded = max(tile, -(-length // align) * align)
    step = max(align, (tile - overlap) // align * align)
    starts = list(range(0, padded - tile + 1, step))
    if starts[-1] + tile < padded:
        starts.append(padded - tile)
    cuts = [(a + tile + b) // 2 for a, b in zip(starts, starts[1:], strict=False)]
    bounds = [0, *cuts, padded]
    return [AxisTile(s, bounds[i], bounds[i + 1]) for i, s in enumerate(starts)]


@dataclass(frozen=True)
class ImageDetections:
    """What the model found in one image, in the image's full-resolution pixels."""

    boxes: np.ndarray  # [n, 4] float32 xyxy, best first
    scores: np.ndarray  # [n] float32
    labels: np.ndarray  # [n] int64 into the model's class names
    windows: np.ndarray  # [w, 4] float32 xyxy: every window the model read
    width: int
    height: int
    tiles: int


class TiledDetector:
    """Runs images of any size through a `TwoPartModel` (see the module docstring).

    The temporal state is kept per tile position from one `detect` call to the next, so the
    frames of a video or of a numbered image sequence share it; `new_stream()` forgets it (an
    unrelated image), and so does an image of another size.
    """

    def __init__(
        self,
        model: TwoPartModel,
        score_threshold: float = 0.3,
        max_detections: int | None = None,
        overlap: int | None = None,
    ) -> None:
        self.model = model
        self.score_threshold = score_threshold
        self.max_detections = max_detections
        cfg = model.config
        self.overlap = max(cfg.patch_scales) if overlap is None else overlap
        self._states: dict[tuple[int, int], StreamState] = {}
        self._size: tuple[int, int] | None = None

    def new_stream(self) -> None:
        """Forget the temporal state: the next image starts a new stream."""
        self._states.clear()
        self._size = None

    def plan(self, height: int, width: int) -> tuple[list[AxisTile], list[AxisTile]]:
        """The tile rows and columns of an image of this size."""
        cfg = self.model.config
        align = cfg.global_downsample
        rows = axis_tiles(height, cfg.height, self.overlap, align)
        return rows, axis_tiles(width, cfg.width, self.overlap, align)

    def detect(
        self,
        reader: RegionReader,
        on_tile: Callable[[int, int], None] | None = None,
        on_rows: Callable[[int, np.ndarray], None] | None = None,
    ) -> ImageDetections:
        """Detections of the whole image of `reader`. `on_tile(done, total)` follows the
        tiles; `on_rows(y0, pixels)` sees every band of rows read for the views (an overview
        can be built from them without reading the image again)."""
        if self._size != (reader.height, reader.width):
            self.new_stream()
            self._size = (reader.height, reader.width)
        rows, cols = self.plan(reader.height, reader.width)
        found: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        windows = []
        for r, row in enumerate(rows):
            band = self._band_view(
                reader, row.start, cols[-1].start + self.model.config.width, on_rows
            )
            for c, col in enumerate(cols):
                part, seen = self._tile(reader, band, (r, c), row, col)
                found.append(part)
                windows.append(seen)
                if on_tile is not None:
                    on_tile(r * len(cols) + c + 1, len(rows) * len(cols))
        boxes, scores, labels = (np.concatenate(column) for column in zip(*found, strict=True))
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, reader.width)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, reader.height)
        order = np.argsort(-scores, kind="stable")[: self.max_detections]
        return ImageDetections(
            boxes=boxes[order],
            scores=scores[order],
            labels=labels[order].astype(np.int64),
            windows=np.concatenate(windows),
            width=reader.width,
            height=reader.height,
            tiles=len(rows) * len(cols),
        )

    def _band_view(
        self,
        reader: RegionReader,
        y0: int,
        width: int,
        on_rows: Callable[[int, np.ndarray], None] | None,
    ) -> np.ndarray:
        """The global view [3, th/ds, width/ds] of the rows of one tile row, read in chunks."""
        cfg = self.model.config
        ds = cfg.global_downsample
        band = np.empty((3, cfg.height // ds, width // ds), np.float32)
        for top in range(0, cfg.height, BAND_CHUNK_ROWS):
            bottom = min(top + BAND_CHUNK_ROWS, cfg.height)
            pixels = reader.read(y0 + top, y0 + bottom, 0, width)
            if on_rows is not None:
                on_rows(y0 + top, pixels)
            band[:, top // ds : bottom // ds] = global_view(pixels, cfg)
        return band

    def _tile(
        self,
        reader: RegionReader,
        band: np.ndarray,
        key: tuple[int, int],
        row: AxisTile,
        col: AxisTile,
    ) -> tuple[tuple[np.ndarray, np.ndarray, np.ndarray], np.ndarray]:
        """One tile through look and detect: its kept (boxes, scores, labels) in image pixels
        and its windows in image pixels."""
        model, cfg = self.model, self.model.config
        ds = cfg.global_downsample
        state = self._states.setdefault(key, StreamState(model.info))
        x0 = col.start // ds
        view = np.ascontiguousarray(band[None, :, :, x0 : x0 + cfg.width // ds])
        look = model.look(view, state)
        offset = np.array([col.start, row.start, col.start, row.start], np.float32)
        boxes = look.patch_boxes[0] + offset
        patches = np.empty((1, len(boxes), 3, cfg.patch_size, cfg.patch_size), np.float32)
        for j, (wx0, wy0, wx1, wy1) in enumerate(boxes.astype(np.int64)):
            patches[0, j] = window_patch(reader.read(wy0, wy1, wx0, wx1), cfg.patch_size)
        out = model.detect(patches, look, state)
        keep = select_detections(out["scores"][0], self.score_threshold, None)
        found = out["boxes"][0][keep] + offset
        centre_x = (found[:, 0] + found[:, 2]) / 2
        centre_y = (found[:, 1] + found[:, 3]) / 2
        inside = (
            (centre_x >= col.core_start)
            & (centre_x < col.core_end)
            & (centre_y >= row.core_start)
            & (centre_y < row.core_end)
        )
        kept = keep[inside]
        return (found[inside], out["scores"][0][kept], out["labels"][0][kept]), boxes
