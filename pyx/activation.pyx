# cython: language_level=3
r"""Compiled ReLU kernels (twins of ``refnet/kernels/reference/activation.py``).

The forward pass reads ``x`` once and writes both the output and the mask,

.. math:: y = \max(x, 0), \qquad a = [x > 0] \quad (\text{MATH.md section 0}),

instead of NumPy's two passes (``x > 0``, then ``np.maximum(x, 0)``). The backward pass is
``dx = dy * a``, the product of a float and the 0/1 mask (so ``inf * 0`` is NaN, as in
NumPy); ``out`` may be ``dy`` itself. Arrays are flat and C-contiguous; the mask is the
bytes of a boolean array. OpenMP splits the elements into one contiguous chunk per thread,
with one thread per ``MIN_PER_THREAD`` (65536) elements at most (small arrays are not worth
waking a thread).
"""

from cython.parallel cimport prange

from cython cimport floating

from threads cimport n_threads

cdef extern from *:
    """
    /* One plain loop over restrict pointers, which the compiler vectorises: the select
       0 > v ? 0 : v becomes a compare and a mask (max(v, 0), NaN stays NaN), not a branch
       that random signs would mispredict half the time. */
    #define REFNET_RELU_FORWARD(T, NAME) \
    static void NAME(const T* restrict x, T* restrict y, unsigned char* restrict a, \
                     Py_ssize_t n) { \
        for (Py_ssize_t i = 0; i < n; i++) { \
            T v = x[i]; \
            a[i] = v > 0; \
            y[i] = 0 > v ? 0 : v; \
        } \
    }
    REFNET_RELU_FORWARD(float, refnet_relu_forward_f)
    REFNET_RELU_FORWARD(double, refnet_relu_forward_d)
    """
    void refnet_relu_forward_f(
        const float* x, float* y, unsigned char* a, Py_ssize_t n) noexcept nogil
    void refnet_relu_forward_d(
        const double* x, double* y, unsigned char* a, Py_ssize_t n) noexcept nogil

# Fewest elements per thread.
cdef Py_ssize_t MIN_PER_THREAD = 1 << 16


cdef inline void _relu_forward_chunk(
    const floating* x, floating* y, unsigned char* a, Py_ssize_t n
) noexcept nogil:
    if floating is float:
        refnet_relu_forward_f(x, y, a, n)
    else:
        refnet_relu_forward_d(x, y, a, n)


cdef inline int _n_threads(Py_ssize_t n) noexcept nogil:
    """One thread per ``MIN_PER_THREAD`` elements, at most the OpenMP maximum."""
    return n_threads(n // MIN_PER_THREAD)


def relu_forward(
    const floating[::1] x,  # IN (n,)
    floating[::1] out,  # OUT (n,)
    unsigned char[::1] active,  # OUT (n,) the mask [x > 0] as 0/1 bytes
):
    """Fill ``out`` with ``max(x, 0)`` and ``active`` with ``[x > 0]``."""
    cdef Py_ssize_t c, lo, hi, n = x.shape[0]
    cdef int nt = _n_threads(n)
    cdef Py_ssize_t chunk = (n + nt - 1) // nt
    if n == 0:
        return
    for c in prange(nt, nogil=True, schedule="static", num_threads=nt):
        lo = c * chunk
        hi = min(lo + chunk, n)
        if lo < hi:
            _relu_forward_chunk(&x[lo], &out[lo], &active[lo], hi - lo)


def relu_backward(
    const floating[::1] dy,  # IN (n,)
    const unsigned char[::1] active,  # IN (n,) the mask [x > 0] as 0/1 bytes
    floating[::1] out,  # OUT (n,), may be dy
):
    """Fill ``out`` with ``dy * active``."""
    cdef Py_ssize_t i, n = dy.shape[0]
    if n == 0:
        return
    for i in prange(n, nogil=True, schedule="static", num_threads=_n_threads(n)):
        out[i] = dy[i] * active[i]
