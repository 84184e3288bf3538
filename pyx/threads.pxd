# cython: language_level=3
# How many OpenMP threads a kernel loop uses (cimported by every kernel in pyx/).

cdef extern from *:
    """
    #ifdef _OPENMP
    #include <omp.h>
    static int refnet_max_threads(void) { return omp_get_max_threads(); }
    #else
    static int refnet_max_threads(void) { return 1; }
    #endif
    """
    int refnet_max_threads() noexcept nogil


cdef inline int n_threads(Py_ssize_t useful) noexcept nogil:
    """Threads for a loop that can keep ``useful`` threads busy: at most the OpenMP
    maximum (``OMP_NUM_THREADS``; 1 without OpenMP), at least 1."""
    cdef int nt = refnet_max_threads()
    if useful < nt:
        nt = <int>useful
    return nt if nt > 0 else 1
