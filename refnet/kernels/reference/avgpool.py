r"""Average-pooling forward and backward (NumPy twins of ``pyx/avgpool.pyx``).

Windows are ``kh x kw`` with strides ``(sh, sw)`` and no padding (a padded average pool is
a :class:`~refnet.layers.ZeroPad2D` followed by this one, which counts the padded zeros),
so ``H' = (H - kh) // sh + 1``:

.. math::

    y_{n,c,i,j} = \frac{1}{k_h k_w} \sum_{p<k_h,\,q<k_w} x_{n,c,\,i s_h + p,\,j s_w + q}.

The map is linear and the backward pass is its adjoint: every upstream value is spread
evenly, ``dy / (kh kw)``, over its window, and overlapping windows add. Both loops run
over the ``kh kw`` window offsets and copy (forward) or add (backward) one strided slice
each, so one reads as the transpose of the other.
"""

import numpy as np


def avgpool2d_forward(x: np.ndarray, kh: int, kw: int, sh: int, sw: int, out: np.ndarray) -> None:
    """Fill ``out`` (N, C, H', W') with the window means of ``x`` (N, C, H, W)."""
    Ho, Wo = out.shape[2], out.shape[3]
    total = np.zeros(out.shape, dtype=out.dtype)  # (N, C, H', W')
    for p in range(kh):
        for q in range(kw):
            total += x[:, :, p : p + sh * Ho : sh, q : q + sw * Wo : sw]  # (N, C, H', W')
    out[...] = total / out.dtype.type(kh * kw)


def avgpool2d_backward(
    dy: np.ndarray, kh: int, kw: int, sh: int, sw: int, out: np.ndarray
) -> None:
    """Fill ``out`` (N, C, H, W) by spreading each ``dy`` (N, C, H', W') over its window."""
    Ho, Wo = dy.shape[2], dy.shape[3]
    share = dy / dy.dtype.type(kh * kw)  # (N, C, H', W')
    out[...] = 0
    for p in range(kh):
        for q in range(kw):
            out[:, :, p : p + sh * Ho : sh, q : q + sw * Wo : sw] += share
