# cython: language_level=3
r"""Compiled AvgPool2D kernels (twins of ``refnet/kernels/reference/avgpool.py``).

Windows are ``kh x kw`` with strides ``(sh, sw)`` and no padding. The forward pass writes
each window's mean; the backward pass, its adjoint, adds ``dy / (kh kw)`` to every position
of the window (overlapping windows add up). One OpenMP ``prange`` runs over the ``N * C``
channels, which own disjoint parts of the output. Sums are accumulated in the input's
dtype, in the same order as the twin's (window offsets in row-major order).

``kh == kw == sh == sw == 2``, the common downsampling, has its own forward loop over
pairs of input rows with the window's four offsets written out, so that the compiler sees
a fixed-length window and a unit-stride output row.
"""

from cython.parallel cimport prange
from libc.string cimport memset

from cython cimport floating

from threads cimport n_threads


cdef void _avgpool_channel(
    const floating* x,  # IN (H, W)
    int W, int kh, int kw, int sh, int sw, int Ho, int Wo,
    floating* y,  # OUT (Ho, Wo)
) noexcept nogil:
    cdef int oh, ow, p, q
    cdef floating total
    cdef floating inv = <floating>(kh * kw)
    cdef const floating* corner
    for oh in range(Ho):
        for ow in range(Wo):
            corner = x + <Py_ssize_t>oh * sh * W + ow * sw
            total = 0
            for p in range(kh):
                for q in range(kw):
                    total = total + corner[<Py_ssize_t>p * W + q]
            y[oh * Wo + ow] = total / inv


cdef void _avgpool2_channel(
    const floating* x,  # IN (H, W)
    int W, int Ho, int Wo,
    floating* y,  # OUT (Ho, Wo)
) noexcept nogil:
    """2x2 windows, stride 2: ``((a0 + a1) + b0) + b1``, the twin's order, over 4."""
    cdef Py_ssize_t oh, ow
    cdef const floating* top
    cdef const floating* bottom
    cdef floating* y_row
    for oh in range(Ho):
        top = x + 2 * oh * W
        bottom = top + W
        y_row = y + oh * Wo
        for ow in range(Wo):
            y_row[ow] = (((top[2 * ow] + top[2 * ow + 1]) + bottom[2 * ow])
                         + bottom[2 * ow + 1]) / 4


cdef void _avgpool_channel_backward(
    const floating* dy,  # IN (Ho, Wo)
    int W, int kh, int kw, int sh, int sw, int Ho, int Wo,
    floating* dx,  # OUT (H, W), zeroed by the caller
) noexcept nogil:
    cdef int oh, ow, p, q
    cdef floating share
    cdef floating inv = <floating>(kh * kw)
    cdef floating* corner
    for oh in range(Ho):
        for ow in range(Wo):
            share = dy[oh * Wo + ow] / inv
            corner = dx + <Py_ssize_t>oh * sh * W + ow * sw
            for p in range(kh):
                for q in range(kw):
                    corner[<Py_ssize_t>p * W + q] += share


def avgpool2d_forward(
    const floating[:, :, :, ::1] x,  # IN (N, C, H, W)
    int kh, int kw, int sh, int sw,
    floating[:, :, :, ::1] out,  # OUT (N, C, Ho, Wo)
):
    """Fill ``out`` with the window means of ``x``."""
    cdef int N = x.shape[0], C = x.shape[1], H = x.shape[2], W = x.shape[3]
    cdef int Ho = out.shape[2], Wo = out.shape[3]
    cdef Py_ssize_t k, NC = <Py_ssize_t>N * C, xs = <Py_ssize_t>H * W
    cdef Py_ssize_t ys = <Py_ssize_t>Ho * Wo
    if NC == 0 or ys == 0:
        return
    if kh == 2 and kw == 2 and sh == 2 and sw == 2:
        for k in prange(NC, nogil=True, schedule="static", num_threads=n_threads(NC)):
            _avgpool2_channel(&x[0, 0, 0, 0] + k * xs, W, Ho, Wo, &out[0, 0, 0, 0] + k * ys)
        return
    for k in prange(NC, nogil=True, schedule="static", num_threads=n_threads(NC)):
        _avgpool_channel(&x[0, 0, 0, 0] + k * xs, W, kh, kw, sh, sw, Ho, Wo,
                         &out[0, 0, 0, 0] + k * ys)


def avgpool2d_backward(
    const floating[:, :, :, ::1] dy,  # IN (N, C, Ho, Wo)
    int kh, int kw, int sh, int sw,
    floating[:, :, :, ::1] out,  # OUT (N, C, H, W)
):
    """Fill ``out`` by spreading each ``dy`` value evenly over its window."""
    cdef int N = out.shape[0], C = out.shape[1], H = out.shape[2], W = out.shape[3]
    cdef int Ho = dy.shape[2], Wo = dy.shape[3]
    cdef Py_ssize_t k, NC = <Py_ssize_t>N * C, xs = <Py_ssize_t>H * W
    cdef Py_ssize_t ys = <Py_ssize_t>Ho * Wo
    if NC == 0 or xs == 0:
        return
    for k in prange(NC, nogil=True, schedule="static", num_threads=n_threads(NC)):
        memset(&out[0, 0, 0, 0] + k * xs, 0, xs * sizeof(floating))
        _avgpool_channel_backward(&dy[0, 0, 0, 0] + k * ys, W, kh, kw, sh, sw, Ho, Wo,
                                  &out[0, 0, 0, 0] + k * xs)
