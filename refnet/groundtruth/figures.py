"""The benchmark's figures (matplotlib, Agg backend), written atomically.

- :func:`box_plot` — one figure per metric: a panel per data set and model, one box per
  method over the evaluated test samples (baselines in grey);
- :func:`example_grid` — one figure per scenario: for one evaluated test sample per
  background, the input, its ground truth and every method's heatmap, a row per model.

Heatmaps use the display convention of :mod:`refnet.demo.figures` (signal methods in grey,
attribution methods with a diverging colormap centred at 0).
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..demo.figures import LABELS, display_image, pyplot
from .baselines import BASELINES
from .output import write_atomic
from .run import ALL_METHODS, MODELS, DatasetResult


def _save(fig, path: Path, dpi: int) -> None:
    """Render ``fig`` to PNG in memory, then write it atomically to ``path``."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    write_atomic(path, lambda f: f.write(buffer.getvalue()))


def box_plot(results: Sequence[DatasetResult], metric: str, path: Path) -> None:
    """Per data set (rows) and model (columns), the distribution of ``metric`` per method."""
    plt = pyplot()
    rows, cols = len(results), len(MODELS)
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 1.7 * rows), squeeze=False)
    labels = [LABELS.get(m, m) for m in ALL_METHODS]
    for i, r in enumerate(results):
        for j, model in enumerate(MODELS):
            ax = axes[i, j]
            if model not in r.evaluated or r.n_eval == 0:
                ax.set_axis_off()
                ax.set_title(f"{r.scenario}/{r.background}, {model}: not evaluated", fontsize=7)
                continue
            data = [
                r.scores["baseline" if m in BASELINES else model, m][metric] for m in ALL_METHODS
            ]
            parts = ax.boxplot(data, widths=0.6, patch_artist=True, showfliers=False)
            for box, method in zip(parts["boxes"], ALL_METHODS, strict=True):
                box.set_facecolor("0.8" if method in BASELINES else "tab:blue")
            ax.set_ylim(-0.02, 1.02)
            ax.set_xticks(np.arange(1, len(ALL_METHODS) + 1), labels if i == rows - 1 else [])
            ax.tick_params(axis="x", labelrotation=90, labelsize=6)
            ax.tick_params(axis="y", labelsize=6)
            ax.set_title(f"{r.scenario}/{r.background}, {model} (n={r.n_eval})", fontsize=7)
    fig.suptitle(f"{metric} per method (grey: baselines)", fontsize=9)
    fig.tight_layout()
    _save(fig, path, dpi=80)
    plt.close(fig)


def example_grid(results: Sequence[DatasetResult], path: Path) -> None:
    """Rows: each background's first evaluated test sample, once per model; columns: the
    input, the ground truth, every method's heatmap."""
    plt = pyplot()
    rows = [(r, m) for r in results if r.n_eval for m in r.evaluated]
    cols = 2 + len(ALL_METHODS)
    fig, axes = plt.subplots(
        max(len(rows), 1),
        cols,
        figsize=(0.8 * cols, 0.85 * max(len(rows), 1) + 0.5),
        squeeze=False,
    )
    for i, (r, model) in enumerate(rows):
        ex = r.example
        axes[i, 0].imshow(ex["x"][0].sum(axis=0), cmap="gray")
        axes[i, 0].set_ylabel(f"{r.background}\n{model}", fontsize=5.5, rotation=0, labelpad=22)
        axes[i, 1].imshow(ex["mask"][0].any(axis=0), cmap="gray_r")
        for j, method in enumerate(ALL_METHODS, start=2):
            key = method if method in BASELINES else f"{model}/{method}"
            image, cmap, vmin, vmax = display_image(ex["heatmaps"][key][0], method)
            axes[i, j].imshow(image, cmap=cmap, vmin=vmin, vmax=vmax)
    for j, title in enumerate(["input", "truth"] + [LABELS.get(m, m) for m in ALL_METHODS]):
        axes[0, j].set_title(title, fontsize=5, rotation=45, ha="left")
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout(pad=0.2)
    _save(fig, path, dpi=90)
    plt.close(fig)
