r"""Layer-wise relevance propagation (LRP) rules for Dense and Conv2D.

For a linear layer with inputs :math:`x_i`, weights :math:`w_{ji}`, bias :math:`b_j` and
relevance :math:`R_j` at its outputs, every LRP rule has the form "forward, divide, adjoint,
multiply" (Bach et al. 2015; Montavon et al. 2017; MATH.md section 4):

.. math::

    z_j = \sum_i x_i v_{ji} + c_j, \qquad s_j = R_j / z_j, \qquad
    c_i = \sum_j v_{ji} s_j, \qquad R_i = x_i c_i ,

with some modified weight ``v`` and bias ``c``. The forward sum is the layer's own forward
pass with ``(W, b)`` replaced by ``(v, c)`` and the middle sum is the layer's adjoint with
``W`` replaced by ``v``, so for Conv2D both run in the compiled convolution kernels. This is
what makes each Conv2D rule equal to the Dense rule applied to the convolution's explicit
matrix (padding contributes nothing: a padded zero has ``x_i = 0``).

A denominator that is exactly zero contributes 0 (never NaN or infinity).
"""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from ..layers import Layer
from .rules import Rule, Step


def with_weights(layer: Layer, weight: np.ndarray, bias: np.ndarray) -> Layer:
    r"""A shallow copy of ``layer`` whose ``(W, b)`` are ``(weight, bias)``.

    Its ``forward`` computes :math:`z_j = \sum_i x_i v_{ji} + c_j` and its ``adjoint``
    :math:`c_i = \sum_j v_{ji} s_j`; Conv2D keeps its stride and padding and runs in the
    compiled kernels. ``weight`` may have more output rows than ``W`` (stacked parts).
    """
    twin = copy.copy(layer)
    twin.W, twin.b = weight, bias
    return twin


def forward_with(layer: Layer, x: np.ndarray, weight: np.ndarray, bias: np.ndarray) -> np.ndarray:
    r"""The layer's forward pass with ``(W, b)`` replaced by ``(weight, bias)``.

    .. math:: z_j = \sum_i x_i v_{ji} + c_j
    """
    return with_weights(layer, weight, bias).forward(x, check_finite=False)[0]


def safe_divide(R: np.ndarray, z: np.ndarray) -> np.ndarray:
    """``R / z`` where ``z != 0`` and 0 where ``z == 0`` (a zero denominator contributes 0)."""
    zero = z == 0
    s = z + zero  # the denominators, with 1 where z == 0
    np.divide(R, s, out=s)
    s *= ~zero  # (a masked ufunc ``where=`` is 2x slower than these three passes)
    return s


def _positive_negative(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(W^+, W^-) = (max(W, 0), min(W, 0))``, so that ``W = W^+ + W^-``."""
    return np.maximum(W, 0), np.minimum(W, 0)


class Epsilon(Rule):
    r"""LRP-epsilon (Bach et al. 2015; MATH.md section 4).

    .. math::

        R_i = x_i \sum_j \frac{w_{ji} R_j}{z_j + \epsilon\,\mathrm{sign}(z_j)}, \qquad
        z_j = \sum_i x_i w_{ji} + b_j, \qquad \mathrm{sign}(0) = +1 .

    ``z`` is the layer's own forward output (no extra pass); ``c = adjoint(R / z_eps)``;
    ``R_in = x * c``. With ``epsilon = 0`` and zero biases this is LRP-0, which conserves
    :math:`\sum_i R_i = \sum_j R_j` and equals gradient times input on a ReLU network.
    """

    name = "epsilon"

    def __init__(self, epsilon: float = 1e-6) -> None:
        epsilon = float(epsilon)
        if not np.isfinite(epsilon) or epsilon < 0:
            raise ValueError(f"Epsilon: epsilon must be finite and >= 0, got {epsilon!r}")
        self.epsilon = epsilon

    def backward(self, R: np.ndarray, step: Step, prepared: Any) -> np.ndarray:
        z = step.z
        eps = z.dtype.type(self.epsilon)
        z_eps = np.greater_equal(z, 0).astype(z.dtype)  # [z >= 0]: sign(0) = +1
        z_eps *= 2 * eps
        z_eps -= eps  # eps * sign(z) (np.where with scalars is 5x slower)
        z_eps += z
        if self.epsilon > 0:  # |z_eps| >= eps > 0: no zero denominator, divide in place
            s = np.divide(R, z_eps, out=z_eps)
        else:
            s = safe_divide(R, z_eps)
        c = step.layer.adjoint(s, step.cache)  # (input shape) c_i = sum_j w_ji s_j
        return np.multiply(step.x, c, out=c)


class AlphaBeta(Rule):
    r"""LRP-alpha-beta (Bach et al. 2015; Montavon et al. 2017; MATH.md section 4).

    Positive and negative parts of the products :math:`x_i w_{ji}` are normalised
    separately; the bias's positive part joins the positive denominator, its negative part
    the negative one (``bias=False`` drops the bias):

    .. math::

        R_i = \sum_j \Big(\alpha \frac{(x_i w_{ji})^+}{z_j^+}
                          - \beta \frac{(x_i w_{ji})^-}{z_j^-}\Big) R_j, \quad
        z_j^\pm = \sum_i (x_i w_{ji})^\pm + b_j^\pm .

    Derivation of the forward/adjoint form. A product is positive when both factors have
    the same sign, so with :math:`x = x^+ + x^-` and :math:`W = W^+ + W^-`,

    .. math::

        (x_i w_{ji})^+ = x_i^+ w_{ji}^+ + x_i^- w_{ji}^-, \qquad
        (x_i w_{ji})^- = x_i^+ w_{ji}^- + x_i^- w_{ji}^+ ,

    hence :math:`z^+ = f(x^+; W^+, b^+) + f(x^-; W^-, 0)`,
    :math:`z^- = f(x^+; W^-, b^-) + f(x^-; W^+, 0)` (``f`` the layer's forward) and, with
    :math:`s^+ = \alpha R / z^+`, :math:`s^- = \beta R / z^-` and ``adj`` the adjoint,

    .. math::

        R_{\mathrm{in}} = x^+ \odot \big(\mathrm{adj}(s^+; W^+) - \mathrm{adj}(s^-; W^-)\big)
                        + x^- \odot \big(\mathrm{adj}(s^+; W^-) - \mathrm{adj}(s^-; W^+)\big).

    After a ReLU (``x >= 0``) the ``x^-`` terms vanish and are skipped; with ``beta = 0``
    the ``s^-`` terms are skipped. Otherwise the weight parts are stacked along the output
    axis, ``[W^+; W^-]``, so that one forward pass gives ``[z^+; z^-]`` and one adjoint of
    ``[s^+; -s^-]`` gives the bracket (one im2col and one col2im instead of two each). A
    zero denominator contributes 0.
    """

    name = "alpha-beta"

    def __init__(self, alpha: float = 2.0, beta: float = 1.0, bias: bool = True) -> None:
        alpha, beta = float(alpha), float(beta)
        if not (np.isfinite(alpha) and np.isfinite(beta)) or beta < 0 or alpha < 0:
            raise ValueError(
                f"AlphaBeta: alpha and beta must be finite and >= 0, got {alpha!r}, {beta!r}"
            )
        if not np.isclose(alpha - beta, 1.0, rtol=0, atol=1e-12):
            raise ValueError(f"AlphaBeta: needs alpha - beta = 1, got {alpha!r} - {beta!r}")
        self.alpha, self.beta, self.bias = alpha, beta, bool(bias)

    def prepare(self, layer: Layer, pattern: np.ndarray | None) -> dict[str, Layer]:
        """Twins of the layer with the weight parts, built once.

        ``"+"``: ``(W^+, b^+)``; ``"-"``: ``(W^-, 0)``; with ``beta != 0`` the parts are
        stacked along the output axis so that one forward gives ``z^+`` and ``z^-`` and one
        adjoint gives both sums: ``"+-"``: ``([W^+; W^-], [b^+; b^-])`` and ``"-+"``:
        ``([W^-; W^+], 0)``.
        """
        W_plus, W_minus = _positive_negative(layer.W)
        b = layer.b if self.bias else np.zeros_like(layer.b)
        b_plus, b_minus = _positive_negative(b)
        zero = np.zeros_like(layer.b)
        if self.beta == 0:
            return {
                "+": with_weights(layer, W_plus, b_plus),
                "-": with_weights(layer, W_minus, zero),
            }
        return {
            "+-": with_weights(
                layer, np.concatenate([W_plus, W_minus]), np.concatenate([b_plus, b_minus])
            ),
            "-+": with_weights(
                layer, np.concatenate([W_minus, W_plus]), np.concatenate([zero, zero])
            ),
        }

    def backward(self, R: np.ndarray, step: Step, prepared: dict[str, Layer]) -> np.ndarray:
        cache, x, twins = step.cache, step.x, prepared
        has_negative = bool((x < 0).any())  # False after a ReLU: skip the x^- terms
        x_plus = np.maximum(x, 0) if has_negative else x
        x_minus = np.minimum(x, 0) if has_negative else None
        if self.beta == 0:
            plus, minus = twins["+"], twins["-"]
            z_plus = plus.forward(x_plus, check_finite=False)[0]
            if has_negative:
                z_plus += minus.forward(x_minus, check_finite=False)[0]
            s_plus = safe_divide(R, z_plus)
            if self.alpha != 1:
                s_plus *= s_plus.dtype.type(self.alpha)
            R_in = x_plus * plus.adjoint(s_plus, cache)  # x^+ adj(s^+; W^+)
            if has_negative:
                R_in += x_minus * minus.adjoint(s_plus, cache)  # x^- adj(s^+; W^-)
            return R_in
        # beta != 0: z_pm = [z^+; z^-] (N, 2K, ...), s = [alpha R / z^+; -beta R / z^-]
        pm, mp = twins["+-"], twins["-+"]
        K = R.shape[1]
        z_pm = pm.forward(x_plus, check_finite=False)[0]  # (N, 2K, ...)
        if has_negative:
            z_pm += mp.forward(x_minus, check_finite=False)[0]
        s = safe_divide(np.concatenate([R, R], axis=1), z_pm)  # (N, 2K, ...)
        s[:, :K] *= s.dtype.type(self.alpha)
        s[:, K:] *= s.dtype.type(-self.beta)
        R_in = pm.adjoint(s, cache)  # adj(a s^+; W^+) - adj(b s^-; W^-)
        R_in *= x_plus
        if has_negative:
            R_in += x_minus * mp.adjoint(s, cache)  # adj(a s^+; W^-) - adj(b s^-; W^+)
        return R_in


class ZPlus(AlphaBeta):
    r"""The z+ rule of deep Taylor decomposition (Montavon et al. 2017).

    Alpha-beta with ``alpha = 1, beta = 0`` and no bias (MATH.md section 4):

    .. math::

        R_i = \sum_j \frac{(x_i w_{ji})^+}{\sum_{i'} (x_{i'} w_{ji'})^+} R_j ,

    which after a ReLU (``x >= 0``) is the familiar :math:`x_i w_{ji}^+ / \sum_{i'} x_{i'}
    w_{ji'}^+`.
    """

    name = "z+"

    def __init__(self) -> None:
        super().__init__(alpha=1.0, beta=0.0, bias=False)

    def __repr__(self) -> str:
        return "ZPlus()"


class ZBox(Rule):
    r"""The bounded z^B rule for inputs in a box ``low <= x <= high``.

    Montavon et al. 2017 (for the first layer of a network on pixel intervals):

    .. math::

        R_i = \sum_j \frac{x_i w_{ji} - l_i w_{ji}^+ - h_i w_{ji}^-}
                          {\sum_{i'} (x_{i'} w_{ji'} - l_{i'} w_{ji'}^+ - h_{i'} w_{ji'}^-)} R_j .

    Forward/adjoint form: :math:`z = f(x; W) - f(l; W^+) - f(h; W^-)` (no bias),
    :math:`s = R / z`, :math:`R_{\mathrm{in}} = x \odot \mathrm{adj}(s; W)
    - l \odot \mathrm{adj}(s; W^+) - h \odot \mathrm{adj}(s; W^-)`.

    Parameters
    ----------
    low, high : float or array
        The box, a scalar or an array broadcastable to one sample's shape.
    """

    name = "zB"

    def __init__(self, low: float | np.ndarray, high: float | np.ndarray) -> None:
        low, high = np.asarray(low, dtype=np.float64), np.asarray(high, dtype=np.float64)
        if not (np.isfinite(low).all() and np.isfinite(high).all()):
            raise ValueError("ZBox: low and high must be finite")
        if np.any(low > high):
            raise ValueError(f"ZBox: needs low <= high, got low {low} and high {high}")
        self.low, self.high = low, high

    def prepare(self, layer: Layer, pattern: np.ndarray | None) -> dict[str, np.ndarray]:
        W_plus, W_minus = _positive_negative(layer.W)
        return {"W+": W_plus, "W-": W_minus, "0": np.zeros_like(layer.b)}

    def bounds(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``low`` and ``high`` as contiguous arrays of ``x``'s shape and dtype."""
        try:
            low = np.broadcast_to(self.low.astype(x.dtype), x.shape)
            high = np.broadcast_to(self.high.astype(x.dtype), x.shape)
        except ValueError:
            raise ValueError(
                f"ZBox: low {self.low.shape} and high {self.high.shape} do not broadcast "
                f"to the layer input {x.shape}"
            ) from None
        if np.any(x < low) or np.any(x > high):
            raise ValueError(
                f"ZBox: the layer input of shape {x.shape} leaves the box "
                f"[{self.low.min()}, {self.high.max()}] (min {x.min()}, max {x.max()})"
            )
        return np.ascontiguousarray(low), np.ascontiguousarray(high)

    def backward(self, R: np.ndarray, step: Step, prepared: dict[str, np.ndarray]) -> np.ndarray:
        layer, cache, x, p = step.layer, step.cache, step.x, prepared
        low, high = self.bounds(x)
        z = forward_with(layer, x, layer.W, p["0"])
        z -= forward_with(layer, low, p["W+"], p["0"])
        z -= forward_with(layer, high, p["W-"], p["0"])
        s = safe_divide(R, z)
        R_in = x * layer.adjoint(s, cache)
        R_in -= low * layer.adjoint(s, cache, p["W+"])
        R_in -= high * layer.adjoint(s, cache, p["W-"])
        return R_in


class WSquare(Rule):
    r"""The w^2 rule (Montavon et al. 2017; MATH.md section 2, ``S_w``).

    Relevance is spread in proportion to the squared weights, whatever the input:

    .. math:: R_i = \sum_j \frac{w_{ji}^2}{\sum_{i'} w_{ji'}^2} R_j .

    Forward/adjoint form: :math:`z = f(\mathbf 1; W^{\odot 2})` (no bias; for Conv2D a
    padded position holds 0, so it receives no relevance), :math:`s = R / z`,
    :math:`R_{\mathrm{in}} = \mathrm{adj}(s; W^{\odot 2})`.
    """

    name = "w2"

    def prepare(self, layer: Layer, pattern: np.ndarray | None) -> dict[str, np.ndarray]:
        return {"W2": layer.W * layer.W, "0": np.zeros_like(layer.b)}

    def backward(self, R: np.ndarray, step: Step, prepared: dict[str, np.ndarray]) -> np.ndarray:
        layer, p = step.layer, prepared
        z = forward_with(layer, np.ones_like(step.x), p["W2"], p["0"])
        s = safe_divide(R, z)
        return layer.adjoint(s, step.cache, p["W2"])
