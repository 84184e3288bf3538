"""What the benchmarks share: the issue's conv shapes, interleaved timing, the GEMM rate.

Import it after :mod:`_setup` has configured the process (it imports NumPy).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

#: The foundation issue's shapes: (N, C, H, W, F), 3x3 kernels, stride 1, padding 1.
CONV_SHAPES = [
    (64, 3, 32, 32, 32),
    (64, 32, 32, 32, 64),
    (64, 64, 16, 16, 128),
    (256, 1, 8, 8, 16),
    (16, 64, 56, 56, 64),
]


def interleaved_times(
    fns: dict[str, Callable[[], object]], repeats: int, min_time: float = 0.05
) -> dict[str, float]:
    """Best-of-``repeats`` seconds per call of each function in ``fns``.

    The functions are timed in interleaved rounds (one sample of each per round), so a
    burst of load from elsewhere on the machine hits all of them alike. Each sample loops
    until about ``min_time`` has elapsed (``min_time=0``: one call per sample).
    """
    loops = {}
    for name, fn in fns.items():
        fn()  # warm up (allocations, thread pools, caches)
        loops[name] = 1
        if min_time > 0:
            t0 = time.perf_counter()
            fn()
            once = time.perf_counter() - t0
            loops[name] = max(1, int(min_time / max(once, 1e-7))) if once < min_time else 1
    best = dict.fromkeys(fns, float("inf"))
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            for _ in range(loops[name]):
                fn()
            best[name] = min(best[name], (time.perf_counter() - t0) / loops[name])
    return best


def best_time(fn: Callable[[], object], repeats: int, min_time: float = 0.0) -> float:
    """Best-of-``repeats`` seconds of one function (see :func:`interleaved_times`)."""
    return interleaved_times({"fn": fn}, repeats, min_time)["fn"]


def gemm_rate(dtype: type, repeats: int) -> float:
    """GFLOP/s of a 2048^3 NumPy matmul: the machine's BLAS GEMM rate, in this run."""
    n = 2048
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(dtype) for _ in range(2))
    return 2 * n**3 / best_time(lambda: a @ b, repeats, min_time=0.05) / 1e9
