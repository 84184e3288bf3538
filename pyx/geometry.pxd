# cython: language_level=3
# Shared inline helpers of the kernels in pyx/ (cimported; no module of its own).


cdef inline void clip_range(
    int n_out, int s, int offset, int size, int* lo, int* hi,
) noexcept nogil:
    """Output indices ``o`` in ``[lo, hi)`` have ``0 <= o*s + offset < size``.

    An im2col row for kernel offset ``i`` reads input row ``o*s + i - p``; the outputs
    whose row falls into the zero padding are exactly those outside ``[lo, hi)``.
    """
    cdef int a = 0, e = n_out
    if offset < 0:
        a = (-offset + s - 1) // s
    if size - offset <= 0:
        e = 0
    elif (size - offset - 1) // s + 1 < e:
        e = (size - offset - 1) // s + 1
    if a > e:
        a = e
    lo[0] = a
    hi[0] = e
