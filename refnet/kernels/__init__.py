"""Kernel dispatch: the compiled Cython kernels when present, else the NumPy twins.

Every public function here is a thin wrapper that validates shapes, dtypes and geometry,
makes its inputs C-contiguous, allocates the output, and then calls the kernel of the
active backend. The kernels themselves never validate; both backends share one signature
(see :mod:`refnet.kernels.reference`).

The backend is chosen once, at import: ``"cython"`` when the extension modules built by
``setup.py`` import, ``"numpy"`` otherwise, or when the environment variable
``REFNET_BACKEND=numpy`` forces the reference path. Nothing is printed either way.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

import numpy as np

from . import reference
from .reference.im2col import output_size

__all__ = [
    "backend",
    "col2im",
    "conv2d_backward_input",
    "conv2d_backward_weight",
    "conv2d_forward",
    "im2col",
    "maxpool2d_backward",
    "maxpool2d_forward",
    "output_size",
]

FLOATS = (np.float32, np.float64)


#: The extension modules built from ``pyx/`` (``pyx/<stem>.pyx`` -> ``refnet.kernels._<stem>``).
#: All of them must import for the ``"cython"`` backend; otherwise the NumPy twins run.
COMPILED_MODULES = ("_conv", "_pool")


def _load_compiled() -> ModuleType | None:
    if os.environ.get("REFNET_BACKEND", "").strip().lower() == "numpy":
        return None
    try:
        modules = [importlib.import_module(f"{__name__}.{m}") for m in COMPILED_MODULES]
        return _CompiledKernels(*modules)
    except ImportError:
        return None


class _CompiledKernels(ModuleType):
    """Namespace gathering the compiled kernels under the reference twins' names."""

    def __init__(self, *modules: ModuleType) -> None:
        super().__init__("refnet.kernels.compiled")
        for name in reference.__all__:
            for mod in modules:
                if hasattr(mod, name):
                    setattr(self, name, getattr(mod, name))
                    break
            else:
                raise ImportError(f"the compiled kernels lack {name}")


_compiled = _load_compiled()
_impl: ModuleType = _compiled if _compiled is not None else reference


def backend() -> str:
    """Return the active kernel backend: ``"cython"`` or ``"numpy"``."""
    return "cython" if _impl is not reference else "numpy"


# --------------------------------------------------------------------------- validation


def _check_float(name: str, what: str, a: np.ndarray) -> None:
    if not isinstance(a, np.ndarray):
        raise TypeError(f"{name}: {what} must be a NumPy array, got {type(a).__name__}")
    if a.dtype.type not in FLOATS:
        raise TypeError(f"{name}: {what} must be float32 or float64, got dtype {a.dtype}")


def _check_rank(name: str, what: str, a: np.ndarray, rank: int) -> None:
    if a.ndim != rank:
        raise ValueError(f"{name}: {what} must have {rank} dimensions, got shape {a.shape}")


def _check_same_dtype(name: str, **arrays: np.ndarray) -> None:
    dtypes = {k: v.dtype for k, v in arrays.items()}
    if len(set(dtypes.values())) != 1:
        listed = ", ".join(f"{k} {v}" for k, v in dtypes.items())
        raise TypeError(f"{name}: dtypes differ ({listed})")


def _check_geometry(
    name: str, H: int, W: int, kh: int, kw: int, s: int, ph: int, pw: int
) -> tuple[int, int]:
    for label, v in (("kh", kh), ("kw", kw), ("stride", s)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name}: {label} must be a positive integer, got {v!r}")
    for label, v in (("ph", ph), ("pw", pw)):
        if not isinstance(v, (int, np.integer)) or v < 0:
            raise ValueError(f"{name}: padding {label} must be a non-negative integer, got {v!r}")
    if kh > H + 2 * ph or kw > W + 2 * pw:
        raise ValueError(
            f"{name}: kernel ({kh}, {kw}) is larger than the padded input "
            f"({H + 2 * ph}, {W + 2 * pw}) (input (H, W) = ({H}, {W}), padding ({ph}, {pw}))"
        )
    return output_size(H, kh, s, ph), output_size(W, kw, s, pw)


def _c(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a)


# --------------------------------------------------------------------------- im2col


def im2col(x: np.ndarray, kh: int, kw: int, s: int = 1, ph: int = 0, pw: int = 0) -> np.ndarray:
    """Patches of ``x`` (N, C, H, W) as columns, shape ``(N, C*kh*kw, H'*W')``."""
    _check_float("im2col", "x", x)
    _check_rank("im2col", "x", x, 4)
    N, C, H, W = x.shape
    Ho, Wo = _check_geometry("im2col", H, W, kh, kw, s, ph, pw)
    out = np.empty((N, C * kh * kw, Ho * Wo), dtype=x.dtype)
    _impl.im2col(_c(x), kh, kw, s, ph, pw, out)
    return out


def col2im(
    cols: np.ndarray,
    x_shape: tuple[int, int, int, int],
    kh: int,
    kw: int,
    s: int = 1,
    ph: int = 0,
    pw: int = 0,
) -> np.ndarray:
    """Adjoint of :func:`im2col`: columns ``(N, C*kh*kw, H'*W')`` back to ``x_shape``."""
    _check_float("col2im", "cols", cols)
    _check_rank("col2im", "cols", cols, 3)
    if len(x_shape) != 4:
        raise ValueError(f"col2im: x_shape must be (N, C, H, W), got {tuple(x_shape)}")
    N, C, H, W = (int(v) for v in x_shape)
    Ho, Wo = _check_geometry("col2im", H, W, kh, kw, s, ph, pw)
    if cols.shape != (N, C * kh * kw, Ho * Wo):
        raise ValueError(
            f"col2im: cols has shape {cols.shape}, expected {(N, C * kh * kw, Ho * Wo)} "
            f"for x_shape {(N, C, H, W)}, kernel ({kh}, {kw}), stride {s}, padding ({ph}, {pw})"
        )
    out = np.empty((N, C, H, W), dtype=cols.dtype)
    _impl.col2im(_c(cols), kh, kw, s, ph, pw, out)
    return out


# --------------------------------------------------------------------------- convolution


def conv2d_forward(
    x: np.ndarray, W: np.ndarray, b: np.ndarray, s: int = 1, ph: int = 0, pw: int = 0
) -> np.ndarray:
    """Cross-correlation ``y = W * x + b``: x (N, C, H, W), W (F, C, kh, kw) -> (N, F, H', W')."""
    name = "conv2d_forward"
    for what, a in (("x", x), ("W", W), ("b", b)):
        _check_float(name, what, a)
    _check_rank(name, "x", x, 4)
    _check_rank(name, "W", W, 4)
    _check_same_dtype(name, x=x, W=W, b=b)
    N, C, H, Wd = x.shape
    F, Cw, kh, kw = W.shape
    if Cw != C:
        raise ValueError(f"{name}: x has {C} channels but W {W.shape} expects {Cw}")
    if b.shape != (F,):
        raise ValueError(f"{name}: b has shape {b.shape}, expected ({F},) for W {W.shape}")
    Ho, Wo = _check_geometry(name, H, Wd, kh, kw, s, ph, pw)
    out = np.empty((N, F, Ho, Wo), dtype=x.dtype)
    _impl.conv2d_forward(_c(x), _c(W), _c(b), s, ph, pw, out)
    return out


def conv2d_backward_input(
    dy: np.ndarray,
    W: np.ndarray,
    x_shape: tuple[int, int, int, int],
    s: int = 1,
    ph: int = 0,
    pw: int = 0,
) -> np.ndarray:
    """Adjoint (transposed convolution) ``dy W``: dy (N, F, H', W') -> (N, C, H, W)."""
    name = "conv2d_backward_input"
    _check_float(name, "dy", dy)
    _check_float(name, "W", W)
    _check_rank(name, "dy", dy, 4)
    _check_rank(name, "W", W, 4)
    _check_same_dtype(name, dy=dy, W=W)
    N, C, H, Wd = (int(v) for v in x_shape)
    F, Cw, kh, kw = W.shape
    Ho, Wo = _check_geometry(name, H, Wd, kh, kw, s, ph, pw)
    if Cw != C or dy.shape != (N, F, Ho, Wo):
        raise ValueError(
            f"{name}: dy {dy.shape} and W {W.shape} do not fit x_shape {(N, C, H, Wd)} "
            f"(expected dy {(N, F, Ho, Wo)})"
        )
    out = np.empty((N, C, H, Wd), dtype=dy.dtype)
    _impl.conv2d_backward_input(_c(dy), _c(W), s, ph, pw, out)
    return out


def conv2d_backward_weight(
    dy: np.ndarray,
    x: np.ndarray,
    w_shape: tuple[int, int, int, int],
    s: int = 1,
    ph: int = 0,
    pw: int = 0,
) -> np.ndarray:
    """Weight gradient ``sum_n dy_n cols_n^T``: returns an array of shape ``w_shape``."""
    name = "conv2d_backward_weight"
    _check_float(name, "dy", dy)
    _check_float(name, "x", x)
    _check_rank(name, "dy", dy, 4)
    _check_rank(name, "x", x, 4)
    _check_same_dtype(name, dy=dy, x=x)
    F, C, kh, kw = (int(v) for v in w_shape)
    N, Cx, H, Wd = x.shape
    Ho, Wo = _check_geometry(name, H, Wd, kh, kw, s, ph, pw)
    if Cx != C or dy.shape != (N, F, Ho, Wo):
        raise ValueError(
            f"{name}: dy {dy.shape} and x {x.shape} do not fit w_shape {(F, C, kh, kw)} "
            f"(expected dy {(N, F, Ho, Wo)})"
        )
    out = np.empty((F, C, kh, kw), dtype=x.dtype)
    _impl.conv2d_backward_weight(_c(dy), _c(x), s, ph, pw, out)
    return out


# --------------------------------------------------------------------------- max-pooling


def maxpool2d_forward(x: np.ndarray, size: int, s: int) -> tuple[np.ndarray, np.ndarray]:
    """Window maxima and their flat ``h*W + w`` positions, both (N, C, H', W')."""
    name = "maxpool2d_forward"
    _check_float(name, "x", x)
    _check_rank(name, "x", x, 4)
    N, C, H, W = x.shape
    Ho, Wo = _check_geometry(name, H, W, size, size, s, 0, 0)
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    argmax = np.empty((N, C, Ho, Wo), dtype=np.int64)
    _impl.maxpool2d_forward(_c(x), size, s, out, argmax)
    return out, argmax


def maxpool2d_backward(
    dy: np.ndarray, argmax: np.ndarray, x_shape: tuple[int, int, int, int]
) -> np.ndarray:
    """Route ``dy`` (N, C, H', W') to the argmax positions of an ``x_shape`` input."""
    name = "maxpool2d_backward"
    _check_float(name, "dy", dy)
    _check_rank(name, "dy", dy, 4)
    N, C, H, W = (int(v) for v in x_shape)
    if argmax.shape != dy.shape or dy.shape[:2] != (N, C) or argmax.dtype != np.int64:
        raise ValueError(
            f"{name}: dy {dy.shape} and argmax {argmax.shape} ({argmax.dtype}) do not fit "
            f"x_shape {(N, C, H, W)}"
        )
    if argmax.size and (argmax.min() < 0 or argmax.max() >= H * W):
        raise ValueError(f"{name}: argmax holds positions outside an (H, W) = {(H, W)} channel")
    out = np.empty((N, C, H, W), dtype=dy.dtype)
    _impl.maxpool2d_backward(_c(dy), _c(argmax), out)
    return out
