r"""Dense-layer products (twins of ``pyx/dense.pyx``).

.. math::

    z = x W^\top + b, \qquad \frac{\partial L}{\partial x} = \delta W, \qquad
    \frac{\partial L}{\partial W} = \delta^\top x \quad (\text{MATH.md section 0}).
"""

from __future__ import annotations

import numpy as np


def dense_forward(x: np.ndarray, W: np.ndarray, b: np.ndarray, out: np.ndarray) -> None:
    """``out = x W^T + b``: x (N, D), W (K, D), b (K,) -> out (N, K)."""
    np.matmul(x, W.T, out=out)  # (N, K)
    out += b


def dense_backward_input(r: np.ndarray, W: np.ndarray, out: np.ndarray) -> None:
    """``out = r W``: r (N, K), W (K, D) -> out (N, D)."""
    np.matmul(r, W, out=out)  # (N, D)


def dense_backward_weight(dy: np.ndarray, x: np.ndarray, out: np.ndarray) -> None:
    """``out = dy^T x``: dy (N, K), x (N, D) -> out (K, D)."""
    np.matmul(dy.T, x, out=out)  # (K, D)
