r"""Conv2D forward, input gradient (the adjoint) and weight gradient through im2col.

With ``cols = im2col(x)`` of shape ``(N, K, P)`` (``K = C kh kw``, ``P = H' W'``) and
``W_2 = W.reshape(F, K)``:

.. math::

    y_n = W_2\,\mathrm{cols}_n + b, \qquad
    \frac{\partial L}{\partial x} = \mathrm{col2im}(W_2^\top\,\delta_n), \qquad
    \frac{\partial L}{\partial W_2} = \sum_n \delta_n\,\mathrm{cols}_n^\top .

The input gradient is the adjoint (transposed convolution) ``r W``; any array of ``W``'s
shape may stand in for ``W`` there, which is how PatternNet (``A``) and
PatternAttribution (``W * A``) reuse this code (MATH.md section 4).
"""

import numpy as np

from .im2col import col2im, im2col, output_size


def _geometry(x_shape, w_shape, s, ph, pw):
    N, C, H, W = x_shape
    F, _, kh, kw = w_shape
    return N, F, kh, kw, output_size(H, kh, s, ph), output_size(W, kw, s, pw)


def conv2d_forward(
    x: np.ndarray, W: np.ndarray, b: np.ndarray, s: int, ph: int, pw: int, out: np.ndarray
) -> None:
    """Fill ``out`` (N, F, H', W') with the cross-correlation of ``x`` with ``W`` plus ``b``."""
    N, F, kh, kw, Ho, Wo = _geometry(x.shape, W.shape, s, ph, pw)
    cols = np.empty((N, x.shape[1] * kh * kw, Ho * Wo), dtype=x.dtype)  # (N, C*kh*kw, H'*W')
    im2col(x, kh, kw, s, ph, pw, cols)
    W2 = W.reshape(F, x.shape[1] * kh * kw)  # (F, C*kh*kw)
    y = np.matmul(W2, cols)  # (N, F, H'*W')
    out[...] = y.reshape(N, F, Ho, Wo) + b[None, :, None, None]


def conv2d_forward_direct(
    x: np.ndarray, W: np.ndarray, b: np.ndarray, ph: int, pw: int, out: np.ndarray
) -> None:
    r"""Fill ``out`` (N, F, H', W') with the stride-1 convolution, one kernel tap at a time.

    The same map as :func:`conv2d_forward` with ``s = 1``, summed over taps instead of
    through im2col (the compiled twin serves few input channels; see
    :func:`refnet.kernels._use_direct_forward`):

    .. math:: y_{n f} = b_f + \sum_{c, i, j} W_{f c i j}\, \bar x_{n c}[i : i + H', j : j + W']

    with :math:`\bar x` the zero-padded input (MATH.md section 0, Conv2D).
    """
    F, _, kh, kw = W.shape
    Ho, Wo = out.shape[2], out.shape[3]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C, H+2ph, W+2pw)
    # float64 sums (a float32 layer's sums rounded once at the end), the same operations in
    # the same order at every pixel: the route is translation-exact
    y = np.empty(out.shape, dtype=np.float64)  # (N, F, H', W')
    y[...] = b[None, :, None, None]
    for c in range(W.shape[1]):
        for i in range(kh):
            for j in range(kw):
                tap = xp[:, c, i : i + Ho, j : j + Wo]  # (N, H', W')
                y += W[None, :, c, i, j, None, None].astype(np.float64) * tap[:, None]
    out[...] = y


def conv2d_backward_input_direct(
    dy: np.ndarray, W: np.ndarray, ph: int, pw: int, out: np.ndarray
) -> None:
    r"""Fill ``out`` (N, C, H, W) with the stride-1 input gradient as a direct convolution.

    The adjoint of a stride-1 convolution is the stride-1 convolution of ``dy`` with the
    flipped, transposed kernel :math:`\tilde W_{c f i j} = W_{f c,\, k_h - 1 - i,\,
    k_w - 1 - j}` and padding ``(kh - 1 - ph, kw - 1 - pw)`` (needs ``ph < kh``,
    ``pw < kw``):

    .. math:: \frac{\partial L}{\partial x_{n c}} = \sum_{f, i, j} \tilde W_{c f i j}\,
        \overline{dy}_{n f}[i : i + H, j : j + W]

    so it runs on :func:`conv2d_forward_direct` (the compiled twin serves few input
    channels ``C``; see :func:`refnet.kernels._use_direct_input`).
    """
    F, C, kh, kw = W.shape
    W_flip = np.ascontiguousarray(W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))  # (C, F, kh, kw)
    zero = np.zeros(C, dtype=out.dtype)
    conv2d_forward_direct(dy, W_flip, zero, kh - 1 - ph, kw - 1 - pw, out)


def conv2d_backward_weight_direct(
    dy: np.ndarray, x: np.ndarray, ph: int, pw: int, out: np.ndarray
) -> None:
    r"""Fill ``out`` (F, C, kh, kw) with the stride-1 weight gradient, one tap at a time.

    The same map as :func:`conv2d_backward_weight` with ``s = 1``, as one inner product per
    kernel tap instead of a GEMM over im2col columns:

    .. math:: \frac{\partial L}{\partial W_{f c i j}} = \sum_n \langle dy_{n f},
        \bar x_{n c}[i : i + H', j : j + W'] \rangle

    with :math:`\bar x` the zero-padded input (MATH.md section 0, Conv2D).
    """
    _, C, kh, kw = out.shape
    Ho, Wo = dy.shape[2], dy.shape[3]
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))  # (N, C, H+2ph, W+2pw)
    for c in range(C):
        for i in range(kh):
            for j in range(kw):
                tap = xp[:, c, i : i + Ho, j : j + Wo]  # (N, H', W')
                out[:, c, i, j] = np.einsum("nfhw,nhw->f", dy, tap)  # (F,)


def conv2d_backward_input(
    dy: np.ndarray, W: np.ndarray, s: int, ph: int, pw: int, out: np.ndarray
) -> None:
    """Fill ``out`` (N, C, H, W) with the adjoint of the convolution applied to ``dy``."""
    N, F, Ho, Wo = dy.shape
    _, _, kh, kw = W.shape
    W2 = W.reshape(F, W.shape[1] * kh * kw)  # (F, C*kh*kw)
    cols = np.matmul(W2.T, dy.reshape(N, F, Ho * Wo))  # (N, C*kh*kw, H'*W')
    col2im(cols, kh, kw, s, ph, pw, out)


def conv2d_backward_weight(
    dy: np.ndarray, x: np.ndarray, s: int, ph: int, pw: int, out: np.ndarray
) -> None:
    """Fill ``out`` (F, C, kh, kw) with ``sum_n dy_n cols_n^T``, the weight gradient."""
    F, C, kh, kw = out.shape
    N, _, Ho, Wo = dy.shape
    cols = np.empty((N, C * kh * kw, Ho * Wo), dtype=x.dtype)  # (N, C*kh*kw, H'*W')
    im2col(x, kh, kw, s, ph, pw, cols)
    dy3 = dy.reshape(N, F, Ho * Wo)  # (N, F, H'*W')
    dW2 = np.tensordot(dy3, cols, axes=([0, 2], [0, 2]))  # (F, C*kh*kw)
    out[...] = dW2.reshape(F, C, kh, kw)
