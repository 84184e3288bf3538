# cython: language_level=3
r"""Pattern statistics of a stride-1 3x3 conv layer by Winograd F(3x3, 4x4).

Same outputs as ``pattern_stats_conv`` in ``pyx/stats.pyx`` (without ``X'^T X'``), for the
layers where the patch GEMM ``S = X'^T R`` dominates pattern fitting. Read as images, the
columns of ``R`` (``M``, ``M Y'``, ``1``, ``Y'`` per neuron, one value per output pixel) make
``S`` a weight gradient: with ``x'`` the input shifted by ``x0`` and padded with ``-x0``,

.. math:: S_{(c, i, j),\, r} = \sum_{n, p} x'_{n c}[p + (i, j)]\; R_{n r}[p] .

With the matrices of F(4x4, 3x3) (``pyx/winograd4.pyx``), the transposition principle turns
it into a sum over 4x4 tiles of ``R`` against 6x6 input tiles (Lavin & Gray 2016), 36
multiplications per tile and column instead of 16 * 9 = 144:

.. math:: S_{\cdot c,\, r} = \sum_{\text{tiles}} G^\top \big[ (A\, R_r A^\top)
          \odot (B^\top d_c B) \big] G ,

    A^\top = \begin{pmatrix} 1&1&1&1&1&0 \\ 0&1&-1&2&-2&0 \\ 0&1&1&4&4&0 \\
                             0&1&-1&8&-8&1 \end{pmatrix}, \quad
    G^\top = \begin{pmatrix} \tfrac14 & -\tfrac16 & -\tfrac16 & \tfrac1{24} & \tfrac1{24} & 0
             \\ 0 & -\tfrac16 & \tfrac16 & \tfrac1{12} & -\tfrac1{12} & 0 \\
             0 & -\tfrac16 & -\tfrac16 & \tfrac16 & \tfrac16 & 1 \end{pmatrix}.

The shift needs one value per input channel (``x0[(c, i, j)] = x0_c``): the padded, shifted
tile is ``d - x0_c 1 1^T`` and ``B^T 1 = (0, -6, 0, 0, 0, 0)``, so the shift touches only
component ``(1, 1)`` of the transformed tile, ``V[7] -= 36 x0_c``, before the products.
The 4x4 tiles of ``R`` are built from ``Z`` on the fly (zero past the image edge) and
transformed at once; no column of ``R`` and no patch is ever stored whole. That
right-hand side is vectorised C: four pixels or four tiles per vector, the mask from a
vector comparison (a branch per pixel cost more than the GEMMs).

Work is cut into blocks of tiles, one OpenMP thread per block with its own scratch; per
block and component ``e`` one GEMM ``G = D[e] (n_cols, T) V[e]^T (T, C)``. Float32 input
uses float32 GEMMs per block added to per-thread float64 sums (as ``pyx/stats.pyx`` does
per chunk; relative to the largest sum, 2e-7 to 5e-6 on the benchmark shapes against
1e-7 to 3e-7 for the patch GEMM, ``benchmarks/accuracy.py``); float64 input accumulates in
float64 directly. BLAS must run single-threaded (the wrapper in
:mod:`refnet.kernels.stats` arranges it). NumPy twin: ``refnet/kernels/reference/stats.py``.
"""
import numpy as np

from cython.parallel cimport parallel, prange, threadid

from cython cimport floating

from blas cimport _gemm
from threads cimport n_threads
from tiles cimport _next_tiles, _tile_at
from winograd4x4 cimport SEGMENT_SCRATCH, W4_CHUNK, _winograd4_input


#: Tiles per block: the GEMMs reduce over the block's tiles, so blocks are long, but their
#: scratch should stay near the L2 cache. The transforms write 36 streams ``es`` elements
#: apart; ``es`` is padded off powers of two (a power-of-two stride sent all streams to the
#: same cache sets and made the right-hand side 5x slower).
BLOCK_TILES = 150
#: Row length of the right-hand-side scratch: one segment of at most W4_CHUNK tiles.
cdef enum:
    RHS_LD = 4 * W4_CHUNK


# The right-hand side of one neuron over one tile row segment in C (restrict pointers and
# fixed strides, so that GCC vectorises it), compiled for AVX2+FMA and the baseline like
# the input transform in winograd4x4.pxd, whose macros and CPU check it uses.
cdef extern from *:
    """
    #define W4_RHS_LD (4 * W4_CHUNK)
    typedef float w4_vf4 __attribute__((vector_size(16)));
    typedef double w4_vd4 __attribute__((vector_size(32)));
    typedef int w4_vi4 __attribute__((vector_size(16)));
    typedef long long w4_vl4 __attribute__((vector_size(32)));
    /* Rows q[a] = (A r)[a] of the four pixel rows r[0..3] (columns j < n). */
    #define W4_AROWS(T, ATTR, NAME)                                                    \
    ATTR static inline void NAME(const T* restrict r, int n, T* restrict q)            \
    {                                                                                  \
        int j;                                                                         \
        for (j = 0; j < n; j++) {                                                      \
            T a = r[j], b = r[W4_RHS_LD + j], c = r[2 * W4_RHS_LD + j];                \
            T d = r[3 * W4_RHS_LD + j];                                                \
            q[j] = a;                                                                  \
            q[W4_RHS_LD + j] = a + b + c + d;                                          \
            q[2 * W4_RHS_LD + j] = a - b + c - d;                                      \
            q[3 * W4_RHS_LD + j] = a + 2 * b + 4 * c + 8 * d;                          \
            q[4 * W4_RHS_LD + j] = a - 2 * b + 4 * c - 8 * d;                          \
            q[5 * W4_RHS_LD + j] = d;                                                  \
        }                                                                              \
    }
    /* D[(6 a + b) es + i] = (A r_i A^T)[a, b] from the rows q of A r (tiles i < L).
       Four tiles at a time: their 16 values are loaded as four vectors (one per tile)
       and transposed, so that vector k holds column k of the four tiles. */
    #define W4_ACOLS(T, V, MASK, ATTR, NAME)                                           \
    ATTR static inline void NAME(const T* restrict q, int L, T* D, long es)            \
    {                                                                                  \
        int a, i;                                                                      \
        const MASK lo = {0, 4, 1, 5}, hi = {2, 6, 3, 7};                               \
        const MASK l2 = {0, 1, 4, 5}, h2 = {2, 3, 6, 7};                               \
        for (a = 0; a < 6; a++) {                                                      \
            const T* restrict qa = q + a * W4_RHS_LD;                                  \
            T* restrict d0 = D + 6 * a * es;                                           \
            T* restrict d1 = d0 + es;                                                  \
            T* restrict d2 = d0 + 2 * es;                                              \
            T* restrict d3 = d0 + 3 * es;                                              \
            T* restrict d4 = d0 + 4 * es;                                              \
            T* restrict d5 = d0 + 5 * es;                                              \
            for (i = 0; i + 4 <= L; i += 4) {                                          \
                V v0, v1, v2, v3, t0, t1, t2, t3, w, x, y, z;                          \
                __builtin_memcpy(&v0, qa + 4 * i, sizeof(V));                          \
                __builtin_memcpy(&v1, qa + 4 * i + 4, sizeof(V));                      \
                __builtin_memcpy(&v2, qa + 4 * i + 8, sizeof(V));                      \
                __builtin_memcpy(&v3, qa + 4 * i + 12, sizeof(V));                     \
                t0 = __builtin_shuffle(v0, v1, lo);                                    \
                t1 = __builtin_shuffle(v0, v1, hi);                                    \
                t2 = __builtin_shuffle(v2, v3, lo);                                    \
                t3 = __builtin_shuffle(v2, v3, hi);                                    \
                w = __builtin_shuffle(t0, t2, l2);                                     \
                x = __builtin_shuffle(t0, t2, h2);                                     \
                y = __builtin_shuffle(t1, t3, l2);                                     \
                z = __builtin_shuffle(t1, t3, h2);                                     \
                V e0 = w, e1 = w + x + y + z, e2 = w - x + y - z;                      \
                V e3 = w + 2 * x + 4 * y + 8 * z, e4 = w - 2 * x + 4 * y - 8 * z;      \
                __builtin_memcpy(d0 + i, &e0, sizeof(V));                              \
                __builtin_memcpy(d1 + i, &e1, sizeof(V));                              \
                __builtin_memcpy(d2 + i, &e2, sizeof(V));                              \
                __builtin_memcpy(d3 + i, &e3, sizeof(V));                              \
                __builtin_memcpy(d4 + i, &e4, sizeof(V));                              \
                __builtin_memcpy(d5 + i, &z, sizeof(V));                               \
            }                                                                          \
            for (; i < L; i++) {                                                       \
                T w = qa[4 * i], x = qa[4 * i + 1], y = qa[4 * i + 2];                 \
                T z = qa[4 * i + 3];                                                   \
                d0[i] = w;                                                             \
                d1[i] = w + x + y + z;                                                 \
                d2[i] = w - x + y - z;                                                 \
                d3[i] = w + 2 * x + 4 * y + 8 * z;                                     \
                d4[i] = w - 2 * x + 4 * y - 8 * z;                                     \
                d5[i] = z;                                                             \
            }                                                                          \
        }                                                                              \
    }
    /* One neuron, one segment of L tiles: pixel rows z[0..3] (NULL past the image) with
       w real columns; c = b + y0. Rows of M, M Y', Y' (0 past the image) go to s, their
       sums to sums[0..2]; each wanted column (Dm, Dmy, Dy not NULL) is transformed.
       Y' = (z - c_hi) - c_lo with c = c_hi + c_lo split into two T: for float input the
       first difference is exact when z is near c, so Y' keeps the accuracy of the double
       difference without leaving T (and the loop vectorises; sums are added in double
       vectors of four). */
    #define W4_RHS(T, V, MASK, ATTR, NAME)                                             \
    W4_AROWS(T, ATTR, NAME##_arows)                                                    \
    W4_ACOLS(T, V, MASK, ATTR, NAME##_acols)                                           \
    ATTR static void NAME(const T* const* z, int w, int L, double c, T* Dm, T* Dmy,    \
                          T* Dy, long es, T* restrict s, double* sums)                 \
    {                                                                                  \
        int r, j, n = 4 * L;                                                           \
        const T c_hi = (T)c, c_lo = (T)(c - (double)c_hi);                             \
        T* restrict m = s;                                                             \
        T* restrict my = s + 4 * W4_RHS_LD;                                            \
        T* restrict y = s + 8 * W4_RHS_LD;                                             \
        T* restrict q = s + 12 * W4_RHS_LD;                                            \
        w4_vd4 sm = {0}, smy = {0}, sy = {0};                                          \
        for (r = 0; r < 4; r++) {                                                      \
            const T* restrict zr = z[r];                                               \
            T* restrict mr = m + r * W4_RHS_LD;                                        \
            T* restrict myr = my + r * W4_RHS_LD;                                      \
            T* restrict yr = y + r * W4_RHS_LD;                                        \
            int wr = zr ? w : 0;                                                       \
            for (j = 0; j + 4 <= wr; j += 4) {  /* four pixels, no branch */           \
                V zv, yv, mv;                                                          \
                __builtin_memcpy(&zv, zr + j, sizeof(V));                              \
                yv = (zv - c_hi) - c_lo;                                               \
                mv = __builtin_convertvector(-(zv > 0), V);  /* 1 where z > 0 */       \
                __builtin_memcpy(mr + j, &mv, sizeof(V));                              \
                mv *= yv;                                                              \
                __builtin_memcpy(myr + j, &mv, sizeof(V));                             \
                __builtin_memcpy(yr + j, &yv, sizeof(V));                              \
            }                                                                          \
            for (; j < wr; j++) {                                                      \
                T zv = zr[j];                                                          \
                T yv = (zv - c_hi) - c_lo;                                             \
                T mv = zv > 0 ? (T)1 : (T)0;                                           \
                mr[j] = mv;                                                            \
                myr[j] = mv * yv;                                                      \
                yr[j] = yv;                                                            \
            }                                                                          \
            for (j = wr; j < n; j++)                                                   \
                mr[j] = myr[j] = yr[j] = 0;                                            \
            for (j = 0; j < n; j += 4) {  /* n is a multiple of 4; zeros add nothing */ \
                V a, b, d;                                                             \
                __builtin_memcpy(&a, mr + j, sizeof(V));                               \
                __builtin_memcpy(&b, myr + j, sizeof(V));                              \
                __builtin_memcpy(&d, yr + j, sizeof(V));                               \
                sm += __builtin_convertvector(a, w4_vd4);                              \
                smy += __builtin_convertvector(b, w4_vd4);                             \
                sy += __builtin_convertvector(d, w4_vd4);                              \
            }                                                                          \
        }                                                                              \
        sums[0] += (sm[0] + sm[1]) + (sm[2] + sm[3]);                                  \
        sums[1] += (smy[0] + smy[1]) + (smy[2] + smy[3]);                              \
        sums[2] += (sy[0] + sy[1]) + (sy[2] + sy[3]);                                  \
        if (Dm) { NAME##_arows(m, n, q); NAME##_acols(q, L, Dm, es); }                 \
        if (Dmy) { NAME##_arows(my, n, q); NAME##_acols(q, L, Dmy, es); }              \
        if (Dy) { NAME##_arows(y, n, q); NAME##_acols(q, L, Dy, es); }                 \
    }
    W4_RHS(float, w4_vf4, w4_vi4, REFNET_AVX2, w4_rhs_f_avx2)
    W4_RHS(double, w4_vd4, w4_vl4, REFNET_AVX2, w4_rhs_d_avx2)
    W4_RHS(float, w4_vf4, w4_vi4, , w4_rhs_f_base)
    W4_RHS(double, w4_vd4, w4_vl4, , w4_rhs_d_base)
    #define W4_DISPATCH_RHS(T, NAME)                                                   \
    static void NAME(const T* const* z, int w, int L, double c, T* Dm, T* Dmy, T* Dy,  \
                     long es, T* s, double* sums) {                                    \
        if (refnet_use_avx2()) NAME##_avx2(z, w, L, c, Dm, Dmy, Dy, es, s, sums);          \
        else NAME##_base(z, w, L, c, Dm, Dmy, Dy, es, s, sums);                        \
    }
    W4_DISPATCH_RHS(float, w4_rhs_f)
    W4_DISPATCH_RHS(double, w4_rhs_d)
    """
    void w4_rhs_f(const float** z, int w, int L, double c, float* Dm, float* Dmy,
                  float* Dy, long es, float* s, double* sums) noexcept nogil
    void w4_rhs_d(const double** z, int w, int L, double c, double* Dm, double* Dmy,
                  double* Dy, long es, double* s, double* sums) noexcept nogil


cdef void _rhs_tiles4(
    const floating* Z,  # IN (N, K, Ho, Wo)
    const floating* b, const double* y0,  # IN (K,), (K,)
    int K, int Ho, int Wo, int th, int tw, Py_ssize_t t0, int T,
    bint masked, bint unmasked,
    floating* rows,  # scratch (19, RHS_LD)
    floating* D, Py_ssize_t es,  # OUT (36, nc, T), components es apart
    double* ys,  # IN/OUT (3, K)
) noexcept nogil:
    """The columns ``[M, M Y']`` / ``[1, Y']`` of ``R`` in 4x4 tiles, transformed.

    Column ``-1`` stands for the column of ones: its "pre-activations" are a row of ones
    (``z > 0``, ``c = 1``: ``M = 1``), transformed as ``M``.
    """
    cdef int k, t, L, n, ty, tx, w, r, j, u = 2 * K if masked else 0
    cdef double sums[3]
    cdef double c
    cdef const floating* zr[4]
    cdef floating* ones = rows + 18 * RHS_LD  # (RHS_LD,)
    cdef floating* Dm
    cdef floating* Dmy
    cdef floating* Dy
    for j in range(RHS_LD):
        ones[j] = 1
    for k in range(-1 if unmasked else 0, K):
        sums[0] = sums[1] = sums[2] = 0
        c = b[k] + y0[k] if k >= 0 else 1
        _tile_at(t0, th, tw, &n, &ty, &tx)
        t = 0
        while t < T:
            L = tw - tx if tw - tx < T - t else T - t
            if L > W4_CHUNK:
                L = W4_CHUNK
            w = Wo - 4 * tx if Wo - 4 * tx < 4 * L else 4 * L
            for r in range(4):
                zr[r] = NULL
                if 4 * ty + r < Ho:
                    zr[r] = (ones if k < 0 else
                             Z + ((<Py_ssize_t>n * K + k) * Ho + 4 * ty + r) * Wo + 4 * tx)
            if k < 0:
                Dm, Dmy, Dy = D + <Py_ssize_t>u * T + t, NULL, NULL
            else:
                Dm = D + <Py_ssize_t>k * T + t if masked else NULL
                Dmy = D + <Py_ssize_t>(K + k) * T + t if masked else NULL
                Dy = D + <Py_ssize_t>(u + 1 + k) * T + t if unmasked else NULL
            if floating is float:
                w4_rhs_f(zr, w, L, c, Dm, Dmy, Dy, es, rows, sums)
            else:
                w4_rhs_d(zr, w, L, c, Dm, Dmy, Dy, es, rows, sums)
            t = t + L
            _next_tiles(L, th, tw, &n, &ty, &tx)
        if k >= 0:
            ys[k] += sums[0]
            ys[K + k] += sums[1]
            ys[2 * K + k] += sums[2]


cdef void _output_transform4(
    const double* Macc,  # IN (36, nc, C): the summed products per component
    int nc, int C,
    double* S,  # OUT (C * 9, nc): S[(c, i, j), r] = (G^T M G)[i, j]
) noexcept nogil:
    cdef int r, c, a, i
    cdef double m[36]
    cdef double v[18]  # G^T m: (3, 6)
    cdef Py_ssize_t ncC = <Py_ssize_t>nc * C
    for r in range(nc):
        for c in range(C):
            for a in range(36):
                m[a] = Macc[a * ncC + <Py_ssize_t>r * C + c]
            for a in range(6):  # combine rows: v = G^T m
                _gt(m[a], m[6 + a], m[12 + a], m[18 + a], m[24 + a], m[30 + a], v + a, 6)
            for i in range(3):  # combine columns: (G^T m) G
                _gt(v[6 * i], v[6 * i + 1], v[6 * i + 2], v[6 * i + 3], v[6 * i + 4],
                    v[6 * i + 5], S + (<Py_ssize_t>c * 9 + 3 * i) * nc + r, nc)


cdef inline void _gt(
    double p0, double p1, double p2, double p3, double p4, double p5,
    double* out, Py_ssize_t stride,  # OUT: out[0], out[stride], out[2 stride] = G^T p
) noexcept nogil:
    out[0] = 0.25 * p0 - (p1 + p2) / 6 + (p3 + p4) / 24
    out[stride] = (p2 - p1) / 6 + (p3 - p4) / 12
    out[2 * stride] = (p3 + p4 - p1 - p2) / 6 + p5


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
    """Fill ``S`` and ``ysum`` of a stride-1 3x3 conv layer by Winograd F(3x3, 4x4)."""
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], Wd = x.shape[3]
    cdef int K = Z.shape[1], Ho = Z.shape[2], Wo = Z.shape[3]
    cdef int nc = S.shape[1]
    cdef int th = (Ho + 3) // 4, tw = (Wo + 3) // 4
    cdef Py_ssize_t n_tiles = <Py_ssize_t>N * th * tw
    cdef int block = BLOCK_TILES
    cdef Py_ssize_t n_blocks = (n_tiles + block - 1) // block
    cdef int nt = n_threads(n_blocks)
    # components of D are es apart: whole pages plus one cache line (distinct cache sets)
    cdef Py_ssize_t es = (<Py_ssize_t>nc * block + 1023) // 1024 * 1024 + 64 // sizeof(floating)
    cdef Py_ssize_t vs = 36 * <Py_ssize_t>C * block, ds = 36 * es
    cdef Py_ssize_t ms = 36 * <Py_ssize_t>nc * C
    cdef Py_ssize_t rs = max(<Py_ssize_t>SEGMENT_SCRATCH, 19 * <Py_ssize_t>RHS_LD)
    dtype = np.float32 if floating is float else np.float64
    cdef floating[:, ::1] V = np.empty((nt, max(vs, 1)), dtype=dtype)
    cdef floating[:, ::1] D = np.empty((nt, max(ds, 1)), dtype=dtype)
    cdef floating[:, ::1] G = np.empty((nt, max(nc * C, 1) if floating is float else 1),
                                       dtype=dtype)
    cdef floating[:, ::1] R = np.zeros((nt, rs), dtype=dtype)
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
                _winograd4_input(&x[0, 0, 0, 0], C, H, Wd, ph, pw, th, tw, t0, T,
                                 &R[tid, 0], Vt)
                for c in range(C):  # the shift: B^T (d - x0_c) B = B^T d B - 36 x0_c e_11
                    shift = <floating>(36 * x0[c * 9])
                    for t in range(T):
                        Vt[7 * CT + c * T + t] -= shift
                _rhs_tiles4(&Z[0, 0, 0, 0], &b[0], &y0[0], K, Ho, Wo, th, tw, t0, T,
                            masked, unmasked, &R[tid, 0], Dt, es, &y_part[tid, 0])
                for e in range(36):
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
        _output_transform4(&Macc[0, 0], nc, C, &S[0, 0])


def conv2d_backward_weight_winograd4(
    const floating[:, :, :, ::1] dy,  # IN (N, F, Ho, Wo)
    const floating[:, :, :, ::1] x,  # IN (N, C, H, W)
    int ph, int pw,
    floating[:, :, :, ::1] out,  # OUT (F, C, 3, 3)
):
    """Stride-1 3x3 weight gradient by Winograd F(3x3, 4x4), float64 sums across blocks.

    It is the statistic above with ``dy`` as ``Z``: the unmasked columns ``[1, Y']`` with
    zero bias and shifts are ``[1, dy]``, so ``S = X^T [1, dy]`` holds the gradient
    ``dW[f, c, i, j] = S[(c, i, j), 1 + f]`` next to one column of patch sums (the cost of
    one more output channel).
    """
    cdef int F = dy.shape[1], C = x.shape[1]
    dtype = np.float32 if floating is float else np.float64
    S = np.empty((C * 9, F + 1))  # (C*9, 1 + F)
    ysum = np.empty((3, max(F, 1)))  # (3, F)
    if F == 0 or C == 0:
        return
    pattern_stats_conv_winograd(x, dy, np.zeros(F, dtype=dtype), np.zeros(C * 9), np.zeros(F),
                                ph, pw, False, True, S, ysum)
    np.asarray(out)[...] = S[:, 1:].T.reshape(F, C, 3, 3)  # (F, C, 3, 3)
