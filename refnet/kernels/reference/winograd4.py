r"""Winograd F(4x4, 3x3): a stride-1 3x3 convolution with 4x fewer multiplications.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016), with the
interpolation points :math:`0, 1, -1, 2, -2, \infty`. The output is cut into 4x4 tiles;
each needs the 6x6 input tile ``d`` around it (tiles overlap by 2). For one filter ``g``
(3x3) and one input channel,

.. math:: Y = A^\top \left[ (G g G^\top) \odot (B^\top d B) \right] A ,

with

.. math::

    B^\top = \begin{pmatrix} 4 & 0 & -5 & 0 & 1 & 0 \\ 0 & -4 & -4 & 1 & 1 & 0 \\
                             0 & 4 & -4 & -1 & 1 & 0 \\ 0 & -2 & -1 & 2 & 1 & 0 \\
                             0 & 2 & -1 & -2 & 1 & 0 \\ 0 & 4 & 0 & -5 & 0 & 1 \end{pmatrix},
    \quad
    G = \begin{pmatrix} \tfrac14 & 0 & 0 \\ -\tfrac16 & -\tfrac16 & -\tfrac16 \\
                        -\tfrac16 & \tfrac16 & -\tfrac16 \\
                        \tfrac1{24} & \tfrac1{12} & \tfrac16 \\
                        \tfrac1{24} & -\tfrac1{12} & \tfrac16 \\ 0 & 0 & 1 \end{pmatrix},
    \quad
    A^\top = \begin{pmatrix} 1 & 1 & 1 & 1 & 1 & 0 \\ 0 & 1 & -1 & 2 & -2 & 0 \\
                             0 & 1 & 1 & 4 & 4 & 0 \\ 0 & 1 & -1 & 8 & -8 & 1 \end{pmatrix}.

A 4x4 tile costs 36 multiplications instead of 16 * 9 = 144 (F(2x2, 3x3): 16 per 2x2 tile,
so 1.78x more GEMM work per output). Summed over input channels, the elementwise product
becomes one matrix product per position ``(xi, nu)`` of the 6x6 tile:

.. math:: M_{\xi\nu} = U_{\xi\nu} V_{\xi\nu}, \qquad
          U_{\xi\nu} \in \mathbb{R}^{F \times C}, \; V_{\xi\nu} \in \mathbb{R}^{C \times T},

where ``U = G g G^T`` holds the transformed filters, ``V = B^T d B`` the transformed input
tiles and ``T`` is the number of tiles. The compiled twin runs exactly these 36 GEMMs.
The larger entries of ``B`` and ``A`` (up to 8) cost accuracy: in float32 the result
differs from the direct convolution by a few 1e-6 relative to the largest entry.

The input gradient (adjoint) of a stride-1 3x3 conv with padding ``(ph, pw)`` is itself a
stride-1 3x3 conv: of ``dy`` with the flipped, transposed kernel ``W[:, :, ::-1, ::-1]``
seen as ``(C, F, 3, 3)``, with padding ``(2 - ph, 2 - pw)`` (a negative padding crops).
"""

import numpy as np

B_T = np.array(
    [
        [4, 0, -5, 0, 1, 0],
        [0, -4, -4, 1, 1, 0],
        [0, 4, -4, -1, 1, 0],
        [0, -2, -1, 2, 1, 0],
        [0, 2, -1, -2, 1, 0],
        [0, 4, 0, -5, 0, 1],
    ],
    dtype=np.float64,
)
G = np.array(
    [
        [1 / 4, 0, 0],
        [-1 / 6, -1 / 6, -1 / 6],
        [-1 / 6, 1 / 6, -1 / 6],
        [1 / 24, 1 / 12, 1 / 6],
        [1 / 24, -1 / 12, 1 / 6],
        [0, 0, 1],
    ],
    dtype=np.float64,
)
A_T = np.array(
    [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]],
    dtype=np.float64,
)


def _winograd4(x: np.ndarray, W: np.ndarray, ph: int, pw: int, out: np.ndarray) -> None:
    """Fill ``out`` (N, F, H', W') with the stride-1 cross-correlation of ``x`` and ``W``.

    ``ph`` and ``pw`` may be negative (that crops ``x``); ``H' = H + 2 ph - 2``.
    """
    N, C, H, Wd = x.shape
    F = W.shape[0]
    Ho, Wo = out.shape[2], out.shape[3]
    th, tw = (Ho + 3) // 4, (Wo + 3) // 4  # tiles per column and row
    dt = x.dtype
    # Zero-pad (or crop) so that tile (ty, tx) reads xp[4ty : 4ty+6, 4tx : 4tx+6].
    xp = np.zeros((N, C, 4 * th + 2, 4 * tw + 2), dtype=dt)  # (N, C, 4th+2, 4tw+2)
    h_lo, w_lo = max(0, -ph), max(0, -pw)  # first input row / column used
    h_hi, w_hi = min(H, 4 * th + 2 - ph), min(Wd, 4 * tw + 2 - pw)
    xp[:, :, h_lo + ph : h_hi + ph, w_lo + pw : w_hi + pw] = x[:, :, h_lo:h_hi, w_lo:w_hi]
    d = np.empty((N, C, th, tw, 6, 6), dtype=dt)  # input tiles
    for r in range(6):
        for q in range(6):
            d[..., r, q] = xp[:, :, r : r + 4 * th : 4, q : q + 4 * tw : 4]
    Bt, Gm, At = B_T.astype(dt), G.astype(dt), A_T.astype(dt)
    U = np.einsum("ai,fcij,bj->abfc", Gm, W, Gm)  # (6, 6, F, C): G g G^T
    V = np.einsum("ai,nctsij,bj->abcnts", Bt, d, Bt)  # (6, 6, C, N, th, tw): B^T d B
    V = V.reshape(6, 6, C, N * th * tw)  # (6, 6, C, T)
    M = np.matmul(U, V)  # (6, 6, F, T): the 36 GEMMs
    M = M.reshape(6, 6, F, N, th, tw)  # (6, 6, F, N, th, tw)
    Y = np.einsum("ia,abfnts,jb->nftisj", At, M, At)  # (N, F, th, 4, tw, 4): A^T M A
    out[...] = Y.reshape(N, F, 4 * th, 4 * tw)[:, :, :Ho, :Wo]


def conv2d_forward_winograd4(
    x: np.ndarray, W: np.ndarray, b: np.ndarray, ph: int, pw: int, out: np.ndarray
) -> None:
    """Fill ``out`` (N, F, H', W') with the stride-1 3x3 conv of ``x`` with ``W`` plus ``b``."""
    _winograd4(x, W, ph, pw, out)
    out += b[None, :, None, None]


def conv2d_backward_input_winograd4(
    dy: np.ndarray, W: np.ndarray, ph: int, pw: int, out: np.ndarray
) -> None:
    """Fill ``out`` (N, C, H, W) with the adjoint of the stride-1 3x3 conv applied to ``dy``."""
    W_adj = np.ascontiguousarray(W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))  # (C, F, 3, 3)
    _winograd4(dy, W_adj, 2 - ph, 2 - pw, out)


def conv2d_backward_weight_winograd4(
    dy: np.ndarray, x: np.ndarray, ph: int, pw: int, out: np.ndarray
) -> None:
    r"""Fill ``out`` (F, C, 3, 3) with the stride-1 weight gradient by F(3x3, 4x4).

    The transpose of the forward pass above (transposition principle): for the 4x4 tiles
    ``delta`` of ``dy`` (zero past the image) and the 6x6 input tiles ``d`` they were
    computed from,

    .. math:: \frac{\partial L}{\partial W_{fc}} = \sum_{\text{tiles}} G^\top \big[
              (A\, \delta_f A^\top) \odot (B^\top d_c B) \big] G ,

    36 multiplications per 4x4 tile instead of 16 * 9 = 144.
    """
    N, C, H, Wd = x.shape
    F, Ho, Wo = dy.shape[1], dy.shape[2], dy.shape[3]
    th, tw = (Ho + 3) // 4, (Wo + 3) // 4  # tiles per column and row
    dt = x.dtype
    xp = np.zeros((N, C, 4 * th + 2, 4 * tw + 2), dtype=dt)  # (N, C, 4th+2, 4tw+2)
    h_hi, w_hi = min(H, 4 * th + 2 - ph), min(Wd, 4 * tw + 2 - pw)
    xp[:, :, ph : ph + h_hi, pw : pw + w_hi] = x[:, :, :h_hi, :w_hi]
    dyp = np.zeros((N, F, 4 * th, 4 * tw), dtype=dt)  # dy zero-padded to whole tiles
    dyp[:, :, :Ho, :Wo] = dy
    delta = dyp.reshape(N, F, th, 4, tw, 4).transpose(0, 1, 2, 4, 3, 5)  # (N, F, th, tw, 4, 4)
    d = np.empty((N, C, th, tw, 6, 6), dtype=dt)  # input tiles
    for r in range(6):
        for q in range(6):
            d[..., r, q] = xp[:, :, r : r + 4 * th : 4, q : q + 4 * tw : 4]
    Bt, Gm, A = B_T.astype(dt), G.astype(dt), A_T.T.astype(dt)  # A: (6, 4)
    V = np.einsum("ai,nctsij,bj->abcnts", Bt, d, Bt)  # (6, 6, C, N, th, tw): B^T d B
    D = np.einsum("ai,nftsij,bj->abfnts", A, delta, A)  # (6, 6, F, N, th, tw): A delta A^T
    T = N * th * tw
    M = np.matmul(D.reshape(6, 6, F, T), V.reshape(6, 6, C, T).swapaxes(2, 3))  # (6, 6, F, C)
    out[...] = np.einsum("ai,abfc,bj->fcij", Gm, M, Gm)  # (F, C, 3, 3): G^T M G
