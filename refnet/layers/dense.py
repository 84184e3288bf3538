r"""Dense (fully connected) layer: :math:`z = x W^\top + b`.

Shapes: ``x (N, in)``, ``W (out, in)``, ``b (out,)``, ``z (N, out)`` — the convention of
PyTorch's ``nn.Linear`` (MATH.md section 0). The backward pass is

.. math::

    \frac{\partial L}{\partial x} = \delta W, \qquad
    \frac{\partial L}{\partial W} = \delta^\top x, \qquad
    \frac{\partial L}{\partial b} = \textstyle\sum_n \delta_n .

``adjoint(r, cache, weight)`` is the map ``r -> r @ weight`` with a swappable ``weight`` of
``W``'s shape: ``W`` gives the gradient, the pattern ``A`` gives PatternNet and ``W * A``
gives PatternAttribution (MATH.md section 4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels import dense as dense_kernels
from .args import whole_number
from .base import Layer, as_param, cast_like, check_input, check_upstream
from .init import initial_weights


@dataclass(frozen=True)
class DenseCache:
    """What Dense's backward needs: the layer input ``x`` (N, in)."""

    x: np.ndarray


class Dense(Layer):
    """Fully connected layer with weight ``W`` (out, in) and bias ``b`` (out,)."""

    param_names = ("W", "b")

    def __init__(self, W: np.ndarray, b: np.ndarray | None = None) -> None:
        W = as_param("Dense", "W", W)
        if W.ndim != 2:
            raise ValueError(f"Dense: W must have shape (out, in), got {W.shape}")
        self.W = W
        self.b = (
            np.zeros(W.shape[0], dtype=W.dtype)
            if b is None
            else as_param("Dense", "b", b, (W.shape[0],)).astype(W.dtype)
        )

    @classmethod
    def create(
        cls,
        n_in: int,
        n_out: int,
        init: str = "he",
        seed: np.random.Generator | int | None = None,
        dtype: np.dtype | type = np.float64,
    ) -> Dense:
        """A Dense layer from sizes, with seeded He or Glorot weights and zero bias."""
        n_in = whole_number("Dense", "n_in", n_in, 1)
        n_out = whole_number("Dense", "n_out", n_out, 1)
        W = initial_weights((n_out, n_in), n_in, n_out, init, seed, dtype)
        return cls(W, np.zeros(n_out, dtype=dtype))

    @property
    def n_in(self) -> int:
        return self.W.shape[1]

    @property
    def n_out(self) -> int:
        return self.W.shape[0]

    def _check(self, x: np.ndarray, check_finite: bool) -> None:
        check_input("Dense", x, 2, check_finite)
        if x.shape[1] != self.n_in:
            raise ValueError(
                f"Dense: input has shape {x.shape} but W has shape {self.W.shape} "
                f"(expects {self.n_in} features)"
            )

    def forward(self, x: np.ndarray, check_finite: bool = True) -> tuple[np.ndarray, DenseCache]:
        """``z = x W^T + b``: x (N, in) -> z (N, out)."""
        self._check(x, check_finite)
        z = dense_kernels.dense_forward(x, cast_like(self.W, x), cast_like(self.b, x))  # (N, out)
        return z, DenseCache(x)

    def backward(
        self, dy: np.ndarray, cache: DenseCache
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """dy (N, out) -> dx (N, in), and ``{"W": dy^T x, "b": sum_n dy}``."""
        x = cache.x
        dx = self.adjoint(dy, cache)  # (N, in)
        dW = dense_kernels.dense_backward_weight(dy, cast_like(x, dy))  # (out, in): dy^T x
        return dx, {"W": dW, "b": dy.sum(axis=0)}  # (out,)

    def adjoint(
        self, r: np.ndarray, cache: DenseCache | None = None, weight: np.ndarray | None = None
    ) -> np.ndarray:
        """``r @ weight``: r (N, out) -> (N, in); ``weight`` defaults to ``W``."""
        weight = self.W if weight is None else weight
        if weight.shape != self.W.shape:
            raise ValueError(
                f"Dense: adjoint weight has shape {weight.shape}, expected {self.W.shape}"
            )
        n = r.shape[0] if cache is None or r.ndim != 2 else cache.x.shape[0]
        check_upstream("Dense", r, (n, self.n_out))
        return dense_kernels.dense_backward_input(r, cast_like(weight, r))  # (N, in): r W

    def weight_matrix(self, weight: np.ndarray | None = None) -> np.ndarray:
        """The neurons' weight vectors as rows, ``(K, D) = (out, in)``."""
        return self.W if weight is None else weight

    def config(self) -> dict:
        return {"n_in": self.n_in, "n_out": self.n_out}

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (input_shape[0], self.n_out)
