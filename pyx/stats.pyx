# cython: language_level=3
r"""Compiled pattern statistics: the covariance-accumulation kernel of MATH.md section 3.

Both functions have exactly the signature of their NumPy twins in
``refnet/kernels/reference/stats.py``, which define what is computed:

.. math::

    S = X'^\top R, \quad \mathrm{ysum} = [\textstyle\sum M;\ \sum M Y';\ \sum Y'],
    \quad XX = X'^\top X', \qquad X' = X - x_0,\ Y' = Z - b - y_0,\ M = [Z > 0],

with ``R = [M, M Y']`` (``masked``) followed by ``[1, Y']`` (``unmasked``). Outputs are
float64 whatever the input dtype, and every element of them is overwritten.

How: the rows (dense input rows, or conv patches) are cut into chunks of a few thousand
rows; each OpenMP thread takes whole chunks, copies one into its own buffer with the shift
``x - x0`` applied (for a conv, the chunk's patches are extracted here, so the whole
batch's im2col never exists), builds ``R`` from the pre-activations, and adds the chunk's
``X'^T R`` with one BLAS GEMM (``scipy.linalg.cython_blas``; ``XX`` with one SYRK). Float32
input uses float32 GEMMs per chunk whose results are added to per-thread float64 sums;
float64 input accumulates in float64 directly. The per-thread sums are added at the end in
thread order. BLAS must run single-threaded during these calls (the wrapper in
:mod:`refnet.kernels.stats` arranges that with threadpoolctl).

The mask ``M`` is read from a two-entry table rather than branched on: ``z > 0`` is
unpredictable, and a branch per entry cost four times the rest of the loop.
"""

import numpy as np

from cython.parallel cimport parallel, prange, threadid
from scipy.linalg.cython_blas cimport dsyrk, ssyrk

from cython cimport floating

from blas cimport _gemm
from geometry cimport clip_range
from threads cimport n_threads, refnet_max_threads


#: Bytes of shifted input rows per chunk (per thread); a chunk also holds >= 1 sample.
CHUNK_BYTES = 1 << 21
cdef Py_ssize_t MIN_ROWS = 32
cdef Py_ssize_t MAX_ROWS = 8192
#: ``M`` for ``z > 0`` false / true, read by index so the compiler emits no branch.
cdef double MASK_VALUE[2]
MASK_VALUE[0] = 0.0
MASK_VALUE[1] = 1.0


def max_threads():
    """Number of OpenMP threads the kernel uses at most (1 without OpenMP)."""
    return refnet_max_threads()


cdef Py_ssize_t _chunk_rows(Py_ssize_t D, Py_ssize_t itemsize):
    """Rows per chunk: ``CHUNK_BYTES`` of shifted rows, clipped to [32, 8192] (wide dense
    layers, e.g. D = 16384, get chunks of 32 rows, so both threads work on a batch)."""
    cdef Py_ssize_t rows = CHUNK_BYTES // max(D * itemsize, 1)
    return max(MIN_ROWS, min(MAX_ROWS, rows))


# --------------------------------------------------------------------------- BLAS


cdef inline void _syrk(
    bint rows_are_samples, int D, int n, const floating* X, int ldx,
    floating beta, floating* C,
) noexcept nogil:
    """``C (D, D) = X'^T X' + beta C``, lower triangle (row-major) only.

    ``rows_are_samples``: ``X`` is ``(n, D)`` row-major; else ``X`` is ``(D, n)`` row-major.
    In column-major terms these are ``A (D, n)`` (``C = A A^T``) and ``A (n, D)``
    (``C = A^T A``); BLAS fills the column-major upper triangle = row-major lower one.
    """
    cdef char uplo = b"U"
    cdef char tr = b"N" if rows_are_samples else b"T"
    cdef floating alpha = 1
    if D <= 0 or n <= 0:
        return
    if floating is float:
        ssyrk(&uplo, &tr, &D, &n, &alpha, <float*>X, &ldx, &beta, C, &D)
    else:
        dsyrk(&uplo, &tr, &D, &n, &alpha, <double*>X, &ldx, &beta, C, &D)


# --------------------------------------------------------------------------- one chunk


cdef void _chunk_products(
    bint rows_are_samples, int D, int nc, int n,
    const floating* X,  # IN (n, D) or (D, n): shifted rows x'
    const floating* R,  # IN (n, nc) or (nc, n): right-hand side
    bint want_xx,
    floating* G,  # scratch (D, nc) (float32 input only)
    floating* GXX,  # scratch (D, D) (float32 input only)
    double* S,  # IN/OUT (D, nc): += X'^T R
    double* XX,  # IN/OUT (D, D): += X'^T X' (lower triangle)
) noexcept nogil:
    cdef Py_ssize_t i, DD = <Py_ssize_t>D * D, Dn = <Py_ssize_t>D * nc
    if floating is double:
        if rows_are_samples:
            _gemm(True, False, D, nc, n, <double>1, X, D, R, nc, <double>1, S, nc)
        else:
            _gemm(False, True, D, nc, n, <double>1, X, n, R, n, <double>1, S, nc)
        if want_xx:
            _syrk(rows_are_samples, D, n, X, D if rows_are_samples else n, <double>1, XX)
    else:
        if rows_are_samples:
            _gemm(True, False, D, nc, n, <float>1, X, D, R, nc, <float>0, G, nc)
        else:
            _gemm(False, True, D, nc, n, <float>1, X, n, R, n, <float>0, G, nc)
        for i in range(Dn):
            S[i] += G[i]
        if want_xx:
            _syrk(rows_are_samples, D, n, X, D if rows_are_samples else n, <float>0, GXX)
            for i in range(DD):
                XX[i] += GXX[i]


cdef inline void _rhs_entry(
    floating zv, double yv, bint masked, bint unmasked,
    floating* R, Py_ssize_t col_stride, int k, int K, double* ys,
) noexcept nogil:
    """Write column entries ``k`` of ``R`` for one row and add to the row sums ``ys`` (3, K).

    ``col_stride`` is the distance between columns of ``R`` (1 for row-major ``(n, nc)``).
    """
    cdef double m = MASK_VALUE[zv > 0]
    cdef int u = 2 * K if masked else 0
    if masked:
        R[k * col_stride] = <floating>m
        R[(K + k) * col_stride] = <floating>(m * yv)
    if unmasked:
        R[(u + 1 + k) * col_stride] = <floating>yv
    ys[k] += m
    ys[K + k] += m * yv
    ys[2 * K + k] += yv


cdef void _rhs_plane(
    const floating* zk,  # IN (P,): one neuron's pre-activations over P rows
    Py_ssize_t P, double bk, double y0k, bint masked, bint unmasked,
    floating* Rm, floating* Rmy, floating* Ry,  # OUT (P,) each: M, M Y', Y' (if wanted)
    double* ys, int k, int K,  # IN/OUT (3, K): row sums
) noexcept nogil:
    """Columns ``M``, ``M Y'`` and ``Y'`` of one neuron ``k`` over ``P`` contiguous rows.

    The sums are kept in local float64 variables and added to ``ys`` once.
    """
    cdef Py_ssize_t p
    cdef double m, yv, sm = 0, smy = 0, sy = 0
    cdef floating zv
    for p in range(P):
        zv = zk[p]
        yv = <double>zv - bk - y0k
        m = MASK_VALUE[zv > 0]  # a load, not a branch: the mask is unpredictable
        if masked:
            Rm[p] = <floating>m
            Rmy[p] = <floating>(m * yv)
        if unmasked:
            Ry[p] = <floating>yv
        sm += m
        smy += m * yv
        sy += yv
    ys[k] += sm
    ys[K + k] += smy
    ys[2 * K + k] += sy


def _workspace(int nt, Py_ssize_t rows, Py_ssize_t D, int nc, Py_ssize_t K, bint want_xx,
               dtype):
    """Per-thread buffers of a statistics kernel, one row per thread: shifted rows
    ``(rows, D)``, right-hand side ``(rows, nc)``, float32 GEMM results ``(D, nc)`` and
    ``(D, D)`` (unused for float64), and the float64 sums ``S``, ``ysum`` and ``XX``."""
    DD = D * D if want_xx else 1
    single = np.dtype(dtype) == np.float32
    return (
        np.empty((nt, max(rows * D, 1)), dtype=dtype),
        np.empty((nt, max(rows * nc, 1)), dtype=dtype),
        np.empty((nt, max(D * nc, 1)), dtype=dtype),
        np.empty((nt, DD if single else 1), dtype=dtype),
        np.zeros((nt, max(D * nc, 1))),
        np.zeros((nt, 3 * K)),
        np.zeros((nt, DD)),
    )


# --------------------------------------------------------------------------- dense


def pattern_stats_dense(
    const floating[:, ::1] X,  # IN (n, D)
    const floating[:, ::1] Z,  # IN (n, K)
    const floating[::1] b,  # IN (K,)
    const double[::1] x0,  # IN (D,)
    const double[::1] y0,  # IN (K,)
    bint masked, bint unmasked,
    double[:, ::1] S,  # OUT (D, n_cols)
    double[:, ::1] ysum,  # OUT (3, K)
    double[:, ::1] XX,  # OUT (D, D) or None
):
    """Fill ``S``, ``ysum`` and ``XX`` from the rows ``X`` (n, D), chunk by chunk."""
    cdef Py_ssize_t n = X.shape[0], D = X.shape[1], K = Z.shape[1]
    cdef int nc = S.shape[1]
    cdef bint want_xx = XX is not None
    cdef Py_ssize_t rows = _chunk_rows(D, sizeof(floating))
    cdef int nt = n_threads((n + rows - 1) // rows if n > 0 else 1)
    if n > 0 and (n + nt - 1) // nt < rows:  # spread small batches over the threads
        rows = (n + nt - 1) // nt
    cdef Py_ssize_t n_chunks = (n + rows - 1) // rows
    cdef floating[:, ::1] xbuf, rbuf, gbuf, gxx
    cdef double[:, ::1] s_part, y_part, xx_part
    dtype = np.float32 if floating is float else np.float64
    xbuf, rbuf, gbuf, gxx, s_part, y_part, xx_part = _workspace(
        nt, rows, D, nc, K, want_xx, dtype)
    cdef Py_ssize_t c, r0, m, i, d, k
    cdef int tid
    cdef int u = 2 * <int>K if masked else 0
    cdef floating* xb
    cdef floating* rb
    if n > 0:
        with nogil, parallel(num_threads=nt):
            tid = threadid()
            for c in prange(n_chunks, schedule="static"):
                r0 = c * rows
                m = min(rows, n - r0)
                xb = &xbuf[tid, 0]
                rb = &rbuf[tid, 0]
                for i in range(m):
                    for d in range(D):
                        xb[i * D + d] = <floating>(X[r0 + i, d] - x0[d])
                    if unmasked:
                        rb[i * nc + u] = 1
                    for k in range(K):
                        _rhs_entry(Z[r0 + i, k], <double>Z[r0 + i, k] - b[k] - y0[k],
                                   masked, unmasked, rb + i * nc, 1, <int>k, <int>K,
                                   &y_part[tid, 0])
                _chunk_products(True, <int>D, nc, <int>m, xb, rb, want_xx, &gbuf[tid, 0],
                                &gxx[tid, 0], &s_part[tid, 0], &xx_part[tid, 0])
    _reduce(s_part, y_part, xx_part, nt, D, nc, K, want_xx, S, ysum, XX)


cdef _reduce(
    double[:, ::1] s_part, double[:, ::1] y_part, double[:, ::1] xx_part,
    int nt, Py_ssize_t D, int nc, Py_ssize_t K, bint want_xx,
    double[:, ::1] S, double[:, ::1] ysum, double[:, ::1] XX,
):
    """Add the per-thread sums in thread order; mirror ``XX``'s lower triangle."""
    cdef Py_ssize_t i, j, t
    cdef Py_ssize_t Dn = D * nc
    with nogil:
        for i in range(Dn):
            (&S[0, 0])[i] = s_part[0, i]
        for t in range(1, nt):
            for i in range(Dn):
                (&S[0, 0])[i] += s_part[t, i]
        for i in range(3 * K):
            (&ysum[0, 0])[i] = y_part[0, i]
        for t in range(1, nt):
            for i in range(3 * K):
                (&ysum[0, 0])[i] += y_part[t, i]
        if want_xx:
            for i in range(D):
                for j in range(i + 1):
                    XX[i, j] = xx_part[0, i * D + j]
                    for t in range(1, nt):
                        XX[i, j] += xx_part[t, i * D + j]
                    XX[j, i] = XX[i, j]


# --------------------------------------------------------------------------- conv


cdef void _patches_shifted(
    const floating* x,  # IN (C, H, W): one sample
    const double* x0,  # IN (C*kh*kw,)
    int C, int H, int W, int kh, int kw, int s, int ph, int pw, int Ho, int Wo,
    floating* cols, Py_ssize_t ld,  # OUT (C*kh*kw, Ho*Wo) block of a (D, ld) buffer
) noexcept nogil:
    """im2col of one sample with the shift ``x - x0`` (padding becomes ``-x0``)."""
    cdef int c, i, j, oh, ow, oh_lo, oh_hi, ow_lo, ow_hi, w0, d
    cdef const floating* xrow
    cdef floating* row
    cdef floating* out
    cdef double shift
    cdef floating pad
    for c in range(C):
        for i in range(kh):
            clip_range(Ho, s, i - ph, H, &oh_lo, &oh_hi)
            for j in range(kw):
                clip_range(Wo, s, j - pw, W, &ow_lo, &ow_hi)
                d = (c * kh + i) * kw + j
                shift = x0[d]
                pad = <floating>(-shift)
                row = cols + d * ld
                w0 = j - pw
                for oh in range(Ho):
                    out = row + oh * Wo
                    if oh < oh_lo or oh >= oh_hi:
                        for ow in range(Wo):
                            out[ow] = pad
                        continue
                    xrow = x + (<Py_ssize_t>c * H + oh * s + i - ph) * W + w0
                    for ow in range(ow_lo):
                        out[ow] = pad
                    for ow in range(ow_lo, ow_hi):
                        out[ow] = <floating>(xrow[ow * s] - shift)
                    for ow in range(ow_hi, Wo):
                        out[ow] = pad


def pattern_stats_conv(
    const floating[:, :, :, ::1] x,  # IN (N, C, H, W)
    const floating[:, :, :, ::1] Z,  # IN (N, K, Ho, Wo)
    const floating[::1] b,  # IN (K,)
    const double[::1] x0,  # IN (C*kh*kw,)
    const double[::1] y0,  # IN (K,)
    int kh, int kw, int s, int ph, int pw,
    bint masked, bint unmasked,
    double[:, ::1] S,  # OUT (C*kh*kw, n_cols)
    double[:, ::1] ysum,  # OUT (3, K)
    double[:, ::1] XX,  # OUT (C*kh*kw, C*kh*kw) or None
):
    """Fill ``S``, ``ysum`` and ``XX`` from the patches of ``x``, a few samples per chunk."""
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], Wd = x.shape[3]
    cdef int K = Z.shape[1], Ho = Z.shape[2], Wo = Z.shape[3]
    cdef Py_ssize_t P = <Py_ssize_t>Ho * Wo, D = <Py_ssize_t>C * kh * kw
    cdef int nc = S.shape[1]
    cdef bint want_xx = XX is not None
    cdef Py_ssize_t per = max(1, _chunk_rows(D, sizeof(floating)) // max(P, 1))
    cdef int nt = n_threads((N + per - 1) // per if N > 0 else 1)
    if N > 0 and (N + nt - 1) // nt < per:  # spread small batches over the threads
        per = (N + nt - 1) // nt
    cdef Py_ssize_t n_chunks = (N + per - 1) // per if N > 0 else 0
    cdef Py_ssize_t rows = per * P
    cdef floating[:, ::1] xbuf, rbuf, gbuf, gxx
    cdef double[:, ::1] s_part, y_part, xx_part
    dtype = np.float32 if floating is float else np.float64
    xbuf, rbuf, gbuf, gxx, s_part, y_part, xx_part = _workspace(
        nt, rows, D, nc, K, want_xx, dtype)
    cdef Py_ssize_t c, n0, g, m, p, k, ld
    cdef Py_ssize_t xs = <Py_ssize_t>C * H * Wd, zs = <Py_ssize_t>K * P
    cdef int tid
    cdef int u = 2 * K if masked else 0
    cdef floating* xb
    cdef floating* rb
    cdef const floating* zk
    if N > 0 and P > 0:
        with nogil, parallel(num_threads=nt):
            tid = threadid()
            for c in prange(n_chunks, schedule="static"):
                n0 = c * per
                m = min(per, N - n0)
                ld = m * P
                xb = &xbuf[tid, 0]
                rb = &rbuf[tid, 0]
                for g in range(m):
                    _patches_shifted(&x[0, 0, 0, 0] + (n0 + g) * xs, &x0[0], C, H, Wd,
                                     kh, kw, s, ph, pw, Ho, Wo, xb + g * P, ld)
                    if unmasked:
                        for p in range(P):
                            rb[u * ld + g * P + p] = 1
                    for k in range(K):
                        zk = &Z[0, 0, 0, 0] + (n0 + g) * zs + k * P
                        _rhs_plane(zk, P, <double>b[k], y0[k], masked, unmasked,
                                   rb + k * ld + g * P, rb + (K + k) * ld + g * P,
                                   rb + (u + 1 + k) * ld + g * P, &y_part[tid, 0], <int>k, K)
                _chunk_products(False, <int>D, nc, <int>ld, xb, rb, want_xx, &gbuf[tid, 0],
                                &gxx[tid, 0], &s_part[tid, 0], &xx_part[tid, 0])
    _reduce(s_part, y_part, xx_part, nt, D, nc, K, want_xx, S, ysum, XX)
