"""The benchmark's figures (matplotlib, Agg backend), written atomically.

- :func:`box_plot` — one figure per metric: a panel per data set, a box per method and
  model over the evaluated test samples (baselines once, in grey);
- :func:`example_grid` — one figure per scenario: for one evaluated test sample per
  background, the input, its ground truth and every method's heatmap, a row per model
  (one mosaic image, so that it draws in a fraction of a second).

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
from .run import ALL_METHODS, DatasetResult


def _save(fig, path: Path, dpi: int) -> None:
    """Render ``fig`` to PNG in memory, then write it atomically to ``path``."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    write_atomic(path, lambda f: f.write(buffer.getvalue()))


#: One colour per model in the box plots.
MODEL_COLOURS = {"llr": "tab:green", "mlp": "tab:orange", "cnn": "tab:blue"}


def _boxes(ax, data, positions, colours, width: float = 0.24) -> None:
    """Box plots drawn as three collections (boxes, whiskers, medians) instead of several
    artists per box: with about 400 boxes per figure this draws ten times faster. The
    statistics (quartiles, whiskers at 1.5 IQR) are matplotlib's ``cbook.boxplot_stats``."""
    from matplotlib import cbook

    stats = cbook.boxplot_stats(data)
    q1 = np.array([st["q1"] for st in stats])
    q3 = np.array([st["q3"] for st in stats])
    ax.bar(positions, q3 - q1, width, bottom=q1, color=colours, edgecolor="k", linewidth=0.4)
    low, high = [st["whislo"] for st in stats], [st["whishi"] for st in stats]
    ax.vlines(positions, low, q1, color="k", linewidth=0.5)
    ax.vlines(positions, q3, high, color="k", linewidth=0.5)
    half = width / 2
    x = np.asarray(positions)
    ax.hlines([st["med"] for st in stats], x - half, x + half, color="k", linewidth=1.0)


def box_plot(results: Sequence[DatasetResult], metric: str, path: Path) -> None:
    """One panel per data set: a box per (method, model), baselines once, in grey."""
    plt = pyplot()
    fig, axes = plt.subplots(
        len(results), 1, figsize=(11, 1.7 * len(results)), squeeze=False, sharex=True
    )
    for ax, r in zip(axes[:, 0], results, strict=True):
        data, positions, colours = [], [], []
        for i, method in enumerate(ALL_METHODS):
            owners = ["baseline"] if method in BASELINES else list(r.evaluated)
            for k, owner in enumerate(owners):
                values = r.scores.get((owner, method), {}).get(metric)
                if values is None or not len(values):
                    continue
                data.append(values)
                positions.append(i + (k - (len(owners) - 1) / 2) * 0.27)
                colours.append(MODEL_COLOURS.get(owner, "0.75"))
        if data:
            _boxes(ax, data, positions, colours)
        ax.set_ylim(-0.02, 1.02)
        ax.tick_params(labelsize=6)
        ax.set_title(f"{r.scenario}/{r.background} (n={r.n_eval})", fontsize=7, loc="left")
    axes[-1, 0].set_xticks(np.arange(len(ALL_METHODS)), [LABELS.get(m, m) for m in ALL_METHODS])
    axes[-1, 0].set_xlim(-0.6, len(ALL_METHODS) - 0.4)
    handles = [plt.Rectangle((0, 0), 1, 1, color=c) for c in MODEL_COLOURS.values()]
    handles.append(plt.Rectangle((0, 0), 1, 1, color="0.75"))
    fig.legend(handles, [*MODEL_COLOURS, "baseline"], loc="upper right", ncol=4, fontsize=7)
    fig.suptitle(f"{metric} per method and model", fontsize=9, x=0.02, y=0.995, ha="left")
    fig.subplots_adjust(left=0.04, right=0.99, top=0.95, bottom=0.05, hspace=0.35)
    _save(fig, path, dpi=80)
    plt.close(fig)


def _rgb(h: np.ndarray, method: str, plt) -> np.ndarray:
    """One heatmap (C, H, W) as an (H, W, 3) picture in the display convention."""
    image, cmap, vmin, vmax = display_image(h, method)
    return plt.get_cmap(cmap)((image - vmin) / (vmax - vmin))[..., :3]


def example_grid(results: Sequence[DatasetResult], path: Path) -> None:
    """Rows: each background's first evaluated test sample, once per model; columns: the
    input, the ground truth, every method's heatmap. Drawn as one mosaic image."""
    plt = pyplot()
    rows = [(r, m) for r in results if r.n_eval for m in r.evaluated]
    cols = ["input", "truth", *ALL_METHODS]
    size, gap = 8, 2
    mosaic = np.ones((max(len(rows), 1) * (size + gap), len(cols) * (size + gap), 3))
    for i, (r, model) in enumerate(rows):
        ex = r.example
        tiles = [_rgb(ex["x"][0], "gradient", plt), _rgb(ex["mask"][0].astype(float), "x", plt)]
        for method in ALL_METHODS:
            key = method if method in BASELINES else f"{model}/{method}"
            tiles.append(_rgb(ex["heatmaps"][key][0], method, plt))
        for j, tile in enumerate(tiles):
            top, left = i * (size + gap), j * (size + gap)
            mosaic[top : top + size, left : left + size] = tile
    fig, ax = plt.subplots(figsize=(0.75 * len(cols) + 1.2, 0.75 * max(len(rows), 1) + 1.0))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_xticks(np.arange(len(cols)) * (size + gap) + size / 2, [LABELS.get(c, c) for c in cols])
    ax.set_yticks(
        np.arange(len(rows)) * (size + gap) + size / 2,
        [f"{r.background}, {m} (class {int(r.example['y'][0])})" for r, m in rows],
    )
    ax.tick_params(axis="x", labelrotation=60, labelsize=6, length=0)
    ax.tick_params(axis="y", labelsize=6, length=0)
    for spine in ax.spines.values():
        spine.set_visible(False)
    ax.set_title(f"{results[0].scenario}: one test sample per row", fontsize=8)
    fig.tight_layout(pad=0.3)
    _save(fig, path, dpi=100)
    plt.close(fig)
