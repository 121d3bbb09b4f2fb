"""Reading rectangles of an image without holding the whole image: tiled or striped TIFF
through tifffile, one tile or strip at a time (with a small cache of decoded ones), and
ordinary image files read whole (`open_image`).

Every reader returns RGB uint8 [h, w, 3]; rows and columns outside the image come back as
`PAD_VALUE`, so callers may read model-size tiles that overhang the border. A file that
cannot be read raises `ImageReadError` naming it.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from collections import OrderedDict
from pathlib import Path

import cv2
import numpy as np
import tifffile

# Padding outside the image: the grey the model normalises to zero (backbone.PIXEL_MEAN).
PAD_VALUE = 115
TIFF_SUFFIXES = (".tif", ".tiff")
# Images above this many pixels that are not TIFF are read whole, with a warning.
WHOLE_IMAGE_WARN_PIXELS = 50_000_000
# A strip or tile larger than this is refused: reading it would not be bounded.
MAX_SEGMENT_BYTES = 256 << 20
# Decoded tiles or strips kept for reuse (windows of neighbouring tiles share them).
CACHE_BYTES = 64 << 20

log = logging.getLogger("pdn_runtime.image_reader")


class ImageReadError(ValueError):
    """An image that cannot be read (missing, not an image, corrupt tiles); names the file."""


class RegionReader(ABC):
    """An image of `height` x `width` pixels whose rectangles can be read one at a time."""

    path: Path
    height: int
    width: int

    def read(self, y0: int, y1: int, x0: int, x1: int) -> np.ndarray:
        """Rows y0..y1-1, columns x0..x1-1 as RGB uint8 [y1-y0, x1-x0, 3]; pixels outside the
        image are PAD_VALUE."""
        out = np.full((y1 - y0, x1 - x0, 3), PAD_VALUE, np.uint8)
        cy0, cy1 = max(y0, 0), min(y1, self.height)
        cx0, cx1 = max(x0, 0), min(x1, self.width)
        if cy0 < cy1 and cx0 < cx1:
            self._read_inside(out[cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0], cy0, cx0)
        return out

    @abstractmethod
    def _read_inside(self, out: np.ndarray, y0: int, x0: int) -> None:
        """Fill `out` [h, w, 3] with the image's pixels from (y0, x0); all inside the image."""

    def close(self) -> None:  # noqa: B027 - an optional hook
        """Release the file; the default holds none."""


class ArrayReader(RegionReader):
    """An image already in memory (RGB uint8 [H, W, 3])."""

    def __init__(self, pixels: np.ndarray, path: str | Path = "<array>") -> None:
        if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
            raise ImageReadError(f"{path}: expected RGB uint8 [H, W, 3], got {pixels.shape}")
        self.pixels = pixels
        self.path = Path(path)
        self.height, self.width = pixels.shape[:2]

    def _read_inside(self, out: np.ndarray, y0: int, x0: int) -> None:
        h, w = out.shape[:2]
        out[...] = self.pixels[y0 : y0 + h, x0 : x0 + w]


class TiffReader(RegionReader):
    """The first image of a tiled or striped TIFF (uint8 grey, RGB or RGBA, interleaved),
    read one tile or strip at a time; decoded ones are cached up to `cache_bytes`."""

    def __init__(self, path: str | Path, cache_bytes: int = CACHE_BYTES) -> None:
        self.path = Path(path)
        try:
            self._tiff = tifffile.TiffFile(self.path)
            page = self._tiff.pages.first
        except Exception as err:  # tifffile raises TiffFileError, OSError, ValueError...
            raise ImageReadError(f"{self.path}: not a readable TIFF ({err})") from err
        self._page = page
        samples = page.samplesperpixel
        if page.dtype != np.uint8 or samples not in (1, 3, 4) or page.imagedepth != 1:
            raise ImageReadError(
                f"{self.path}: only 8-bit grey, RGB or RGBA TIFFs are read, this one has "
                f"{samples} samples of {page.dtype}"
            )
        if samples > 1 and page.planarconfig != tifffile.PLANARCONFIG.CONTIG:
            raise ImageReadError(f"{self.path}: planes stored separately are not supported")
        self.height, self.width = page.imagelength, page.imagewidth
        if page.is_tiled:
            self._seg_h, self._seg_w = page.tilelength, page.tilewidth
        else:
            self._seg_h, self._seg_w = min(page.rowsperstrip, self.height), self.width
        segment_bytes = self._seg_h * self._seg_w * samples
        if segment_bytes > MAX_SEGMENT_BYTES:
            raise ImageReadError(
                f"{self.path}: its strips hold {segment_bytes >> 20} MiB each, too much to read "
                "piece by piece; save it as a tiled TIFF (e.g. 512x512 tiles)"
            )
        self._cols = -(-self.width // self._seg_w)
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_slots = max(1, cache_bytes // segment_bytes)
        self._lock = threading.Lock()

    def _read_inside(self, out: np.ndarray, y0: int, x0: int) -> None:
        h, w = out.shape[:2]
        for row in range(y0 // self._seg_h, (y0 + h - 1) // self._seg_h + 1):
            for col in range(x0 // self._seg_w, (x0 + w - 1) // self._seg_w + 1):
                seg = self._segment(row * self._cols + col, row, col)
                sy, sx = row * self._seg_h, col * self._seg_w
                ty0, ty1 = max(y0, sy), min(y0 + h, sy + seg.shape[0])
                tx0, tx1 = max(x0, sx), min(x0 + w, sx + seg.shape[1])
                out[ty0 - y0 : ty1 - y0, tx0 - x0 : tx1 - x0] = seg[
                    ty0 - sy : ty1 - sy, tx0 - sx : tx1 - sx
                ]

    def _segment(self, index: int, row: int, col: int) -> np.ndarray:
        """Tile or strip `index` as RGB [h, w, 3] (cached)."""
        with self._lock:
            if index in self._cache:
                self._cache.move_to_end(index)
                return self._cache[index]
            seg = self._decode(index, row, col)
            self._cache[index] = seg
            if len(self._cache) > self._cache_slots:
                self._cache.popitem(last=False)
            return seg

    def _decode(self, index: int, row: int, col: int) -> np.ndarray:
        """Read and decode one tile or strip, or ImageReadError saying which and where."""
        page = self._page
        where = (
            f"{'tile' if page.is_tiled else 'strip'} {index} (rows {row * self._seg_h}-"
            f"{(row + 1) * self._seg_h - 1}, columns {col * self._seg_w}-"
            f"{(col + 1) * self._seg_w - 1})"
        )
        try:
            offset, count = page.dataoffsets[index], page.databytecounts[index]
            handle = self._tiff.filehandle
            handle.seek(offset)
            data = handle.read(count) if count else None
            if data is not None and len(data) != count:
                raise ValueError(f"the file ends {count - len(data)} bytes early")
            decoded = page.decode(data, index)[0]
        except Exception as err:  # zlib.error, ValueError, TiffFileError, IndexError...
            raise ImageReadError(f"{self.path}: {where} cannot be read: {err}") from err
        rows = min(self._seg_h, self.height - row * self._seg_h)
        if decoded is None:  # an empty segment: tifffile leaves it to the caller (zeros)
            return np.zeros((rows, self._seg_w, 3), np.uint8)
        pixels = decoded.reshape(-1, self._seg_w, page.samplesperpixel)[:rows]
        if pixels.shape[2] == 1:
            return np.repeat(pixels, 3, axis=2)
        return np.ascontiguousarray(pixels[:, :, :3])

    def close(self) -> None:
        self._tiff.close()


def open_image(path: str | Path) -> RegionReader:
    """A reader of the image file `path`: TIFFs piece by piece, other formats (JPEG, PNG,
    ...) read whole through OpenCV, with a warning above WHOLE_IMAGE_WARN_PIXELS."""
    path = Path(path)
    if not path.is_file():
        raise ImageReadError(f"{path}: no such file")
    if path.suffix.lower() in TIFF_SUFFIXES:
        return TiffReader(path)
    pixels = cv2.imread(str(path), cv2.IMREAD_COLOR_RGB)
    if pixels is None:
        raise ImageReadError(f"{path}: cannot read the image (not an image file, or corrupt)")
    height, width = pixels.shape[:2]
    if height * width > WHOLE_IMAGE_WARN_PIXELS:
        log.warning(
            "%s: a %dx%d %s is read whole (%d MB in memory); a tiled TIFF is read tile by tile",
            path,
            width,
            height,
            path.suffix.lstrip(".").upper(),
            pixels.nbytes >> 20,
        )
    return ArrayReader(pixels, path)
