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

import numpy as np

from cython.parallel cimport parallel, prange, threadid
from libc.string cimport memcpy, memset

from cython cimport floating

from blas cimport _gemm
from geometry cimport clip_range
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
    cdef int P = Ho * Wo, K = C * kh * kw
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
    cdef int P = Ho * Wo, K = C * kh * kw
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
    cdef int P = Ho * Wo, K = C * kh * kw
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
# For tiny patches (K = C kh kw of a few taps, e.g. one input channel) the im2col GEMMs are
# too thin for BLAS. The direct kernels work on a zero-padded copy xp (C, Hp, Wp) of one
# sample: at stride 1, y[f, oh, ow] = b[f] + sum_{c,i,j} W[f,c,i,j] xp[c, oh+i, ow+j], so a
# vector of outputs along a row is a sum of K shifted (contiguous, unaligned) vector loads
# of xp, each scaled by one weight; the forward keeps 4 channels x 2 vectors in registers
# over all K taps. The weight gradient is the same sum read the other way (one inner
# product per tap). The C below (GCC vector extensions) is compiled twice, for AVX2+FMA
# (__attribute__((target))) and for the baseline target, and refnet_use_avx2() picks one
# at run time with __builtin_cpu_supports; elsewhere (no x86-64 GCC) only the baseline.

cdef extern from *:
    """
    #if defined(__GNUC__) && defined(__x86_64__)
    #define REFNET_HAVE_AVX2 1
    #define REFNET_AVX2 __attribute__((target("avx2,fma")))
    #else
    #define REFNET_HAVE_AVX2 0
    #define REFNET_AVX2
    #endif
    /* 32-byte vectors for the AVX2+FMA build, 16-byte (SSE2 on x86-64) for the baseline. */
    typedef float refnet_vf8 __attribute__((vector_size(32)));
    typedef double refnet_vd4 __attribute__((vector_size(32)));
    typedef float refnet_vf4 __attribute__((vector_size(16)));
    typedef double refnet_vd2 __attribute__((vector_size(16)));
    /* Store the vectors of channel b at outputs (oa, wa) and (ob, wb) if b < nf. */
    #define REFNET_STORE(b, s, t)                                                      \
        if (b < nf) {                                                                  \
            __builtin_memcpy(y + (long)b * Ho * Wo + oa * Wo + wa, &s, sizeof(s));     \
            __builtin_memcpy(y + (long)b * Ho * Wo + ob * Wo + wb, &t, sizeof(t));     \
        }
    /* acc[b, q] = bias[b] + sum_k w[k, b] xp[off[k] + q] for 4 output channels b and
       q < Lr (a multiple of two vectors; vectors are loaded unaligned), then
       y[b, oh, ow] = acc[b, oh Wp + ow] for the first nf channels. */
    #define REFNET_DIRECT_PLANE(T, V, ATTR, NAME)                                      \
    ATTR static void NAME(                                                             \
        const T* restrict xp, const int* restrict off, int K, const T* restrict w,     \
        const T* restrict bias, int Lr, T* restrict acc,                               \
        int nf, int Ho, int Wo, int Wp, T* restrict y)                                 \
    {                                                                                  \
        const int n = (int)(sizeof(V) / sizeof(T));                                    \
        int k, q, f, oh, ow;                                                           \
        int c, cpr = (Wo + n - 1) / n, nc = Ho * cpr;                                  \
        if (Wo >= n) { /* vectors of n outputs, two at a time, stored straight to y */ \
            for (c = 0; c < nc; c += 2) {                                              \
                int c1 = c + 1 < nc ? c + 1 : c;                                       \
                int oa = c / cpr, wa = (c % cpr) * n, ob = c1 / cpr, wb = (c1 % cpr) * n; \
                V s0, s1, s2, s3, t0, t1, t2, t3, u, v;                                \
                if (wa > Wo - n) wa = Wo - n;  /* last vector of a row overlaps */     \
                if (wb > Wo - n) wb = Wo - n;                                          \
                s0 = t0 = (V){0} + bias[0]; s1 = t1 = (V){0} + bias[1];                \
                s2 = t2 = (V){0} + bias[2]; s3 = t3 = (V){0} + bias[3];                \
                for (k = 0; k < K; k++) {                                              \
                    __builtin_memcpy(&u, xp + off[k] + oa * Wp + wa, sizeof(V));       \
                    __builtin_memcpy(&v, xp + off[k] + ob * Wp + wb, sizeof(V));       \
                    s0 += w[4 * k + 0] * u; t0 += w[4 * k + 0] * v;                    \
                    s1 += w[4 * k + 1] * u; t1 += w[4 * k + 1] * v;                    \
                    s2 += w[4 * k + 2] * u; t2 += w[4 * k + 2] * v;                    \
                    s3 += w[4 * k + 3] * u; t3 += w[4 * k + 3] * v;                    \
                }                                                                      \
                REFNET_STORE(0, s0, t0) REFNET_STORE(1, s1, t1)                        \
                REFNET_STORE(2, s2, t2) REFNET_STORE(3, s3, t3)                        \
            }                                                                          \
            return;                                                                    \
        }                                                                              \
        for (q = 0; q < Lr; q += 2 * n) {                                              \
            V s0, s1, s2, s3, t0, t1, t2, t3, u, v;                                    \
            s0 = t0 = (V){0} + bias[0]; s1 = t1 = (V){0} + bias[1];                    \
            s2 = t2 = (V){0} + bias[2]; s3 = t3 = (V){0} + bias[3];                    \
            for (k = 0; k < K; k++) {                                                  \
                __builtin_memcpy(&u, xp + off[k] + q, sizeof(V));                      \
                __builtin_memcpy(&v, xp + off[k] + q + n, sizeof(V));                  \
                s0 += w[4 * k + 0] * u; t0 += w[4 * k + 0] * v;                        \
                s1 += w[4 * k + 1] * u; t1 += w[4 * k + 1] * v;                        \
                s2 += w[4 * k + 2] * u; t2 += w[4 * k + 2] * v;                        \
                s3 += w[4 * k + 3] * u; t3 += w[4 * k + 3] * v;                        \
            }                                                                          \
            __builtin_memcpy(acc + q, &s0, sizeof(V));                                 \
            __builtin_memcpy(acc + q + n, &t0, sizeof(V));                             \
            __builtin_memcpy(acc + Lr + q, &s1, sizeof(V));                            \
            __builtin_memcpy(acc + Lr + q + n, &t1, sizeof(V));                        \
            __builtin_memcpy(acc + 2 * Lr + q, &s2, sizeof(V));                        \
            __builtin_memcpy(acc + 2 * Lr + q + n, &t2, sizeof(V));                    \
            __builtin_memcpy(acc + 3 * Lr + q, &s3, sizeof(V));                        \
            __builtin_memcpy(acc + 3 * Lr + q + n, &t3, sizeof(V));                    \
        }                                                                              \
        for (f = 0; f < nf; f++)                                                       \
            for (oh = 0; oh < Ho; oh++)                                                \
                for (ow = 0; ow < Wo; ow++)                                            \
                    y[((long)f * Ho + oh) * Wo + ow] = acc[f * Lr + oh * Wp + ow];     \
    }
    REFNET_DIRECT_PLANE(float, refnet_vf8, REFNET_AVX2, refnet_direct_plane_f_avx2)
    REFNET_DIRECT_PLANE(double, refnet_vd4, REFNET_AVX2, refnet_direct_plane_d_avx2)
    REFNET_DIRECT_PLANE(float, refnet_vf4, , refnet_direct_plane_f_base)
    REFNET_DIRECT_PLANE(double, refnet_vd2, , refnet_direct_plane_d_base)
    /* part[f, k, :] += sum over outputs (oh, ow) of dy[f, oh, ow] xp[off[k] + oh Wp + ow],
       in lanes 0..n-1 of 8 slots (summed by the caller); taps four at a time (K4 = K rounded
       up to 4, off padded with 0). A row's last vector overlaps the one before it; the
       lanes counted twice get a zero mask. Rows shorter than a vector go lane 0 only. */
    #define REFNET_DIRECT_DW(T, V, ATTR, NAME)                                         \
    ATTR static void NAME(                                                             \
        const T* restrict xp, const int* restrict off, int K4, const T* restrict dy,   \
        int F, int Ho, int Wo, int Wp, T* restrict part)                               \
    {                                                                                  \
        const int n = (int)(sizeof(V) / sizeof(T));                                    \
        int f, k, oh, ow, l, c, cpr = (Wo + n - 1) / n;                                \
        if (Wo < n) {                                                                  \
            for (f = 0; f < F; f++)                                                    \
                for (k = 0; k < K4; k++) {                                             \
                    T s = 0;                                                           \
                    for (oh = 0; oh < Ho; oh++)                                        \
                        for (ow = 0; ow < Wo; ow++)                                    \
                            s += dy[((long)f * Ho + oh) * Wo + ow]                     \
                                 * xp[off[k] + oh * Wp + ow];                          \
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
                    for (oh = 0; oh < Ho; oh++) {                                      \
                        const T* x0 = xp + oh * Wp + wa;                               \
                        __builtin_memcpy(&d, dy + ((long)f * Ho + oh) * Wo + wa, sizeof(V)); \
                        __builtin_memcpy(&e, dy + ((long)g * Ho + oh) * Wo + wa, sizeof(V)); \
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
    /* The AVX2+FMA build when the CPU has both (checked once), else the baseline. */
    static int refnet_use_avx2(void) {
    #if REFNET_HAVE_AVX2
        static int use = -1;
        if (use < 0) {
            __builtin_cpu_init();
            use = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        }
        return use;
    #else
        return 0;
    #endif
    }
    #define REFNET_DISPATCH(T, NAME)                                                   \
    static void NAME(const T* xp, const int* off, int K, const T* w, const T* bias,    \
                     int Lr, T* acc, int nf, int Ho, int Wo, int Wp, T* y) {           \
        if (refnet_use_avx2())                                                         \
            NAME##_avx2(xp, off, K, w, bias, Lr, acc, nf, Ho, Wo, Wp, y);              \
        else                                                                           \
            NAME##_base(xp, off, K, w, bias, Lr, acc, nf, Ho, Wo, Wp, y);              \
    }
    REFNET_DISPATCH(float, refnet_direct_plane_f)
    REFNET_DISPATCH(double, refnet_direct_plane_d)
    #define REFNET_DISPATCH_DW(T, NAME)                                                \
    static void NAME(const T* xp, const int* off, int K4, const T* dy,                 \
                     int F, int Ho, int Wo, int Wp, T* part) {                         \
        if (refnet_use_avx2())                                                         \
            NAME##_avx2(xp, off, K4, dy, F, Ho, Wo, Wp, part);                         \
        else                                                                           \
            NAME##_base(xp, off, K4, dy, F, Ho, Wo, Wp, part);                         \
    }
    REFNET_DISPATCH_DW(float, refnet_direct_dw_f)
    REFNET_DISPATCH_DW(double, refnet_direct_dw_d)
    """
    void refnet_direct_plane_f(
        const float* xp, const int* off, int K, const float* w, const float* bias,
        int Lr, float* acc, int nf, int Ho, int Wo, int Wp, float* y) noexcept nogil
    void refnet_direct_plane_d(
        const double* xp, const int* off, int K, const double* w, const double* bias,
        int Lr, double* acc, int nf, int Ho, int Wo, int Wp, double* y) noexcept nogil
    void refnet_direct_dw_f(
        const float* xp, const int* off, int K4, const float* dy,
        int F, int Ho, int Wo, int Wp, float* part) noexcept nogil
    void refnet_direct_dw_d(
        const double* xp, const int* off, int K4, const double* dy,
        int F, int Ho, int Wo, int Wp, double* part) noexcept nogil


cdef void _pad_one(
    const floating* x,  # IN (C, H, W)
    int C, int H, int W, int ph, int pw,
    floating* xp,  # OUT (C, H + 2 ph, W + 2 pw), zero border
) noexcept nogil:
    cdef int c, h, Hp = H + 2 * ph, Wp = W + 2 * pw
    memset(xp, 0, <Py_ssize_t>C * Hp * Wp * sizeof(floating))
    for c in range(C):
        for h in range(H):
            memcpy(xp + (<Py_ssize_t>c * Hp + h + ph) * Wp + pw,
                   x + (<Py_ssize_t>c * H + h) * W, W * sizeof(floating))


def conv2d_forward_direct(
    const floating[:, :, :, ::1] x,  # IN (N, C, H, W)
    const floating[:, :, :, ::1] W,  # IN (F, C, kh, kw)
    const floating[::1] b,  # IN (F,)
    int ph, int pw,
    floating[:, :, :, ::1] out,  # OUT (N, F, Ho, Wo), stride 1
):
    """Fill ``out`` with the stride-1 cross-correlation ``W * x + b`` tap by tap (no BLAS).

    For tiny ``C kh kw`` (see :func:`refnet.kernels._use_direct`); samples in parallel,
    output channels four at a time.
    """
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], Wd = x.shape[3]
    cdef int F = W.shape[0], kh = W.shape[2], kw = W.shape[3]
    cdef int Ho = out.shape[2], Wo = out.shape[3]
    cdef int Hp = H + 2 * ph, Wp = Wd + 2 * pw, P = Ho * Wo, K = C * kh * kw
    cdef int L = (Ho - 1) * Wp + Wo
    cdef int Lr = (L + 15) // 16 * 16  # whole pairs of vectors (8 floats, 4 doubles)
    cdef int FB = (F + 3) // 4  # blocks of four output channels
    cdef int n, fb, nf, tid, nt = n_threads(N)
    cdef Py_ssize_t xs = <Py_ssize_t>C * H * Wd, ys = <Py_ssize_t>F * P
    cdef Py_ssize_t ps = <Py_ssize_t>C * Hp * Wp
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] xpad = np.zeros((nt, ps + Lr), dtype=dtype)  # tail stays zero
    cdef floating[:, ::1] acc = np.empty((nt, 4 * Lr), dtype=dtype)
    # wb[fb, k, t] = W_2[4 fb + t, k] and bb[fb, t] = b[4 fb + t], zero past F
    wb_array = np.zeros((FB, K, 4), dtype=dtype)
    bb_array = np.zeros((FB, 4), dtype=dtype)
    w2 = np.asarray(W).reshape(F, K)  # (F, K)
    padded = np.zeros((FB * 4, K), dtype=dtype)  # (4 FB, K)
    padded[:F] = w2
    wb_array[:] = padded.reshape(FB, 4, K).transpose(0, 2, 1)  # (FB, K, 4)
    bb_array.reshape(FB * 4)[:F] = np.asarray(b)
    off_array = (np.arange(C)[:, None, None] * (Hp * Wp) + np.arange(kh)[None, :, None] * Wp
                 + np.arange(kw)[None, None, :]).astype(np.intc).reshape(K)  # (K,)
    cdef floating[:, :, ::1] wb = wb_array
    cdef floating[:, ::1] bb = bb_array
    cdef int[::1] off = off_array
    cdef floating* y
    if N == 0 or ys == 0:
        return
    with nogil, parallel(num_threads=nt):
        tid = threadid()
        for n in prange(N, schedule="static"):
            _pad_one(&x[0, 0, 0, 0] + n * xs, C, H, Wd, ph, pw, &xpad[tid, 0])
            y = &out[0, 0, 0, 0] + n * ys
            for fb in range(FB):
                nf = F - 4 * fb if F - 4 * fb < 4 else 4
                if floating is float:
                    refnet_direct_plane_f(&xpad[tid, 0], &off[0], K, &wb[fb, 0, 0],
                                          &bb[fb, 0], Lr, &acc[tid, 0],
                                          nf, Ho, Wo, Wp, y + 4 * fb * P)
                else:
                    refnet_direct_plane_d(&xpad[tid, 0], &off[0], K, &wb[fb, 0, 0],
                                          &bb[fb, 0], Lr, &acc[tid, 0],
                                          nf, Ho, Wo, Wp, y + 4 * fb * P)


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


def conv2d_backward_weight_direct(
    const floating[:, :, :, ::1] dy,  # IN (N, F, Ho, Wo)
    const floating[:, :, :, ::1] x,  # IN (N, C, H, W)
    int ph, int pw,
    floating[:, :, :, ::1] out,  # OUT (F, C, kh, kw), stride 1
):
    """Fill ``out`` with the stride-1 weight gradient tap by tap (no im2col, no BLAS).

    ``dW[f, c, i, j] = sum_n <dy_n[f], xp_n[c, i:i+Ho, j:j+Wo]>``: per-thread partial sums
    in vector lanes, reduced at the end. For tiny ``C kh kw``; samples in parallel.
    """
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], Wd = x.shape[3]
    cdef int F = out.shape[0], kh = out.shape[2], kw = out.shape[3]
    cdef int Ho = dy.shape[2], Wo = dy.shape[3]
    cdef int Hp = H + 2 * ph, Wp = Wd + 2 * pw, K = C * kh * kw
    cdef int K4 = (K + 3) // 4 * 4  # taps four at a time
    cdef int n, f, k, lane, t, tid, nt = n_threads(N)
    cdef Py_ssize_t xs = <Py_ssize_t>C * H * Wd, ys = <Py_ssize_t>F * Ho * Wo
    cdef Py_ssize_t ps = <Py_ssize_t>C * Hp * Wp
    cdef floating total
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] xpad = np.zeros((nt, ps if ps > 0 else 1), dtype=dtype)
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
            for n in prange(N, schedule="static"):
                _pad_one(&x[0, 0, 0, 0] + n * xs, C, H, Wd, ph, pw, &xpad[tid, 0])
                if floating is float:
                    refnet_direct_dw_f(&xpad[tid, 0], &off[0], K4, &dy[0, 0, 0, 0] + n * ys,
                                       F, Ho, Wo, Wp, &part[tid, 0])
                else:
                    refnet_direct_dw_d(&xpad[tid, 0], &off[0], K4, &dy[0, 0, 0, 0] + n * ys,
                                       F, Ho, Wo, Wp, &part[tid, 0])
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
