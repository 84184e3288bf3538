r"""im2col and col2im: a convolution seen as a dense layer applied to every patch.

For an input ``x`` of shape ``(N, C, H, W)``, a ``kh x kw`` kernel, stride ``s`` and zero
padding ``(ph, pw)``, the output grid is ``H' = (H + 2 ph - kh) // s + 1`` by
``W' = (W + 2 pw - kw) // s + 1`` (MATH.md section 0). ``im2col`` lays every patch out as a
column, in ``(C, kh, kw)`` row order, so that a convolution is one matrix product per sample:

.. math:: y_n = W_2 \, \mathrm{cols}_n, \qquad W_2 = W.\mathrm{reshape}(F, C k_h k_w).

``col2im`` is the adjoint of ``im2col``: the same loop over kernel offsets with ``+=``
in place of ``=``, so :math:`\langle \mathrm{im2col}(x), c\rangle = \langle x,
\mathrm{col2im}(c)\rangle`. The loop over kernel offsets copying strided slices follows
Chainer's ``im2col_cpu``.
"""

import numpy as np


def output_size(size: int, k: int, s: int, p: int) -> int:
    """Output length of a convolution along one axis: ``(size + 2p - k) // s + 1``."""
    return (size + 2 * p - k) // s + 1


def im2col(x: np.ndarray, kh: int, kw: int, s: int, ph: int, pw: int, out: np.ndarray) -> None:
    """Fill ``out`` (N, C*kh*kw, H'*W') with the patches of ``x`` (N, C, H, W)."""
    N, C, H, W = x.shape
    Ho, Wo = output_size(H, kh, s, ph), output_size(W, kw, s, pw)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C, H+2ph, W+2pw)
    cols = out.reshape(N, C, kh, kw, Ho, Wo)  # view of out: (N, C, kh, kw, H', W')
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i : i + s * Ho : s, j : j + s * Wo : s]


def col2im(cols: np.ndarray, kh: int, kw: int, s: int, ph: int, pw: int, out: np.ndarray) -> None:
    """Fill ``out`` (N, C, H, W) with the adjoint of :func:`im2col` applied to ``cols``.

    Overlapping patches add up; entries that fall into the padding are dropped.
    """
    N, C, H, W = out.shape
    Ho, Wo = output_size(H, kh, s, ph), output_size(W, kw, s, pw)
    cols6 = cols.reshape(N, C, kh, kw, Ho, Wo)  # (N, C, kh, kw, H', W')
    xp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=out.dtype)
    for i in range(kh):
        for j in range(kw):
            xp[:, :, i : i + s * Ho : s, j : j + s * Wo : s] += cols6[:, :, i, j]
    out[...] = xp[:, :, ph : ph + H, pw : pw + W]
