r"""Naive-loop oracles: the slowest, most obviously correct versions of every kernel.

These are the first tier of the three-tier tests (naive loops = NumPy reference = Cython
kernel). Each function loops over output positions and writes the definition down
literally, on a zero-padded copy of the input; they compute in float64 and allocate their
own output. Conventions (MATH.md section 0): NCHW, cross-correlation (no kernel flip),
patches flattened in ``(C, kh, kw)`` order, ``H' = (H + 2 ph - kh) // s + 1``.

.. math:: y_{n,f,i,j} = b_f + \sum_{c,u,v} W_{f,c,u,v}\, x^{pad}_{n,c,\,s i + u,\,s j + v}
"""

import numpy as np


def _out_size(size: int, k: int, s: int, p: int) -> int:
    return (size + 2 * p - k) // s + 1


def _pad(x: np.ndarray, ph: int, pw: int) -> np.ndarray:
    N, C, H, W = x.shape
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw))  # (N, C, H+2ph, W+2pw)
    xp[:, :, ph : ph + H, pw : pw + W] = x
    return xp


def im2col(x: np.ndarray, kh: int, kw: int, s: int, ph: int, pw: int) -> np.ndarray:
    """Column ``i W' + j`` of sample ``n`` is the patch at output position ``(i, j)``."""
    N, C, H, W = x.shape
    Ho, Wo = _out_size(H, kh, s, ph), _out_size(W, kw, s, pw)
    xp = _pad(np.asarray(x, dtype=np.float64), ph, pw)
    cols = np.zeros((N, C * kh * kw, Ho * Wo))  # (N, C*kh*kw, H'*W')
    for n in range(N):
        for i in range(Ho):
            for j in range(Wo):
                patch = xp[n, :, s * i : s * i + kh, s * j : s * j + kw]  # (C, kh, kw)
                cols[n, :, i * Wo + j] = patch.ravel()  # (C*kh*kw,) in (C, kh, kw) order
    return cols


def col2im(
    cols: np.ndarray, x_shape: tuple, kh: int, kw: int, s: int, ph: int, pw: int
) -> np.ndarray:
    """Add every column back onto its patch; drop what lands in the padding."""
    N, C, H, W = x_shape
    Ho, Wo = _out_size(H, kh, s, ph), _out_size(W, kw, s, pw)
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw))  # (N, C, H+2ph, W+2pw)
    for n in range(N):
        for i in range(Ho):
            for j in range(Wo):
                patch = cols[n, :, i * Wo + j].reshape(C, kh, kw)  # (C, kh, kw)
                xp[n, :, s * i : s * i + kh, s * j : s * j + kw] += patch
    return xp[:, :, ph : ph + H, pw : pw + W]


def conv2d_forward(
    x: np.ndarray, W: np.ndarray, b: np.ndarray, s: int, ph: int, pw: int
) -> np.ndarray:
    """``y[n, f, i, j] = b[f] + sum(W[f] * patch(n, i, j))``."""
    N, C, H, Wd = x.shape
    F, _, kh, kw = W.shape
    Ho, Wo = _out_size(H, kh, s, ph), _out_size(Wd, kw, s, pw)
    xp = _pad(np.asarray(x, dtype=np.float64), ph, pw)
    W = np.asarray(W, dtype=np.float64)
    y = np.zeros((N, F, Ho, Wo))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    patch = xp[n, :, s * i : s * i + kh, s * j : s * j + kw]  # (C, kh, kw)
                    y[n, f, i, j] = b[f] + np.sum(W[f] * patch)
    return y


def conv2d_backward_input(
    dy: np.ndarray, W: np.ndarray, x_shape: tuple, s: int, ph: int, pw: int
) -> np.ndarray:
    """Each ``dy[n, f, i, j]`` spreads ``dy * W[f]`` over the patch it came from."""
    N, C, H, Wd = x_shape
    F, _, kh, kw = W.shape
    Ho, Wo = dy.shape[2], dy.shape[3]
    W = np.asarray(W, dtype=np.float64)
    dxp = np.zeros((N, C, H + 2 * ph, Wd + 2 * pw))  # (N, C, H+2ph, W+2pw)
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    dxp[n, :, s * i : s * i + kh, s * j : s * j + kw] += dy[n, f, i, j] * W[f]
    return dxp[:, :, ph : ph + H, pw : pw + Wd]


def conv2d_backward_weight(
    dy: np.ndarray, x: np.ndarray, w_shape: tuple, s: int, ph: int, pw: int
) -> np.ndarray:
    """``dW[f] = sum over (n, i, j) of dy[n, f, i, j] * patch(n, i, j)``."""
    F, C, kh, kw = w_shape
    N, _, Ho, Wo = dy.shape
    xp = _pad(np.asarray(x, dtype=np.float64), ph, pw)
    dW = np.zeros((F, C, kh, kw))
    for n in range(N):
        for f in range(F):
            for i in range(Ho):
                for j in range(Wo):
                    patch = xp[n, :, s * i : s * i + kh, s * j : s * j + kw]  # (C, kh, kw)
                    dW[f] += dy[n, f, i, j] * patch
    return dW


def maxpool2d_forward(x: np.ndarray, size: int, s: int) -> tuple[np.ndarray, np.ndarray]:
    """Window maxima and the flat ``h * W + w`` index of the FIRST maximum (row-major)."""
    N, C, H, W = x.shape
    Ho, Wo = (H - size) // s + 1, (W - size) // s + 1
    y = np.zeros((N, C, Ho, Wo))
    argmax = np.zeros((N, C, Ho, Wo), dtype=np.int64)
    for n in range(N):
        for c in range(C):
            for i in range(Ho):
                for j in range(Wo):
                    best, where = -np.inf, -1
                    for u in range(size):  # row-major scan; only a strictly larger
                        for v in range(size):  # value replaces the current best
                            h, w = s * i + u, s * j + v
                            if x[n, c, h, w] > best:
                                best, where = x[n, c, h, w], h * W + w
                    y[n, c, i, j], argmax[n, c, i, j] = best, where
    return y, argmax


def maxpool2d_backward(dy: np.ndarray, argmax: np.ndarray, x_shape: tuple) -> np.ndarray:
    """Add each ``dy`` value at its window's argmax (overlapping windows add up)."""
    N, C, H, W = x_shape
    dx = np.zeros((N, C, H * W))  # (N, C, H*W)
    for n in range(N):
        for c in range(C):
            for i in range(dy.shape[2]):
                for j in range(dy.shape[3]):
                    dx[n, c, argmax[n, c, i, j]] += dy[n, c, i, j]
    return dx.reshape(N, C, H, W)  # (N, C, H, W)
