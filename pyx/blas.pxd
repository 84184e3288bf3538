# cython: language_level=3
# Row-major GEMM through scipy's BLAS (cimported by the kernels in pyx/; no module of its own).

from scipy.linalg.cython_blas cimport dgemm, sgemm

from cython cimport floating


cdef inline void _gemm(
    bint trans_a, bint trans_b, int M, int N, int K,
    floating alpha, const floating* A, int lda,
    const floating* B, int ldb,
    floating beta, floating* C, int ldc,
) noexcept nogil:
    """Row-major ``C (M, N) = alpha op(A) op(B) + beta C`` through column-major BLAS.

    A row-major ``C = op(A) op(B)`` is the column-major ``C^T = op(B)^T op(A)^T``, so the
    operands are swapped and the leading dimensions are the row lengths.
    """
    cdef char ta = b"T" if trans_a else b"N"
    cdef char tb = b"T" if trans_b else b"N"
    if M <= 0 or N <= 0:
        return
    if lda < 1:
        lda = 1
    if ldb < 1:
        ldb = 1
    if ldc < 1:
        ldc = 1
    if floating is float:
        sgemm(&tb, &ta, &N, &M, &K, &alpha, <float*>B, &ldb, <float*>A, &lda,
              &beta, C, &ldc)
    else:
        dgemm(&tb, &ta, &N, &M, &K, &alpha, <double*>B, &ldb, <double*>A, &lda,
              &beta, C, &ldc)
