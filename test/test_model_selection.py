"""Stage 4: where the patches go."""

from __future__ import annotations

import pytest
import torch
from pdn_tiny import HEIGHT, WIDTH, random_inputs, tiny_config, tiny_model

from pdn_model.selection import (
    cell_window_origins,
    dense_window_origins,
    select_peaks,
    tile_starts,
)


def planted(peaks: dict[tuple[int, int], float], rows: int = 6, cols: int = 10) -> torch.Tensor:
    logits = torch.zeros(1, rows, cols)
    for (r, c), value in peaks.items():
        logits[0, r, c] = value
    return logits


def test_planted_peaks_are_selected_in_order():
    logits = planted({(1, 2): 5.0, (4, 7): 4.0, (2, 8): 3.0})
    assert select_peaks(logits, 3, radius=1).tolist() == [[1 * 10 + 2, 4 * 10 + 7, 2 * 10 + 8]]


def test_suppression_skips_a_neighbour_of_a_chosen_peak():
    logits = planted({(1, 2): 5.0, (1, 3): 4.9, (4, 7): 1.0})
    assert select_peaks(logits, 2, radius=1).tolist() == [[12, 47]]
    # With no suppression the neighbour wins second place.
    assert select_peaks(logits, 2, radius=0).tolist() == [[12, 13]]


def test_chosen_peaks_keep_their_distance():
    torch.manual_seed(1)
    logits = torch.randn(4, 12, 20)
    radius = 2
    picks = select_peaks(logits, 6, radius)
    rows, cols = picks // 20, picks % 20
    for b in range(4):
        for i in range(6):
            for j in range(i):
                far = max(abs(rows[b, i] - rows[b, j]), abs(cols[b, i] - cols[b, j]))
                assert far > radius


def test_ties_break_towards_the_lowest_index():
    flat = torch.zeros(2, 6, 10)
    assert select_peaks(flat, 3, radius=1).tolist() == [[0, 2, 4], [0, 2, 4]]


def test_more_patches_than_free_peaks_stay_distinct():
    picks = select_peaks(torch.randn(1, 6, 10), 30, radius=3)
    assert len(set(picks[0].tolist())) == 30


def test_too_many_patches_for_the_grid_is_refused():
    with pytest.raises(ValueError, match="cannot select 61 patches"):
        select_peaks(torch.zeros(1, 6, 10), 61, radius=1)


def test_windows_stay_inside_the_frame_and_centre_on_their_cell():
    cfg = tiny_config()
    cells = torch.arange(6 * 10)[None]
    for scale in cfg.patch_scales:
        x0, y0 = cell_window_origins(cells, 10, scale, cfg)
        assert (x0 >= 0).all() and (x0 + scale <= WIDTH).all()
        assert (y0 >= 0).all() and (y0 + scale <= HEIGHT).all()
        assert (x0 % cfg.crop_chunk == 0).all()
    # An interior cell: window centred on the cell centre.
    x0, y0 = cell_window_origins(torch.tensor([[2 * 10 + 4]]), 10, 64, cfg)
    assert (x0.item() + 32, y0.item() + 32) == (4 * 32 + 16, 2 * 32 + 16)
    # Corner cells: shifted inside.
    x0, y0 = cell_window_origins(torch.tensor([[0, 59]]), 10, 128, cfg)
    assert x0.tolist() == [[0, WIDTH - 128]] and y0.tolist() == [[0, HEIGHT - 128]]


def test_dense_tiling_covers_the_frame():
    assert tile_starts(320, 128) == [0, 128, 192]
    assert tile_starts(256, 128) == [0, 128]
    cfg = tiny_config()
    xs, ys = dense_window_origins(cfg, 128)
    covered = torch.zeros(HEIGHT, WIDTH, dtype=torch.bool)
    for x, y in zip(xs, ys, strict=True):
        covered[y : y + 128, x : x + 128] = True
    assert covered.all() and len(xs) == 3 * 2


def test_model_puts_patches_on_planted_priority_peaks(monkeypatch):
    model = tiny_model()
    cfg = model.config
    plane = torch.full((1, 2, 6, 10), -5.0)
    peaks_64 = [(1, 1), (4, 8), (3, 4)]
    peaks_128 = [(2, 2), (3, 7)]
    for i, (r, c) in enumerate(peaks_64):
        plane[0, 0, r, c] = 5.0 - i
    for i, (r, c) in enumerate(peaks_128):
        plane[0, 1, r, c] = 5.0 - i
    controller = model.priority.controller

    def fixed_priority(saliency, cells, pooled, state):
        return plane, controller.look(pooled, state)

    monkeypatch.setattr(model.priority, "forward", fixed_priority)
    with torch.no_grad():
        out = model(*random_inputs(model))
    expected = []
    for scale, peaks in zip(cfg.patch_scales, (peaks_64, peaks_128), strict=True):
        for r, c in peaks:
            x0 = min(max(c * 32 + 16 - scale // 2, 0), WIDTH - scale)
            y0 = min(max(r * 32 + 16 - scale // 2, 0), HEIGHT - scale)
            expected.append([x0, y0, x0 + scale, y0 + scale])
    assert out["patch_boxes"][0].tolist() == expected
    assert out["patch_scale"][0].tolist() == [0, 0, 0, 1, 1]
    assert torch.allclose(out["patch_scores"][0, :3], torch.sigmoid(torch.tensor([5.0, 4.0, 3.0])))
