# cython: language_level=3
r"""Compiled Dense-layer GEMMs (twins of ``refnet/kernels/reference/dense.py``).

.. math::

    z = x W^\top + b, \qquad \frac{\partial L}{\partial x} = \delta W, \qquad
    \frac{\partial L}{\partial W} = \delta^\top x \quad (\text{MATH.md section 0}).

Each product runs in refnet's OpenMP pool (:mod:`refnet.kernels.threads`): the rows or the
columns of the output, whichever there are more of, split into one block per thread, and
each thread calls single-threaded BLAS (``scipy.linalg.cython_blas``) on its block. Calls
with little work run on fewer threads (``pyx/threads.pxd``).
"""

from cython.parallel cimport prange

from cython cimport floating

from blas cimport _gemm
from threads cimport _n_threads

# Output rows or columns per block are a multiple of this (whole cache lines of C).
cdef int ALIGN = 16


cdef void _parallel_gemm(
    bint trans_a, bint trans_b, int M, int N, int K,
    const floating* A, int lda, const floating* B, int ldb,
    floating beta, floating* C, int ldc,
) noexcept nogil:
    """Row-major ``C (M, N) = op(A) op(B) + beta C``, rows or columns split over threads."""
    cdef int nt = _n_threads(M if M >= N else N, <double>M * N * K)
    cdef int c, lo, hi, n_split = M if M >= N else N
    cdef int chunk = (n_split + nt - 1) // nt
    cdef floating one = 1
    if M <= 0 or N <= 0:
        return
    chunk = ((chunk + ALIGN - 1) // ALIGN) * ALIGN
    for c in prange(nt, nogil=True, schedule="static", num_threads=nt):
        lo = c * chunk
        hi = min(lo + chunk, n_split)
        if lo >= hi:
            continue
        if M >= N:  # a block of rows: op(A)'s rows lo..hi
            _gemm(trans_a, trans_b, hi - lo, N, K, one,
                  A + (lo if trans_a else <Py_ssize_t>lo * lda), lda, B, ldb,
                  beta, C + <Py_ssize_t>lo * ldc, ldc)
        else:  # a block of columns: op(B)'s columns lo..hi
            _gemm(trans_a, trans_b, M, hi - lo, K, one, A, lda,
                  B + (<Py_ssize_t>lo * ldb if trans_b else lo), ldb,
                  beta, C + lo, ldc)


def dense_forward(
    const floating[:, ::1] x,  # IN (N, D)
    const floating[:, ::1] W,  # IN (K, D)
    const floating[::1] b,  # IN (K,)
    floating[:, ::1] out,  # OUT (N, K)
):
    """Fill ``out`` with ``x W^T + b``."""
    cdef int N = x.shape[0], D = x.shape[1], K = W.shape[0]
    cdef Py_ssize_t n, k
    if N == 0 or K == 0:
        return
    for n in range(N):
        for k in range(K):
            out[n, k] = b[k]
    if D == 0:
        return
    _parallel_gemm(False, True, N, K, D, &x[0, 0], D, &W[0, 0], D, 1, &out[0, 0], K)


def dense_backward_input(
    const floating[:, ::1] r,  # IN (N, K)
    const floating[:, ::1] W,  # IN (K, D)
    floating[:, ::1] out,  # OUT (N, D)
):
    """Fill ``out`` with ``r W`` (the adjoint of ``x -> x W^T``)."""
    cdef int N = r.shape[0], K = r.shape[1], D = W.shape[1]
    if N == 0 or D == 0:
        return
    if K == 0:
        out[:, :] = 0
        return
    _parallel_gemm(False, False, N, D, K, &r[0, 0], K, &W[0, 0], D, 0, &out[0, 0], D)


def dense_backward_weight(
    const floating[:, ::1] dy,  # IN (N, K)
    const floating[:, ::1] x,  # IN (N, D)
    floating[:, ::1] out,  # OUT (K, D)
):
    """Fill ``out`` with ``dy^T x`` (the weight gradient)."""
    cdef int N = dy.shape[0], K = dy.shape[1], D = x.shape[1]
    if K == 0 or D == 0:
        return
    if N == 0:
        out[:, :] = 0
        return
    _parallel_gemm(True, False, K, D, N, &dy[0, 0], K, &x[0, 0], D, 0, &out[0, 0], D)
