"""Process settings shared by the benchmarks; import this before NumPy.

refnet itself changes nothing in the process. A benchmark is a throughput measurement, so
it applies the settings a user who wants throughput would apply (``--keep-env`` skips them
all), and prints them:

- ``OPENBLAS_THREAD_TIMEOUT=4`` and ``GOMP_SPINCOUNT=10000``: OpenBLAS and OpenMP worker
  threads stop spinning soon after their work, so the two pools do not steal each other's
  core (see :mod:`refnet.kernels`). They must be set before NumPy is imported.
- glibc's allocator keeps freed memory (``mallopt``: mmap threshold 32 MiB, no trimming).
  By default every array over 128 KiB is a fresh ``mmap``, and the first touch of each of
  its pages is a page fault: on the peer-anchor network an explanation spends about 20 of
  its 60 ms in page faults. torch, measured in the same process, gets the same setting.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3


def configure(argv: list[str] | None = None) -> list[str]:
    """Apply the settings unless ``--keep-env`` is in ``argv``; return lines describing them."""
    argv = sys.argv if argv is None else argv
    if "--keep-env" in argv:
        return ["process settings: left alone (--keep-env)"]
    os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", "4")
    os.environ.setdefault("GOMP_SPINCOUNT", "10000")
    lines = [
        f"OPENBLAS_THREAD_TIMEOUT={os.environ['OPENBLAS_THREAD_TIMEOUT']}, "
        f"GOMP_SPINCOUNT={os.environ['GOMP_SPINCOUNT']}"
    ]
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
