# cython: language_level=3
# The Winograd F(2x2, 3x3) input transform V = B^T d B of 4x4 input tiles (Lavin & Gray
# 2016), used by the F(2x2, 3x3) / F(3x3, 2x2) kernels of pyx/conv.pyx (forward, input and
# weight gradients); no module of its own.
#   B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
# Output tile (ty, tx) (2x2, of a stride-1 3x3 conv) reads the input tile at rows
# 2 ty - ph .. 2 ty - ph + 3 and columns 2 tx - pw .. 2 tx - pw + 3, zero outside x.

from cython cimport floating

from tiles cimport _next_tiles, _padded_row, _tile_at


cdef inline void _winograd_input(
    const floating* x,  # IN (N, C, H, W)
    int C, int H, int W, int ph, int pw, int th, int tw,
    Py_ssize_t t0, int T,
    floating* rows,  # scratch (8, 2 tw + 2)
    floating* V,  # OUT (16, C, T): B^T d B of tiles t0 .. t0+T-1, all channels
) noexcept nogil:
    """Transform the input tiles one channel and one tile row at a time.

    ``u = B^T d`` combines whole (zero-padded) input rows, so it runs over contiguous
    memory; ``(B^T d) B`` then combines columns ``2tx .. 2tx+3`` of ``u`` for every tile.
    """
    cdef int c, t, r, i, j, L, n, ty, tx, h0, j0, j1
    cdef int Wp = 2 * tw + 2
    cdef Py_ssize_t CT = <Py_ssize_t>C * T
    cdef floating* d0 = rows
    cdef floating* d1 = rows + Wp
    cdef floating* d2 = rows + 2 * Wp
    cdef floating* d3 = rows + 3 * Wp
    cdef floating* u
    cdef floating* v0
    cdef floating* v1
    cdef floating* v2
    cdef floating* v3
    cdef const floating* xc
    for c in range(C):
        _tile_at(t0, th, tw, &n, &ty, &tx)
        t = 0
        while t < T:
            L = tw - tx if tw - tx < T - t else T - t  # tiles tx .. tx+L-1 of row ty
            xc = x + (<Py_ssize_t>n * C + c) * H * W
            h0 = 2 * ty - ph
            j0 = 2 * tx
            j1 = 2 * (tx + L) + 2
            _padded_row(xc, H, W, h0, pw, j0, j1, d0)
            _padded_row(xc, H, W, h0 + 1, pw, j0, j1, d1)
            _padded_row(xc, H, W, h0 + 2, pw, j0, j1, d2)
            _padded_row(xc, H, W, h0 + 3, pw, j0, j1, d3)
            u = rows + 4 * Wp
            for j in range(j0, j1):  # u = B^T d, row by row
                u[j] = d0[j] - d2[j]
                u[Wp + j] = d1[j] + d2[j]
                u[2 * Wp + j] = d2[j] - d1[j]
                u[3 * Wp + j] = d1[j] - d3[j]
            for r in range(4):  # (B^T d) B, tile by tile
                v0 = V + (r * 4 + 0) * CT + <Py_ssize_t>c * T + t
                v1 = V + (r * 4 + 1) * CT + <Py_ssize_t>c * T + t
                v2 = V + (r * 4 + 2) * CT + <Py_ssize_t>c * T + t
                v3 = V + (r * 4 + 3) * CT + <Py_ssize_t>c * T + t
                u = rows + (4 + r) * Wp + j0
                for i in range(L):
                    v0[i] = u[2 * i] - u[2 * i + 2]
                    v1[i] = u[2 * i + 1] + u[2 * i + 2]
                    v2[i] = u[2 * i + 2] - u[2 * i + 1]
                    v3[i] = u[2 * i + 1] - u[2 * i + 3]
            t = t + L
            _next_tiles(L, th, tw, &n, &ty, &tx)
