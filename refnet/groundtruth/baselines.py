r"""Model-free "explanations" that any method should beat (XAI-TRIS, Sec. 4.3).

Each maps images ``x (N, C, H, W)`` to a heatmap of the same shape without looking at a
model:

- ``random``: uniform noise :math:`\mathcal U(-1, 1)` per pixel;
- ``sobel``: the edge strength :math:`\sqrt{(S_r * x)^2 + (S_c * x)^2}` of every image, with
  the Sobel derivatives along rows and columns (``scipy.ndimage.sobel``; the published code
  applied ``sobel`` along the last axis only);
- ``laplace``: the discrete Laplacian :math:`\nabla^2 x` (``scipy.ndimage.laplace``);
- ``x``: the input itself.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

BASELINES = ("random", "sobel", "laplace", "x")


def _per_image(x: np.ndarray, filt) -> np.ndarray:
    """``filt`` applied to every (H, W) image of ``x`` (N, C, H, W)."""
    N, C, H, W = x.shape
    images = x.reshape(N * C, H, W)  # (N*C, H, W)
    return np.stack([filt(image) for image in images]).reshape(N, C, H, W)  # (N, C, H, W)


def sobel(x: np.ndarray) -> np.ndarray:
    """Sobel edge magnitude per image, (N, C, H, W)."""
    return _per_image(x, lambda im: np.hypot(ndimage.sobel(im, axis=0), ndimage.sobel(im, axis=1)))


def laplace(x: np.ndarray) -> np.ndarray:
    """Discrete Laplacian per image, (N, C, H, W)."""
    return _per_image(x, ndimage.laplace)


def random_heatmap(x: np.ndarray, seed: int) -> np.ndarray:
    """Uniform noise in [-1, 1) of ``x``'s shape, from ``numpy.random.default_rng(seed)``."""
    return np.random.default_rng(seed).uniform(-1.0, 1.0, size=x.shape)


def baseline(name: str, x: np.ndarray, seed: int = 0) -> np.ndarray:
    """The baseline heatmap ``name`` (one of :data:`BASELINES`) of ``x`` (N, C, H, W)."""
    x = np.asarray(x, dtype=np.float64)
    if name == "random":
        return random_heatmap(x, seed)
    if name == "sobel":
        return sobel(x)
    if name == "laplace":
        return laplace(x)
    if name == "x":
        return x.copy()
    raise ValueError(f"unknown baseline {name!r}; choose one of {list(BASELINES)}")
