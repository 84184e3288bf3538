# cython: language_level=3
r"""Compiled elementwise steps of the LRP engine (twins of ``refnet/kernels/reference/lrp.py``).

The engine (:mod:`refnet.attribution.rules_lrp`) is "forward, divide, adjoint, multiply";
the forward and the adjoint are the layer's own kernels, and these are the divide and the
multiply (MATH.md section 4), one pass each, with no temporaries:

.. math::

    s_j = \frac{R_j}{z_j + \epsilon\,\mathrm{sign}(z_j)}, \qquad
    s = \Big[\frac{\alpha R}{z^+};\ -\frac{\beta R}{z^-}\Big],\ z^- = z - z^+ - o, \qquad
    R_i = \sum_k x_{k,i}\, c_{k,i} ,

where a zero denominator gives 0. OpenMP splits the rows (or elements) over the threads,
one thread per ``MIN_PER_THREAD`` (65536) elements at most.
"""

from cython.parallel cimport prange

from cython cimport floating

from threads cimport n_threads

# Fewest elements per thread.
cdef Py_ssize_t MIN_PER_THREAD = 1 << 16


cdef inline floating _ratio(floating R, floating d) noexcept nogil:
    """``R / d``, and 0 where ``d == 0`` (a zero denominator contributes nothing)."""
    return R / d if d != 0 else 0


def lrp_ratio(
    const floating[::1] R,  # IN (n,)
    const floating[::1] z,  # IN (n,)
    double eps,
    floating[::1] out,  # OUT (n,), may be R
):
    """Fill ``out`` with ``R / (z + eps sign(z))``, ``sign(0) = +1``; 0 where that is 0."""
    cdef Py_ssize_t i, n = R.shape[0]
    cdef floating e = <floating>eps
    cdef floating zi
    if n == 0:
        return
    for i in prange(n, nogil=True, schedule="static",
                    num_threads=n_threads(n // MIN_PER_THREAD)):
        zi = z[i]
        out[i] = _ratio(R[i], zi + e if zi >= 0 else zi - e)


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
    cdef Py_ssize_t row, n, f, p
    cdef floating a = <floating>alpha, mb = -<floating>beta
    cdef floating zp, zm
    if N * F * P == 0:
        return
    for row in prange(N * F, nogil=True, schedule="static",
                      num_threads=n_threads(N * F * P // MIN_PER_THREAD)):
        n = row // F
        f = row % F
        for p in range(P):
            zp = z_plus[n, f, p]
            zm = z[n, f, p] - zp - offset[f]
            out[n, f, p] = _ratio(a * R[n, f, p], zp)
            out[n, F + f, p] = _ratio(mb * R[n, f, p], zm)


def lrp_input_relevance(
    const floating[:, :, ::1] X,  # IN (N, k, M) the k modified inputs x_k
    const floating[:, :, ::1] c,  # IN (N, k, M) their adjoints c_k
    floating[:, ::1] out,  # OUT (N, M), may be c when k = 1
):
    """Fill ``out`` with ``sum_k X[:, k] * c[:, k]``."""
    cdef Py_ssize_t N = X.shape[0], k = X.shape[1], M = X.shape[2]
    cdef Py_ssize_t n, j, m
    cdef floating acc
    if N * M == 0:
        return
    for n in prange(N, nogil=True, schedule="static",
                    num_threads=n_threads(N * k * M // MIN_PER_THREAD)):
        for m in range(M):
            acc = 0
            for j in range(k):
                acc = acc + X[n, j, m] * c[n, j, m]
            out[n, m] = acc
