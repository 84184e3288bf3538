# cython: language_level=3
r"""Compiled elementwise steps of the LRP engine (twins of ``refnet/kernels/reference/lrp.py``).

The engine (:mod:`refnet.attribution.rules_lrp`) is "forward, divide, adjoint, multiply";
the forward and the adjoint are the layer's own kernels, and these are the divide and the
multiply (MATH.md section 4), one pass each, with no temporaries:

.. math::

    s_j = \frac{R_j}{z_j + \epsilon\,\mathrm{sign}(z_j)}, \qquad
    s = \Big[\frac{\alpha R}{z^+};\ -\frac{\beta R}{z^-}\Big],\ z^- = z - z^+ - o, \qquad
    R_i = \sum_k x_{k,i}\, c_{k,i} ,

where a zero denominator gives 0. The loops are in ``lrp.h``; OpenMP splits the rows (or
chunks of elements) over the threads, one thread per ``MIN_PER_THREAD`` (65536) elements at
most.
"""

from cython.parallel cimport prange

from cython cimport floating

from threads cimport n_threads

cdef extern from "lrp.h":
    void refnet_lrp_ratio_f(
        const float* R, const float* z, float eps, float* out, Py_ssize_t n) noexcept nogil
    void refnet_lrp_ratio_d(
        const double* R, const double* z, double eps, double* out, Py_ssize_t n) noexcept nogil
    void refnet_lrp_ratio_alpha_beta_f(
        const float* R, const float* z, const float* zp, float offset, float a, float mb,
        float* out_plus, float* out_minus, Py_ssize_t n) noexcept nogil
    void refnet_lrp_ratio_alpha_beta_d(
        const double* R, const double* z, const double* zp, double offset, double a,
        double mb, double* out_plus, double* out_minus, Py_ssize_t n) noexcept nogil
    void refnet_lrp_input_relevance_f(
        const float* X, const float* c, int k, float* out, Py_ssize_t n) noexcept nogil
    void refnet_lrp_input_relevance_d(
        const double* X, const double* c, int k, double* out, Py_ssize_t n) noexcept nogil

# Fewest elements per thread.
cdef Py_ssize_t MIN_PER_THREAD = 1 << 16


def lrp_ratio(
    const floating[::1] R,  # IN (n,)
    const floating[::1] z,  # IN (n,)
    double eps,
    floating[::1] out,  # OUT (n,), may be R
):
    """Fill ``out`` with ``R / (z + eps sign(z))``, ``sign(0) = +1``; 0 where that is 0."""
    cdef Py_ssize_t c, lo, hi, n = R.shape[0]
    cdef int nt = n_threads(n // MIN_PER_THREAD)
    cdef Py_ssize_t chunk = (n + nt - 1) // nt
    if n == 0:
        return
    for c in prange(nt, nogil=True, schedule="static", num_threads=nt):
        lo = c * chunk
        hi = min(lo + chunk, n)
        if lo < hi:
            if floating is float:
                refnet_lrp_ratio_f(&R[lo], &z[lo], <float>eps, &out[lo], hi - lo)
            else:
                refnet_lrp_ratio_d(&R[lo], &z[lo], eps, &out[lo], hi - lo)


def lrp_ratio_alpha_beta(
    const floating[:, :, ::1] R,  # IN (N, F, P)
    const floating[:, :, ::1] z,  # IN (N, F, P) the plain forward pass
    const floating[:, :, ::1] z_plus,  # IN (N, F, P)
    const floating[::1] offset,  # IN (F,)
    double alpha, double beta,
    floating[:, :, ::1] out,  # OUT (N, 2F, P): [alpha R / z^+; -beta R / z^-]
):
    """Fill ``out[:, :F]`` with ``alpha R / z^+`` and ``out[:, F:]`` with ``-beta R / z^-``,
    ``z^- = z - z^+ - offset`` (0 where a denominator is 0)."""
    cdef Py_ssize_t N = R.shape[0], F = R.shape[1], P = R.shape[2]
    cdef Py_ssize_t row, n, f
    if N * F * P == 0:
        return
    for row in prange(N * F, nogil=True, schedule="static",
                      num_threads=n_threads(N * F * P // MIN_PER_THREAD)):
        n = row // F
        f = row % F
        if floating is float:
            refnet_lrp_ratio_alpha_beta_f(
                &R[n, f, 0], &z[n, f, 0], &z_plus[n, f, 0], offset[f], <float>alpha,
                -<float>beta, &out[n, f, 0], &out[n, F + f, 0], P)
        else:
            refnet_lrp_ratio_alpha_beta_d(
                &R[n, f, 0], &z[n, f, 0], &z_plus[n, f, 0], offset[f], alpha, -beta,
                &out[n, f, 0], &out[n, F + f, 0], P)


def lrp_input_relevance(
    const floating[:, :, ::1] X,  # IN (N, k, M) the k modified inputs x_k
    const floating[:, :, ::1] c,  # IN (N, k, M) their adjoints c_k
    floating[:, ::1] out,  # OUT (N, M), may be c when k = 1
):
    """Fill ``out`` with ``sum_k X[:, k] * c[:, k]``."""
    cdef Py_ssize_t N = X.shape[0], M = X.shape[2], n
    cdef int k = X.shape[1]
    if N * M == 0:
        return
    for n in prange(N, nogil=True, schedule="static",
                    num_threads=n_threads(N * k * M // MIN_PER_THREAD)):
        if floating is float:
            refnet_lrp_input_relevance_f(&X[n, 0, 0], &c[n, 0, 0], k, &out[n, 0], M)
        else:
            refnet_lrp_input_relevance_d(&X[n, 0, 0], &c[n, 0, 0], k, &out[n, 0], M)
