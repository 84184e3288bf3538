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


# Smallest amount of work (multiply-adds) worth a thread of its own: waking a second
# OpenMP thread costs tens of microseconds, up to a millisecond on a busy machine.
cdef enum:
    WORK_PER_THREAD = 4000000


cdef inline int _n_threads(Py_ssize_t n_items, double work=-1) noexcept nogil:
    """Threads for ``n_items`` independent items totalling ``work`` multiply-adds."""
    if work >= 0 and work < n_items * <double>WORK_PER_THREAD:
        n_items = <Py_ssize_t>(work / WORK_PER_THREAD)
    return n_threads(n_items)
