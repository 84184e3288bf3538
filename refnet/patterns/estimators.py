r"""The signal estimators of MATH.md section 2, as functions of a layer's input rows.

For a neuron with weight vector ``w`` (a row of ``W_2``, ``K x D``), input row ``x`` and
``y = w^T x`` (bias excluded), ``z = y + b`` (Kindermans et al. 2018, section 3):

=========  ========================================  ======================================
name       ``S(x)``                                  corresponds to
=========  ========================================  ======================================
``S_x``    ``x``                                     LRP-0 / gradient x input
``S_w``    ``w y / (w^T w)``                         DeConvNet, Guided BackProp
``S_a``    ``a y``                                   PatternNet, kind ``linear`` (Eq. 4)
``S_a_pm`` ``a_+ y`` if ``z > 0`` else ``a_- y``     PatternNet, kind ``relu`` (Eqs. 5, 8)
``S_r``    ``u y / (w^T u)``                         random baseline
=========  ========================================  ======================================

Layout. Every estimator takes the rows ``X (n, D)`` (:func:`layer_input_rows` makes them
from a batch) and returns, with ``neuron=k``, that neuron's estimates ``(n, D)``; with
``neuron=None``, all neurons at once, ``(n, K, D)`` (``n K D`` numbers: loop over neurons
for large layers). Pattern arguments may have the layer's ``W`` shape or ``(K, D)``. Where
a denominator vanishes (``w = 0``, ``w^T u = 0``) the estimate is 0, never NaN.
"""

from __future__ import annotations

import numpy as np

from .. import kernels
from ..layers import Conv2D, Dense


def layer_input_rows(layer: Dense | Conv2D, x: np.ndarray) -> np.ndarray:
    r"""The rows a kernel layer's neurons see: ``(N, in)`` for Dense, patches for Conv2D.

    For Conv2D the rows are the im2col patches, ``(N*H'*W', C*kh*kw)``, in ``(C, kh, kw)``
    order, so that ``rows @ layer.weight_matrix().T + b`` are the pre-activations.
    """
    if isinstance(layer, Dense):
        layer._check(x, check_finite=False)
        return x
    if isinstance(layer, Conv2D):
        layer._check(x, check_finite=False)
        (kh, kw), (ph, pw) = layer.kernel_size, layer.padding
        cols = kernels.im2col(x, kh, kw, layer.stride, ph, pw)  # (N, C*kh*kw, H'*W')
        return cols.transpose(0, 2, 1).reshape(-1, cols.shape[1])  # (N*H'*W', C*kh*kw)
    raise TypeError(f"layer_input_rows: needs a Dense or Conv2D layer, got {type(layer).__name__}")


def _rows(name: str, X: np.ndarray, W2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X, W2 = np.asarray(X), np.asarray(W2)
    W2 = W2.reshape(len(W2), -1) if W2.ndim > 2 else W2  # (K, D)
    if X.ndim != 2 or W2.ndim != 2 or X.shape[1] != W2.shape[1]:
        raise ValueError(
            f"{name}: rows X {X.shape} and weights W2 {W2.shape} must be (n, D) and (K, D)"
        )
    return X, W2


def _like(name: str, what: str, A: np.ndarray, W2: np.ndarray) -> np.ndarray:
    A = np.asarray(A)
    A = A.reshape(len(A), -1) if A.ndim > 2 else A  # (K, D)
    if A.shape != W2.shape:
        raise ValueError(f"{name}: {what} has shape {A.shape}, expected {W2.shape} like W2")
    return A


def _direction_times_y(
    X: np.ndarray, W2: np.ndarray, U2: np.ndarray, neuron: int | None
) -> np.ndarray:
    """``u_k (w_k^T x)`` per row: (n, D) for one neuron, (n, K, D) for all."""
    if neuron is not None:
        y = X @ W2[neuron]  # (n,)
        return y[:, None] * U2[neuron][None, :]  # (n, D)
    Y = X @ W2.T  # (n, K)
    return Y[:, :, None] * U2[None, :, :]  # (n, K, D)


def _normalised(V2: np.ndarray, W2: np.ndarray) -> np.ndarray:
    r"""Rows ``v_k / (w_k^T v_k)``, and 0 where ``w_k^T v_k = 0``."""
    den = np.einsum("kd,kd->k", W2, V2)  # (K,)
    out = np.zeros(V2.shape, dtype=np.result_type(V2, W2, np.float32))
    ok = den != 0
    out[ok] = V2[ok] / den[ok, None]
    return out


def S_x(X: np.ndarray, W2: np.ndarray, neuron: int | None = None) -> np.ndarray:
    r"""Identity estimator :math:`S_x(x) = x` (LRP-0): ``(n, D)`` or ``(n, K, D)``."""
    X, W2 = _rows("S_x", X, W2)
    if neuron is not None:
        return X.copy()
    return np.repeat(X[:, None, :], len(W2), axis=1)  # (n, K, D)


def S_w(X: np.ndarray, W2: np.ndarray, neuron: int | None = None) -> np.ndarray:
    r"""Filter estimator :math:`S_w(x) = w\,w^\top x / (w^\top w)` (MATH.md section 2)."""
    X, W2 = _rows("S_w", X, W2)
    return _direction_times_y(X, W2, _normalised(W2, W2), neuron)


def S_a(X: np.ndarray, W2: np.ndarray, A2: np.ndarray, neuron: int | None = None) -> np.ndarray:
    r"""Linear estimator :math:`S_a(x) = a\,w^\top x` (Eq. 4; ``A2`` from kind ``linear``)."""
    X, W2 = _rows("S_a", X, W2)
    return _direction_times_y(X, W2, _like("S_a", "A2", A2, W2), neuron)


def S_a_pm(
    X: np.ndarray,
    W2: np.ndarray,
    b: np.ndarray,
    A2_plus: np.ndarray,
    A2_minus: np.ndarray,
    neuron: int | None = None,
) -> np.ndarray:
    r"""Two-component estimator (Eq. 5): :math:`a_+ y` where :math:`z > 0`, else :math:`a_- y`.

    ``y = w^T x`` and ``z = y + b`` (the mask uses the bias).
    """
    X, W2 = _rows("S_a_pm", X, W2)
    A_plus = _like("S_a_pm", "A2_plus", A2_plus, W2)
    A_minus = _like("S_a_pm", "A2_minus", A2_minus, W2)
    b = np.asarray(b)
    if b.shape != (len(W2),):
        raise ValueError(f"S_a_pm: b has shape {b.shape}, expected ({len(W2)},)")
    if neuron is not None:
        y = X @ W2[neuron]  # (n,)
        a = np.where((y + b[neuron] > 0)[:, None], A_plus[neuron], A_minus[neuron])  # (n, D)
        return y[:, None] * a
    Y = X @ W2.T  # (n, K)
    active = (Y + b > 0)[:, :, None]  # (n, K, 1)
    return Y[:, :, None] * np.where(active, A_plus[None], A_minus[None])  # (n, K, D)


def S_r(X: np.ndarray, W2: np.ndarray, U2: np.ndarray, neuron: int | None = None) -> np.ndarray:
    r"""Random-direction baseline :math:`S_r(x) = u\,w^\top x / (w^\top u)`, ``u`` fixed rows."""
    X, W2 = _rows("S_r", X, W2)
    U2 = _like("S_r", "U2", U2, W2)
    return _direction_times_y(X, W2, _normalised(U2, W2), neuron)
