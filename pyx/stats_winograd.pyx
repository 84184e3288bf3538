# cython: language_level=3
r"""Pattern statistics of a stride-1 3x3 conv layer by Winograd F(3x3, 2x2).

Same outputs as ``pattern_stats_conv`` in ``pyx/stats.pyx`` (without ``X'^T X'``), for the
layers where the patch GEMM ``S = X'^T R`` dominates pattern fitting. Read as images, the
columns of ``R`` (``M``, ``M Y'``, ``1``, ``Y'`` per neuron, one value per output pixel) make
``S`` a weight gradient: with ``x'`` the input shifted by ``x0`` and padded with ``-x0``,

.. math:: S_{(c, i, j),\, r} = \sum_{n, p} x'_{n c}[p + (i, j)]\; R_{n r}[p],

which Winograd F(3x3, 2x2) computes with 16 instead of 36 multiplications per 2x2 output
tile (Lavin & Gray 2016; the weight-gradient kernel of ``pyx/conv.pyx``):

.. math:: S_{\cdot c,\, r} = \sum_{\text{tiles}} A_w^\top \big[ (G_w R_r G_w^\top)
          \odot (B^\top d_c B) \big] A_w .

The shift needs one value per input channel (``x0[(c, i, j)] = x0_c``): the padded, shifted
tile is ``d - x0_c 1 1^T`` and ``B^T 1 1^T B = 4 e_1 e_1^T``, so the shift touches only
component ``(1, 1)`` of the transformed tile, ``V[5] -= 4 x0_c``, before the products. The
2x2 tiles of ``R`` are built from ``Z`` on the fly (zero past the image edge) and
transformed at once; no column of ``R`` and no patch is ever stored whole.

Work is cut into blocks of tiles, one OpenMP thread per block with its own scratch; per
block and component ``e`` one GEMM ``G = D[e] (n_cols, T) V[e]^T (T, C)``. Float32 input
uses float32 GEMMs per block added to per-thread float64 sums (as ``pyx/stats.pyx`` does
per chunk); float64 input accumulates in float64 directly. BLAS must run single-threaded
(the wrapper in :mod:`refnet.kernels.stats` arranges it). NumPy twin:
``refnet/kernels/reference/stats.py``.
"""

import numpy as np

from cython.parallel cimport parallel, prange, threadid

from cython cimport floating

from blas cimport _gemm
from threads cimport n_threads
from winograd2x2 cimport _winograd_input
from tiles cimport _next_tiles, _tile_at


#: Tiles per block: the GEMMs reduce over the block's tiles, so blocks are long. Not a
#: power of two: the transforms write 16 streams ``(C T)`` or ``(n_cols T)`` elements
#: apart, and power-of-two strides send them all to the same cache sets (measured: 256
#: tiles per block made the right-hand side 5x slower than 250).
BLOCK_TILES = 250
#: ``M`` for ``z > 0`` false / true, read by index: the mask is unpredictable.
cdef double MASK_VALUE[2]
MASK_VALUE[0] = 0.0
MASK_VALUE[1] = 1.0


cdef inline void _transform_row(
    const floating* p0, const floating* p1,  # IN (2 L,): the two rows of L 2x2 tiles
    int L,
    floating* D, Py_ssize_t es,  # OUT: D[e * es + i] = (Gw k_i Gw^T)[e], i < L
) noexcept nogil:
    """Transform ``L`` adjacent 2x2 tiles ``k_i = [[p0[2i], p0[2i+1]], [p1[2i], p1[2i+1]]]``.

    ``Gw = [[1, 0], [1/2, 1/2], [1/2, -1/2], [0, -1]]``: the rows of ``Gw k`` are ``k_0``,
    ``(k_0 + k_1) / 2``, ``(k_0 - k_1) / 2`` and ``-k_1``, each then combined the same way
    along its two columns. Tile after tile along contiguous rows, so the loop vectorises.
    """
    cdef int i
    cdef floating a, c, s0, s1, d0, d1
    cdef floating h = 0.5
    for i in range(L):
        a = p0[2 * i]
        c = p0[2 * i + 1]
        D[0 * es + i] = a
        D[1 * es + i] = h * (a + c)
        D[2 * es + i] = h * (a - c)
        D[3 * es + i] = -c
        s0 = h * (p0[2 * i] + p1[2 * i])
        s1 = h * (p0[2 * i + 1] + p1[2 * i + 1])
        D[4 * es + i] = s0
        D[5 * es + i] = h * (s0 + s1)
        D[6 * es + i] = h * (s0 - s1)
        D[7 * es + i] = -s1
        d0 = h * (p0[2 * i] - p1[2 * i])
        d1 = h * (p0[2 * i + 1] - p1[2 * i + 1])
        D[8 * es + i] = d0
        D[9 * es + i] = h * (d0 + d1)
        D[10 * es + i] = h * (d0 - d1)
        D[11 * es + i] = -d1
        a = -p1[2 * i]
        c = -p1[2 * i + 1]
        D[12 * es + i] = a
        D[13 * es + i] = h * (a + c)
        D[14 * es + i] = h * (a - c)
        D[15 * es + i] = -c


cdef inline void _rhs_row(
    const floating* z,  # IN (w,) pre-activations of one row segment, or NULL (no row)
    int w, int width, double bk, double y0k,
    floating* m, floating* my, floating* y,  # OUT (width,): M, M Y', Y'; 0 past w
    double* sums,  # IN/OUT (3,): sum M, sum M Y', sum Y'
) noexcept nogil:
    cdef int j
    cdef double yv, mv, sm = 0, smy = 0, sy = 0
    if z == NULL:
        w = 0
    for j in range(w):
        yv = <double>z[j] - bk - y0k
        mv = MASK_VALUE[z[j] > 0]
        m[j] = <floating>mv
        my[j] = <floating>(mv * yv)
        y[j] = <floating>yv
        sm += mv
        smy += mv * yv
        sy += yv
    for j in range(w, width):
        m[j] = my[j] = y[j] = 0
    sums[0] += sm
    sums[1] += smy
    sums[2] += sy


cdef void _rhs_tiles(
    const floating* Z,  # IN (N, K, Ho, Wo)
    const floating* b, const double* y0,  # IN (K,), (K,)
    int K, int Ho, int Wo, int th, int tw, Py_ssize_t t0, int T,
    bint masked, bint unmasked,
    floating* rows,  # scratch (6, 2 tw + 2)
    floating* D, Py_ssize_t es,  # OUT (16, nc, T), components es apart: tiles of R
    double* ys,  # IN/OUT (3, K): sums of M, M Y', Y' over the real pixels
) noexcept nogil:
    """Columns ``[M, M Y']`` (masked) and ``[1, Y']`` (unmasked) of ``R``, transformed.

    One neuron and one tile-row segment at a time: the two pixel rows under the segment
    become rows of ``M``, ``M Y'`` and ``Y'`` (zero past the image edge), which
    :func:`_transform_row` turns into the 16 components of every tile.
    """
    cdef int k, t, L, n, ty, tx, w, width, u = 2 * K if masked else 0
    cdef int Wp = 2 * tw + 2
    cdef double sums[3]
    cdef const floating* z0
    cdef const floating* z1
    cdef floating* m0 = rows
    cdef floating* m1 = rows + Wp
    cdef floating* my0 = rows + 2 * Wp
    cdef floating* my1 = rows + 3 * Wp
    cdef floating* y0r = rows + 4 * Wp
    cdef floating* y1r = rows + 5 * Wp
    if unmasked:  # the column of ones: 1 at the real pixels of each tile
        _tile_at(t0, th, tw, &n, &ty, &tx)
        t = 0
        while t < T:
            L = tw - tx if tw - tx < T - t else T - t
            w = Wo - 2 * tx if Wo - 2 * tx < 2 * L else 2 * L
            for width in range(2 * L):
                m0[width] = 1 if width < w else 0
                m1[width] = m0[width] if 2 * ty + 1 < Ho else 0
            _transform_row(m0, m1, L, D + <Py_ssize_t>u * T + t, es)
            t = t + L
            _next_tiles(L, th, tw, &n, &ty, &tx)
    for k in range(K):
        sums[0] = sums[1] = sums[2] = 0
        _tile_at(t0, th, tw, &n, &ty, &tx)
        t = 0
        while t < T:
            L = tw - tx if tw - tx < T - t else T - t
            width = 2 * L
            w = Wo - 2 * tx if Wo - 2 * tx < width else width
            z0 = Z + ((<Py_ssize_t>n * K + k) * Ho + 2 * ty) * Wo + 2 * tx
            z1 = z0 + Wo if 2 * ty + 1 < Ho else NULL
            _rhs_row(z0, w, width, b[k], y0[k], m0, my0, y0r, sums)
            _rhs_row(z1, w, width, b[k], y0[k], m1, my1, y1r, sums)
            if masked:
                _transform_row(m0, m1, L, D + <Py_ssize_t>k * T + t, es)
                _transform_row(my0, my1, L, D + <Py_ssize_t>(K + k) * T + t, es)
            if unmasked:
                _transform_row(y0r, y1r, L, D + <Py_ssize_t>(u + 1 + k) * T + t, es)
            t = t + L
            _next_tiles(L, th, tw, &n, &ty, &tx)
        ys[k] += sums[0]
        ys[K + k] += sums[1]
        ys[2 * K + k] += sums[2]


cdef void _output_transform(
    const double* Macc,  # IN (16, nc, C): the summed products per component
    int nc, int C,
    double* S,  # OUT (C * 9, nc): S[(c, i, j), r]
) noexcept nogil:
    """``Aw^T M Aw`` per (column, channel), ``Aw^T = [[1,1,1,0], [0,1,-1,0], [0,1,1,1]]``."""
    cdef int r, c, a, i
    cdef double m[16]
    cdef double v[12]  # Aw^T m: (3, 4)
    cdef Py_ssize_t ncC = <Py_ssize_t>nc * C
    for r in range(nc):
        for c in range(C):
            for a in range(16):
                m[a] = Macc[a * ncC + <Py_ssize_t>r * C + c]
            for a in range(4):  # combine rows
                v[0 * 4 + a] = m[0 * 4 + a] + m[1 * 4 + a] + m[2 * 4 + a]
                v[1 * 4 + a] = m[1 * 4 + a] - m[2 * 4 + a]
                v[2 * 4 + a] = m[1 * 4 + a] + m[2 * 4 + a] + m[3 * 4 + a]
            for i in range(3):  # combine columns
                a = i * 4
                S[(<Py_ssize_t>c * 9 + i * 3 + 0) * nc + r] = v[a + 0] + v[a + 1] + v[a + 2]
                S[(<Py_ssize_t>c * 9 + i * 3 + 1) * nc + r] = v[a + 1] - v[a + 2]
                S[(<Py_ssize_t>c * 9 + i * 3 + 2) * nc + r] = v[a + 1] + v[a + 2] + v[a + 3]


def pattern_stats_conv_winograd(
    const floating[:, :, :, ::1] x,  # IN (N, C, H, W)
    const floating[:, :, :, ::1] Z,  # IN (N, K, Ho, Wo): stride-1 3x3 conv of x
    const floating[::1] b,  # IN (K,)
    const double[::1] x0,  # IN (C*9,): constant over each channel's 9 taps
    const double[::1] y0,  # IN (K,)
    int ph, int pw,
    bint masked, bint unmasked,
    double[:, ::1] S,  # OUT (C*9, n_cols)
    double[:, ::1] ysum,  # OUT (3, K)
):
    """Fill ``S`` and ``ysum`` of a stride-1 3x3 conv layer by Winograd F(3x3, 2x2)."""
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], Wd = x.shape[3]
    cdef int K = Z.shape[1], Ho = Z.shape[2], Wo = Z.shape[3]
    cdef int nc = S.shape[1]
    cdef int th = (Ho + 1) // 2, tw = (Wo + 1) // 2
    cdef Py_ssize_t n_tiles = <Py_ssize_t>N * th * tw
    cdef int block = BLOCK_TILES
    cdef Py_ssize_t n_blocks = (n_tiles + block - 1) // block
    cdef int nt = n_threads(n_blocks)
    # components of D are es apart: a whole number of pages plus one cache line, so that
    # the 16 streams written per column of R fall into different cache sets
    cdef Py_ssize_t es = (<Py_ssize_t>nc * block + 1023) // 1024 * 1024 + 64 // sizeof(floating)
    cdef Py_ssize_t vs = 16 * <Py_ssize_t>C * block, ds = 16 * es
    cdef Py_ssize_t ms = 16 * <Py_ssize_t>nc * C, rs = 8 * (2 * <Py_ssize_t>tw + 2)
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] V = np.empty((nt, max(vs, 1)), dtype=dtype)
    cdef floating[:, ::1] D = np.empty((nt, max(ds, 1)), dtype=dtype)
    cdef floating[:, ::1] G = np.empty((nt, max(nc * C, 1) if floating is float else 1),
                                       dtype=dtype)
    cdef floating[:, ::1] R = np.empty((nt, rs), dtype=dtype)  # also (6, 2 tw + 2) rows
    cdef double[:, ::1] Macc = np.zeros((nt, max(ms, 1)))
    cdef double[:, ::1] y_part = np.zeros((nt, max(3 * K, 1)))
    cdef Py_ssize_t blk, t0, i, CT
    cdef int e, T, tid, c, t
    cdef floating shift
    cdef floating* Vt
    cdef floating* Dt
    cdef floating* Gt
    cdef double* Mt
    if n_tiles > 0 and C > 0 and nc > 0:
        with nogil, parallel(num_threads=nt):
            tid = threadid()
            for blk in prange(n_blocks, schedule="static"):
                t0 = blk * block
                T = <int>(n_tiles - t0 if n_tiles - t0 < block else block)
                CT = <Py_ssize_t>C * T
                Vt = &V[tid, 0]
                Dt = &D[tid, 0]
                Gt = &G[tid, 0]
                Mt = &Macc[tid, 0]
                _winograd_input(&x[0, 0, 0, 0], C, H, Wd, ph, pw, th, tw, t0, T,
                                &R[tid, 0], Vt)
                for c in range(C):  # the shift: B^T (d - x0_c) B = B^T d B - 4 x0_c e_11
                    shift = <floating>(4 * x0[c * 9])
                    for t in range(T):
                        Vt[5 * CT + c * T + t] -= shift
                _rhs_tiles(&Z[0, 0, 0, 0], &b[0], &y0[0], K, Ho, Wo, th, tw, t0, T,
                           masked, unmasked, &R[tid, 0], Dt, es, &y_part[tid, 0])
                for e in range(16):
                    # (nc, C) = D[e] (nc, T) @ V[e]^T (T, C)
                    if floating is float:
                        _gemm(False, True, nc, C, T, <floating>1, Dt + e * es, T,
                              Vt + e * CT, T, <floating>0, Gt, C)
                        for i in range(<Py_ssize_t>nc * C):
                            Mt[e * <Py_ssize_t>nc * C + i] += Gt[i]
                    else:
                        _gemm(False, True, nc, C, T, <floating>1, Dt + e * es, T,
                              Vt + e * CT, T, <floating>1,
                              <floating*>(Mt + e * <Py_ssize_t>nc * C), C)
    with nogil:
        for tid in range(1, nt):
            for i in range(ms):
                Macc[0, i] += Macc[tid, i]
            for i in range(3 * K):
                y_part[0, i] += y_part[tid, i]
        for i in range(3 * K):
            ysum[i // K, i % K] = y_part[0, i]
        _output_transform(&Macc[0, 0], nc, C, &S[0, 0])
