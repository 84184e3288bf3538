r"""Max-pooling forward (with argmax) and backward.

Windows are ``size x size`` with stride ``s`` and no padding, so
``H' = (H - size) // s + 1``. A tie inside a window goes to the first maximum in row-major
order (MATH.md section 0): offsets are visited in row-major order and a later offset wins
only when it is strictly greater. ``argmax`` holds the flat index ``h * W + w`` of the
winner inside its ``(H, W)`` channel. The backward pass routes each upstream value to its
window's argmax; overlapping windows (``s < size``) add their contributions.
"""

import numpy as np


def maxpool2d_forward(
    x: np.ndarray, size: int, s: int, out: np.ndarray, argmax: np.ndarray
) -> None:
    """Fill ``out`` and ``argmax`` (both (N, C, H', W')) with window maxima and positions."""
    N, C, H, W = x.shape
    Ho, Wo = out.shape[2], out.shape[3]
    rows = np.arange(Ho)[:, None] * s  # (H', 1): top row of each window
    cols = np.arange(Wo)[None, :] * s  # (1, W'): left column of each window
    best = x[:, :, 0 : s * Ho : s, 0 : s * Wo : s].copy()  # offset (0, 0) first
    arg = np.broadcast_to(rows * W + cols, best.shape).astype(np.int64)
    for i in range(size):
        for j in range(size):
            v = x[:, :, i : i + s * Ho : s, j : j + s * Wo : s]  # (N, C, H', W')
            better = v > best  # strict: ties stay with the earlier offset
            best = np.where(better, v, best)
            arg = np.where(better, (rows + i) * W + (cols + j), arg)
    out[...] = best
    argmax[...] = arg


def maxpool2d_backward(dy: np.ndarray, argmax: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out`` (N, C, H, W) by adding each ``dy`` value at its window's argmax."""
    N, C, H, W = out.shape
    P = dy.shape[2] * dy.shape[3]  # H' W' (explicit: N C may be 0)
    flat = np.zeros((N * C, H * W), dtype=out.dtype)  # (N*C, H*W)
    rows = np.arange(N * C)[:, None]  # (N*C, 1)
    np.add.at(flat, (rows, argmax.reshape(N * C, P)), dy.reshape(N * C, P))
    out[...] = flat.reshape(N, C, H, W)
