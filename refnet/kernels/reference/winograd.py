r"""Winograd F(2x2, 3x3): a stride-1 3x3 convolution with 2.25x fewer multiplications.

Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks" (CVPR 2016). The output
is cut into 2x2 tiles; each needs the 4x4 input tile ``d`` around it (tiles overlap by 2).
For one filter ``g`` (3x3) and one input channel,

.. math:: Y = A^\top \left[ (G g G^\top) \odot (B^\top d B) \right] A ,

with

.. math::

    B^\top = \begin{pmatrix} 1 & 0 & -1 & 0 \\ 0 & 1 & 1 & 0 \\
                             0 & -1 & 1 & 0 \\ 0 & 1 & 0 & -1 \end{pmatrix}, \quad
    G = \begin{pmatrix} 1 & 0 & 0 \\ \tfrac12 & \tfrac12 & \tfrac12 \\
                        \tfrac12 & -\tfrac12 & \tfrac12 \\ 0 & 0 & 1 \end{pmatrix}, \quad
    A^\top = \begin{pmatrix} 1 & 1 & 1 & 0 \\ 0 & 1 & -1 & -1 \end{pmatrix}.

A 2x2 tile costs 16 multiplications instead of 4 * 9 = 36. Summed over input channels, the
elementwise product becomes one matrix product per position ``(xi, nu)`` of the 4x4 tile:

.. math:: M_{\xi\nu} = U_{\xi\nu} V_{\xi\nu}, \qquad
          U_{\xi\nu} \in \mathbb{R}^{F \times C}, \; V_{\xi\nu} \in \mathbb{R}^{C \times T},

where ``U = G g G^T`` holds the transformed filters, ``V = B^T d B`` the transformed input
tiles and ``T`` is the number of tiles. The compiled twin runs exactly these 16 GEMMs.

The input gradient (adjoint) of a stride-1 3x3 conv with padding ``(ph, pw)`` is itself a
stride-1 3x3 conv: of ``dy`` with the flipped, transposed kernel ``W[:, :, ::-1, ::-1]``
seen as ``(C, F, 3, 3)``, with padding ``(2 - ph, 2 - pw)`` (a negative padding crops).
"""

import numpy as np

B_T = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]], dtype=np.float64)
A_T = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def _winograd(x: np.ndarray, W: np.ndarray, ph: int, pw: int, out: np.ndarray) -> None:
    """Fill ``out`` (N, F, H', W') with the stride-1 cross-correlation of ``x`` and ``W``.

    ``ph`` and ``pw`` may be negative (that crops ``x``); ``H' = H + 2 ph - 2``.
    """
    N, C, H, Wd = x.shape
    F = W.shape[0]
    Ho, Wo = out.shape[2], out.shape[3]
    th, tw = (Ho + 1) // 2, (Wo + 1) // 2  # tiles per column and row
    dt = x.dtype
    # Zero-pad (or crop) so that tile (ty, tx) reads xp[2ty : 2ty+4, 2tx : 2tx+4].
    xp = np.zeros((N, C, 2 * th + 2, 2 * tw + 2), dtype=dt)  # (N, C, 2th+2, 2tw+2)
    h_lo, w_lo = max(0, -ph), max(0, -pw)  # first input row / column used
    h_hi, w_hi = min(H, 2 * th + 2 - ph), min(Wd, 2 * tw + 2 - pw)
    xp[:, :, h_lo + ph : h_hi + ph, w_lo + pw : w_hi + pw] = x[:, :, h_lo:h_hi, w_lo:w_hi]
    d = np.empty((N, C, th, tw, 4, 4), dtype=dt)  # input tiles
    for r in range(4):
        for q in range(4):
            d[..., r, q] = xp[:, :, r : r + 2 * th : 2, q : q + 2 * tw : 2]
    Bt, Gm, At = B_T.astype(dt), G.astype(dt), A_T.astype(dt)
    U = np.einsum("ai,fcij,bj->abfc", Gm, W, Gm)  # (4, 4, F, C): G g G^T
    V = np.einsum("ai,nctsij,bj->abcnts", Bt, d, Bt)  # (4, 4, C, N, th, tw): B^T d B
    V = V.reshape(4, 4, C, N * th * tw)  # (4, 4, C, T)
    M = np.matmul(U, V)  # (4, 4, F, T): the 16 GEMMs
    M = M.reshape(4, 4, F, N, th, tw)  # (4, 4, F, N, th, tw)
    Y = np.einsum("ia,abfnts,jb->nftisj", At, M, At)  # (N, F, th, 2, tw, 2): A^T M A
    out[...] = Y.reshape(N, F, 2 * th, 2 * tw)[:, :, :Ho, :Wo]


def conv2d_forward_winograd(
    x: np.ndarray, W: np.ndarray, b: np.ndarray, ph: int, pw: int, out: np.ndarray
) -> None:
    """Fill ``out`` (N, F, H', W') with the stride-1 3x3 conv of ``x`` with ``W`` plus ``b``."""
    _winograd(x, W, ph, pw, out)
    out += b[None, :, None, None]


def conv2d_backward_input_winograd(
    dy: np.ndarray, W: np.ndarray, ph: int, pw: int, out: np.ndarray
) -> None:
    """Fill ``out`` (N, C, H, W) with the adjoint of the stride-1 3x3 conv applied to ``dy``."""
    W_adj = np.ascontiguousarray(W[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))  # (C, F, 3, 3)
    _winograd(dy, W_adj, 2 - ph, 2 - pw, out)


#: F(3x3, 2x2) for the weight gradient: 4x4 input tiles (transformed by ``B_T`` as above)
#: against the 2x2 tiles of ``dy``; ``dW = AW_T [(GW dy GW^T) * (B_T d B)] AW_T^T``.
GW = np.array([[1, 0], [0.5, 0.5], [0.5, -0.5], [0, -1]], dtype=np.float64)
AW_T = np.array([[1, 1, 1, 0], [0, 1, -1, 0], [0, 1, 1, 1]], dtype=np.float64)


def conv2d_backward_weight_winograd(
    dy: np.ndarray, x: np.ndarray, ph: int, pw: int, out: np.ndarray
) -> None:
    r"""Fill ``out`` (F, C, 3, 3) with the stride-1 weight gradient by F(3x3, 2x2).

    .. math:: \partial L / \partial W_{fc} = \sum_{\text{tiles}} A_w^\top
              \left[ (G_w\,\delta\,G_w^\top) \odot (B^\top d\,B) \right] A_w
    """
    N, C, H, Wd = x.shape
    F, Ho, Wo = dy.shape[1], dy.shape[2], dy.shape[3]
    th, tw = (Ho + 1) // 2, (Wo + 1) // 2
    dt = x.dtype
    xp = np.zeros((N, C, 2 * th + 2, 2 * tw + 2), dtype=dt)  # (N, C, 2th+2, 2tw+2)
    h_hi, w_hi = min(H, 2 * th + 2 - ph), min(Wd, 2 * tw + 2 - pw)
    xp[:, :, ph : h_hi + ph, pw : w_hi + pw] = x[:, :, :h_hi, :w_hi]
    dyp = np.zeros((N, F, 2 * th, 2 * tw), dtype=dt)  # dy zero-padded to whole tiles
    dyp[:, :, :Ho, :Wo] = dy
    d = np.empty((N, C, th, tw, 4, 4), dtype=dt)  # input tiles
    for r in range(4):
        for q in range(4):
            d[..., r, q] = xp[:, :, r : r + 2 * th : 2, q : q + 2 * tw : 2]
    g = dyp.reshape(N, F, th, 2, tw, 2).transpose(0, 1, 2, 4, 3, 5)  # (N, F, th, tw, 2, 2)
    Bt, Gw, Aw = B_T.astype(dt), GW.astype(dt), AW_T.astype(dt)
    V = np.einsum("ai,nctsij,bj->abcnts", Bt, d, Bt)  # (4, 4, C, N, th, tw)
    D = np.einsum("ai,nftsij,bj->abfnts", Gw, g, Gw)  # (4, 4, F, N, th, tw)
    T = N * th * tw
    M = np.matmul(D.reshape(4, 4, F, T), V.reshape(4, 4, C, T).swapaxes(2, 3))  # (4, 4, F, C)
    out[...] = np.einsum("ia,abfc,jb->fcij", Aw, M, Aw)  # (F, C, 3, 3)
