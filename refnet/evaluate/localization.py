r"""Localisation metrics: how much of a heatmap falls on the known signal pixels.

The metrics of the ground-truth benchmarks (Clark, Wilming and Haufe 2024, XAI-TRIS, Sec.
4; Wilming et al. 2022). Each takes heatmaps ``(N, C, H, W)`` and ground-truth masks
``(N, C or 1, H, W)`` and returns one score per sample, ``(N,)`` floats in [0, 1], 1 being
best. They look only at the magnitude of the heatmap summed over channels,
:math:`s_{hw} = \sum_c |h_{chw}|`, and at the union of the mask over channels.

- :func:`precision` — the fraction of the ``n = mask.sum()`` largest pixels of ``s`` that
  lie in the mask;
- :func:`emd_accuracy` — one minus the earth mover's distance between ``s`` and the mask,
  both as distributions, over the image diagonal (needs POT, ``pip install
  "refnet[groundtruth]"``);
- :func:`mass_accuracy` — the share of ``s`` that lies in the mask.

An all-zero (or constant) heatmap says nothing about where the signal is; every metric
scores it as the uniform map (chance level), never as NaN.
"""

from __future__ import annotations

import inspect

import numpy as np

from ..layers.base import check_input


def _prepare(func: str, heatmaps: np.ndarray, masks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``s = sum_c |h|`` (N, H, W) float64 and the mask union (N, H, W) bool, validated."""
    check_input(func, heatmaps, 4, check_finite=True, what="heatmaps")
    masks = np.asarray(masks)
    N, C, H, W = heatmaps.shape
    if masks.ndim != 4 or masks.shape[0] != N or masks.shape[2:] != (H, W):
        raise ValueError(
            f"{func}: masks must have shape ({N}, {C} or 1, {H}, {W}) for heatmaps of shape "
            f"{heatmaps.shape}, got {masks.shape}"
        )
    if masks.shape[1] not in (1, C):
        raise ValueError(
            f"{func}: masks have {masks.shape[1]} channels; expected 1 or {C} (the heatmaps' "
            f"shape is {heatmaps.shape})"
        )
    if masks.dtype != bool:
        if not np.issubdtype(masks.dtype, np.number) or not np.isin(masks, (0, 1)).all():
            raise TypeError(f"{func}: masks must be bool (or 0/1), got dtype {masks.dtype}")
        masks = masks != 0
    mask = masks.any(axis=1)  # (N, H, W)
    empty = ~mask.reshape(N, -1).any(axis=1)  # (N,)
    if empty.any():
        raise ValueError(
            f"{func}: the masks of samples {np.flatnonzero(empty)[:5].tolist()} are empty; "
            "every sample needs at least one ground-truth pixel"
        )
    s = np.abs(heatmaps.astype(np.float64, copy=False)).sum(axis=1)  # (N, H, W)
    return s, mask


def _as_distribution(s: np.ndarray) -> np.ndarray:
    """``s / s.sum()`` per sample (N, D); a sample with ``s.sum() == 0`` becomes uniform."""
    total = s.sum(axis=1, keepdims=True)  # (N, 1)
    uniform = np.full_like(s, 1.0 / s.shape[1])
    return np.divide(s, total, out=uniform, where=total > 0)


def precision(heatmaps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    r"""Top-n precision: the share of the ``n = mask.sum()`` largest ``s`` inside the mask.

    .. math::

        \mathrm{precision} = \frac{|\mathrm{top}_n(s) \cap M|}{n}, \qquad n = |M|,
        \qquad s_{hw} = \textstyle\sum_c |h_{chw}|

    (XAI-TRIS, Sec. 4.2). Pixels tied with the n-th largest value share the remaining
    places: the score is the expectation over a random tie-break, so it does not depend on
    the order of the pixels, and a constant (or all-zero) map scores chance, ``n / (H W)``.
    (The published code instead keeps only non-zero pixels and breaks ties by position.)

    Parameters
    ----------
    heatmaps : ndarray (N, C, H, W), float
    masks : ndarray (N, C or 1, H, W), bool

    Returns
    -------
    ndarray (N,), float64 in [0, 1]
    """
    s, mask = _prepare("precision", heatmaps, masks)
    N = len(s)
    s, mask = s.reshape(N, -1), mask.reshape(N, -1)  # (N, H*W)
    n = mask.sum(axis=1)  # (N,)
    ordered = -np.sort(-s, axis=1)  # (N, H*W), largest first
    threshold = ordered[np.arange(N), n - 1][:, None]  # (N, 1), the n-th largest value
    above, tied = s > threshold, s == threshold
    places = n - above.sum(axis=1)  # how many of the tied pixels are in the top n
    hits = (above & mask).sum(axis=1) + places * (tied & mask).sum(axis=1) / tied.sum(axis=1)
    return hits / n


def _cost_matrix(H: int, W: int) -> np.ndarray:
    """Euclidean distances between the pixel centres of an H x W image, (H*W, H*W)."""
    rows, cols = np.indices((H, W))
    centres = np.stack([rows.ravel(), cols.ravel()], axis=1).astype(np.float64)  # (H*W, 2)
    return np.sqrt(((centres[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2))


def _pot():
    try:
        import ot
    except ImportError as exc:
        raise ImportError(
            "emd_accuracy needs POT, the optimal-transport library (pip name 'pot'): "
            'pip install "refnet[groundtruth]"'
        ) from exc
    return ot


def _parameters(func) -> set[str]:
    return set(inspect.signature(func).parameters)


def emd_accuracy(heatmaps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    r"""Earth mover's accuracy: one minus the transport cost from the heatmap to the mask.

    .. math::

        \mathrm{EMD}_{acc} = 1 - \frac{\mathrm{EMD}\big(s / \textstyle\sum s,\;
            M / \sum M\big)}{\sqrt{H^2 + W^2}},
        \qquad s_{hw} = \textstyle\sum_c |h_{chw}|,

    where EMD is the optimal-transport cost with the Euclidean distance between pixel
    centres as the ground cost (XAI-TRIS, Sec. 4.2), solved exactly by POT's network
    simplex (``ot.emd2``) on the pixels that carry mass. The normaliser follows the
    published code: :math:`\sqrt{H^2 + W^2}` (:math:`\sqrt{128}` for 8x8), a little more
    than the largest distance between two pixel centres, :math:`\sqrt{(H-1)^2 + (W-1)^2}`
    (the paper's :math:`\sqrt{98}`). An all-zero map is scored as the uniform map.

    Parameters
    ----------
    heatmaps : ndarray (N, C, H, W), float
    masks : ndarray (N, C or 1, H, W), bool

    Returns
    -------
    ndarray (N,), float64 in [0, 1]

    Raises
    ------
    ImportError
        Without POT (the ``groundtruth`` extra).
    """
    ot = _pot()
    s, mask = _prepare("emd_accuracy", heatmaps, masks)
    N, H, W = s.shape
    p = _as_distribution(s.reshape(N, -1))  # (N, H*W)
    q = _as_distribution(mask.reshape(N, -1).astype(np.float64))  # (N, H*W)
    cost = _cost_matrix(H, W)  # (H*W, H*W)
    # Both marginals are normalised here, so POT's own check (half the time of a call on
    # 8x8 images) is skipped where this POT version offers the switch.
    fast = {"check_marginals": False} if "check_marginals" in _parameters(ot.emd2) else {}
    out = np.empty(N)
    for i in range(N):
        src, dst = np.flatnonzero(p[i]), np.flatnonzero(q[i])  # zero-mass pixels cost nothing
        a, b = p[i, src], q[i, dst]
        a = a / a.sum()  # exact unit mass for the solver
        out[i] = ot.emd2(a, b, np.ascontiguousarray(cost[np.ix_(src, dst)]), **fast)
    return np.clip(1.0 - out / np.sqrt(H**2 + W**2), 0.0, 1.0)


def mass_accuracy(heatmaps: np.ndarray, masks: np.ndarray) -> np.ndarray:
    r"""Mass accuracy: the share of the heatmap's magnitude that lies in the mask.

    .. math::

        \mathrm{mass} = \frac{\sum_{(h, w) \in M} s_{hw}}{\sum_{h, w} s_{hw}},
        \qquad s_{hw} = \textstyle\sum_c |h_{chw}|

    (Arras et al. 2022's relevance mass accuracy). An all-zero map is scored as the uniform
    map, ``|M| / (H W)``.

    Parameters
    ----------
    heatmaps : ndarray (N, C, H, W), float
    masks : ndarray (N, C or 1, H, W), bool

    Returns
    -------
    ndarray (N,), float64 in [0, 1]
    """
    s, mask = _prepare("mass_accuracy", heatmaps, masks)
    N = len(s)
    p = _as_distribution(s.reshape(N, -1))  # (N, H*W)
    return np.clip((p * mask.reshape(N, -1)).sum(axis=1), 0.0, 1.0)  # (N,)
