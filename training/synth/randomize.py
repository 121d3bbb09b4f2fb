"""Domain randomisation (SceneConfig.randomize): the per-sequence draw of a look, and the
camera degradations (blur, JPEG) it applies to each frame."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from training.synth.background import BANDS, GROUNDS, SKIES
from training.synth.drawing import hsv, jitter

# Blur of a randomised look: none, Gaussian, horizontal motion, or soft (a lower-resolution
# camera upscaled: its JPEG works at the low resolution too), and the share of each.
BLURS = ("none", "gaussian", "motion", "soft")
NO_BLUR, GAUSSIAN, MOTION, SOFT = range(len(BLURS))
_BLUR_P = (0.35, 0.2, 0.15, 0.3)
_BLUR_RANGE = ((0.0, 0.0), (0.4, 1.2), (2.0, 12.0), (0.3, 2.0))  # pixels at 2160 rows


@dataclass(frozen=True)
class Look:
    """The randomised appearance of one sequence (SceneConfig.randomize)."""

    horizon: float  # fraction of the frame height
    slope: float  # horizon tilt, rows per column
    band: int  # index into BANDS
    sky: tuple[np.ndarray, np.ndarray]  # top, horizon colours
    ground: np.ndarray  # [3, 3] dark, mid, light
    furrows: float  # contrast of perspective stripes on the ground (0: none)
    gradient: tuple[float, float]  # lighting gradient: direction (radians), strength
    lut: np.ndarray  # uint8 [1, 256, 3]: brightness, contrast, gamma and colour cast
    blur: int  # index into BLURS
    blur_px: float  # Gaussian sigma, motion length or soft resolution divisor - 1 (pixels)
    blur_per_frame: bool  # strength varies per frame
    noise: float  # sensor noise, standard deviation in grey levels
    jpeg: int  # JPEG quality the frames are degraded with
    distractors: float  # distractors per frame width


def draw_look(rng: np.random.Generator, scale: float) -> Look:
    """Draw a sequence's look: every randomised setting at once."""
    if rng.random() < 0.4:
        top, bottom = (jitter(rng, c, 40) for c in SKIES[rng.integers(len(SKIES))])
    else:
        top = hsv(rng.random(), rng.uniform(0.0, 0.7), rng.uniform(0.25, 1.0))
        haze = hsv(rng.random(), rng.uniform(0.0, 0.4), rng.uniform(0.55, 1.0))
        bottom = 0.4 * top + 0.6 * haze
    if rng.random() < 0.35:
        ground = np.stack([jitter(rng, c, 30) for c in GROUNDS[rng.integers(len(GROUNDS))]])
    else:
        mid = hsv(rng.random(), rng.uniform(0.05, 0.8), rng.uniform(0.2, 0.85))
        ground = np.stack([mid * rng.uniform(0.4, 0.95), mid, mid * rng.uniform(1.05, 1.6)])
    v = np.linspace(0.0, 1.0, 256)[:, None]
    gamma = math.exp(rng.uniform(-0.35, 0.35))
    contrast, brightness = rng.uniform(0.7, 1.3), rng.uniform(-0.15, 0.15)
    cast = np.exp(rng.uniform(-0.12, 0.12, 3))
    lut = np.clip(((v**gamma - 0.5) * contrast + 0.5 + brightness) * cast * 255.0, 0, 255)
    blur = int(rng.choice(len(BLURS), p=_BLUR_P))
    blur_px = rng.uniform(*_BLUR_RANGE[blur]) * scale
    return Look(
        horizon=float(rng.uniform(0.15, 0.75)),
        slope=math.tan(math.radians(rng.uniform(-4.0, 4.0))),
        band=int(rng.integers(len(BANDS))),
        sky=(np.clip(top, 0, 255), np.clip(bottom, 0, 255)),
        ground=np.clip(ground, 0, 255),
        furrows=float(rng.uniform(0.05, 0.25)) if rng.random() < 0.35 else 0.0,
        gradient=(rng.uniform(0, 2 * math.pi), rng.uniform(0.0, 0.6) * (rng.random() < 0.6)),
        lut=np.round(lut).astype(np.uint8).reshape(1, 256, 3),
        blur=blur,
        blur_px=float(blur_px),
        blur_per_frame=bool(rng.random() < 0.5),
        noise=float(rng.uniform(0.0, 8.0)),
        jpeg=int(rng.integers(50, 96)),
        distractors=float(rng.uniform(2.0, 25.0)),
    )


def degrade_frame(image: np.ndarray, look: Look, rng: np.random.Generator) -> np.ndarray:
    """Blur and JPEG-compress a frame as the look says (RGB in, RGB out)."""
    px = look.blur_px * (rng.uniform(0.7, 1.3) if look.blur_per_frame else 1.0)
    rows, cols = image.shape[:2]
    if look.blur == GAUSSIAN and px >= 0.3:
        side = 2 * math.ceil(2.0 * px) + 1
        cv2.GaussianBlur(image, (side, side), px, dst=image)
    elif look.blur == MOTION and px >= 1.5:
        cv2.blur(image, (round(px), 1), dst=image)
    elif look.blur == SOFT and px >= 0.1:
        small = (max(1, round(cols / (1.0 + px))), max(1, round(rows / (1.0 + px))))
        # Halve first (Gaussian pyramid) when shrinking by 2 or more: bilinear alone would
        # alias, and INTER_AREA at non-integer factors is several times slower.
        source = cv2.pyrDown(image) if px >= 1.0 and min(rows, cols) >= 2 else image
        low = cv2.resize(source, small, interpolation=cv2.INTER_LINEAR)
        return cv2.resize(
            jpeg_round_trip(low, look.jpeg), (cols, rows), interpolation=cv2.INTER_LINEAR
        )
    return jpeg_round_trip(image, look.jpeg)


def jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    """An RGB image as it comes back from JPEG at a quality."""
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError(f"JPEG encoding of a {image.shape} frame failed")
    return cv2.imdecode(data, cv2.IMREAD_COLOR_RGB)
