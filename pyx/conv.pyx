# cython: language_level=3
r"""Compiled Conv2D kernels: im2col, col2im, GEMM convolution and Winograd F(2x2, 3x3).

Every function has exactly the signature of its NumPy twin in
``refnet/kernels/reference/{im2col,conv,winograd}.py``: it takes validated, C-contiguous
arrays of one floating dtype (float32 or float64) and overwrites every element of the
preallocated ``out``. Kernels never validate; the wrappers in :mod:`refnet.kernels` do.

Parallelism: one OpenMP ``prange`` (explicit ``num_threads``) over independent work items
(samples for im2col/GEMM, blocks of output tiles for Winograd). Each thread owns its
scratch buffers and calls BLAS (``scipy.linalg.cython_blas``) on them; BLAS must therefore
run single-threaded during these calls, which the wrappers arrange with threadpoolctl.
"""

from functools import lru_cache

import numpy as np

from cython.parallel cimport parallel, prange, threadid
from libc.string cimport memcpy, memset

from cython cimport floating

from blas cimport _gemm
from geometry cimport clip_range
from simd cimport refnet_use_avx2  # no-cython-lint (called by the C kernels below)
from threads cimport _n_threads, n_threads, refnet_max_threads
from tiles cimport _next_tiles, _tile_at
from winograd2x2 cimport _winograd_input


# Output tiles handled per Winograd work item (one block = one set of 16 GEMMs).
cdef int WINOGRAD_BLOCK = 256
# Columns per forward GEMM when small images are batched together.
cdef int GROUP_COLUMNS = 512


def max_threads():
    """Number of OpenMP threads the kernels use at most (1 without OpenMP)."""
    return refnet_max_threads()


# --------------------------------------------------------------------------- im2col


cdef void _im2col_one(
    const floating* x,  # IN (C, H, W)
    int C, int H, int W, int kh, int kw, int s, int ph, int pw, int Ho, int Wo,
    floating* cols,  # OUT (C*kh*kw, Ho*Wo), rows ``ld`` apart
    Py_ssize_t ld,
) noexcept nogil:
    cdef int c, i, j, oh, ow, oh_lo, oh_hi, ow_lo, ow_hi, w0
    cdef const floating* xrow
    cdef floating* row
    for c in range(C):
        for i in range(kh):
            clip_range(Ho, s, i - ph, H, &oh_lo, &oh_hi)
            for j in range(kw):
                clip_range(Wo, s, j - pw, W, &ow_lo, &ow_hi)
                row = cols + ((<Py_ssize_t>c * kh + i) * kw + j) * ld
                if oh_lo > 0:
                    memset(row, 0, oh_lo * Wo * sizeof(floating))
                if oh_hi < Ho:
                    memset(row + oh_hi * Wo, 0, (Ho - oh_hi) * Wo * sizeof(floating))
                for oh in range(oh_lo, oh_hi):
                    xrow = x + (<Py_ssize_t>c * H + oh * s + i - ph) * W
                    for ow in range(ow_lo):
                        row[oh * Wo + ow] = 0
                    w0 = j - pw
                    if s == 1:
                        if ow_hi > ow_lo:
                            memcpy(row + oh * Wo + ow_lo, xrow + ow_lo + w0,
                                   (ow_hi - ow_lo) * sizeof(floating))
                    else:
                        for ow in range(ow_lo, ow_hi):
                            row[oh * Wo + ow] = xrow[ow * s + w0]
                    for ow in range(ow_hi, Wo):
                        row[oh * Wo + ow] = 0


cdef void _col2im_one(
    const floating* cols,  # IN (C*kh*kw, Ho*Wo)
    int C, int H, int W, int kh, int kw, int s, int ph, int pw, int Ho, int Wo,
    floating* x,  # OUT (C, H, W), overwritten
) noexcept nogil:
    cdef int c, i, j, oh, ow, oh_lo, oh_hi, ow_lo, ow_hi, w0
    cdef floating* xrow
    cdef const floating* row
    cdef Py_ssize_t P = <Py_ssize_t>Ho * Wo
    memset(x, 0, <Py_ssize_t>C * H * W * sizeof(floating))
    for c in range(C):
        for i in range(kh):
            clip_range(Ho, s, i - ph, H, &oh_lo, &oh_hi)
            for j in range(kw):
                clip_range(Wo, s, j - pw, W, &ow_lo, &ow_hi)
                row = cols + ((<Py_ssize_t>c * kh + i) * kw + j) * P
                w0 = j - pw
                for oh in range(oh_lo, oh_hi):
                    xrow = x + (<Py_ssize_t>c * H + oh * s + i - ph) * W
                    for ow in range(ow_lo, ow_hi):
                        xrow[ow * s + w0] += row[oh * Wo + ow]


def im2col(
    const floating[:, :, :, ::1] x,  # IN (N, C, H, W)
    int kh, int kw, int s, int ph, int pw,
    floating[:, :, ::1] out,  # OUT (N, C*kh*kw, Ho*Wo)
):
    """Fill ``out`` (N, C*kh*kw, H'*W') with the patches of ``x`` (N, C, H, W)."""
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int Ho = (H + 2 * ph - kh) // s + 1, Wo = (W + 2 * pw - kw) // s + 1
    cdef int n, nt = _n_threads(N)
    cdef Py_ssize_t xs = <Py_ssize_t>C * H * W, cs = out.shape[1] * out.shape[2]
    if N == 0:
        return
    for n in prange(N, nogil=True, schedule="static", num_threads=nt):
        _im2col_one(&x[0, 0, 0, 0] + n * xs, C, H, W, kh, kw, s, ph, pw, Ho, Wo,
                    &out[0, 0, 0] + n * cs, Ho * Wo)


def col2im(
    const floating[:, :, ::1] cols,  # IN (N, C*kh*kw, Ho*Wo)
    int kh, int kw, int s, int ph, int pw,
    floating[:, :, :, ::1] out,  # OUT (N, C, H, W)
):
    """Fill ``out`` (N, C, H, W) with the adjoint of :func:`im2col` applied to ``cols``."""
    cdef int N = out.shape[0], C = out.shape[1], H = out.shape[2], W = out.shape[3]
    cdef int Ho = (H + 2 * ph - kh) // s + 1, Wo = (W + 2 * pw - kw) // s + 1
    cdef int n, nt = _n_threads(N)
    cdef Py_ssize_t xs = <Py_ssize_t>C * H * W, cs = cols.shape[1] * cols.shape[2]
    if N == 0 or xs == 0:
        return
    for n in prange(N, nogil=True, schedule="static", num_threads=nt):
        _col2im_one(&cols[0, 0, 0] + n * cs, C, H, W, kh, kw, s, ph, pw, Ho, Wo,
                    &out[0, 0, 0, 0] + n * xs)


# --------------------------------------------------------------------------- GEMM conv


cdef inline bint _is_pointwise(int kh, int kw, int s, int ph, int pw) noexcept nogil:
    """A 1x1, stride-1, unpadded conv needs no im2col: ``cols_n`` is ``x_n`` itself."""
    return kh == 1 and kw == 1 and s == 1 and ph == 0 and pw == 0


def conv2d_forward(
    const floating[:, :, :, ::1] x,  # IN (N, C, H, W)
    const floating[:, :, :, ::1] W,  # IN (F, C, kh, kw)
    const floating[::1] b,  # IN (F,)
    int s, int ph, int pw,
    floating[:, :, :, ::1] out,  # OUT (N, F, Ho, Wo)
):
    """Fill ``out`` with ``W_2 cols_n + b`` per sample (im2col, then one GEMM).

    The bias rides in the GEMM: ``[W_2 | b] @ [cols_n ; 1]`` (one more row of ones). Small
    images are processed ``G`` samples at a time, ``[cols_n, ..., cols_{n+G-1}]`` side by
    side, so that each GEMM has about ``GROUP_COLUMNS`` columns.
    """
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], Wd = x.shape[3]
    cdef int F = W.shape[0], kh = W.shape[2], kw = W.shape[3]
    cdef int Ho = out.shape[2], Wo = out.shape[3]
    cdef Py_ssize_t P = <Py_ssize_t>Ho * Wo, K = <Py_ssize_t>C * kh * kw
    cdef int n, f, p, q, j, g, gi, tid
    cdef bint direct = _is_pointwise(kh, kw, s, ph, pw)
    cdef int G = 1 if direct or P >= GROUP_COLUMNS else min(N, GROUP_COLUMNS // P)
    cdef int n_groups = (N + G - 1) // G if G > 0 else 0
    cdef int nt = _n_threads(n_groups, <double>N * F * K * P)
    cdef Py_ssize_t xs = <Py_ssize_t>C * H * Wd, ys = <Py_ssize_t>F * P
    cdef Py_ssize_t GP = <Py_ssize_t>G * P
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] buf = np.empty((nt, 1 if direct else (K + 1) * GP), dtype=dtype)
    cdef floating[:, ::1] tmp = np.empty((nt, 1 if G == 1 else F * GP), dtype=dtype)
    Wb_array = np.empty((F, K + 1), dtype=dtype)  # [W_2 | b]
    Wb_array[:, :K] = np.asarray(W).reshape(F, K)
    Wb_array[:, K] = np.asarray(b)
    cdef floating[:, ::1] Wb = Wb_array
    cdef floating* y
    if N == 0 or ys == 0:
        return
    with nogil, parallel(num_threads=nt):
        tid = threadid()
        if not direct:
            for q in range(GP):  # the row of ones under the columns
                buf[tid, K * GP + q] = 1
        for gi in prange(n_groups, schedule="static"):
            n = gi * G
            if direct:
                y = &out[0, 0, 0, 0] + n * ys
                for f in range(F):
                    for p in range(P):
                        y[f * P + p] = b[f]
                # y_n (F, P) += W_2 (F, C) @ x_n (C, P)
                _gemm(False, False, F, P, K, <floating>1, &Wb[0, 0], K + 1,
                      &x[0, 0, 0, 0] + n * xs, P, <floating>1, y, P)
            elif G == 1:
                _im2col_one(&x[0, 0, 0, 0] + n * xs, C, H, Wd, kh, kw, s, ph, pw, Ho, Wo,
                            &buf[tid, 0], P)
                # y_n (F, P) = [W_2 | b] (F, K+1) @ [cols_n ; 1] (K+1, P)
                _gemm(False, False, F, P, K + 1, <floating>1, &Wb[0, 0], K + 1,
                      &buf[tid, 0], P, <floating>0, &out[0, 0, 0, 0] + n * ys, P)
            else:
                g = N - n if N - n < G else G
                for j in range(g):
                    _im2col_one(&x[0, 0, 0, 0] + (n + j) * xs, C, H, Wd, kh, kw, s, ph, pw,
                                Ho, Wo, &buf[tid, 0] + j * P, GP)
                # tmp (F, g P) = [W_2 | b] (F, K+1) @ [cols_n .. cols_{n+g-1} ; 1]
                _gemm(False, False, F, g * P, K + 1, <floating>1, &Wb[0, 0], K + 1,
                      &buf[tid, 0], GP, <floating>0, &tmp[tid, 0], GP)
                for j in range(g):
                    y = &out[0, 0, 0, 0] + (n + j) * ys
                    for f in range(F):
                        memcpy(y + f * P, &tmp[tid, 0] + f * GP + j * P, P * sizeof(floating))


def conv2d_backward_input(
    const floating[:, :, :, ::1] dy,  # IN (N, F, Ho, Wo)
    const floating[:, :, :, ::1] W,  # IN (F, C, kh, kw)
    int s, int ph, int pw,
    floating[:, :, :, ::1] out,  # OUT (N, C, H, W)
):
    """Fill ``out`` with ``col2im(W_2^T dy_n)`` per sample (one GEMM, then col2im)."""
    cdef int N = out.shape[0], C = out.shape[1], H = out.shape[2], Wd = out.shape[3]
    cdef int F = W.shape[0], kh = W.shape[2], kw = W.shape[3]
    cdef int Ho = dy.shape[2], Wo = dy.shape[3]
    cdef Py_ssize_t P = <Py_ssize_t>Ho * Wo, K = <Py_ssize_t>C * kh * kw
    cdef int n, tid, nt = _n_threads(N, <double>N * F * K * P)
    cdef bint direct = _is_pointwise(kh, kw, s, ph, pw)
    cdef Py_ssize_t xs = <Py_ssize_t>C * H * Wd, ys = <Py_ssize_t>F * P
    cdef floating[:, ::1] buf = np.empty(
        (nt, 1 if direct else <Py_ssize_t>K * P),
        dtype=np.float32 if floating is float else np.float64,
    )
    cdef floating* cols
    if N == 0 or xs == 0:
        return
    with nogil, parallel(num_threads=nt):
        tid = threadid()
        for n in prange(N, schedule="static"):
            cols = &out[0, 0, 0, 0] + n * xs if direct else &buf[tid, 0]
            # cols_n (K, P) = W_2^T (K, F) @ dy_n (F, P)
            _gemm(True, False, K, P, F, <floating>1, &W[0, 0, 0, 0], K,
                  &dy[0, 0, 0, 0] + n * ys, P, <floating>0, cols, P)
            if not direct:
                _col2im_one(cols, C, H, Wd, kh, kw, s, ph, pw, Ho, Wo,
                            &out[0, 0, 0, 0] + n * xs)


def conv2d_backward_weight(
    const floating[:, :, :, ::1] dy,  # IN (N, F, Ho, Wo)
    const floating[:, :, :, ::1] x,  # IN (N, C, H, W)
    int s, int ph, int pw,
    floating[:, :, :, ::1] out,  # OUT (F, C, kh, kw)
):
    """Fill ``out`` with ``sum_n dy_n cols_n^T``: per-thread partial sums, then a reduction.

    Small images are processed ``G`` samples at a time: ``[dy_n, ..., dy_{n+G-1}]`` and
    ``[cols_n, ..., cols_{n+G-1}]`` side by side, one GEMM of inner size ``G P``.
    """
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], Wd = x.shape[3]
    cdef int F = out.shape[0], kh = out.shape[2], kw = out.shape[3]
    cdef int Ho = dy.shape[2], Wo = dy.shape[3]
    cdef Py_ssize_t P = <Py_ssize_t>Ho * Wo, K = <Py_ssize_t>C * kh * kw
    cdef int n, t, f, j, g, gi, tid
    cdef Py_ssize_t i, FK = <Py_ssize_t>F * K
    cdef bint direct = _is_pointwise(kh, kw, s, ph, pw)
    cdef int G = 1 if P >= GROUP_COLUMNS else min(N, GROUP_COLUMNS // P)
    cdef int n_groups = (N + G - 1) // G if G > 0 else 0
    cdef int nt = _n_threads(n_groups, <double>N * F * K * P)
    cdef Py_ssize_t xs = <Py_ssize_t>C * H * Wd, ys = <Py_ssize_t>F * P
    cdef Py_ssize_t GP = <Py_ssize_t>G * P
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] buf = np.empty((nt, 1 if direct and G == 1 else K * GP), dtype=dtype)
    cdef floating[:, ::1] dyg = np.empty((nt, 1 if G == 1 else F * GP), dtype=dtype)
    cdef floating[:, ::1] part = np.zeros((nt, FK if FK > 0 else 1), dtype=dtype)
    cdef const floating* cols
    cdef const floating* dyn
    cdef floating* dw = &out[0, 0, 0, 0]
    if FK == 0:
        return
    if N > 0:
        with nogil, parallel(num_threads=nt):
            tid = threadid()
            for gi in prange(n_groups, schedule="static"):
                n = gi * G
                if G == 1:
                    if direct:
                        cols = &x[0, 0, 0, 0] + n * xs
                    else:
                        _im2col_one(&x[0, 0, 0, 0] + n * xs, C, H, Wd, kh, kw, s, ph, pw,
                                    Ho, Wo, &buf[tid, 0], P)
                        cols = &buf[tid, 0]
                    # part_t (F, K) += dy_n (F, P) @ cols_n^T (P, K)
                    _gemm(False, True, F, K, P, <floating>1, &dy[0, 0, 0, 0] + n * ys, P,
                          cols, P, <floating>1, &part[tid, 0], K)
                else:
                    g = N - n if N - n < G else G
                    for j in range(g):
                        _im2col_one(&x[0, 0, 0, 0] + (n + j) * xs, C, H, Wd, kh, kw, s,
                                    ph, pw, Ho, Wo, &buf[tid, 0] + j * P, GP)
                        dyn = &dy[0, 0, 0, 0] + (n + j) * ys
                        for f in range(F):
                            memcpy(&dyg[tid, 0] + f * GP + j * P, dyn + f * P,
                                   P * sizeof(floating))
                    # part_t (F, K) += [dy_n ..] (F, g P) @ [cols_n ..]^T (g P, K)
                    _gemm(False, True, F, K, g * P, <floating>1, &dyg[tid, 0], GP,
                          &buf[tid, 0], GP, <floating>1, &part[tid, 0], K)
    with nogil:
        for i in range(FK):
            dw[i] = part[0, i]
        for t in range(1, nt):
            for i in range(FK):
                dw[i] += part[t, i]


# --------------------------------------------------------------------------- direct conv
#
# For small patches (K = C kh kw of a few dozen taps, e.g. 3 input channels) the im2col
# GEMMs are too thin for BLAS. The direct kernels work on a zero-padded copy xp (C, Hp, Wp)
# of one sample: at stride 1, y[f, oh, ow] = b[f] + sum_{c,i,j} W[f,c,i,j] xp[c, oh+i, ow+j],
# so a vector of outputs along a row is a sum of K shifted (contiguous, unaligned) vector
# loads of xp, each scaled by one weight; the forward keeps a register block of CB output
# channels x VB vectors (3 x 4 on AVX2, so 3-channel input gradients waste no FMA) over all
# K taps, and a single output channel of a 3-row kernel in column blocks of 8 rows. The
# weight gradient is the same sum read the other way (one inner product per tap). The C
# below (GCC vector extensions) is compiled twice, for AVX2+FMA (__attribute__((target)))
# and for the baseline target, and refnet_use_avx2() picks one at run time with
# __builtin_cpu_supports; elsewhere (no x86-64 GCC) only the baseline.

cdef extern from *:
    """
    /* 32-byte vectors for the AVX2+FMA build, 16-byte (SSE2 on x86-64) for the baseline. */
    typedef float refnet_vf8 __attribute__((vector_size(32)));
    typedef double refnet_vd4 __attribute__((vector_size(32)));
    typedef float refnet_vf4 __attribute__((vector_size(16)));
    typedef double refnet_vd2 __attribute__((vector_size(16)));
    /* One register block per step: for CB output channels b and VB vectors v of n outputs,
         s[b][v] = bias[b] + sum_k w[k CB + b] xp[off[k] + pos[2 (c0 + v)] + lane],
       stored (unaligned) at dst + b ds + pos[2 (c0 + v) + 1]. pos lists nv vector
       positions (input offset, output offset), followed by at least VB - 1 copies of the
       last one: the last block may recompute a vector and rewrite the same values. The
       CB VB accumulators stay in registers over all K taps; (CB, VB) per target is chosen
       so that they, CB broadcast weights and one input vector fit 16 vector registers
       (and CB VB >= 8 covers the FMA latency). Each block also prefetches its share of
       the pfn bytes at pf (the next sample, so that its padded copy finds it in cache),
       one line every other tap (a burst of prefetches would stall the loads). */
    #define REFNET_DIRECT_BLOCKS(T, V, ATTR, NAME, CB, VB)                              \
    ATTR static void NAME(                                                             \
        const T* restrict xp, const int* restrict off, int K, const T* restrict w,     \
        const T* restrict bias, const int* restrict pos, int nv,                       \
        T* restrict dst, long ds, const char* pf, long pfn)                            \
    {                                                                                  \
        int c0, b, v, k;                                                               \
        for (c0 = 0; c0 < nv; c0 += VB) {                                              \
            V s[CB][VB];                                                               \
            const T* x0[VB];                                                           \
            long l = pfn * c0 / nv, l1 = c0 + VB < nv ? pfn * (c0 + VB) / nv : pfn;   \
            _Pragma("GCC unroll 8") for (v = 0; v < VB; v++)                           \
                x0[v] = xp + pos[2 * (c0 + v)];                                        \
            _Pragma("GCC unroll 4") for (b = 0; b < CB; b++)                           \
                _Pragma("GCC unroll 8") for (v = 0; v < VB; v++)                       \
                    s[b][v] = (V){0} + bias[b];                                        \
            for (k = 0; k < K; k++) {                                                  \
                const T* wk = w + k * CB;                                              \
                int o = off[k];                                                        \
                if ((k & 1) == 0 && l < l1) {                                          \
                    __builtin_prefetch(pf + l, 0, 2);                                  \
                    l += 64;                                                           \
                }                                                                      \
                _Pragma("GCC unroll 8") for (v = 0; v < VB; v++) {                     \
                    V u;                                                               \
                    __builtin_memcpy(&u, x0[v] + o, sizeof(V));                        \
                    _Pragma("GCC unroll 4") for (b = 0; b < CB; b++)                   \
                        s[b][v] += wk[b] * u;                                          \
                }                                                                      \
            }                                                                          \
            for (; l < l1; l += 64)                                                    \
                __builtin_prefetch(pf + l, 0, 2);                                      \
            _Pragma("GCC unroll 4") for (b = 0; b < CB; b++)                           \
                _Pragma("GCC unroll 8") for (v = 0; v < VB; v++)                       \
                    __builtin_memcpy(dst + b * ds + pos[2 * (c0 + v) + 1], &s[b][v],   \
                                     sizeof(V));                                       \
        }                                                                              \
    }
    #define REFNET_DIRECT_TARGET(T, V, ATTR, NAME, VB1, VB2, VB3, VB4)                 \
        REFNET_DIRECT_BLOCKS(T, V, ATTR, NAME##_1, 1, VB1)                             \
        REFNET_DIRECT_BLOCKS(T, V, ATTR, NAME##_2, 2, VB2)                             \
        REFNET_DIRECT_BLOCKS(T, V, ATTR, NAME##_3, 3, VB3)                             \
        REFNET_DIRECT_BLOCKS(T, V, ATTR, NAME##_4, 4, VB4)
    /* One output channel in column blocks for 3-row kernels: 8 vectors in consecutive rows
       of one column (pos: input and output offset of the top one, nblk of them). Taps
       are grouped g = (c, j) with offg[g] = c Hp Wp + j and weights w[3 g + i]: the input
       vector of row t serves taps i = 0..2 of outputs t - i, so a group costs 10 loads
       for 24 FMAs (the tap-by-tap block: 8 loads for 8). */
    #define REFNET_DIRECT_COLUMNS(T, V, ATTR, NAME)                                    \
    ATTR static void NAME(                                                             \
        const T* restrict xp, const int* restrict offg, int G, const T* restrict w,    \
        const T* restrict bias, const int* restrict pos, int nblk, int Wp, int Wo,     \
        T* restrict dst, const char* pf, long pfn)                                     \
    {                                                                                  \
        int blk, v, g, i, t;                                                           \
        for (blk = 0; blk < nblk; blk++) {                                             \
            V s[8];                                                                    \
            const T* x0 = xp + pos[2 * blk];                                           \
            long l = pfn * blk / nblk, l1 = blk + 1 < nblk ? pfn * (blk + 1) / nblk : pfn; \
            _Pragma("GCC unroll 8") for (v = 0; v < 8; v++)                            \
                s[v] = (V){0} + bias[0];                                               \
            for (g = 0; g < G; g++) {                                                  \
                const T* p = x0 + offg[g];                                             \
                const T* wg = w + 3 * g;                                               \
                if (l < l1) {  /* one line per tap group, as above */                 \
                    __builtin_prefetch(pf + l, 0, 2);                                  \
                    l += 64;                                                           \
                }                                                                      \
                _Pragma("GCC unroll 10") for (t = 0; t < 10; t++) {                    \
                    V u;                                                               \
                    __builtin_memcpy(&u, p + (long)t * Wp, sizeof(V));                 \
                    _Pragma("GCC unroll 3") for (i = 0; i < 3; i++)                    \
                        if (t - i >= 0 && t - i < 8)                                   \
                            s[t - i] += wg[i] * u;                                     \
                }                                                                      \
            }                                                                          \
            for (; l < l1; l += 64)                                                    \
                __builtin_prefetch(pf + l, 0, 2);                                      \
            _Pragma("GCC unroll 8") for (v = 0; v < 8; v++)                            \
                __builtin_memcpy(dst + pos[2 * blk + 1] + (long)v * Wo, &s[v], sizeof(V)); \
        }                                                                              \
    }
    REFNET_DIRECT_COLUMNS(float, refnet_vf8, REFNET_AVX2, refnet_direct_cols_f_avx2)
    REFNET_DIRECT_COLUMNS(double, refnet_vd4, REFNET_AVX2, refnet_direct_cols_d_avx2)
    REFNET_DIRECT_COLUMNS(float, refnet_vf4, , refnet_direct_cols_f_base)
    REFNET_DIRECT_COLUMNS(double, refnet_vd2, , refnet_direct_cols_d_base)
    /* AVX2+FMA: 8, 12, 12, 8 accumulators (4 x 3 would need 17 registers and spills).
       Baseline (multiply, then add: one more temporary): 8, 10, 9, 8. */
    REFNET_DIRECT_TARGET(float, refnet_vf8, REFNET_AVX2, refnet_direct_plane_f_avx2, 8, 6, 4, 2)
    REFNET_DIRECT_TARGET(double, refnet_vd4, REFNET_AVX2, refnet_direct_plane_d_avx2, 8, 6, 4, 2)
    REFNET_DIRECT_TARGET(float, refnet_vf4, , refnet_direct_plane_f_base, 8, 5, 3, 2)
    REFNET_DIRECT_TARGET(double, refnet_vd2, , refnet_direct_plane_d_base, 8, 5, 3, 2)
    /* part[f, k, :] += sum over outputs (oh, ow) of dy[f, oh, ow] xp[off[k] + oh Wp + ow],
       in lanes 0..n-1 of 8 slots (summed by the caller); taps four at a time (K4 = K rounded
       up to 4, off padded with 0). A row's last vector overlaps the one before it; the
       lanes counted twice get a zero mask. Rows shorter than a vector go lane 0 only. */
    #define REFNET_DIRECT_DW(T, V, ATTR, NAME)                                         \
    ATTR static void NAME(                                                             \
        const T* restrict xp, const int* restrict off, int K4, const T* restrict dy,   \
        int F, int Ho, int Wo, int Wp, int ns, long xps, long dys, T* restrict part)   \
    {                                                                                  \
        const int n = (int)(sizeof(V) / sizeof(T));                                    \
        int f, k, oh, ow, l, c, q, cpr = (Wo + n - 1) / n;                             \
        if (Wo < n) {                                                                  \
            for (f = 0; f < F; f++)                                                    \
                for (k = 0; k < K4; k++) {                                             \
                    T s = 0;                                                           \
                    for (q = 0; q < ns; q++)                                           \
                        for (oh = 0; oh < Ho; oh++)                                    \
                            for (ow = 0; ow < Wo; ow++)                                \
                                s += dy[q * dys + ((long)f * Ho + oh) * Wo + ow]       \
                                     * xp[q * xps + off[k] + oh * Wp + ow];            \
                    part[((long)f * K4 + k) * 8] += s;                                 \
                }                                                                      \
            return;                                                                    \
        }                                                                              \
        for (f = 0; f < F; f += 2) {  /* channels f and g = f + 1 (f again if odd F) */ \
            int g = f + 1 < F ? f + 1 : f;                                             \
            for (k = 0; k < K4; k += 4) {                                              \
                V s0 = {0}, s1 = {0}, s2 = {0}, s3 = {0}, d, e, u, m;                  \
                V t0 = {0}, t1 = {0}, t2 = {0}, t3 = {0};                              \
                T* p = part + ((long)f * K4 + k) * 8;                                  \
                T* r = part + ((long)g * K4 + k) * 8;                                  \
                for (c = 0; c < cpr; c++) {                                            \
                    int wa = c * n, w0 = wa;                                           \
                    if (wa > Wo - n) wa = Wo - n;                                      \
                    for (l = 0; l < n; l++) m[l] = wa + l >= w0 ? 1 : 0;               \
                    for (q = 0; q < ns; q++)                                           \
                    for (oh = 0; oh < Ho; oh++) {                                      \
                        const T* x0 = xp + q * xps + oh * Wp + wa;                     \
                        const T* dq = dy + q * dys;                                    \
                        __builtin_memcpy(&d, dq + ((long)f * Ho + oh) * Wo + wa, sizeof(V)); \
                        __builtin_memcpy(&e, dq + ((long)g * Ho + oh) * Wo + wa, sizeof(V)); \
                        d *= m;                                                        \
                        e *= m;                                                        \
                        __builtin_memcpy(&u, x0 + off[k], sizeof(V));                  \
                        s0 += d * u; t0 += e * u;                                      \
                        __builtin_memcpy(&u, x0 + off[k + 1], sizeof(V));              \
                        s1 += d * u; t1 += e * u;                                      \
                        __builtin_memcpy(&u, x0 + off[k + 2], sizeof(V));              \
                        s2 += d * u; t2 += e * u;                                      \
                        __builtin_memcpy(&u, x0 + off[k + 3], sizeof(V));              \
                        s3 += d * u; t3 += e * u;                                      \
                    }                                                                  \
                }                                                                      \
                for (l = 0; l < n; l++) {                                              \
                    p[l] += s0[l]; p[8 + l] += s1[l];                                  \
                    p[16 + l] += s2[l]; p[24 + l] += s3[l];                            \
                }                                                                      \
                if (g != f)                                                            \
                    for (l = 0; l < n; l++) {                                          \
                        r[l] += t0[l]; r[8 + l] += t1[l];                              \
                        r[16 + l] += t2[l]; r[24 + l] += t3[l];                        \
                    }                                                                  \
            }                                                                          \
        }                                                                              \
    }
    REFNET_DIRECT_DW(float, refnet_vf8, REFNET_AVX2, refnet_direct_dw_f_avx2)
    REFNET_DIRECT_DW(double, refnet_vd4, REFNET_AVX2, refnet_direct_dw_d_avx2)
    REFNET_DIRECT_DW(float, refnet_vf4, , refnet_direct_dw_f_base)
    REFNET_DIRECT_DW(double, refnet_vd2, , refnet_direct_dw_d_base)
    /* Lanes of the vectors the direct kernels use for elements of `size` bytes. */
    static int refnet_direct_lanes(int size) {
        return (refnet_use_avx2() ? 32 : 16) / size;
    }
    #define REFNET_DISPATCH(T, NAME)                                                   \
    static void NAME(const T* xp, const int* off, int K, const T* w, const T* bias,    \
                     const int* pos, int nv, int cb, T* dst, long ds,                  \
                     const char* pf, long pfn) {                                       \
        int avx2 = refnet_use_avx2();                                                  \
        if (avx2 && cb == 1) NAME##_avx2_1(xp, off, K, w, bias, pos, nv, dst, ds, pf, pfn); \
        else if (avx2 && cb == 2) NAME##_avx2_2(xp, off, K, w, bias, pos, nv, dst, ds, pf, pfn); \
        else if (avx2 && cb == 3) NAME##_avx2_3(xp, off, K, w, bias, pos, nv, dst, ds, pf, pfn); \
        else if (avx2) NAME##_avx2_4(xp, off, K, w, bias, pos, nv, dst, ds, pf, pfn);  \
        else if (cb == 1) NAME##_base_1(xp, off, K, w, bias, pos, nv, dst, ds, pf, pfn); \
        else if (cb == 2) NAME##_base_2(xp, off, K, w, bias, pos, nv, dst, ds, pf, pfn); \
        else if (cb == 3) NAME##_base_3(xp, off, K, w, bias, pos, nv, dst, ds, pf, pfn); \
        else NAME##_base_4(xp, off, K, w, bias, pos, nv, dst, ds, pf, pfn);            \
    }
    REFNET_DISPATCH(float, refnet_direct_plane_f)
    REFNET_DISPATCH(double, refnet_direct_plane_d)
    #define REFNET_DISPATCH_COLUMNS(T, NAME)                                           \
    static void NAME(const T* xp, const int* offg, int G, const T* w, const T* bias,   \
                     const int* pos, int nblk, int Wp, int Wo, T* dst,                 \
                     const char* pf, long pfn) {                                       \
        if (refnet_use_avx2())                                                         \
            NAME##_avx2(xp, offg, G, w, bias, pos, nblk, Wp, Wo, dst, pf, pfn);        \
        else                                                                           \
            NAME##_base(xp, offg, G, w, bias, pos, nblk, Wp, Wo, dst, pf, pfn);        \
    }
    REFNET_DISPATCH_COLUMNS(float, refnet_direct_cols_f)
    REFNET_DISPATCH_COLUMNS(double, refnet_direct_cols_d)
    #define REFNET_DISPATCH_DW(T, NAME)                                                \
    static void NAME(const T* xp, const int* off, int K4, const T* dy,                 \
                     int F, int Ho, int Wo, int Wp, int ns, long xps, long dys,        \
                     T* part) {                                                        \
        if (refnet_use_avx2())                                                         \
            NAME##_avx2(xp, off, K4, dy, F, Ho, Wo, Wp, ns, xps, dys, part);           \
        else                                                                           \
            NAME##_base(xp, off, K4, dy, F, Ho, Wo, Wp, ns, xps, dys, part);           \
    }
    REFNET_DISPATCH_DW(float, refnet_direct_dw_f)
    REFNET_DISPATCH_DW(double, refnet_direct_dw_d)
    """
    int refnet_direct_lanes(int size) noexcept nogil
    void refnet_direct_plane_f(
        const float* xp, const int* off, int K, const float* w, const float* bias,
        const int* pos, int nv, int cb, float* dst, long ds,
        const char* pf, long pfn) noexcept nogil
    void refnet_direct_plane_d(
        const double* xp, const int* off, int K, const double* w, const double* bias,
        const int* pos, int nv, int cb, double* dst, long ds,
        const char* pf, long pfn) noexcept nogil
    void refnet_direct_cols_f(
        const float* xp, const int* offg, int G, const float* w, const float* bias,
        const int* pos, int nblk, int Wp, int Wo, float* dst,
        const char* pf, long pfn) noexcept nogil
    void refnet_direct_cols_d(
        const double* xp, const int* offg, int G, const double* w, const double* bias,
        const int* pos, int nblk, int Wp, int Wo, double* dst,
        const char* pf, long pfn) noexcept nogil
    void refnet_direct_dw_f(
        const float* xp, const int* off, int K4, const float* dy,
        int F, int Ho, int Wo, int Wp, int ns, long xps, long dys, float* part) noexcept nogil
    void refnet_direct_dw_d(
        const double* xp, const int* off, int K4, const double* dy,
        int F, int Ho, int Wo, int Wp, int ns, long xps, long dys,
        double* part) noexcept nogil


cdef void _pad_one(
    const floating* x,  # IN (C, H, W)
    int C, int H, int W, int ph, int pw,
    floating* xp,  # IN/OUT (C, H + 2 ph, W + 2 pw), border already zero
) noexcept nogil:
    """Copy ``x`` into the interior of ``xp``; the border is never written, so a buffer
    allocated with zeros stays a valid zero-padded copy from one sample to the next."""
    cdef int c, h, Hp = H + 2 * ph, Wp = W + 2 * pw
    for c in range(C):
        for h in range(H):
            memcpy(xp + (<Py_ssize_t>c * Hp + h + ph) * Wp + pw,
                   x + (<Py_ssize_t>c * H + h) * W, W * sizeof(floating))


@lru_cache(maxsize=64)
def _direct_positions(int Ho, int Wo, int Wp, int n):
    """Vector positions for the direct kernel: rows ``(input offset, output offset)``.

    With ``Wo >= n`` the vectors tile each output row (the last one of a row moved back to
    end at ``Wo``, overlapping its neighbour) and are stored straight to ``y``
    (``(H', W')``); otherwise they tile the flat padded plane ``q = oh Wp + ow < L`` and
    are stored to a scratch row of the same layout. Eight copies of the last position
    follow (the kernels' blocks run past the end by up to 7 vectors).
    """
    if Wo >= n:
        cols = np.minimum(np.arange(0, Wo, n), Wo - n)  # (ceil(Wo / n),)
        rows = np.arange(Ho)[:, None]  # (Ho, 1)
        xo = (rows * Wp + cols).reshape(-1)  # (Ho ceil(Wo / n),)
        yo = (rows * Wo + cols).reshape(-1)
    else:
        xo = yo = np.arange(0, (Ho - 1) * Wp + Wo, n)  # (ceil(L / n),)
    pos = np.empty((len(xo) + 8, 2), dtype=np.intc)  # (nv + 8, 2)
    pos[:len(xo), 0], pos[:len(xo), 1] = xo, yo
    pos[len(xo):] = pos[len(xo) - 1]
    pos.flags.writeable = False  # cached
    return pos


@lru_cache(maxsize=64)
def _column_positions(int Ho, int Wo, int Wp, int n):
    """Column blocks for the one-channel 3-row kernel: ``(input offset, output offset)`` of
    the top vector of 8 in consecutive rows, per row band (the last band moved up to end
    at ``Ho``, overlapping its neighbour) and column vector (as in
    :func:`_direct_positions`); needs ``Ho >= 8`` and ``Wo >= n``."""
    cols = np.minimum(np.arange(0, Wo, n), Wo - n)  # (ceil(Wo / n),)
    tops = np.minimum(np.arange(0, Ho, 8), Ho - 8)[:, None]  # (ceil(Ho / 8), 1)
    pos = np.empty((tops.shape[0] * cols.shape[0], 2), dtype=np.intc)  # (blocks, 2)
    pos[:, 0] = (tops * Wp + cols).reshape(-1)
    pos[:, 1] = (tops * Wo + cols).reshape(-1)
    pos.flags.writeable = False  # cached
    return pos


@lru_cache(maxsize=64)
def _channel_blocks(int F, int K):
    """Output channels in register blocks: starts ``f0``, sizes ``cb`` and the gather
    ``perm`` packing ``W_2 (F, K)`` so that block ``(f0, cb)`` reads its weights as
    ``(K, cb)`` from offset ``f0 K``. Threes (the fastest block on AVX2), one four when
    ``F % 3 == 1`` (a lone channel runs at half the FMA rate), one two when ``F % 3 == 2``.
    """
    sizes = [3] * (F // 3)
    if F % 3 == 1:
        sizes = [4] + sizes[1:] if sizes else [1]
    elif F % 3 == 2:
        sizes.append(2)
    sizes_array = np.array(sizes, dtype=np.intc)  # (blocks,)
    starts_array = (np.cumsum(sizes_array) - sizes_array).astype(np.intc)
    rows = np.arange(F * K).reshape(F, K)  # (F, K) flat indices of W_2
    perm = np.concatenate([np.zeros(0, dtype=rows.dtype)] + [
        rows[f0:f0 + cb].T.reshape(-1) for f0, cb in zip(starts_array, sizes_array)
    ])  # (F K,)
    for a in (starts_array, sizes_array, perm):
        a.flags.writeable = False  # cached
    return starts_array, sizes_array, perm


@lru_cache(maxsize=64)
def _direct_offsets(int C, int kh, int kw, int Hp, int Wp):
    """``off[k]`` for tap ``k = (c, i, j)``: ``c Hp Wp + i Wp + j`` (one spare zero)."""
    off = np.zeros(C * kh * kw + 1, dtype=np.intc)  # (K + 1,)
    off[:C * kh * kw] = (np.arange(C)[:, None, None] * (Hp * Wp)
                         + np.arange(kh)[None, :, None] * Wp
                         + np.arange(kw)[None, None, :]).reshape(-1)  # (K,)
    off.flags.writeable = False  # cached
    return off


def conv2d_forward_direct(
    const floating[:, :, :, ::1] x,  # IN (N, C, H, W)
    const floating[:, :, :, ::1] W,  # IN (F, C, kh, kw)
    const floating[::1] b,  # IN (F,)
    int ph, int pw,
    floating[:, :, :, ::1] out,  # OUT (N, F, Ho, Wo), stride 1
):
    """Fill ``out`` with the stride-1 cross-correlation ``W * x + b`` tap by tap (no BLAS).

    For few input channels (see :func:`refnet.kernels._use_direct_forward`) and, through
    :func:`conv2d_backward_input_direct`, few output channels; samples in parallel,
    output channels in register blocks of 1-4 (see :func:`_channel_blocks`), a single
    one of a 3-row kernel in column blocks (see :func:`_column_positions`).
    """
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], Wd = x.shape[3]
    cdef int F = W.shape[0], kh = W.shape[2], kw = W.shape[3]
    cdef int Ho = out.shape[2], Wo = out.shape[3]
    cdef int Hp = H + 2 * ph, Wp = Wd + 2 * pw
    cdef Py_ssize_t P = <Py_ssize_t>Ho * Wo, K = <Py_ssize_t>C * kh * kw
    cdef int lanes = refnet_direct_lanes(sizeof(floating))
    cdef bint in_rows = Wo >= lanes  # vectors stored straight to out, else via acc
    cdef int L = (Ho - 1) * Wp + Wo
    cdef int Lr = (L + lanes - 1) // lanes * lanes  # flat plane in whole vectors
    cdef int n, blk, f0, cb, f, oh, ow, tid, nt = n_threads(N)
    cdef Py_ssize_t xs = <Py_ssize_t>C * H * Wd, ys = <Py_ssize_t>F * P
    cdef Py_ssize_t ps = <Py_ssize_t>C * Hp * Wp
    dtype = np.float32 if floating is float else np.float64
    # one output channel of a 3-row kernel: column blocks, taps grouped by (c, j)
    cdef bint columns = F == 1 and kh == 3 and in_rows and Ho >= 8
    cdef floating[:, ::1] xpad = np.zeros((nt, ps + Lr), dtype=dtype)  # border, tail stay 0
    cdef floating[:, ::1] acc = np.empty((nt, 1 if in_rows else 4 * Lr), dtype=dtype)
    pos_array = (_column_positions(Ho, Wo, Wp, lanes) if columns
                 else _direct_positions(Ho, Wo, Wp, lanes))  # (blocks, 2) or (nv + 8, 2)
    cdef int nv = pos_array.shape[0] if columns else pos_array.shape[0] - 8
    starts_array, sizes_array, perm = _channel_blocks(F, K)
    wk_array = np.zeros(F * K + 1, dtype=dtype)  # (F K + 1,), one spare
    if columns:  # wk[(c kw + j) 3 + i] = W[0, c, i, j]
        wk_array[:K] = np.asarray(W).reshape(C, kh, kw).transpose(0, 2, 1).reshape(K)
        off_array = _direct_offsets(C, 1, kw, Hp, Wp)  # (C kw + 1,): c Hp Wp + j
    else:  # wk[f0 K + k cb + t] = W_2[f0 + t, k] for the block (f0, cb)
        wk_array[:F * K] = np.asarray(W).reshape(F * K)[perm]
        off_array = _direct_offsets(C, kh, kw, Hp, Wp)  # (K + 1,)
    cdef const floating[::1] wk = wk_array
    cdef const int[:, ::1] pos = pos_array
    cdef const int[::1] off = off_array
    cdef const int[::1] starts = starts_array, sizes = sizes_array
    cdef int nb = sizes.shape[0]
    cdef floating* y
    cdef floating* dst
    cdef const char* pf  # the next sample, prefetched a share per block
    cdef Py_ssize_t pfn = xs * sizeof(floating)
    if N == 0 or ys == 0:
        return
    with nogil, parallel(num_threads=nt):
        tid = threadid()
        for n in prange(N, schedule="static"):
            _pad_one(&x[0, 0, 0, 0] + n * xs, C, H, Wd, ph, pw, &xpad[tid, 0])
            y = &out[0, 0, 0, 0] + n * ys
            pf = <const char*>(&x[0, 0, 0, 0] + (n + 1 if n + 1 < N else n) * xs)
            if columns:
                if floating is float:
                    refnet_direct_cols_f(&xpad[tid, 0], &off[0], C * kw, &wk[0], &b[0],
                                         &pos[0, 0], nv, Wp, Wo, y, pf, pfn)
                else:
                    refnet_direct_cols_d(&xpad[tid, 0], &off[0], C * kw, &wk[0], &b[0],
                                         &pos[0, 0], nv, Wp, Wo, y, pf, pfn)
                continue
            for blk in range(nb):
                f0 = starts[blk]
                cb = sizes[blk]
                dst = y + <Py_ssize_t>f0 * P if in_rows else &acc[tid, 0]
                if floating is float:
                    refnet_direct_plane_f(&xpad[tid, 0], &off[0], K, &wk[f0 * K], &b[f0],
                                          &pos[0, 0], nv, cb, dst, P if in_rows else Lr,
                                          pf + pfn * blk // nb,
                                          pfn * (blk + 1) // nb - pfn * blk // nb)
                else:
                    refnet_direct_plane_d(&xpad[tid, 0], &off[0], K, &wk[f0 * K], &b[f0],
                                          &pos[0, 0], nv, cb, dst, P if in_rows else Lr,
                                          pf + pfn * blk // nb,
                                          pfn * (blk + 1) // nb - pfn * blk // nb)
                if not in_rows:
                    for f in range(cb):
                        for oh in range(Ho):
                            for ow in range(Wo):
                                y[(<Py_ssize_t>(f0 + f) * Ho + oh) * Wo + ow] = (
                                    dst[f * Lr + oh * Wp + ow])


def conv2d_backward_input_direct(
    const floating[:, :, :, ::1] dy,  # IN (N, F, Ho, Wo)
    const floating[:, :, :, ::1] W,  # IN (F, C, kh, kw)
    int ph, int pw,
    floating[:, :, :, ::1] out,  # OUT (N, C, H, W), stride 1, ph < kh, pw < kw
):
    """The stride-1 input gradient as :func:`conv2d_forward_direct` of ``dy`` with the
    flipped, transposed kernel ``W[f, c, kh-1-i, kw-1-j]`` (a ``(C, F, kh, kw)`` filter) and
    padding ``(kh - 1 - ph, kw - 1 - pw)``. For few input channels ``C``, where the im2col
    GEMM is thin and col2im dominates.
    """
    cdef int C = W.shape[1], kh = W.shape[2], kw = W.shape[3]
    W_flip = np.ascontiguousarray(np.asarray(W)[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    zero = np.zeros(C, dtype=W_flip.dtype)
    conv2d_forward_direct(dy, W_flip, zero, kh - 1 - ph, kw - 1 - pw, out)


#: Samples per block of the direct weight gradient, and the bytes of their padded copies.
cdef int DW_SAMPLES = 64
cdef Py_ssize_t DW_BLOCK_BYTES = 1 << 18


def conv2d_backward_weight_direct(
    const floating[:, :, :, ::1] dy,  # IN (N, F, Ho, Wo)
    const floating[:, :, :, ::1] x,  # IN (N, C, H, W)
    int ph, int pw,
    floating[:, :, :, ::1] out,  # OUT (F, C, kh, kw), stride 1
):
    """Fill ``out`` with the stride-1 weight gradient tap by tap (no im2col, no BLAS).

    ``dW[f, c, i, j] = sum_n <dy_n[f], xp_n[c, i:i+Ho, j:j+Wo]>``: per-thread partial sums
    in vector lanes, reduced at the end. For tiny ``C kh kw``; blocks of up to
    ``DW_SAMPLES`` samples in parallel, padded together so that the kernel keeps its
    accumulators over a whole block (on 8x8 images one sample is only 8 rows).
    """
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], Wd = x.shape[3]
    cdef int F = out.shape[0], kh = out.shape[2], kw = out.shape[3]
    cdef int Ho = dy.shape[2], Wo = dy.shape[3]
    cdef int Hp = H + 2 * ph, Wp = Wd + 2 * pw, K = C * kh * kw
    cdef int K4 = (K + 3) // 4 * 4  # taps four at a time
    cdef Py_ssize_t ps = <Py_ssize_t>C * Hp * Wp
    cdef int per = max(1, min(DW_SAMPLES, DW_BLOCK_BYTES // max(ps * sizeof(floating), 1)))
    cdef int n_blocks = (N + per - 1) // per if N > 0 else 0
    cdef int blk, n0, m, g, f, k, lane, t, tid, nt = n_threads(n_blocks)
    cdef Py_ssize_t xs = <Py_ssize_t>C * H * Wd, ys = <Py_ssize_t>F * Ho * Wo
    cdef floating total
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] xpad = np.zeros((nt, per * ps if ps > 0 else 1), dtype=dtype)
    cdef floating[:, ::1] part = np.zeros((nt, <Py_ssize_t>F * K4 * 8 + 1), dtype=dtype)
    off_array = np.zeros(K4, dtype=np.intc)  # taps past K read offset 0 and are dropped
    off_array[:K] = (np.arange(C)[:, None, None] * (Hp * Wp) + np.arange(kh)[None, :, None] * Wp
                     + np.arange(kw)[None, None, :]).reshape(K)  # (K,)
    cdef int[::1] off = off_array
    cdef floating* dw = &out[0, 0, 0, 0]
    if F == 0 or K == 0:
        return
    if N > 0 and ys > 0:
        with nogil, parallel(num_threads=nt):
            tid = threadid()
            for blk in prange(n_blocks, schedule="static"):
                n0 = blk * per
                m = min(per, N - n0)
                for g in range(m):
                    _pad_one(&x[0, 0, 0, 0] + (n0 + g) * xs, C, H, Wd, ph, pw,
                             &xpad[tid, 0] + g * ps)
                if floating is float:
                    refnet_direct_dw_f(&xpad[tid, 0], &off[0], K4, &dy[0, 0, 0, 0] + n0 * ys,
                                       F, Ho, Wo, Wp, m, ps, ys, &part[tid, 0])
                else:
                    refnet_direct_dw_d(&xpad[tid, 0], &off[0], K4, &dy[0, 0, 0, 0] + n0 * ys,
                                       F, Ho, Wo, Wp, m, ps, ys, &part[tid, 0])
    with nogil:
        for f in range(F):
            for k in range(K):
                total = 0
                for t in range(nt):
                    for lane in range(8):
                        total = total + part[t, (f * K4 + k) * 8 + lane]
                dw[f * K + k] = total


# --------------------------------------------------------------------------- Winograd
#
# F(2x2, 3x3) (Lavin & Gray 2016): a 2x2 output tile Y of a 3x3 filter g over a 4x4 input
# tile d is Y = A^T [(G g G^T) . (B^T d B)] A, with
#   B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
#   G   = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]]
#   A^T = [[1, 1, 1, 0], [0, 1, -1, -1]].
# Summing over channels turns the 16 elementwise products into 16 GEMMs
#   M[e] (F, T) = U[e] (F, C) @ V[e] (C, T),   e = 4 xi + nu,
# over a block of T tiles. See refnet/kernels/reference/winograd.py for the readable twin.


cdef void _winograd_filter(
    const floating* g,  # IN (F, C, 3, 3); flip=True reads g[c, f, 2-i, 2-j] of (C, F, 3, 3)
    int F, int C, bint flip,
    floating* U,  # OUT (16, F, C)
) noexcept nogil:
    cdef int f, c, i, e
    cdef floating k[9]
    cdef floating t[12]  # G g: (4, 3)
    cdef Py_ssize_t FC = <Py_ssize_t>F * C
    cdef const floating* src
    for f in range(F):
        for c in range(C):
            if flip:
                src = g + (<Py_ssize_t>c * F + f) * 9
                for i in range(9):
                    k[i] = src[8 - i]
            else:
                src = g + (<Py_ssize_t>f * C + c) * 9
                for i in range(9):
                    k[i] = src[i]
            for i in range(3):  # columns of G g
                t[0 * 3 + i] = k[0 * 3 + i]
                t[1 * 3 + i] = (k[0 * 3 + i] + k[1 * 3 + i] + k[2 * 3 + i]) * <floating>0.5
                t[2 * 3 + i] = (k[0 * 3 + i] - k[1 * 3 + i] + k[2 * 3 + i]) * <floating>0.5
                t[3 * 3 + i] = k[2 * 3 + i]
            for i in range(4):  # rows of (G g) G^T
                e = i * 4
                U[(e + 0) * FC + f * C + c] = t[i * 3 + 0]
                U[(e + 1) * FC + f * C + c] = (
                    (t[i * 3 + 0] + t[i * 3 + 1] + t[i * 3 + 2]) * <floating>0.5)
                U[(e + 2) * FC + f * C + c] = (
                    (t[i * 3 + 0] - t[i * 3 + 1] + t[i * 3 + 2]) * <floating>0.5)
                U[(e + 3) * FC + f * C + c] = t[i * 3 + 2]


cdef void _winograd_output(
    const floating* M,  # IN (16, F, T)
    const floating* b,  # IN (F,) or NULL
    int F, int Ho, int Wo, int th, int tw, Py_ssize_t t0, int T,
    floating* rows,  # scratch (8, 2 tw + 2)
    floating* y,  # OUT (N, F, Ho, Wo): the 2x2 tiles t0 .. t0+T-1
) noexcept nogil:
    """``Y = A^T M A`` for each tile, one output channel and one tile row at a time."""
    cdef int f, t, i, L, n, ty, tx, ow, w_end
    cdef Py_ssize_t FT = <Py_ssize_t>F * T
    cdef int Wp = 2 * tw + 2
    cdef floating bias, s0, s1, s2, s3, r0, r1, r2, r3
    cdef const floating* m
    cdef floating* y0 = rows
    cdef floating* y1 = rows + Wp
    cdef floating* yf
    for f in range(F):
        bias = b[f] if b != NULL else 0
        _tile_at(t0, th, tw, &n, &ty, &tx)
        t = 0
        while t < T:
            L = tw - tx if tw - tx < T - t else T - t
            m = M + <Py_ssize_t>f * T + t
            for i in range(L):
                # A^T m: rows of m are e = 0..3, 4..7, 8..11, 12..15
                s0 = m[0 * FT + i] + m[4 * FT + i] + m[8 * FT + i]
                s1 = m[1 * FT + i] + m[5 * FT + i] + m[9 * FT + i]
                s2 = m[2 * FT + i] + m[6 * FT + i] + m[10 * FT + i]
                s3 = m[3 * FT + i] + m[7 * FT + i] + m[11 * FT + i]
                r0 = m[4 * FT + i] - m[8 * FT + i] - m[12 * FT + i]
                r1 = m[5 * FT + i] - m[9 * FT + i] - m[13 * FT + i]
                r2 = m[6 * FT + i] - m[10 * FT + i] - m[14 * FT + i]
                r3 = m[7 * FT + i] - m[11 * FT + i] - m[15 * FT + i]
                y0[2 * i] = s0 + s1 + s2 + bias  # (A^T m) A
                y0[2 * i + 1] = s1 - s2 - s3 + bias
                y1[2 * i] = r0 + r1 + r2 + bias
                y1[2 * i + 1] = r1 - r2 - r3 + bias
            ow = 2 * tx
            w_end = 2 * (tx + L) if 2 * (tx + L) < Wo else Wo
            yf = y + ((<Py_ssize_t>n * F + f) * Ho + 2 * ty) * Wo
            memcpy(yf + ow, y0, (w_end - ow) * sizeof(floating))
            if 2 * ty + 1 < Ho:
                memcpy(yf + Wo + ow, y1, (w_end - ow) * sizeof(floating))
            t = t + L
            _next_tiles(L, th, tw, &n, &ty, &tx)


cdef void _winograd_conv(
    const floating* x,  # IN (N, C, H, W)
    const floating* U,  # IN (16, F, C) transformed filters
    const floating* b,  # IN (F,) or NULL
    int N, int C, int H, int W, int F, int ph, int pw, int Ho, int Wo,
    floating* V,  # scratch (nt, 16 * C * block)
    floating* M,  # scratch (nt, 16 * F * block)
    floating* R,  # scratch (nt, 8 * (2 tw + 2))
    int block, int nt,
    floating* y,  # OUT (N, F, Ho, Wo)
) noexcept nogil:
    cdef int th = (Ho + 1) // 2, tw = (Wo + 1) // 2
    cdef Py_ssize_t n_tiles = <Py_ssize_t>N * th * tw
    cdef Py_ssize_t n_blocks = (n_tiles + block - 1) // block
    cdef Py_ssize_t k, t0, FC = <Py_ssize_t>F * C
    cdef Py_ssize_t vs = 16 * <Py_ssize_t>C * block, ms = 16 * <Py_ssize_t>F * block
    cdef Py_ssize_t rs = 8 * (2 * <Py_ssize_t>tw + 2)
    cdef int e, T, tid
    cdef floating* Vt
    cdef floating* Mt
    with parallel(num_threads=nt):
        tid = threadid()
        for k in prange(n_blocks, schedule="static"):
            t0 = k * block
            T = <int>(n_tiles - t0 if n_tiles - t0 < block else block)
            Vt = V + tid * vs
            Mt = M + tid * ms
            _winograd_input(x, C, H, W, ph, pw, th, tw, t0, T, R + tid * rs, Vt)
            for e in range(16):
                # M[e] (F, T) = U[e] (F, C) @ V[e] (C, T)
                _gemm(False, False, F, T, C, <floating>1, U + e * FC, C,
                      Vt + e * <Py_ssize_t>C * T, T, <floating>0, Mt + e * <Py_ssize_t>F * T, T)
            _winograd_output(Mt, b, F, Ho, Wo, th, tw, t0, T, R + tid * rs, y)


def _winograd_block(int C, int F, int itemsize):
    """Tiles per work item: scratch of both transforms about 1 MiB, between 32 and 512."""
    cdef int blk = (1 << 20) // (16 * (C + F) * itemsize + 1)
    blk = max(32, min(WINOGRAD_BLOCK * 2, blk))
    return blk


cdef _winograd_run(
    const floating[:, :, :, ::1] x, const floating[:, ::1] U, const floating* b,
    int F, int ph, int pw, floating[:, :, :, ::1] out,
):
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], Wd = x.shape[3]
    cdef int Ho = out.shape[2], Wo = out.shape[3]
    cdef Py_ssize_t n_tiles = <Py_ssize_t>N * ((Ho + 1) // 2) * ((Wo + 1) // 2)
    cdef int block = _winograd_block(C, F, sizeof(floating))
    cdef int nt = _n_threads((n_tiles + block - 1) // block, 4.0 * n_tiles * C * F * 9)
    dtype = np.float32 if floating is float else np.float64
    cdef floating[::1] V = np.empty(nt * 16 * max(C, 1) * block, dtype=dtype)
    cdef floating[::1] M = np.empty(nt * 16 * max(F, 1) * block, dtype=dtype)
    cdef floating[::1] R = np.empty(nt * 8 * (2 * ((Wo + 1) // 2) + 2), dtype=dtype)
    if out.size == 0:
        return
    if C == 0:
        for f in range(F):
            out[:, f, :, :] = b[f] if b != NULL else 0
        return
    with nogil:
        _winograd_conv(&x[0, 0, 0, 0], &U[0, 0], b, N, C, H, Wd, F, ph, pw, Ho, Wo,
                       &V[0], &M[0], &R[0], block, nt, &out[0, 0, 0, 0])


def conv2d_forward_winograd(
    const floating[:, :, :, ::1] x,  # IN (N, C, H, W)
    const floating[:, :, :, ::1] W,  # IN (F, C, 3, 3)
    const floating[::1] b,  # IN (F,)
    int ph, int pw,
    floating[:, :, :, ::1] out,  # OUT (N, F, H + 2ph - 2, W + 2pw - 2)
):
    """Stride-1 3x3 :func:`conv2d_forward` by Winograd F(2x2, 3x3)."""
    cdef int F = W.shape[0], C = W.shape[1]
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] U = np.empty((16, max(F * C, 1)), dtype=dtype)
    if F * C > 0:
        with nogil:
            _winograd_filter(&W[0, 0, 0, 0], F, C, False, &U[0, 0])
    _winograd_run(x, U, &b[0] if F > 0 else NULL, F, ph, pw, out)


def conv2d_backward_input_winograd(
    const floating[:, :, :, ::1] dy,  # IN (N, F, Ho, Wo)
    const floating[:, :, :, ::1] W,  # IN (F, C, 3, 3)
    int ph, int pw,
    floating[:, :, :, ::1] out,  # OUT (N, C, Ho - 2ph + 2, Wo - 2pw + 2)
):
    """Stride-1 3x3 :func:`conv2d_backward_input` by Winograd F(2x2, 3x3).

    The adjoint of a stride-1 3x3 conv with padding ``(ph, pw)`` is the conv of ``dy`` with
    the flipped, transposed kernel ``W[f, c, 2-i, 2-j]`` (as a ``(C, F, 3, 3)`` filter) and
    padding ``(2 - ph, 2 - pw)``.
    """
    cdef int F = W.shape[0], C = W.shape[1]
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] U = np.empty((16, max(F * C, 1)), dtype=dtype)
    if F * C > 0:
        with nogil:
            _winograd_filter(&W[0, 0, 0, 0], C, F, True, &U[0, 0])
    _winograd_run(dy, U, NULL, C, 2 - ph, 2 - pw, out)


# Weight gradient by F(3x3, 2x2): over one 4x4 input tile d (the same tiles as above) and
# the 2x2 tile of dy it produced, dW (3x3) = Aw^T [(Gw dy Gw^T) . (B^T d B)] Aw with
#   Gw = [[1, 0], [1/2, 1/2], [1/2, -1/2], [0, -1]],
#   Aw^T = [[1, 1, 1, 0], [0, 1, -1, 0], [0, 1, 1, 1]],
# and B^T as above. Summed over tiles, M[e] (F, C) = sum_T Udy[e] (F, T) @ V[e]^T (T, C).


cdef void _winograd_dy(
    const floating* dy,  # IN (N, F, Ho, Wo)
    int F, int Ho, int Wo, int th, int tw, Py_ssize_t t0, int T,
    floating* D,  # OUT (16, F, T): Gw g Gw^T of the 2x2 dy tiles t0 .. t0+T-1
) noexcept nogil:
    cdef int f, t, r, n, ty, tx, oh, ow
    cdef Py_ssize_t FT = <Py_ssize_t>F * T
    cdef floating k[4]
    cdef floating u[8]  # Gw g: (4, 2)
    cdef const floating* src
    cdef floating* Df
    for f in range(F):  # channel outer, tiles inner
        _tile_at(t0, th, tw, &n, &ty, &tx)
        Df = D + <Py_ssize_t>f * T
        for t in range(T):
            oh = Ho - 2 * ty
            ow = Wo - 2 * tx
            src = dy + ((<Py_ssize_t>n * F + f) * Ho + 2 * ty) * Wo + 2 * tx
            k[0] = src[0]
            k[1] = src[1] if ow > 1 else 0
            k[2] = src[Wo] if oh > 1 else 0
            k[3] = src[Wo + 1] if oh > 1 and ow > 1 else 0
            for r in range(2):  # columns of Gw g
                u[0 * 2 + r] = k[0 * 2 + r]
                u[1 * 2 + r] = (k[0 * 2 + r] + k[1 * 2 + r]) * <floating>0.5
                u[2 * 2 + r] = (k[0 * 2 + r] - k[1 * 2 + r]) * <floating>0.5
                u[3 * 2 + r] = -k[1 * 2 + r]
            for r in range(4):  # rows of (Gw g) Gw^T
                Df[(r * 4 + 0) * FT + t] = u[r * 2]
                Df[(r * 4 + 1) * FT + t] = (u[r * 2] + u[r * 2 + 1]) * <floating>0.5
                Df[(r * 4 + 2) * FT + t] = (u[r * 2] - u[r * 2 + 1]) * <floating>0.5
                Df[(r * 4 + 3) * FT + t] = -u[r * 2 + 1]
            _next_tiles(1, th, tw, &n, &ty, &tx)


def conv2d_backward_weight_winograd(
    const floating[:, :, :, ::1] dy,  # IN (N, F, Ho, Wo)
    const floating[:, :, :, ::1] x,  # IN (N, C, H, W)
    int ph, int pw,
    floating[:, :, :, ::1] out,  # OUT (F, C, 3, 3)
):
    """Stride-1 3x3 :func:`conv2d_backward_weight` by Winograd F(3x3, 2x2)."""
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], Wd = x.shape[3]
    cdef int F = dy.shape[1], Ho = dy.shape[2], Wo = dy.shape[3]
    cdef int th = (Ho + 1) // 2, tw = (Wo + 1) // 2
    cdef Py_ssize_t n_tiles = <Py_ssize_t>N * th * tw
    cdef int block = _winograd_block(C, F, sizeof(floating))
    cdef Py_ssize_t n_blocks = (n_tiles + block - 1) // block
    cdef int nt = _n_threads(n_blocks, 4.0 * n_tiles * C * F * 9)
    cdef Py_ssize_t k, t0, FC = <Py_ssize_t>F * C
    cdef Py_ssize_t vs = 16 * <Py_ssize_t>C * block, ds = 16 * <Py_ssize_t>F * block
    cdef int e, T, tid, f, c, i, j, a
    dtype = np.float32 if floating is float else np.float64
    cdef floating[::1] V = np.empty(nt * vs, dtype=dtype)
    cdef floating[::1] D = np.empty(nt * ds, dtype=dtype)
    cdef floating[:, ::1] Macc = np.zeros((nt, 16 * FC), dtype=dtype)
    cdef Py_ssize_t rs = 8 * (2 * <Py_ssize_t>tw + 2)
    cdef floating[::1] R = np.empty(nt * rs, dtype=dtype)
    cdef floating* Vt
    cdef floating* Dt
    cdef floating m[16]
    cdef floating v[12]  # Aw^T m: (3, 4)
    cdef floating* dw
    if FC == 0:
        return
    if n_tiles > 0:
        with nogil, parallel(num_threads=nt):
            tid = threadid()
            for k in prange(n_blocks, schedule="static"):
                t0 = k * block
                T = <int>(n_tiles - t0 if n_tiles - t0 < block else block)
                Vt = &V[0] + tid * vs
                Dt = &D[0] + tid * ds
                _winograd_input(&x[0, 0, 0, 0], C, H, Wd, ph, pw, th, tw, t0, T,
                                &R[0] + tid * rs, Vt)
                _winograd_dy(&dy[0, 0, 0, 0], F, Ho, Wo, th, tw, t0, T, Dt)
                for e in range(16):
                    # M[e] (F, C) += Udy[e] (F, T) @ V[e]^T (T, C)
                    _gemm(False, True, F, C, T, <floating>1, Dt + e * <Py_ssize_t>F * T, T,
                          Vt + e * <Py_ssize_t>C * T, T, <floating>1, &Macc[tid, e * FC], C)
    with nogil:
        for tid in range(1, nt):
            for k in range(16 * FC):
                Macc[0, k] += Macc[tid, k]
        for f in range(F):
            for c in range(C):
                for e in range(16):
                    m[e] = Macc[0, e * FC + f * C + c]
                for a in range(4):  # v = Aw^T m (combine rows)
                    v[0 * 4 + a] = m[0 * 4 + a] + m[1 * 4 + a] + m[2 * 4 + a]
                    v[1 * 4 + a] = m[1 * 4 + a] - m[2 * 4 + a]
                    v[2 * 4 + a] = m[1 * 4 + a] + m[2 * 4 + a] + m[3 * 4 + a]
                dw = &out[f, c, 0, 0]
                for i in range(3):  # (Aw^T m) Aw (combine columns)
                    j = i * 4
                    dw[i * 3 + 0] = v[j + 0] + v[j + 1] + v[j + 2]
                    dw[i * 3 + 1] = v[j + 1] - v[j + 2]
                    dw[i * 3 + 2] = v[j + 1] + v[j + 2] + v[j + 3]
