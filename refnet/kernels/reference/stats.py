r"""Pattern statistics of one batch: the two GEMMs of the covariance accumulation.

For a kernel layer with ``K`` neurons, input rows ``X`` (``n x D``; for a conv, all
patches of the batch, ``n = N H' W'``, ``D = C kh kw``), pre-activations ``Z`` (``n x K``,
bias included), bias ``b``, and the shifts ``x0`` (per feature) and ``y0`` (per neuron) of
MATH.md section 3, let

.. math::

    X' = X - x_0, \qquad Y' = Z - b - y_0, \qquad M = [Z > 0],

and build the right-hand side ``R`` from up to two column blocks (MATH.md section 3):

- ``masked``:   ``[M, M * Y']``  (``2K`` columns, for the ``E_+`` moments of Eq. 8);
- ``unmasked``: ``[1, Y']``      (``1 + K`` columns, for ``E[.]`` over all rows).

The kernel then computes, in float64, the batch's

.. math::

    S = X'^\top R \;(D \times n_{cols}), \qquad
    \mathrm{ysum} = \begin{bmatrix} \sum_n M \\ \sum_n M Y' \\ \sum_n Y' \end{bmatrix}
    \;(3 \times K), \qquad XX = X'^\top X' \;(D \times D,\ \text{optional}).

The compiled twin (``pyx/stats.pyx``) gets the same numbers from per-thread chunks of rows
(patches extracted chunk by chunk), with float32 GEMMs per chunk for float32 input and
float64 sums across chunks. Unlike the other kernels these outputs are float64 whatever
the input dtype; like them, every element of every output is overwritten.
"""

import numpy as np

from .im2col import im2col, output_size
from .winograd4 import conv2d_backward_weight_winograd4


def _rhs(Z: np.ndarray, b: np.ndarray, y0: np.ndarray, masked: bool, unmasked: bool):
    """``R`` (n, n_cols) and ``ysum`` (3, K) from pre-activations ``Z`` (n, K), in float64."""
    Z = Z.astype(np.float64)
    M = (Z > 0).astype(np.float64)  # (n, K)
    Y = Z - b.astype(np.float64) - y0  # (n, K): y' = w^T x - y0 (bias excluded)
    blocks = []
    if masked:
        blocks += [M, M * Y]  # (n, 2K)
    if unmasked:
        blocks += [np.ones((len(Z), 1)), Y]  # (n, 1 + K)
    ysum = np.stack([M.sum(axis=0), (M * Y).sum(axis=0), Y.sum(axis=0)])  # (3, K)
    return np.concatenate(blocks, axis=1), ysum


def pattern_stats_dense(
    X: np.ndarray,
    Z: np.ndarray,
    b: np.ndarray,
    x0: np.ndarray,
    y0: np.ndarray,
    masked: bool,
    unmasked: bool,
    S: np.ndarray,
    ysum: np.ndarray,
    XX: np.ndarray | None,
) -> None:
    """Fill ``S`` (D, n_cols), ``ysum`` (3, K) and ``XX`` (D, D) from rows ``X`` (n, D).

    ``Z`` (n, K) are the layer's pre-activations ``X W^T + b``; ``x0`` (D,) and ``y0`` (K,)
    are float64 shifts; ``XX`` may be ``None`` (not collected).
    """
    Xs = X.astype(np.float64) - x0  # (n, D): x' = x - x0
    R, ysum[...] = _rhs(Z, b, y0, masked, unmasked)  # (n, n_cols), (3, K)
    S[...] = Xs.T @ R  # (D, n_cols)
    if XX is not None:
        XX[...] = Xs.T @ Xs  # (D, D)


def pattern_stats_conv(
    x: np.ndarray,
    Z: np.ndarray,
    b: np.ndarray,
    x0: np.ndarray,
    y0: np.ndarray,
    kh: int,
    kw: int,
    s: int,
    ph: int,
    pw: int,
    masked: bool,
    unmasked: bool,
    S: np.ndarray,
    ysum: np.ndarray,
    XX: np.ndarray | None,
) -> None:
    """:func:`pattern_stats_dense` on the patches of ``x`` (N, C, H, W); ``Z`` is (N, K, H', W').

    The rows are the patches, flattened in ``(C, kh, kw)`` order (MATH.md section 0).
    """
    N, C, H, W = x.shape
    Ho, Wo = output_size(H, kh, s, ph), output_size(W, kw, s, pw)
    cols = np.empty((N, C * kh * kw, Ho * Wo), dtype=x.dtype)  # (N, C*kh*kw, H'*W')
    im2col(x, kh, kw, s, ph, pw, cols)
    X = cols.transpose(0, 2, 1).reshape(N * Ho * Wo, C * kh * kw)  # (N*H'*W', C*kh*kw)
    Zr = Z.transpose(0, 2, 3, 1).reshape(N * Ho * Wo, Z.shape[1])  # (N*H'*W', K)
    pattern_stats_dense(X, Zr, b, x0, y0, masked, unmasked, S, ysum, XX)


def pattern_stats_conv_winograd(
    x: np.ndarray,
    Z: np.ndarray,
    b: np.ndarray,
    x0: np.ndarray,
    y0: np.ndarray,
    ph: int,
    pw: int,
    masked: bool,
    unmasked: bool,
    S: np.ndarray,
    ysum: np.ndarray,
) -> None:
    r""":func:`pattern_stats_conv` of a stride-1 3x3 conv, as a weight gradient (no ``XX``).

    Read as images ``(N, n_cols, H', W')``, the columns of ``R`` play the part of ``dy``:

    .. math:: S_{(c, i, j),\, r} = \sum_{n, p} x'_{n c}[p + (i, j)]\, R_{n r}[p]
              = \frac{\partial}{\partial W_{r c i j}} \langle R,\ W * x' \rangle ,

    with ``x'`` the input minus its shift, padded with ``-x0`` (a padded zero minus the
    shift). So the Winograd F(3x3, 4x4) weight gradient
    (:func:`refnet.kernels.reference.winograd4.conv2d_backward_weight_winograd4`) computes
    it: the 4x4 tiles ``r`` of the columns of ``R`` against the 6x6 tiles ``d'`` of the
    shifted input,

    .. math:: S_{\cdot c,\, r} = \sum_{\text{tiles}} G^\top \big[ (A\, r\, A^\top) \odot
              (B^\top d'_c B) \big] G .

    ``x0`` must be one value per input channel (constant over the channel's 9 taps); the
    compiled twin applies it in the transformed domain, where it only changes component
    ``(1, 1)``: :math:`B^\top \mathbf 1 = (0, -6, 0, 0, 0, 0)`, so
    :math:`B^\top (d - x_{0c} \mathbf 1 \mathbf 1^\top) B = B^\top d B - 36 x_{0c} e_1 e_1^\top`.
    """
    N, C, H, W = x.shape
    K, Ho, Wo = Z.shape[1:]
    Zr = Z.transpose(0, 2, 3, 1).reshape(N * Ho * Wo, K)  # (N*H'*W', K)
    R, ysum[...] = _rhs(Zr, b, y0, masked, unmasked)  # (N*H'*W', n_cols), (3, K)
    R_img = R.reshape(N, Ho, Wo, -1).transpose(0, 3, 1, 2)  # (N, n_cols, H', W')
    dW = np.empty((R.shape[1], C, 3, 3))  # (n_cols, C, 3, 3)
    conv2d_backward_weight_winograd4(
        np.ascontiguousarray(R_img), _shifted(x, x0, ph, pw), 0, 0, dW
    )
    S[...] = dW.reshape(R.shape[1], C * 9).T  # (C*9, n_cols)


def _shifted(x: np.ndarray, x0: np.ndarray, ph: int, pw: int) -> np.ndarray:
    """``x - x0`` (one shift per channel) padded with ``-x0``, float64: (N, C, H+2ph, W+2pw)."""
    N, C, H, W = x.shape
    x0_c = x0.reshape(C, 9)[:, 0]  # (C,): one shift per channel
    xp = np.empty((N, C, H + 2 * ph, W + 2 * pw))  # (N, C, H+2ph, W+2pw)
    xp[...] = -x0_c[None, :, None, None]
    xp[:, :, ph : ph + H, pw : pw + W] = x - x0_c[None, :, None, None]
    return xp
