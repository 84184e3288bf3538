r"""Validating wrappers of the pattern-statistics kernel (MATH.md section 3).

:func:`pattern_stats_dense` and :func:`pattern_stats_conv` check shapes and dtypes, make
the inputs C-contiguous, allocate the float64 outputs and call the kernel of the active
backend (``refnet.kernels._impl``: ``pyx/stats.pyx`` when compiled, else the NumPy twin in
:mod:`refnet.kernels.reference.stats`, which documents the arithmetic):

.. math::

    S = X'^\top R, \qquad X' = X - x_0, \qquad
    R = [M,\ M Y' \mid 1,\ Y'], \qquad Y' = Z - b - y_0, \qquad M = [Z > 0].

The compiled kernel runs its own OpenMP threads, each calling single-threaded BLAS on its
chunk, so BLAS is limited to one thread for the duration of the call (the same
``_BlasOneThread`` context the conv kernels use).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from . import _check_geometry

FLOATS = (np.float32, np.float64)


class BatchStats(NamedTuple):
    r"""One batch's sums, all float64.

    Attributes
    ----------
    S : ndarray, shape (D, n_cols)
        ``X'^T R``; the column blocks are ``[M, M Y']`` (if masked) then ``[1, Y']``
        (if unmasked).
    ysum : ndarray, shape (3, K)
        Rows ``sum M``, ``sum M Y'``, ``sum Y'`` (the last over all rows).
    XX : ndarray or None, shape (D, D)
        ``X'^T X'`` when requested.
    rows : int
        Number of rows ``n`` (patches for a conv).
    """

    S: np.ndarray
    ysum: np.ndarray
    XX: np.ndarray | None
    rows: int


def n_columns(K: int, masked: bool, unmasked: bool) -> int:
    """Columns of ``R``: ``2K`` for the masked block plus ``1 + K`` for the unmasked one."""
    return (2 * K if masked else 0) + (1 + K if unmasked else 0)


def _check(name: str, what: str, a: np.ndarray, ndim: int) -> None:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: {what} must be a NumPy array, got {type(a).__name__}")
    if a.dtype.type not in FLOATS:
        raise TypeError(f"{name}: {what} must be float32 or float64, got dtype {a.dtype}")
    if a.ndim != ndim:
        raise ValueError(f"{name}: {what} must have {ndim} dimensions, got shape {a.shape}")


def _shifts(name: str, x0: np.ndarray, y0: np.ndarray, D: int, K: int):
    x0 = np.ascontiguousarray(x0, dtype=np.float64)
    y0 = np.ascontiguousarray(y0, dtype=np.float64)
    if x0.shape != (D,) or y0.shape != (K,):
        raise ValueError(
            f"{name}: shifts x0 {x0.shape} and y0 {y0.shape} must be ({D},) and ({K},)"
        )
    return x0, y0


def _outputs(D: int, K: int, masked: bool, unmasked: bool, xx: bool):
    if not (masked or unmasked):
        raise ValueError("pattern statistics: at least one of masked, unmasked must be True")
    S = np.empty((D, n_columns(K, masked, unmasked)))  # (D, n_cols)
    ysum = np.empty((3, K))  # (3, K)
    XX = np.empty((D, D)) if xx else None  # (D, D)
    return S, ysum, XX


def pattern_stats_dense(
    X: np.ndarray,
    Z: np.ndarray,
    b: np.ndarray,
    x0: np.ndarray,
    y0: np.ndarray,
    masked: bool = True,
    unmasked: bool = True,
    xx: bool = False,
) -> BatchStats:
    r"""Sums of one batch of dense rows ``X`` (n, D) with pre-activations ``Z`` (n, K).

    Parameters
    ----------
    X : ndarray, shape (n, D)
        Layer input rows (float32 or float64).
    Z : ndarray, shape (n, K)
        Pre-activations ``X W^T + b`` (same dtype as ``X``); the mask is ``Z > 0``.
    b : ndarray, shape (K,)
        Bias (``y = Z - b`` excludes it).
    x0, y0 : ndarray, shapes (D,) and (K,)
        The shifts of MATH.md section 3 (cast to float64).
    masked, unmasked, xx : bool
        Which blocks of ``R`` to form, and whether to collect ``X'^T X'``.

    Returns
    -------
    BatchStats
    """
    name = "pattern_stats_dense"
    _check(name, "X", X, 2)
    _check(name, "Z", Z, 2)
    _check(name, "b", b, 1)
    (n, D), K = X.shape, Z.shape[1]
    if Z.shape[0] != n or b.shape != (K,) or len({X.dtype, Z.dtype, b.dtype}) != 1:
        raise ValueError(
            f"{name}: X {X.shape} {X.dtype}, Z {Z.shape} {Z.dtype} and b {b.shape} "
            f"{b.dtype} do not fit (expected Z ({n}, K), b (K,), one dtype)"
        )
    x0, y0 = _shifts(name, x0, y0, D, K)
    S, ysum, XX = _outputs(D, K, masked, unmasked, xx)
    from . import _BlasOneThread, _impl

    with _BlasOneThread():
        _impl.pattern_stats_dense(
            np.ascontiguousarray(X), np.ascontiguousarray(Z), np.ascontiguousarray(b),
            x0, y0, bool(masked), bool(unmasked), S, ysum, XX,
        )  # fmt: skip
    return BatchStats(S, ysum, XX, n)


def pattern_stats_conv(
    x: np.ndarray,
    Z: np.ndarray,
    b: np.ndarray,
    x0: np.ndarray,
    y0: np.ndarray,
    kh: int,
    kw: int,
    s: int = 1,
    ph: int = 0,
    pw: int = 0,
    masked: bool = True,
    unmasked: bool = True,
    xx: bool = False,
) -> BatchStats:
    r"""Sums of one batch of a Conv2D layer: rows are the patches of ``x`` (N, C, H, W).

    ``Z`` (N, K, H', W') are the conv's pre-activations; ``x0`` has ``C*kh*kw`` entries in
    im2col's ``(C, kh, kw)`` order. Patches are extracted chunk by chunk inside the kernel.
    Other parameters as in :func:`pattern_stats_dense`.
    """
    name = "pattern_stats_conv"
    _check(name, "x", x, 4)
    _check(name, "Z", Z, 4)
    _check(name, "b", b, 1)
    N, C, H, W = x.shape
    K = Z.shape[1]
    Ho, Wo = _check_geometry(name, H, W, kh, kw, s, ph, pw)
    if Z.shape != (N, K, Ho, Wo) or b.shape != (K,) or len({x.dtype, Z.dtype, b.dtype}) != 1:
        raise ValueError(
            f"{name}: x {x.shape} {x.dtype}, Z {Z.shape} {Z.dtype} and b {b.shape} {b.dtype} "
            f"do not fit (expected Z ({N}, K, {Ho}, {Wo}), b (K,), one dtype)"
        )
    D = C * kh * kw
    x0, y0 = _shifts(name, x0, y0, D, K)
    S, ysum, XX = _outputs(D, K, masked, unmasked, xx)
    from . import _BlasOneThread, _impl

    with _BlasOneThread():
        if _use_winograd_stats(kh, kw, s, C, Ho, Wo, x0, xx):
            _impl.pattern_stats_conv_winograd(
                np.ascontiguousarray(x), np.ascontiguousarray(Z), np.ascontiguousarray(b),
                x0, y0, int(ph), int(pw), bool(masked), bool(unmasked), S, ysum,
            )  # fmt: skip
            return BatchStats(S, ysum, XX, N * Ho * Wo)
        _impl.pattern_stats_conv(
            np.ascontiguousarray(x), np.ascontiguousarray(Z), np.ascontiguousarray(b),
            x0, y0, int(kh), int(kw), int(s), int(ph), int(pw), bool(masked), bool(unmasked),
            S, ysum, XX,
        )  # fmt: skip
    return BatchStats(S, ysum, XX, N * Ho * Wo)


def _use_winograd_stats(
    kh: int, kw: int, s: int, C: int, Ho: int, Wo: int, x0: np.ndarray, xx: bool
) -> bool:
    """Winograd F(3x3, 4x4) statistics for a stride-1 3x3 conv layer (compiled backend).

    Faster than the patch GEMM on the layers with two or more input channels measured on
    this machine, from (C3, K8) to (C32, K64) on 32x32 images (one thread: 2.3x there) and
    (C8, K16) on 8x8; with one channel the patch GEMM (9 taps) is as fast or faster on small
    images, and outputs under :data:`refnet.kernels.WINOGRAD4_MIN_SIZE` pixels a side are
    mostly partial tiles. Needs one shift per input channel (what
    :class:`refnet.patterns.LayerStats` uses for convs) and no ``X'^T X'``;
    :data:`refnet.kernels.WINOGRAD` ``= False`` turns it off.
    """
    from . import WINOGRAD, WINOGRAD4_MIN_SIZE, _impl, reference

    return (
        WINOGRAD
        and _impl is not reference
        and (kh, kw, s) == (3, 3, 1)
        and not xx
        and C >= 2
        and min(Ho, Wo) >= WINOGRAD4_MIN_SIZE
        and bool(np.all(x0.reshape(C, 9) == x0.reshape(C, 9)[:, :1]))
    )
