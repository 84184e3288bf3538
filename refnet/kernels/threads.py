"""The thread runtime of refnet: one pool, OpenMP, runs all parallel work inside a call.

Which pool runs what
--------------------
- **OpenMP (libgomp)** runs every parallel loop inside a refnet call: the compiled conv,
  pooling, ReLU, pattern-statistics and LRP kernels (one ``prange`` over independent work
  items), and the GEMMs of the Dense layers (:mod:`refnet.kernels.dense`: the rows or the
  columns of the product split across the threads). Each OpenMP thread calls BLAS
  (``scipy.linalg.cython_blas``) on its own block.
- **BLAS (OpenBLAS behind NumPy and SciPy)** runs single-threaded for the whole public call:
  :func:`refnet.explain` and :class:`refnet.Explainer` calls, :func:`refnet.fit_patterns`,
  ``Sequential.forward``, ``backward``, ``predict`` and ``__call__``, and training
  (:func:`refnet.train.fit`) enter :class:`BlasOneThread` once (:func:`one_blas_thread`);
  the kernel wrappers enter it again, which then costs a counter increment. The previous
  BLAS limits are restored when the call returns, so the user's own NumPy code between
  refnet calls keeps its BLAS threads.

Why
---
Two pools on the same cores each keep their worker threads spinning for a while after
their work (OpenBLAS about ``2^28`` cycles, libgomp ``GOMP_SPINCOUNT`` iterations), and a
spinning worker of one pool steals the core the other pool needs next. With NumPy's
multi-threaded ``@`` between the kernels (the Dense layers) an explanation ran about 2x
slower than with the spin-waits cut short by environment variables (issue 13;
``benchmarks/bench_threads.py`` prints the ratio now). With one pool there is no other
pool to steal from. The other design, BLAS threads and no OpenMP, would leave the Winograd
transforms, the direct convolutions, im2col/col2im, pooling and the elementwise kernels
single-threaded (they are not GEMMs) and turn each small per-sample GEMM into a fork-join
of its own.

Thread counts follow the user's settings: OpenMP uses ``omp_get_max_threads()``, which
``OMP_NUM_THREADS`` and ``threadpoolctl.threadpool_limits(..., user_api="openmp")`` set;
calls with little work run on fewer threads (``pyx/threads.pxd``). refnet never sets
``GOMP_SPINCOUNT``, ``OMP_WAIT_POLICY`` or ``OPENBLAS_*`` itself: those are read when the
libraries load and would change the user's other code. On the NumPy backend nothing here
acts: NumPy's BLAS is then the only pool.

What one pool cannot remove: on a machine loaded beyond its cores, libgomp's own workers
still spin between the kernels of a call (``GOMP_SPINCOUNT``'s default) and lose their
share of the cores to the other processes, so short calls wait for descheduled workers;
there ``threadpoolctl.threadpool_limits(1, "openmp")`` around the calls is the remedy that
leaves the environment alone (``benchmarks/bench_threads.py`` prints the load average with
its ratios).

The limit is process-wide (threadpoolctl changes the libraries' settings), so NumPy code
running in another Python thread *during* a refnet call also sees one BLAS thread.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)


def compiled_backend() -> bool:
    """Whether the compiled kernels are active (imported late: no import cycle)."""
    from .compiled import backend

    return backend() == "cython"


class BlasOneThread:
    """Context manager: BLAS single-threaded until the outermost ``with`` exits.

    Re-entrant and shared by all Python threads: the first entry applies the limit (a
    threadpoolctl ``limit``, about 15 us; the controller is built once, on first use, after
    the BLAS libraries are loaded), nested entries only count, and the last exit restores
    the previous limits. On the NumPy backend this does nothing.
    """

    _controller = None
    _lock = threading.Lock()
    _depth = 0
    _limit = None

    def __enter__(self) -> BlasOneThread:
        self._active = compiled_backend()
        if not self._active:
            return self
        cls = BlasOneThread
        with cls._lock:
            if cls._depth == 0:
                if cls._controller is None:
                    from threadpoolctl import ThreadpoolController

                    cls._controller = ThreadpoolController()
                cls._limit = cls._controller.limit(limits=1, user_api="blas")
            cls._depth += 1
        return self

    def __exit__(self, *exc: object) -> bool:
        if not self._active:
            return False
        cls = BlasOneThread
        with cls._lock:
            cls._depth -= 1
            if cls._depth == 0 and cls._limit is not None:
                cls._limit.restore_original_limits()
                cls._limit = None
        return False


def one_blas_thread(fn: F) -> F:
    """Decorator: run ``fn`` inside :class:`BlasOneThread` (refnet's public calls)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with BlasOneThread():
            return fn(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


def blas_threads() -> int | None:
    """The BLAS thread count NumPy's matmul would use now (``None`` if unknown)."""
    from threadpoolctl import threadpool_info

    counts = [i["num_threads"] for i in threadpool_info() if i.get("user_api") == "blas"]
    return max(counts) if counts else None
