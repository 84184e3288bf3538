# cython: language_level=3
r"""Compiled MaxPool2D kernels (twins of ``refnet/kernels/reference/pool.py``).

Windows are ``size x size`` with stride ``s`` and no padding. ``argmax`` holds the flat
index ``h * W + w`` of each window's maximum inside its channel; a tie goes to the first
maximum in row-major order (a later offset wins only when strictly greater). The backward
pass adds each upstream value at its argmax; overlapping windows add up. One OpenMP
``prange`` runs over the ``N * C`` channels, which own disjoint parts of the output.
"""

from cython.parallel cimport prange
from libc.string cimport memset

from cython cimport floating

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int refnet_pool_max_threads(void) { return omp_get_max_threads(); }
    #else
    static int refnet_pool_max_threads(void) { return 1; }
    #endif
    """
    int refnet_pool_max_threads() noexcept nogil


cdef inline int _n_threads(Py_ssize_t n_items) noexcept nogil:
    cdef int nt = refnet_pool_max_threads()
    if n_items < nt:
        nt = <int>n_items
    return nt if nt > 0 else 1


cdef void _maxpool_channel(
    const floating* x,  # IN (H, W)
    int H, int W, int size, int s, int Ho, int Wo,
    floating* y,  # OUT (Ho, Wo)
    long long* arg,  # OUT (Ho, Wo)
) noexcept nogil:
    cdef int oh, ow, i, j, h, w
    cdef floating best, v
    cdef long long where
    for oh in range(Ho):
        for ow in range(Wo):
            h = oh * s
            w = ow * s
            best = x[h * W + w]
            where = h * W + w
            for i in range(size):
                for j in range(size):
                    v = x[(h + i) * W + w + j]
                    if v > best:
                        best = v
                        where = (h + i) * W + w + j
            y[oh * Wo + ow] = best
            arg[oh * Wo + ow] = where


def maxpool2d_forward(
    const floating[:, :, :, ::1] x,  # IN (N, C, H, W)
    int size, int s,
    floating[:, :, :, ::1] out,  # OUT (N, C, Ho, Wo)
    long long[:, :, :, ::1] argmax,  # OUT (N, C, Ho, Wo)
):
    """Fill ``out`` and ``argmax`` with window maxima and their flat positions."""
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int Ho = out.shape[2], Wo = out.shape[3]
    cdef Py_ssize_t k, NC = <Py_ssize_t>N * C, xs = <Py_ssize_t>H * W
    cdef Py_ssize_t ys = <Py_ssize_t>Ho * Wo
    if NC == 0 or ys == 0:
        return
    for k in prange(NC, nogil=True, schedule="static", num_threads=_n_threads(NC)):
        _maxpool_channel(&x[0, 0, 0, 0] + k * xs, H, W, size, s, Ho, Wo,
                         &out[0, 0, 0, 0] + k * ys, &argmax[0, 0, 0, 0] + k * ys)


def maxpool2d_backward(
    const floating[:, :, :, ::1] dy,  # IN (N, C, Ho, Wo)
    const long long[:, :, :, ::1] argmax,  # IN (N, C, Ho, Wo), entries in [0, H*W)
    floating[:, :, :, ::1] out,  # OUT (N, C, H, W)
):
    """Fill ``out`` by adding each ``dy`` value at its window's argmax."""
    cdef int N = out.shape[0], C = out.shape[1], H = out.shape[2], W = out.shape[3]
    cdef Py_ssize_t k, p, NC = <Py_ssize_t>N * C, xs = <Py_ssize_t>H * W
    cdef Py_ssize_t ys = <Py_ssize_t>dy.shape[2] * dy.shape[3]
    cdef floating* xc
    cdef const floating* dc
    cdef const long long* ac
    if NC == 0 or xs == 0:
        return
    for k in prange(NC, nogil=True, schedule="static", num_threads=_n_threads(NC)):
        xc = &out[0, 0, 0, 0] + k * xs
        dc = &dy[0, 0, 0, 0] + k * ys
        ac = &argmax[0, 0, 0, 0] + k * ys
        memset(xc, 0, xs * sizeof(floating))
        for p in range(ys):
            xc[ac[p]] += dc[p]
