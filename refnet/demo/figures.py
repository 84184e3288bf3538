"""The demo's figures (matplotlib, Agg backend; nothing is shown on screen).

- :func:`toy_figure` — the paper's Fig. 2: data, signal, distractor, filter, pattern, and
  what each method returns, with its angle to the signal direction.
- :func:`rho_figure` — the paper's Fig. 3: rho per layer and estimator, both variants.
- :func:`heatmap_grid` — the paper's Figs. 5-6: one test digit per row, every method.
- :func:`degradation_figure` — the paper's Fig. 4: probability of the predicted class
  while patches are replaced, one curve per method, AOPC in the legend.

Display convention (MATH.md section 4, "for display, heatmaps are normalised per sample by
the largest absolute value"): signal methods, which live in input space, are drawn in grey as
``x / (2 max|x|) + 1/2`` (so 0 is mid-grey); attribution methods, whose sign says "for" or
"against" the class, with a diverging colormap centred at 0.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from ..fileio import atomic_write

#: Methods whose output is a signal in input space (drawn in grey), not a relevance.
#: SmoothGrad is an averaged gradient, so it is drawn like the gradient.
SIGNAL_METHODS = frozenset(
    {"gradient", "deconvnet", "guided_backprop", "patternnet", "smoothgrad"}
)

#: Short column titles for the heatmap grid.
LABELS = {
    "gradient": "Gradient",
    "gradient_x_input": "Grad x Input",
    "deconvnet": "DeConvNet",
    "guided_backprop": "Guided BP",
    "lrp.epsilon": "LRP-eps",
    "lrp.alpha_beta": "LRP-a2b1",
    "lrp.z_plus": "LRP-z+",
    "integrated_gradients": "Int. Grad.",
    "smoothgrad": "SmoothGrad",
    "patternnet": "PatternNet",
    "patternattribution": "PatternAttr. (S_a+-)",
    "patternattribution.linear": "PatternAttr. (S_a)",
    "patternnet.linear": "PatternNet (S_a)",
    "random": "random",
}

_DIVERGING = "bwr"


def pyplot():
    """matplotlib's pyplot on the Agg backend (files only, no window)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_png(plt, fig, path: Path, dpi: int) -> None:
    """Write ``fig`` to the PNG ``path`` atomically (:func:`refnet.fileio.atomic_write`)."""
    with atomic_write(path) as f:
        fig.savefig(f, dpi=dpi, format="png")
    plt.close(fig)


def display_image(h: np.ndarray, method: str) -> tuple[np.ndarray, str, float, float]:
    r"""One heatmap ready for ``imshow``: ``(image (H, W), cmap, vmin, vmax)``.

    ``h`` is (C, H, W); channels are summed. Signal methods map to
    :math:`x / (2 \max|x|) + 1/2` in [0, 1], grey; attribution methods keep their values,
    with a diverging map symmetric around 0.
    """
    image = np.asarray(h, dtype=np.float64).sum(axis=0)  # (H, W)
    m = float(np.abs(image).max())
    scale = m if m > 0 else 1.0
    if method.split(".")[0] in SIGNAL_METHODS or method in SIGNAL_METHODS:
        return image / (2 * scale) + 0.5, "gray", 0.0, 1.0
    return image / scale, _DIVERGING, -1.0, 1.0


def _label(method: str) -> str:
    return LABELS.get(method, method)


def toy_figure(toy, path: Path, labels: Mapping[str, str]) -> None:
    """The linear toy: left, data and directions; right, each method's output direction."""
    from ..evaluate.toy import A_D, A_S

    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(10, 4.8))
    X = toy.X[:600]
    left.scatter(X[:, 0], X[:, 1], s=4, alpha=0.3, color="0.5", label="data x = a_s y + a_d eps")
    arrows = [
        (A_S, "tab:green", "signal a_s"),
        (A_D, "tab:red", "distractor a_d"),
        (toy.w, "tab:blue", f"filter w ({toy.angle_w:.1f}° to a_s)"),
        (toy.a, "tab:orange", f"pattern a ({toy.angle_a:.1f}° to a_s)"),
    ]
    for (v, color, label), length in zip(arrows, (3.2, 2.5, 2.5, 2.5), strict=True):
        v = length * np.asarray(v) / np.linalg.norm(v)
        left.annotate(
            "", xy=v, xytext=(0, 0), arrowprops={"arrowstyle": "->", "color": color, "lw": 2.5}
        )
        left.plot([], [], color=color, lw=2.5, label=label)
    left.set_aspect("equal")
    left.set_xlim(-4.5, 4.5)
    left.set_ylim(-4.5, 4.5)
    left.legend(loc="lower right", fontsize=7)
    left.set_title("Linear toy (Fig. 2): filter w vs. pattern a")

    # One sample with a clear positive output; unit vectors of what each method returns.
    i = int(np.argmin(np.abs(toy.y - 1.5)))
    right.axline((0, 0), (1, 0), color="k", lw=1, ls="--", label="signal line a_s")
    colors = plt.get_cmap("tab10")
    for j, (method, e) in enumerate(toy.explanations.items()):
        v = e[i]
        n = np.linalg.norm(v)
        if n == 0:
            continue
        v = (1 - 0.08 * j) * v / n
        color = colors(j)
        right.annotate(
            "", xy=v, xytext=(0, 0), arrowprops={"arrowstyle": "->", "color": color, "lw": 2}
        )
        right.plot(
            [],
            [],
            color=color,
            lw=2,
            label=f"{labels.get(method, method)}: {toy.angles[method]:.1f}°",
        )
    right.set_aspect("equal")
    right.set_xlim(-1.1, 1.1)
    right.set_ylim(-1.1, 1.1)
    right.legend(loc="lower left", fontsize=7, title="mean angle to a_s", title_fontsize=7)
    right.set_title(f"What each method returns (x = ({toy.X[i, 0]:.2f}, {toy.X[i, 1]:.2f}))")
    fig.tight_layout()
    _save_png(plt, fig, path, dpi=110)


def rho_figure(rho_table: Mapping, layer_names: Mapping, path: Path) -> None:
    """Grouped bars of mean rho (error bar: std over neurons), one panel per target variant."""
    plt = pyplot()
    estimators = ("S_w", "S_a", "S_a+-", "S_r")
    titles = {"y": "rho vs. pre-activation y (Eq. 1)", "relu": "rho vs. relu(z)"}
    fig, axes = plt.subplots(1, len(rho_table), figsize=(5.2 * len(rho_table), 3.8), squeeze=False)
    for ax, (target, by_layer) in zip(axes[0], rho_table.items(), strict=True):
        layers = list(by_layer)
        xs = np.arange(len(layers))
        width = 0.8 / len(estimators)
        for j, name in enumerate(estimators):
            means = [by_layer[k][name]["mean"] for k in layers]
            stds = [by_layer[k][name]["std"] for k in layers]
            means = [np.nan if m is None else m for m in means]
            stds = [0.0 if s is None else s for s in stds]
            ax.bar(xs + (j - 1.5) * width, means, width, yerr=stds, capsize=2, label=name)
        ax.set_xticks(xs, [layer_names[k] for k in layers])
        ax.set_ylim(0, 1.1)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_ylabel("rho (mean ± std over neurons)")
        ax.set_title(titles.get(target, target))
        ax.legend(fontsize=7, ncol=4, loc="upper center")
    fig.tight_layout()
    _save_png(plt, fig, path, dpi=110)


def heatmap_grid(
    x: np.ndarray, heatmaps: Mapping[str, np.ndarray], labels: Sequence[str], path: Path
) -> None:
    """Rows: the images ``x`` (N, C, H, W); columns: the input, then every method's heatmap."""
    plt = pyplot()
    methods = list(heatmaps)
    rows, cols = len(x), 1 + len(methods)
    fig, axes = plt.subplots(rows, cols, figsize=(0.95 * cols, 0.95 * rows + 0.4), squeeze=False)
    for r in range(rows):
        axes[r, 0].imshow(x[r].sum(axis=0), cmap="gray_r")
        axes[r, 0].set_ylabel(str(labels[r]), rotation=0, labelpad=8, fontsize=8)
        for c, method in enumerate(methods, start=1):
            image, cmap, vmin, vmax = display_image(heatmaps[method][r], method)
            axes[r, c].imshow(image, cmap=cmap, vmin=vmin, vmax=vmax)
    for c, title in enumerate(["input"] + [_label(m) for m in methods]):
        axes[0, c].set_title(title, fontsize=6.5)
    for ax in axes.ravel():
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout(pad=0.3)
    _save_png(plt, fig, path, dpi=100)


def degradation_figure(
    curves: Mapping[str, np.ndarray], aopcs: Mapping[str, float], path: Path
) -> None:
    """Mean probability of the predicted class vs. number of replaced patches, per method."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.5))
    order = sorted(curves, key=lambda m: -aopcs[m])
    colors = plt.get_cmap("tab20")
    for j, method in enumerate(order):
        curve = np.asarray(curves[method])
        style = (
            {"color": "k", "ls": "--", "lw": 2}
            if method == "random"
            else {"color": colors(j % 20)}
        )
        ax.plot(
            np.arange(len(curve)),
            curve,
            label=f"{_label(method)} (AOPC {aopcs[method]:.3f})",
            **style,
        )
    ax.set_xlabel("patches replaced (2x2, most relevant first)")
    ax.set_ylabel("softmax probability of the predicted class")
    ax.set_title("Image degradation (Fig. 4)")
    ax.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    _save_png(plt, fig, path, dpi=110)


def save_heatmap_png(heat: np.ndarray, method: str, path: Path, max_images: int = 32) -> None:
    """The heatmaps (N, C, H, W) of one method side by side in one PNG (``refnet explain``)."""
    plt = pyplot()
    n = min(len(heat), max_images)
    fig, axes = plt.subplots(1, n, figsize=(1.6 * n, 1.8), squeeze=False)
    for i in range(n):
        image, cmap, vmin, vmax = display_image(heat[i], method)
        axes[0, i].imshow(image, cmap=cmap, vmin=vmin, vmax=vmax)
        axes[0, i].set_xticks([])
        axes[0, i].set_yticks([])
    axes[0, 0].set_title(_label(method), fontsize=8, loc="left")
    fig.tight_layout(pad=0.2)
    _save_png(plt, fig, path, dpi=100)
