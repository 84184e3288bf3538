r"""Average-pooling wrappers: validate, make contiguous, allocate, call the active kernel.

The arithmetic is in ``pyx/avgpool.pyx`` (compiled) and its NumPy twin
:mod:`refnet.kernels.reference.avgpool`; both take ``kh, kw`` (window) and ``sh, sw``
(strides) and fill a preallocated ``out``. No padding: ``H' = (H - kh) // sh + 1``.

.. math::

    y_{n,c,i,j} = \frac{1}{k_h k_w} \sum_{p,q} x_{n,c,\,i s_h + p,\,j s_w + q}, \qquad
    \frac{\partial L}{\partial x} = \text{each } \delta_{n,c,i,j} / (k_h k_w)
    \text{ spread over its window}.
"""

from __future__ import annotations

import operator

import numpy as np

from .compiled import impl as _impl

FLOATS = (np.float32, np.float64)


def _check_array(name: str, what: str, a: np.ndarray) -> None:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: {what} must be a NumPy array, got {type(a).__name__}")
    if a.dtype.type not in FLOATS:
        raise TypeError(f"{name}: {what} must be float32 or float64, got dtype {a.dtype}")
    if a.ndim != 4:
        raise ValueError(f"{name}: {what} must have 4 dimensions, got shape {a.shape}")


def _geometry(name: str, H: int, W: int, kh: int, kw: int, sh: int, sw: int) -> tuple[int, int]:
    """``(H', W')`` of a ``kh x kw`` window with strides ``(sh, sw)`` on an ``H x W`` input."""
    for label, v in (("kh", kh), ("kw", kw), ("sh", sh), ("sw", sw)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}: {label} must be a positive integer, got {v!r}")
    if kh > H or kw > W:
        raise ValueError(f"{name}: window ({kh}, {kw}) is larger than the input (H, W) = {(H, W)}")
    return (H - kh) // sh + 1, (W - kw) // sw + 1


def avgpool2d_forward(x: np.ndarray, kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    """Window means of ``x`` (N, C, H, W): an array (N, C, H', W') in ``x``'s dtype."""
    name = "avgpool2d_forward"
    _check_array(name, "x", x)
    N, C, H, W = x.shape
    Ho, Wo = _geometry(name, H, W, kh, kw, sh, sw)
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    _impl.avgpool2d_forward(np.ascontiguousarray(x), kh, kw, sh, sw, out)
    return out


def avgpool2d_backward(
    dy: np.ndarray, x_shape: tuple[int, int, int, int], kh: int, kw: int, sh: int, sw: int
) -> np.ndarray:
    """The adjoint: ``dy`` (N, C, H', W') spread over the windows of an ``x_shape`` input."""
    name = "avgpool2d_backward"
    _check_array(name, "dy", dy)
    try:
        N, C, H, W = (operator.index(v) for v in x_shape)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: x_shape must be 4 integers, got {x_shape!r}") from None
    Ho, Wo = _geometry(name, H, W, kh, kw, sh, sw)
    if dy.shape != (N, C, Ho, Wo):
        raise ValueError(
            f"{name}: dy has shape {dy.shape}, expected {(N, C, Ho, Wo)} for x_shape "
            f"{(N, C, H, W)}, window ({kh}, {kw}) and strides ({sh}, {sw})"
        )
    out = np.empty((N, C, H, W), dtype=dy.dtype)
    _impl.avgpool2d_backward(np.ascontiguousarray(dy), kh, kw, sh, sw, out)
    return out
