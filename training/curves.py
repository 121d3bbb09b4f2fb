"""curves.png of a training run: what log.csv says, drawn so a user can see at a glance
whether the model learns where to look."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from training.losses import LOSS_TERMS

SMOOTH = 20  # log rows per running mean


def running_mean(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of the last `window` finite values at each row (NaN until one is finite)."""
    out = np.full(len(values), np.nan)
    for i in range(len(values)):
        recent = values[max(0, i - window + 1) : i + 1]
        if np.isfinite(recent).any():
            out[i] = np.nanmean(recent)
    return out


def plot_curves(log_path: Path, png_path: Path) -> None:
    """The training curves from log.csv: loss terms, learning rate, each scale's priority
    map (mean and spread), window precision and small-object patch recall, and the
    gradient norm per module. Each curve is a running mean over SMOOTH log rows; gradients of
    modules a step did not use (0) and patch recall on global-only steps are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with log_path.open() as f:
        rows = list(csv.DictReader(f))
    if not rows:
        return
    steps = np.array([int(r["step"]) for r in rows])

    def raw(key: str) -> np.ndarray:
        return np.array([float(r[key]) if r.get(key) not in (None, "") else np.nan for r in rows])

    no_windows = np.all(
        [np.isnan(raw(c)) for c in rows[0] if c.startswith("window_precision_")], axis=0
    )

    def series(key: str) -> np.ndarray:
        """The column, NaN where it measures nothing, as a running mean over SMOOTH rows."""
        values = raw(key)
        if key == "patch_recall_small" or key.startswith("grad_"):
            values[no_windows if key == "patch_recall_small" else values == 0] = np.nan
        return running_mean(values, SMOOTH)

    columns = list(rows[0])
    fig, axes = plt.subplots(2, 3, figsize=(15, 7))
    ax = axes[0, 0]
    for key in ("total", *LOSS_TERMS):
        ax.plot(steps, series(key), label=key)
    if any(np.nanmax(series(k), initial=0.0) > 0 for k in LOSS_TERMS):
        ax.set_yscale("log")
    ax.set_title("training loss")
    ax.legend(fontsize=7)
    axes[0, 1].plot(steps, raw("lr"))
    axes[0, 1].set_title("learning rate")
    ax = axes[0, 2]
    for key in (c for c in columns if c.startswith("prio_mean_")):
        scale = key.removeprefix("prio_mean_")
        mean, std = series(key), series(f"prio_std_{scale}")
        ax.plot(steps, mean, label=f"{scale} mean")
        ax.fill_between(steps, mean - std, mean + std, alpha=0.2)
    ax.set_title("priority map per scale (mean +- std)")
    ax.legend(fontsize=7)
    ax = axes[1, 0]
    for key in (
        c for c in columns if c.startswith("window_precision_") or c == "patch_recall_small"
    ):
        ax.plot(steps, series(key), label=key)
    ax.set_ylim(0, 1.05)
    ax.set_title("where the windows go (training crops)")
    ax.legend(fontsize=7)
    ax = axes[1, 1]
    for key in (c for c in columns if c.startswith("grad_") and c != "grad_norm"):
        ax.plot(steps, series(key), label=key.removeprefix("grad_"))
    ax.set_yscale("log")
    ax.set_title("gradient norm per module (before clipping)")
    ax.legend(fontsize=6, ncol=2)
    ax = axes[1, 2]
    for key in (c for c in columns if c.startswith("positives_")):
        ax.plot(steps, series(key), label=key.removeprefix("positives_"))
    ax.set_title("positives per frame and head")
    ax.legend(fontsize=7)
    for ax in axes.flat:
        ax.set_xlabel("step")
    fig.tight_layout()
    fig.savefig(png_path, dpi=90)
    plt.close(fig)
