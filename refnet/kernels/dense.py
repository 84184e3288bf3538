r"""Validating wrappers of the Dense-layer products (MATH.md section 0).

.. math::

    z = x W^\top + b, \qquad \frac{\partial L}{\partial x} = \delta W, \qquad
    \frac{\partial L}{\partial W} = \delta^\top x .

Each wrapper checks shapes and dtypes, makes the inputs C-contiguous, allocates the output
and calls the kernel of the active backend: ``pyx/dense.pyx`` (the GEMM split over refnet's
OpenMP threads, each running single-threaded BLAS; see :mod:`refnet.kernels.threads`) or
its NumPy twin :mod:`refnet.kernels.reference.dense`.
"""

from __future__ import annotations

import numpy as np

from .compiled import impl as _impl
from .threads import BlasOneThread

FLOATS = (np.float32, np.float64)


def _check(name: str, **arrays: np.ndarray) -> None:
    """Float32/float64 NumPy arrays of the given ranks (``what=(array, rank)``), one dtype."""
    for what, (a, rank) in arrays.items():
        if not isinstance(a, np.ndarray):
            raise TypeError(f"{name}: {what} must be a NumPy array, got {type(a).__name__}")
        if a.dtype.type not in FLOATS:
            raise TypeError(f"{name}: {what} must be float32 or float64, got dtype {a.dtype}")
        if a.ndim != rank:
            raise ValueError(f"{name}: {what} must have {rank} dimensions, got shape {a.shape}")
    dtypes = {what: a.dtype for what, (a, _) in arrays.items()}
    if len(set(dtypes.values())) != 1:
        listed = ", ".join(f"{k} {v}" for k, v in dtypes.items())
        raise TypeError(f"{name}: dtypes differ ({listed})")


def dense_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``z = x W^T + b``: x (N, D), W (K, D), b (K,) -> z (N, K)."""
    name = "dense_forward"
    _check(name, x=(x, 2), W=(W, 2), b=(b, 1))
    if x.shape[1] != W.shape[1] or b.shape != (W.shape[0],):
        raise ValueError(f"{name}: x {x.shape}, W {W.shape} and b {b.shape} do not fit")
    out = np.empty((x.shape[0], W.shape[0]), dtype=x.dtype)
    with BlasOneThread():
        _impl.dense_forward(
            np.ascontiguousarray(x), np.ascontiguousarray(W), np.ascontiguousarray(b), out
        )
    return out


def dense_backward_input(r: np.ndarray, W: np.ndarray) -> np.ndarray:
    """The adjoint ``r W``: r (N, K), W (K, D) -> (N, D)."""
    name = "dense_backward_input"
    _check(name, r=(r, 2), W=(W, 2))
    if r.shape[1] != W.shape[0]:
        raise ValueError(f"{name}: r {r.shape} does not fit W {W.shape}")
    out = np.empty((r.shape[0], W.shape[1]), dtype=r.dtype)
    with BlasOneThread():
        _impl.dense_backward_input(np.ascontiguousarray(r), np.ascontiguousarray(W), out)
    return out


def dense_backward_weight(dy: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The weight gradient ``dy^T x``: dy (N, K), x (N, D) -> (K, D)."""
    name = "dense_backward_weight"
    _check(name, dy=(dy, 2), x=(x, 2))
    if dy.shape[0] != x.shape[0]:
        raise ValueError(f"{name}: dy {dy.shape} and x {x.shape} have different batch sizes")
    out = np.empty((dy.shape[1], x.shape[1]), dtype=x.dtype)
    with BlasOneThread():
        _impl.dense_backward_weight(np.ascontiguousarray(dy), np.ascontiguousarray(x), out)
    return out
