"""Stage 5: the batched crop equals NumPy slicing (and area resizing) of the frame."""

from __future__ import annotations

import numpy as np
import torch
from pdn_tiny import HEIGHT, WIDTH, random_inputs, tiny_model

from pdn_model.backbone import PIXEL_MEAN, PIXEL_STD
from pdn_model.crop import crop_windows


def numpy_crop(frame: np.ndarray, x0: int, y0: int, scale: int, out: int) -> np.ndarray:
    window = frame[:, y0 : y0 + scale, x0 : x0 + scale].astype(np.float64)
    f = scale // out
    return window.reshape(3, out, f, out, f).mean(axis=(2, 4))


def test_crops_match_numpy_including_borders():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, 3, HEIGHT, WIDTH), dtype=np.uint8)
    for scale, out in ((64, 64), (128, 64), (128, 32)):
        x0 = np.array([[0, WIDTH - scale, 96], [16, WIDTH - scale, 0]])
        y0 = np.array([[0, HEIGHT - scale, 37], [HEIGHT - scale, 0, 5]])
        crops = crop_windows(
            torch.from_numpy(frames).float(), torch.from_numpy(x0), torch.from_numpy(y0),
            scale, out, chunk=16,
        ).numpy()
        assert crops.shape == (6, 3, out, out)
        for b in range(2):
            for j in range(3):
                ref = numpy_crop(frames[b], x0[b, j], y0[b, j], scale, out)
                np.testing.assert_allclose(crops[b * 3 + j], ref, rtol=0, atol=1e-4)


def test_model_patches_are_the_chosen_windows_of_the_frame():
    model = tiny_model()
    image, memory, valid, state = random_inputs(model, batch=2, seed=3)
    with torch.no_grad():
        out = model(image, memory, valid, state)
        boxes = out["patch_boxes"].long()
        crops = model.crop_patches(image.float(), out["patch_boxes"][..., :2]).numpy()
    p = boxes.shape[1]
    frames = image.numpy()
    for b in range(2):
        for j in range(p):
            x0, y0, x1, _ = boxes[b, j].tolist()
            ref = (numpy_crop(frames[b], x0, y0, x1 - x0, 64) - PIXEL_MEAN) / PIXEL_STD
            np.testing.assert_allclose(crops[b * p + j], ref, rtol=0, atol=1e-4)
