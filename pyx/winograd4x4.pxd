# cython: language_level=3
# The Winograd F(4x4, 3x3) input transform V = B^T d B of 6x6 input tiles (Lavin & Gray
# 2016), shared by the convolution kernels (pyx/winograd4.pyx) and the pattern statistics
# (pyx/stats_winograd.pyx); no module of its own. Output tile (ty, tx) (4x4, of a
# stride-1 3x3 conv) reads the input tile at rows 4 ty - ph .. 4 ty - ph + 5 and columns
# 4 tx - pw .. 4 tx - pw + 5, zero outside x.
#   B^T = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0], [0, 4, -4, -1, 1, 0],
#          [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]]

from cython cimport floating

from simd cimport refnet_use_avx2
from tiles cimport _next_tiles, _padded_row, _tile_at


# The transform of one tile row segment (at most W4_CHUNK tiles) in C: restrict pointers
# and fixed strides let GCC vectorise it. It is compiled twice, for AVX2+FMA
# (__attribute__((target))) and for the baseline target; refnet_use_avx2() picks one at run
# time with __builtin_cpu_supports (elsewhere, without x86-64 GCC, only the baseline).
cdef extern from *:
    """
    #define W4_CHUNK 32                  /* tiles per segment */
    #define W4_LD (4 * W4_CHUNK + 4)     /* row length of the segment scratch */
    /* d (6, W4_LD): the segment's 6 zero-padded input rows, columns 0 .. 4L+1.
       V[e * vs + i] = (B^T d_i B)[e], e = 6 xi + nu, for the tiles i < L of the segment;
       u (6, W4_LD) is scratch. NAME_row applies B to columns 4i .. 4i+5 of one row of
       u = B^T d and writes the 6 results of tile i to v0[i] .. v5[i]. */
    #define W4_INPUT(T, ATTR, NAME)                                                    \\
    ATTR static inline void NAME##_row(                                                \\
        const T* restrict ur, int L, T* restrict v0, T* restrict v1, T* restrict v2,   \\
        T* restrict v3, T* restrict v4, T* restrict v5)                                \\
    {                                                                                  \\
        int i;                                                                         \\
        for (i = 0; i < L; i++) {                                                      \\
            T d0 = ur[4 * i], d1 = ur[4 * i + 1], d2 = ur[4 * i + 2];                  \\
            T d3 = ur[4 * i + 3], d4 = ur[4 * i + 4], d5 = ur[4 * i + 5];              \\
            T a = d4 - 4 * d2, b = d3 - 4 * d1, p = d4 - d2, q = 2 * (d3 - d1);        \\
            v0[i] = 4 * d0 - 5 * d2 + d4;                                              \\
            v1[i] = a + b;                                                             \\
            v2[i] = a - b;                                                             \\
            v3[i] = p + q;                                                             \\
            v4[i] = p - q;                                                             \\
            v5[i] = 4 * d1 - 5 * d3 + d5;                                              \\
        }                                                                              \\
    }                                                                                  \\
    ATTR static void NAME(const T* restrict d, int L, T* restrict u, T* V, long vs)    \\
    {                                                                                  \\
        int j, r, n = 4 * L + 2;                                                       \\
        for (j = 0; j < n; j++) {  /* u = B^T d, whole rows */                         \\
            T d0 = d[j], d1 = d[W4_LD + j], d2 = d[2 * W4_LD + j];                     \\
            T d3 = d[3 * W4_LD + j], d4 = d[4 * W4_LD + j], d5 = d[5 * W4_LD + j];     \\
            T a = d4 - 4 * d2, b = d3 - 4 * d1, p = d4 - d2, q = 2 * (d3 - d1);        \\
            u[j] = 4 * d0 - 5 * d2 + d4;                                               \\
            u[W4_LD + j] = a + b;                                                      \\
            u[2 * W4_LD + j] = a - b;                                                  \\
            u[3 * W4_LD + j] = p + q;                                                  \\
            u[4 * W4_LD + j] = p - q;                                                  \\
            u[5 * W4_LD + j] = 4 * d1 - 5 * d3 + d5;                                   \\
        }                                                                              \\
        for (r = 0; r < 6; r++) {  /* (B^T d) B, row xi = r */                         \\
            T* v = V + 6 * r * vs;                                                     \\
            NAME##_row(u + r * W4_LD, L, v, v + vs, v + 2 * vs, v + 3 * vs,            \\
                       v + 4 * vs, v + 5 * vs);                                        \\
        }                                                                              \\
    }
    W4_INPUT(float, REFNET_AVX2, w4_input_f_avx2)
    W4_INPUT(double, REFNET_AVX2, w4_input_d_avx2)
    W4_INPUT(float, , w4_input_f_base)
    W4_INPUT(double, , w4_input_d_base)
    #define W4_DISPATCH_INPUT(T, NAME)                                                 \\
    static void NAME(const T* d, int L, T* u, T* V, long vs) {                         \\
        if (refnet_use_avx2()) NAME##_avx2(d, L, u, V, vs);                                \\
        else NAME##_base(d, L, u, V, vs);                                              \\
    }
    W4_DISPATCH_INPUT(float, w4_input_f)
    W4_DISPATCH_INPUT(double, w4_input_d)
    """
    enum:
        W4_CHUNK
        W4_LD
    void w4_input_f(const float* d, int L, float* u, float* V, long vs) noexcept nogil
    void w4_input_d(const double* d, int L, double* u, double* V, long vs) noexcept nogil


# Scratch of one thread for one segment: the input rows d and u (6 W4_LD each), or
# A^T m (24 W4_CHUNK) and the output rows of edge tiles (4 W4_LD).
cdef enum:
    SEGMENT_SCRATCH = 12 * W4_LD


cdef inline void _winograd4_input(
    const floating* x,  # IN (N, C, H, W)
    int C, int H, int W, int ph, int pw, int th, int tw,
    Py_ssize_t t0, int T,
    floating* S,  # scratch (SEGMENT_SCRATCH,)
    floating* V,  # OUT (36, C, T): B^T d B of tiles t0 .. t0+T-1, all channels
) noexcept nogil:
    """Transform the input tiles one channel and one tile row segment at a time."""
    cdef int c, t, r, L, n, ty, tx, h0, j0
    cdef Py_ssize_t CT = <Py_ssize_t>C * T
    cdef const floating* xc
    for c in range(C):
        _tile_at(t0, th, tw, &n, &ty, &tx)
        t = 0
        while t < T:
            L = tw - tx if tw - tx < T - t else T - t  # tiles tx .. tx+L-1 of row ty
            if L > W4_CHUNK:
                L = W4_CHUNK
            xc = x + (<Py_ssize_t>n * C + c) * H * W
            h0 = 4 * ty - ph
            j0 = 4 * tx
            for r in range(6):  # S[r, j] = x[h0 + r, j0 + j - pw], zero outside x
                _padded_row(xc, H, W, h0 + r, pw - j0, 0, 4 * L + 2, S + r * W4_LD)
            if floating is float:
                w4_input_f(S, L, S + 6 * W4_LD, V + <Py_ssize_t>c * T + t, CT)
            else:
                w4_input_d(S, L, S + 6 * W4_LD, V + <Py_ssize_t>c * T + t, CT)
            t = t + L
            _next_tiles(L, th, tw, &n, &ty, &tx)
