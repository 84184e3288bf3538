# cython: language_level=3
# Winograd tile cursor and zero-padded input rows (cimported by the kernels in pyx/; no
# module of its own). Tiles are numbered in C order over (sample n, tile row ty, tile
# column tx); a block of consecutive tiles is walked one tile row segment at a time.

from libc.string cimport memcpy, memset

from cython cimport floating


cdef inline void _padded_row(
    const floating* xc, int H, int W, int h, int pw, int j0, int j1,
    floating* row,  # OUT: row[j] = x[h, j - pw] (0 outside x) for j in [j0, j1)
) noexcept nogil:
    cdef int j, lo = j0, hi = j1
    if h < 0 or h >= H:
        memset(row + j0, 0, (j1 - j0) * sizeof(floating))
        return
    if lo < pw:
        lo = pw
    if hi > W + pw:
        hi = W + pw
    if hi < lo:
        hi = lo = j0
    for j in range(j0, lo):
        row[j] = 0
    if hi > lo:
        memcpy(row + lo, xc + <Py_ssize_t>h * W + lo - pw, (hi - lo) * sizeof(floating))
    for j in range(hi, j1):
        row[j] = 0


cdef inline void _tile_at(
    Py_ssize_t t, int th, int tw, int* n, int* ty, int* tx,
) noexcept nogil:
    """Sample ``n`` and tile ``(ty, tx)`` of flat tile index ``t`` (tiles in C order)."""
    cdef Py_ssize_t tpi = <Py_ssize_t>th * tw  # tiles per image
    n[0] = <int>(t // tpi)
    ty[0] = <int>((t % tpi) // tw)
    tx[0] = <int>(t % tw)


cdef inline void _next_tiles(int L, int th, int tw, int* n, int* ty, int* tx) noexcept nogil:
    """Move the tile cursor ``(n, ty, tx)`` on by ``L <= tw - tx`` tiles along its row."""
    tx[0] = tx[0] + L
    if tx[0] == tw:
        tx[0] = 0
        ty[0] = ty[0] + 1
        if ty[0] == th:
            ty[0] = 0
            n[0] = n[0] + 1
