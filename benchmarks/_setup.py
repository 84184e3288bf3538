"""Process settings shared by the benchmarks; import this before NumPy.

refnet itself changes nothing in the process, and needs no thread variables: all parallel
work inside a refnet call runs in one pool (:mod:`refnet.kernels.threads`). The benchmarks
set no ``OMP_*``, ``OPENBLAS_*`` or ``GOMP_*`` variable except ``OMP_NUM_THREADS=2`` where
they say so (``benchmarks/bench_threads.py`` measures the spin-wait variables separately).
The one setting applied here (``--keep-env`` skips it), and printed:

- glibc's allocator keeps freed memory (``mallopt``: mmap threshold 32 MiB, no trimming).
  By default every array over 128 KiB is a fresh ``mmap``, and the first touch of each of
  its pages is a page fault. torch, measured in the same process, gets the same setting.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

#: Environment variables that change how the thread pools wait; reported when set.
THREAD_VARIABLES = ("OPENBLAS_THREAD_TIMEOUT", "GOMP_SPINCOUNT", "OMP_WAIT_POLICY")


def configure(argv: list[str] | None = None) -> list[str]:
    """Apply the settings unless ``--keep-env`` is in ``argv``; return lines describing them."""
    argv = sys.argv if argv is None else argv
    lines = [
        "thread variables: "
        + (
            ", ".join(f"{v}={os.environ[v]}" for v in THREAD_VARIABLES if v in os.environ)
            or "none"
        )
    ]
    if "--keep-env" in argv:
        return [*lines, "process settings: left alone (--keep-env)"]
    libc_name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(libc_name)
        ok = libc.mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1
        ok = libc.mallopt(M_TRIM_THRESHOLD, 1 << 30) == 1 and ok
    except (OSError, AttributeError):
        ok = False
    lines.append(
        "glibc malloc keeps freed memory (mmap threshold 32 MiB, no trim)"
        if ok
        else "glibc mallopt unavailable: allocator left at its defaults"
    )
    coretype = os.environ.get("OPENBLAS_CORETYPE")
    lines.append(f"OPENBLAS_CORETYPE: {coretype if coretype else 'not set'}")
    return lines
