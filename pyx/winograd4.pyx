# cython: language_level=3
r"""Compiled Winograd F(4x4, 3x3) kernels: stride-1 3x3 forward pass and input gradient.

Both functions have exactly the signature of their NumPy twins in
``refnet/kernels/reference/winograd4.py`` (and of the F(2x2, 3x3) kernels in ``conv.pyx``):
they take validated, C-contiguous arrays of one floating dtype (float32 or float64) and
overwrite every element of the preallocated ``out``. Kernels never validate; the wrappers
in :mod:`refnet.kernels` do.

Parallelism: one OpenMP ``prange`` (explicit ``num_threads``) over blocks of output tiles.
Each thread owns its scratch buffers and calls BLAS (``scipy.linalg.cython_blas``) on them;
BLAS must therefore run single-threaded during these calls (the wrappers arrange it).
"""

import numpy as np

from cython.parallel cimport parallel, prange, threadid
from libc.string cimport memcpy

from cython cimport floating

from blas cimport _gemm
from threads cimport _n_threads
from tiles cimport _next_tiles, _tile_at
from winograd4x4 cimport SEGMENT_SCRATCH, W4_CHUNK, W4_LD, _winograd4_input


# --------------------------------------------------------------------------- layout
#
# F(4x4, 3x3) (Lavin & Gray 2016, points 0, 1, -1, 2, -2, inf): a 4x4 output tile Y of a
# 3x3 filter g over a 6x6 input tile d (tiles overlap by 2) is
#   Y = A^T [(G g G^T) . (B^T d B)] A,
#   B^T = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
#          [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]
#   G   = [[1/4, 0, 0], [-1/6, -1/6, -1/6], [-1/6, 1/6, -1/6],
#          [1/24, 1/12, 1/6], [1/24, -1/12, 1/6], [0, 0, 1]]
#   A^T = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]].
# Summing over channels turns the 36 elementwise products into 36 GEMMs
#   M[e] (F, T) = U[e] (F, C) @ V[e] (C, T),   e = 6 xi + nu,
# over a block of T consecutive tiles (C order over sample, tile row, tile column).
#
# Memory layout, per thread and block: V (36, C, T) and M (36, F, T), each position e a
# contiguous row-major matrix, so every GEMM runs on dense operands; U (36, F, C) is
# shared. The input transform walks one channel and one segment of a tile row at a time:
# it copies the 6 zero-padded input rows 4ty-ph .. 4ty-ph+5 of the segment into scratch,
# forms u = B^T d over whole rows (contiguous, vectorisable), then for each of the 6 rows
# of u and each tile i of the segment writes the 6 values (u B)[., nu] to
# V[6 xi + nu, c, t + i] (36 unit-stride streams over i). The output transform reads the
# 36 values M[e, f, t + i] of a tile (unit stride over i), forms A^T m A + bias into 4
# scratch rows and copies them, clipped to the image, into y. See
# refnet/kernels/reference/winograd4.py for the readable twin.

# Scratch bytes of V and M per work item; tiles per block are kept between BLOCK_MIN and
# BLOCK_MAX. Measured on a 2-core Zen4 (1 MiB L2 per core, float32 and float64, C and F
# 8-128): 2 MiB is up to 10% faster than 0.5 or 1 MiB (the 36 GEMMs get more columns; V and
# M are each streamed once per GEMM, so L2 misses cost less than thin GEMMs) and on a par
# with 4 MiB, which is slower for few channels.
cdef int BLOCK_BYTES = 2 << 20
cdef int BLOCK_MIN = 16
cdef int BLOCK_MAX = 512


cdef inline void _g_times(
    double g0, double g1, double g2,
    floating* u, Py_ssize_t stride,  # OUT: u[k * stride] = (G g)[k], k = 0..5
) noexcept nogil:
    u[0] = <floating>(g0 * 0.25)
    u[stride] = <floating>(-(g0 + g1 + g2) / 6)
    u[2 * stride] = <floating>(-(g0 - g1 + g2) / 6)
    u[3 * stride] = <floating>(g0 / 24 + g1 / 12 + g2 / 6)
    u[4 * stride] = <floating>(g0 / 24 - g1 / 12 + g2 / 6)
    u[5 * stride] = <floating>g2


cdef void _winograd4_filter(
    const floating* g,  # IN (F, C, 3, 3); flip=True reads g[c, f, 2-i, 2-j] of (C, F, 3, 3)
    int F, int C, bint flip,
    floating* U,  # OUT (36, F, C)
) noexcept nogil:
    """``U = G g G^T`` per filter, computed in double precision."""
    cdef int f, c, i
    cdef double k[9]
    cdef double t[18]  # G g: (6, 3)
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
            for i in range(3):  # column i of G g
                _g_times(k[i], k[3 + i], k[6 + i], &t[i], 3)
            for i in range(6):  # row i of (G g) G^T
                _g_times(t[3 * i], t[3 * i + 1], t[3 * i + 2],
                         U + 6 * i * FC + <Py_ssize_t>f * C + c, FC)


# The output transform of one tile row segment in C, compiled for AVX2+FMA and for the
# baseline like the input transform in winograd4x4.pxd (whose macros it uses).
cdef extern from *:
    """
    /* M[e * ms + i] for e < 36, i < L: the GEMM results of the segment's tiles for one
       output channel. Rows y + k ldy (k < 4), columns 4i .. 4i+3 get tile i of
       (A^T M A) + bias; s (24, W4_CHUNK) is scratch. NAME_row combines the columns of
       one row of s = A^T m. */
    #define W4_OUTPUT(T, ATTR, NAME)                                                   \\
    ATTR static inline void NAME##_row(const T* restrict sk, int L, T bias,            \\
                                       T* restrict yk)                                 \\
    {                                                                                  \\
        int i;                                                                         \\
        for (i = 0; i < L; i++) {                                                      \\
            T s0 = sk[i], s1 = sk[W4_CHUNK + i], s2 = sk[2 * W4_CHUNK + i];            \\
            T s3 = sk[3 * W4_CHUNK + i], s4 = sk[4 * W4_CHUNK + i];                    \\
            T s5 = sk[5 * W4_CHUNK + i];                                               \\
            T a = s1 + s2, b = s1 - s2, c = s3 + s4, e = s3 - s4;                      \\
            yk[4 * i] = s0 + a + c + bias;                                             \\
            yk[4 * i + 1] = b + 2 * e + bias;                                          \\
            yk[4 * i + 2] = a + 4 * c + bias;                                          \\
            yk[4 * i + 3] = b + 8 * e + s5 + bias;                                     \\
        }                                                                              \\
    }                                                                                  \\
    ATTR static void NAME(const T* restrict M, long ms, int L, T bias,                 \\
                          T* restrict s, T* y, long ldy)                               \\
    {                                                                                  \\
        int i, k, q;                                                                   \\
        for (q = 0; q < 6; q++) {  /* s = A^T m, column q */                           \\
            const T* restrict m = M + q * ms;                                          \\
            for (i = 0; i < L; i++) {                                                  \\
                T m0 = m[i], m1 = m[6 * ms + i], m2 = m[12 * ms + i];                  \\
                T m3 = m[18 * ms + i], m4 = m[24 * ms + i], m5 = m[30 * ms + i];       \\
                T a = m1 + m2, b = m1 - m2, c = m3 + m4, e = m3 - m4;                  \\
                s[q * W4_CHUNK + i] = m0 + a + c;                                      \\
                s[(6 + q) * W4_CHUNK + i] = b + 2 * e;                                 \\
                s[(12 + q) * W4_CHUNK + i] = a + 4 * c;                                \\
                s[(18 + q) * W4_CHUNK + i] = b + 8 * e + m5;                           \\
            }                                                                          \\
        }                                                                              \\
        for (k = 0; k < 4; k++)  /* row k of (A^T m) A */                              \\
            NAME##_row(s + 6 * k * W4_CHUNK, L, bias, y + k * ldy);                    \\
    }
    W4_OUTPUT(float, REFNET_AVX2, w4_output_f_avx2)
    W4_OUTPUT(double, REFNET_AVX2, w4_output_d_avx2)
    W4_OUTPUT(float, , w4_output_f_base)
    W4_OUTPUT(double, , w4_output_d_base)
    #define W4_DISPATCH_OUTPUT(T, NAME)                                                \\
    static void NAME(const T* M, long ms, int L, T bias, T* s, T* y, long ldy) {       \\
        if (refnet_use_avx2()) NAME##_avx2(M, ms, L, bias, s, y, ldy);                     \\
        else NAME##_base(M, ms, L, bias, s, y, ldy);                                   \\
    }
    W4_DISPATCH_OUTPUT(float, w4_output_f)
    W4_DISPATCH_OUTPUT(double, w4_output_d)
    """
    void w4_output_f(const float* M, long ms, int L, float bias, float* s,
                     float* y, long ldy) noexcept nogil
    void w4_output_d(const double* M, long ms, int L, double bias, double* s,
                     double* y, long ldy) noexcept nogil


cdef void _winograd4_output(
    const floating* M,  # IN (36, F, T)
    const floating* bias,  # IN (F,) or NULL
    int F, int Ho, int Wo, int th, int tw, Py_ssize_t t0, int T,
    floating* S,  # scratch (SEGMENT_SCRATCH,)
    floating* y,  # OUT (N, F, Ho, Wo): the 4x4 tiles t0 .. t0+T-1
) noexcept nogil:
    """``Y = A^T M A + b`` for each tile, one output channel and one tile row at a time."""
    cdef int f, t, k, L, n, ty, tx, ow, w_end
    cdef bint inside
    cdef Py_ssize_t ldo, FT = <Py_ssize_t>F * T
    cdef floating beta
    cdef floating* out
    cdef floating* rows = S + 24 * W4_CHUNK
    cdef floating* yf
    for f in range(F):
        beta = bias[f] if bias != NULL else 0
        _tile_at(t0, th, tw, &n, &ty, &tx)
        t = 0
        while t < T:
            L = tw - tx if tw - tx < T - t else T - t
            if L > W4_CHUNK:
                L = W4_CHUNK
            ow = 4 * tx
            w_end = 4 * (tx + L) if 4 * (tx + L) < Wo else Wo
            yf = y + ((<Py_ssize_t>n * F + f) * Ho + 4 * ty) * Wo
            inside = 4 * ty + 4 <= Ho and w_end == 4 * (tx + L)
            out = yf + ow if inside else rows  # whole tiles straight into y
            ldo = Wo if inside else W4_LD
            if floating is float:
                w4_output_f(M + <Py_ssize_t>f * T + t, FT, L, beta, S, out, ldo)
            else:
                w4_output_d(M + <Py_ssize_t>f * T + t, FT, L, beta, S, out, ldo)
            if not inside:  # edge tiles: copy the part inside the image
                for k in range(4):
                    if 4 * ty + k < Ho:
                        memcpy(yf + k * Wo + ow, rows + k * W4_LD,
                               (w_end - ow) * sizeof(floating))
            t = t + L
            _next_tiles(L, th, tw, &n, &ty, &tx)


cdef void _winograd4_conv(
    const floating* x,  # IN (N, C, H, W)
    const floating* U,  # IN (36, F, C) transformed filters
    const floating* bias,  # IN (F,) or NULL
    int N, int C, int H, int W, int F, int ph, int pw, int Ho, int Wo,
    floating* V,  # scratch (nt, 36 * C * block)
    floating* M,  # scratch (nt, 36 * F * block)
    floating* R,  # scratch (nt, SEGMENT_SCRATCH)
    int block, int nt,
    floating* y,  # OUT (N, F, Ho, Wo)
) noexcept nogil:
    cdef int th = (Ho + 3) // 4, tw = (Wo + 3) // 4
    cdef Py_ssize_t n_tiles = <Py_ssize_t>N * th * tw
    cdef Py_ssize_t n_blocks = (n_tiles + block - 1) // block
    cdef Py_ssize_t k, t0, FC = <Py_ssize_t>F * C
    cdef Py_ssize_t vs = 36 * <Py_ssize_t>C * block, ms = 36 * <Py_ssize_t>F * block
    cdef Py_ssize_t rs = SEGMENT_SCRATCH
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
            _winograd4_input(x, C, H, W, ph, pw, th, tw, t0, T, R + tid * rs, Vt)
            for e in range(36):
                # M[e] (F, T) = U[e] (F, C) @ V[e] (C, T)
                _gemm(False, False, F, T, C, <floating>1, U + e * FC, C,
                      Vt + e * <Py_ssize_t>C * T, T, <floating>0, Mt + e * <Py_ssize_t>F * T, T)
            _winograd4_output(Mt, bias, F, Ho, Wo, th, tw, t0, T, R + tid * rs, y)


def _winograd4_block(int C, int F, int itemsize):
    """Tiles per work item: V and M scratch about ``BLOCK_BYTES``, within the bounds."""
    cdef int blk = BLOCK_BYTES // (36 * (C + F) * itemsize + 1)
    return max(BLOCK_MIN, min(BLOCK_MAX, blk))


cdef _winograd4_run(
    const floating[:, :, :, ::1] x, const floating[:, ::1] U, const floating* bias,
    int F, int ph, int pw, floating[:, :, :, ::1] out,
):
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], Wd = x.shape[3]
    cdef int Ho = out.shape[2], Wo = out.shape[3]
    cdef int tw = (Wo + 3) // 4
    cdef Py_ssize_t n_tiles = <Py_ssize_t>N * ((Ho + 3) // 4) * tw
    cdef int block = _winograd4_block(C, F, sizeof(floating))
    cdef int nt = _n_threads((n_tiles + block - 1) // block, 16.0 * n_tiles * C * F * 9)
    dtype = np.float32 if floating is float else np.float64
    cdef floating[::1] V = np.empty(nt * 36 * max(C, 1) * block, dtype=dtype)
    cdef floating[::1] M = np.empty(nt * 36 * max(F, 1) * block, dtype=dtype)
    cdef floating[::1] R = np.zeros(nt * SEGMENT_SCRATCH, dtype=dtype)
    if out.size == 0:
        return
    if C == 0:
        for f in range(F):
            out[:, f, :, :] = bias[f] if bias != NULL else 0
        return
    with nogil:
        _winograd4_conv(&x[0, 0, 0, 0], &U[0, 0], bias, N, C, H, Wd, F, ph, pw, Ho, Wo,
                        &V[0], &M[0], &R[0], block, nt, &out[0, 0, 0, 0])


def conv2d_forward_winograd4(
    const floating[:, :, :, ::1] x,  # IN (N, C, H, W)
    const floating[:, :, :, ::1] W,  # IN (F, C, 3, 3)
    const floating[::1] b,  # IN (F,)
    int ph, int pw,
    floating[:, :, :, ::1] out,  # OUT (N, F, H + 2ph - 2, W + 2pw - 2)
):
    """Stride-1 3x3 :func:`conv2d_forward` by Winograd F(4x4, 3x3)."""
    cdef int F = W.shape[0], C = W.shape[1]
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] U = np.empty((36, max(F * C, 1)), dtype=dtype)
    if F * C > 0:
        with nogil:
            _winograd4_filter(&W[0, 0, 0, 0], F, C, False, &U[0, 0])
    _winograd4_run(x, U, &b[0] if F > 0 else NULL, F, ph, pw, out)


def conv2d_backward_input_winograd4(
    const floating[:, :, :, ::1] dy,  # IN (N, F, Ho, Wo)
    const floating[:, :, :, ::1] W,  # IN (F, C, 3, 3)
    int ph, int pw,
    floating[:, :, :, ::1] out,  # OUT (N, C, Ho - 2ph + 2, Wo - 2pw + 2)
):
    """Stride-1 3x3 :func:`conv2d_backward_input` by Winograd F(4x4, 3x3).

    The adjoint of a stride-1 3x3 conv with padding ``(ph, pw)`` is the conv of ``dy`` with
    the flipped, transposed kernel ``W[f, c, 2-i, 2-j]`` (as a ``(C, F, 3, 3)`` filter) and
    padding ``(2 - ph, 2 - pw)``; a negative padding (``ph > 2``) crops ``dy``, which the
    zero-padded row reader handles like any other out-of-image row or column.
    """
    cdef int F = W.shape[0], C = W.shape[1]
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] U = np.empty((36, max(F * C, 1)), dtype=dtype)
    if F * C > 0:
        with nogil:
            _winograd4_filter(&W[0, 0, 0, 0], C, F, True, &U[0, 0])
    _winograd4_run(dy, U, NULL, C, 2 - ph, 2 - pw, out)
