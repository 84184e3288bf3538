r"""Per-sample normalisation of heatmaps for display (MATH.md section 4).

.. math:: \tilde h_n = h_n / \max_i |h_{n,i}|

A sample whose heatmap is all zeros stays all zeros (no division by zero, no NaN).
"""

from __future__ import annotations

import numpy as np

from ..layers.base import check_input


def normalize(h: np.ndarray) -> np.ndarray:
    r"""Rescale every sample of ``h`` (batch on axis 0) by its largest absolute value.

    Parameters
    ----------
    h : np.ndarray
        Heatmaps ``(N, ...)``, float32 or float64, finite.

    Returns
    -------
    np.ndarray
        Same shape and dtype, every sample in ``[-1, 1]`` with max ``|.|`` equal to 1 (or
        all zeros).
    """
    check_input("normalize", h, None, check_finite=True, what="heatmap h")
    if h.ndim < 1:
        raise ValueError(f"normalize: h must have a batch axis, got shape {h.shape}")
    axes = tuple(range(1, h.ndim))
    scale = np.abs(h).max(axis=axes, keepdims=True) if h.size else np.ones_like(h)  # (N, 1, ..)
    out = np.zeros_like(h)
    np.divide(h, scale, out=out, where=scale > 0)
    return out
