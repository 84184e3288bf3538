"""What every layer shares: input validation and the forward/backward contract.

A layer's ``forward(x)`` returns ``(y, cache)``: the output and a small named object with
what the backward pass needs. ``backward(dy, cache)`` returns ``(dx, grads)``: the gradient
with respect to the input and a dict of parameter gradients (empty for layers without
parameters). Layers compute in the dtype of their input; float32 and float64 are supported.
"""

from __future__ import annotations

from typing import Any

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


class Layer:
    """Base class: a named, stateless-in-forward map with an explicit backward rule."""

    #: Parameter names, in a fixed order (``("W", "b")`` for kernel layers).
    param_names: tuple[str, ...] = ()

    def forward(self, x: np.ndarray, check_finite: bool = True) -> tuple[np.ndarray, Any]:
        raise NotImplementedError

    def backward(self, dy: np.ndarray, cache: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        raise NotImplementedError

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)[0]

    def params(self) -> dict[str, np.ndarray]:
        """The layer's parameters by name (the arrays themselves, not copies)."""
        return {name: getattr(self, name) for name in self.param_names}

    def config(self) -> dict[str, Any]:
        """Hyper-parameters (not weights) that rebuild the layer; used by ``save``."""
        return {}

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        """Shape of the output for an input of ``input_shape`` (batch axis included)."""
        raise NotImplementedError

    def astype(self, dtype: np.dtype | type) -> Layer:
        """Cast the parameters to ``dtype`` in place and return the layer."""
        for name in self.param_names:
            setattr(self, name, getattr(self, name).astype(dtype))
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"


def check_input(
    layer: str,
    x: Any,
    rank: int | None,
    check_finite: bool = True,
    what: str = "input",
) -> None:
    """Raise a ``TypeError``/``ValueError`` naming ``layer`` and the shape if ``x`` is bad."""
    if not isinstance(x, np.ndarray):
        raise TypeError(f"{layer}: {what} must be a NumPy array, got {type(x).__name__}")
    if x.dtype.type not in FLOAT_DTYPES:
        raise TypeError(
            f"{layer}: {what} must be float32 or float64, got dtype {x.dtype} (shape {x.shape})"
        )
    if rank is not None and x.ndim != rank:
        raise ValueError(f"{layer}: {what} must have {rank} dimensions, got shape {x.shape}")
    if check_finite and not np.isfinite(x).all():
        raise ValueError(f"{layer}: {what} of shape {x.shape} contains NaN or infinity")


def check_upstream(layer: str, r: Any, expected: tuple[int, ...]) -> None:
    """Raise unless the upstream signal ``r`` is a float array of the ``expected`` shape."""
    if not isinstance(r, np.ndarray) or r.dtype.type not in FLOAT_DTYPES:
        raise TypeError(
            f"{layer}: upstream signal must be a float32 or float64 array, got "
            f"{getattr(r, 'dtype', type(r).__name__)}"
        )
    if r.shape != tuple(expected):
        raise ValueError(
            f"{layer}: upstream signal has shape {r.shape}, expected {tuple(expected)}"
        )


def as_param(layer: str, name: str, a: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    """Validate a parameter array: floating, finite, and of ``shape`` when given."""
    a = np.asarray(a)
    if a.dtype.type not in FLOAT_DTYPES:
        if np.issubdtype(a.dtype, np.integer):
            a = a.astype(np.float64)
        else:
            raise TypeError(f"{layer}: {name} must be float32 or float64, got dtype {a.dtype}")
    if shape is not None and a.shape != shape:
        raise ValueError(f"{layer}: {name} has shape {a.shape}, expected {shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{layer}: {name} of shape {a.shape} contains NaN or infinity")
    return np.ascontiguousarray(a)


def cast_like(a: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``a`` in the dtype of ``x`` (no copy when they already agree)."""
    return a if a.dtype == x.dtype else a.astype(x.dtype)
