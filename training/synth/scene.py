"""Scene sequences: configuration, frames and their ground truth, and the sequence that pans a
camera over a world and composes its objects frame by frame."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np

from training.synth.appearance import rasterize
from training.synth.background import paint_random_world, paint_world
from training.synth.drawing import Raster, clip_to_frame, composite
from training.synth.objects import (
    SIZE_TIERS,
    ignored,
    objects_from_rows,
    sample_distractors,
    sample_objects,
    zigzag,
)
from training.synth.randomize import Look, degrade_frame, draw_look

REFERENCE_HEIGHT = 2160
MIN_FRAME_SIDE = 16
_GRAIN_TILE = 128  # side of the noise tile whose randomly offset windows make each frame's grain


@dataclass(frozen=True)
class SceneConfig:
    """Frame size, sequence length and content of generated sequences."""

    height: int = 2160
    width: int = 3840
    frames: int = 30
    # Objects in view per frame: the target is drawn per sequence from this range (inclusive).
    objects: tuple[int, int] = (40, 80)
    fps: float = 15.0
    # Largest camera pan speed, pixels per frame at 2160 rows (0: a static camera).
    pan_speed: float = 12.0
    # Sensor grain: uniform noise of this many grey levels added to every pixel (0: none).
    # Randomised looks draw their own sensor noise instead.
    grain: int = 4
    # Domain randomisation: each sequence draws its own look (styles, horizon, band, colours,
    # lighting, blur, noise, JPEG quality, distractors); see docs/synthetic_data.md. False
    # keeps the fixed look (and its pixels) of earlier datasets.
    randomize: bool = False

    def __post_init__(self) -> None:
        """Reject values that cannot make a scene, saying which and why."""
        for name, least in (("height", MIN_FRAME_SIDE), ("width", MIN_FRAME_SIDE), ("frames", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
        low, high = self.objects
        if not 0 <= low <= high:
            raise ValueError(f"objects must be a range 0 <= min <= max, got {self.objects!r}")
        if not self.fps > 0:
            raise ValueError(f"fps must be positive, got {self.fps!r}")
        if not self.pan_speed >= 0:
            raise ValueError(f"pan_speed must be >= 0, got {self.pan_speed!r}")
        if not 0 <= self.grain <= 64:
            raise ValueError(f"grain must be in 0..64 grey levels, got {self.grain!r}")
        if not isinstance(self.randomize, bool):
            raise ValueError(f"randomize must be True or False, got {self.randomize!r}")

    @property
    def scale(self) -> float:
        """Pixel sizes are defined at 2160 rows; this factor maps them to this frame height."""
        return self.height / REFERENCE_HEIGHT


@dataclass(frozen=True)
class FrameTruth:
    """Ground truth of one frame, objects ordered far to near (drawing order)."""

    frame_index: int
    camera_x: int  # world column of the frame's left edge (the pan)
    boxes: np.ndarray  # float32 [N, 4] xyxy, pixel edges, clipped to the frame
    labels: np.ndarray  # int64 [N], index into CLASS_NAMES
    track_ids: np.ndarray  # int64 [N], constant while an object stays in the world
    ignore: np.ndarray  # bool [N]: drawn but mostly outside, tiny or occluded (COCO iscrowd)


@dataclass(frozen=True)
class Frame(FrameTruth):
    """One rendered frame and its ground truth."""

    image: np.ndarray  # uint8 [H, W, 3] RGB, C-contiguous


class SceneSequence:
    """One procedural sequence: a panorama world, its moving objects and a panning camera.

    Every frame is a pure function of (seed, config, frame index): render(t) works in any
    order, which is what a synthetic camera needs. The world image is built on first use;
    truth(t) alone never builds it.
    """

    def __init__(self, seed: int | Sequence[int], config: SceneConfig | None = None) -> None:
        self.config = config or SceneConfig()
        self._seed = (seed,) if isinstance(seed, int) else tuple(seed)
        if not self._seed or any(not isinstance(v, int) or v < 0 for v in self._seed):
            raise ValueError(f"seed must be a non-negative int or a sequence of them, got {seed!r}")
        cfg, s = self.config, self.config.scale
        rng = self._rng(0)
        self.horizon = round(cfg.height * rng.uniform(0.3, 0.45))
        self.cam_height = float(rng.uniform(3.0, 6.0))  # in metres, sets the perspective
        # Pan: camera x = amp * (1 + sin(freq * t + phase)), top speed amp * freq.
        self._pan_freq = 2 * math.pi / rng.uniform(200, 500)
        self._pan_phase = rng.uniform(0, 2 * math.pi)
        self._pan_amp = cfg.pan_speed * s / self._pan_freq * rng.uniform(0.5, 1.0)
        pans = [self._raw_pan(t) for t in range(cfg.frames)]
        self._pan_origin = min(pans)
        self.world_width = cfg.width + max(pans) - self._pan_origin
        # Objects live on a loop wider than the world by the largest object on each side; one
        # that leaves it re-enters at the other end, unseen, under a new track id.
        margin = math.ceil(1.1 * 1.15 * SIZE_TIERS[-1][1] * s) + 4
        self._loop = (-margin, self.world_width + 2 * margin)
        rows = sample_objects(rng, cfg, self.cam_height, *self._loop)
        self._look = draw_look(self._rng(4), s) if cfg.randomize else None
        if self._look is not None:
            self.horizon = round(cfg.height * self._look.horizon)
            rows += sample_distractors(
                self._rng(5), self._look.distractors, self.cam_height, *self._loop, cfg
            )
        self._objects = objects_from_rows(rows)
        self._distractors: dict[int, Raster | None] = {}  # by index, in world columns

    def _rng(self, *stream: int) -> np.random.Generator:
        """Independent generator for one purpose (0 layout, 1 world, 2 grain, (3, t) frame t;
        randomised looks: 4 look, 5 distractors, (6, t) frame t's degradation)."""
        return np.random.default_rng([*self._seed, *stream])

    def _raw_pan(self, t: int) -> int:
        """Camera x before shifting the world so that it starts at column 0."""
        return round(self._pan_amp * (1.0 + math.sin(self._pan_freq * t + self._pan_phase)))

    def __len__(self) -> int:
        """Number of frames."""
        return self.config.frames

    def __iter__(self) -> Iterator[Frame]:
        """Render every frame in order."""
        return (self.render(t) for t in range(len(self)))

    def _check_index(self, frame_index: int) -> None:
        """Refuse frame indices outside the sequence (the world only covers its pan range)."""
        if not 0 <= frame_index < len(self):
            raise IndexError(f"frame {frame_index} outside 0..{len(self) - 1}")

    @property
    def look(self) -> Look | None:
        """The sequence's randomised look (SceneConfig.randomize), None for the fixed look."""
        return self._look

    def camera_x(self, frame_index: int) -> int:
        """World column of the frame's left edge."""
        self._check_index(frame_index)
        return self._raw_pan(frame_index) - self._pan_origin

    @cached_property
    def _world(self) -> np.ndarray:
        """The static panorama: sky, hills, ground and clutter (H x world_width x 3, RGB)."""
        rng, cfg, s = self._rng(1), self.config, self.config.scale
        world = np.empty((cfg.height, self.world_width, 3), np.uint8)
        if self._look is not None:
            paint_random_world(rng, self._look, world, self.horizon, self.cam_height, s, cfg.width)
        else:
            paint_world(rng, world, self.horizon, self.cam_height, s, cfg.width)
        return world

    @cached_property
    def _grain(self) -> tuple[np.ndarray, np.ndarray | None] | None:
        """Noise tiles repeated to cover the frame plus one tile (each frame takes a window):
        one added and, for the zero-mean sensor noise of randomised looks, one subtracted."""
        reps = (self.config.height // _GRAIN_TILE + 2, self.config.width // _GRAIN_TILE + 2, 1)
        if self._look is not None:
            noise = self._rng(2).normal(0.0, self._look.noise, (_GRAIN_TILE, _GRAIN_TILE, 3))
            up, down = (np.clip(np.round(v), 0, 255).astype(np.uint8) for v in (noise, -noise))
            return np.tile(up, reps), np.tile(down, reps)
        if self.config.grain == 0:
            return None
        tile = self._rng(2).integers(
            0, self.config.grain + 1, (_GRAIN_TILE, _GRAIN_TILE, 3), dtype=np.uint8
        )
        return np.tile(tile, reps), None

    def _backdrop(self, frame_index: int) -> np.ndarray:
        """The world as seen by the camera at a frame (a fresh, writable copy)."""
        x = self.camera_x(frame_index)
        return np.ascontiguousarray(self._world[:, x : x + self.config.width])

    def _add_grain(self, image: np.ndarray, frame_index: int) -> None:
        """Add this frame's sensor grain (a randomly offset window of the tile), in place."""
        if self._grain is None:
            return
        dy, dx = (int(v) for v in self._rng(3, frame_index).integers(0, _GRAIN_TILE, 2))
        cfg = self.config
        window = np.s_[dy : dy + cfg.height, dx : dx + cfg.width]
        up, down = self._grain
        cv2.add(image, up[window], dst=image)
        if down is not None:
            cv2.subtract(image, down[window], dst=image)

    def _finish(self, image: np.ndarray, frame_index: int, degrade: bool) -> np.ndarray:
        """Camera effects on a composed frame: noise (pixel by pixel), then with `degrade`
        the blur and JPEG of a randomised look (which spread pixels). Returns the image."""
        self._add_grain(image, frame_index)
        if self._look is not None and degrade:
            image = degrade_frame(image, self._look, self._rng(6, frame_index))
        return image

    def background(self, frame_index: int, degrade: bool = True) -> np.ndarray:
        """The frame without its objects (same pan, distractors and camera effects): what
        objects are drawn over. `degrade=False` leaves out blur and JPEG (randomised looks)."""
        image = self._backdrop(frame_index)
        self._compose(frame_index, image, objects=False)
        return self._finish(image, frame_index, degrade)

    def truth(self, frame_index: int) -> FrameTruth:
        """Ground truth of a frame without rendering its pixels (masks only)."""
        return self._compose(frame_index, None)

    def render(self, frame_index: int, degrade: bool = True) -> Frame:
        """Pixels and ground truth of a frame. `degrade=False` leaves out the blur and JPEG
        of randomised looks, so that every object pixel stays inside its box."""
        image = self._backdrop(frame_index)
        truth = self._compose(frame_index, image)
        return Frame(**vars(truth), image=self._finish(image, frame_index, degrade))

    def _place(self, t: int) -> tuple[np.ndarray, ...]:
        """Frame x of the bottom centre, bottom row, longer side and track id of every object
        and distractor at frame t."""
        o = self._objects
        grow = np.exp(o.depth * np.sin(o.depth_freq * t + o.depth_phase))
        x = (
            o.x
            + o.speed * t
            + o.sway * (np.sin(o.sway_freq * t + o.sway_phase) - np.sin(o.sway_phase))
        )
        lo, span = self._loop
        laps = np.floor((x - lo) / span).astype(np.int64)
        camera = self.camera_x(t)
        x = x - laps * span - camera
        tracks = 1 + np.arange(len(x)) + len(x) * zigzag(laps)
        horizon = self.horizon
        if self._look is not None:  # a tilted horizon: ground level depends on the column
            horizon = horizon + self._look.slope * (x + camera - self.world_width / 2)
        return x, horizon + o.drop * grow, o.size * grow, tracks

    def _rasters(
        self,
        t: int,
        x: np.ndarray,
        bottom: np.ndarray,
        size: np.ndarray,
        with_pixels: bool,
        objects: bool = True,
    ) -> list[tuple[int, Raster, tuple[int, int, int, int], np.ndarray]]:
        """Rasterize what is in view at frame t (placed by _place) far to near: (index,
        raster, in-frame box (tight), mask cropped to that box) per item; distractors only
        unless `objects`."""
        cfg, o = self.config, self._objects
        half = size / 2 + 2
        near = (
            (x + half > 0)
            & (x - half < cfg.width)
            & (bottom + 2 > 0)
            & (bottom - size - 2 < cfg.height)
        )
        if not objects:
            near &= o.labels < 0
        order = np.flatnonzero(near)
        order = order[np.argsort(bottom[order], kind="stable")]
        camera = self.camera_x(t)
        kept = []
        for i in order:
            if o.labels[i] < 0:  # static: drawn once in world columns, then shifted
                if i not in self._distractors:
                    self._distractors[i] = self._draw_item(i, x[i] + camera, bottom[i], size[i])
                raster = self._distractors[i]
                if raster is not None:
                    raster = dataclasses.replace(raster, x=raster.x - camera)
            else:
                raster = self._draw_item(i, x[i], bottom[i], size[i], with_pixels)
            clipped = None if raster is None else clip_to_frame(raster, cfg.height, cfg.width)
            if raster is None or clipped is None:
                continue
            kept.append((int(i), raster, *clipped))
        return kept

    def _draw_item(
        self, i: int, center_x: float, bottom_y: float, size: float, with_pixels: bool = True
    ) -> Raster | None:
        """Draw object or distractor i in its look (style, lighting) at a place and size."""
        o = self._objects
        return rasterize(
            int(o.labels[i]),
            int(o.variants[i]),
            o.colors[i],
            center_x,
            bottom_y,
            size,
            o.aspects[i],
            1 if o.speed[i] >= 0 else -1,
            with_pixels,
            int(o.styles[i]),
            None if self._look is None else self._look.lut,
        )

    def layers(self, frame_index: int) -> list[tuple[int, np.ndarray, np.ndarray]]:
        """What a frame draws, far to near: (label, in-frame box xyxy, mask cropped to the
        box) per item; distractors have negative labels. For checking the ground truth."""
        x, bottom, size, _ = self._place(frame_index)
        return [
            (int(self._objects.labels[i]), np.array(box), crop)
            for i, _, box, crop in self._rasters(frame_index, x, bottom, size, False)
        ]

    def _compose(self, t: int, image: np.ndarray | None, objects: bool = True) -> FrameTruth:
        """Place the objects at frame t, rasterize them far to near, derive the ground truth.

        Draws them into `image` when one is given (only the distractors unless `objects`).
        Distractors hide objects like nearer objects do but are not annotated.
        """
        x, bottom, size, tracks = self._place(t)
        kept = self._rasters(t, x, bottom, size, image is not None, objects)
        box_array = np.array([box for _, _, box, _ in kept], np.int64).reshape(-1, 4)
        totals = [np.count_nonzero(r.mask) for _, r, _, _ in kept]
        ignore = ignored(box_array, [crop for _, _, _, crop in kept], totals)
        if image is not None:
            for _, r, _, _ in kept:
                composite(image, r)
        index = np.array([i for i, _, _, _ in kept], np.int64)
        annotated = self._objects.labels[index] >= 0
        index = index[annotated]
        return FrameTruth(
            frame_index=t,
            camera_x=self.camera_x(t),
            boxes=box_array[annotated].astype(np.float32),
            labels=self._objects.labels[index],
            track_ids=tracks[index],
            ignore=ignore[annotated],
        )


def generate_sequence(
    seed: int | Sequence[int], config: SceneConfig | None = None
) -> Iterator[Frame]:
    """Render the frames of one sequence in order (see SceneSequence for random access)."""
    return iter(SceneSequence(seed, config))
