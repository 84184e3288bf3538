"""The thread runtime of refnet's compiled kernels.

The compiled kernels parallelise with OpenMP and call BLAS from inside each OpenMP thread,
so BLAS must run single-threaded while they run (:class:`BlasOneThread`).
"""

from __future__ import annotations


def compiled_backend() -> bool:
    """Whether the compiled kernels are active (imported late: no import cycle)."""
    from .compiled import backend

    return backend() == "cython"


class BlasOneThread:
    """Context manager: BLAS single-threaded while a compiled kernel runs.

    The compiled kernels call BLAS from inside their own OpenMP threads, one GEMM per
    thread; a multi-threaded BLAS there would oversubscribe the cores. The threadpoolctl
    controller is built once, on first use (after the BLAS libraries are loaded), and a
    ``limit`` costs about 15 us. On the NumPy backend this does nothing.
    """

    _controller = None

    def __enter__(self):
        if not compiled_backend():
            self._limit = None
            return self
        if BlasOneThread._controller is None:
            from threadpoolctl import ThreadpoolController

            BlasOneThread._controller = ThreadpoolController()
        self._limit = BlasOneThread._controller.limit(limits=1, user_api="blas")
        return self

    def __exit__(self, *exc):
        if self._limit is not None:
            self._limit.restore_original_limits()
        return False
