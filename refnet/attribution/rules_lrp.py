r"""Layer-wise relevance propagation (LRP): one engine, and the rules as its modifiers.

For a linear layer with inputs :math:`x_i`, weights :math:`w_{ji}`, bias :math:`b_j` and
relevance :math:`R_j` at its outputs, every LRP rule is "forward, divide, adjoint, multiply"
(Bach et al. 2015; Montavon et al. 2017; MATH.md section 4; zennit's ``BasicHook``):

.. math::

    z_j = \sum_k \sum_i x_{k,i} v_{k,ji} + c_j, \qquad s_j = R_j / z_j, \qquad
    c_{k,i} = \sum_j v_{k,ji} s_j, \qquad R_i = \sum_k x_{k,i}\, c_{k,i} ,

with modified inputs ``x_k`` and weights ``v_k`` (:class:`LRPRule`). The forward sum is the
layer's own forward pass with ``(W, b)`` replaced by ``(v, c)`` and the middle sum is its
adjoint with ``W`` replaced by ``v``, so for Conv2D both run in the compiled convolution
kernels, and every Conv2D rule equals the Dense rule on the convolution's explicit matrix
(a padded zero has ``x_i = 0``). The divide and the multiply run in
:mod:`refnet.kernels.lrp`, one pass each. A zero denominator contributes 0.

Pass counts. The forward pass of the explanation already computed ``z = f(x; W, b)``:
epsilon uses it as its denominator, alpha-beta gets ``z^-`` as ``z - z^+`` and computes only
the ``W^+`` forward, and its two adjoints run as one, of ``[s^+; s^-]`` with the stacked
weight ``[W^+; W^-]`` (2F output channels): one forward and two adjoints' worth of work
beyond the forward pass, against one adjoint for the gradient. z+ is one forward and one
adjoint. On inputs of both signs (a first layer) both rules use
:math:`2 (x_i w_{ji})^+ = x_i w_{ji} + |x_i| |w_{ji}|`, still one forward (of ``|x|`` with
``|W|``), and two adjoints (:class:`AlphaBeta`). ``z^- = z - z^+`` carries the rounding of
both (an absolute error of about ``u (|z^+| + |z^-|)``, ``u`` the unit roundoff).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

import numpy as np

from ..kernels import lrp as lrp_kernels
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
    return lrp_kernels.lrp_ratio(R, z.astype(R.dtype, copy=False))


def _positive_negative(W: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(W^+, W^-) = (max(W, 0), min(W, 0))``, so that ``W = W^+ + W^-``."""
    return np.maximum(W, 0), np.minimum(W, 0)


def stack(*parts: np.ndarray) -> np.ndarray:
    """Arrays stacked along axis 1 (the features of a Dense, the channels of a Conv2D)."""
    return np.concatenate(parts, axis=1)


def nonnegative(step: Step) -> bool:
    """Whether the layer input holds no negative value (known after a ReLU, else checked)."""
    return step.x_nonnegative or not bool(step.x.min(initial=0) < 0)


class LRPRule(Rule):
    r"""The LRP engine: forward with modified inputs and weights, divide, adjoint, multiply.

    .. math::

        X = [x_1; \dots; x_k], \quad z = f(X; [v_1, \dots, v_k], c), \quad
        s = R \oslash z, \quad C = \mathrm{adj}(s; [v_1, \dots, v_k]), \quad
        R_{\mathrm{in}} = \textstyle\sum_k x_k \odot C_k .

    A rule is a set of modifiers, the methods below: :meth:`inputs` (the ``x_k``, stacked
    on the channel axis), :meth:`denominator` (the forward), :meth:`ratio` (the divide) and
    :meth:`adjoint` (the ``v_k``); :meth:`prepare` builds the modified weights once per
    layer. The defaults are LRP-0: ``x_1 = x``, ``v_1 = W``, ``z`` from the forward pass.
    """

    name = "lrp"

    def backward(self, R: np.ndarray, step: Step, prepared: Any) -> np.ndarray:
        X, k = self.inputs(step, prepared)
        z, cache = self.denominator(step, X, prepared)
        s = self.ratio(R, z, step, prepared)
        C = self.adjoint(s, step, cache, prepared)
        return lrp_kernels.lrp_input_relevance(X, C, k)  # sum_k x_k * C_k

    def inputs(self, step: Step, prepared: Any) -> tuple[np.ndarray, int]:
        """The stacked modified inputs ``X`` and their number ``k`` (default ``x``, 1)."""
        return step.x, 1

    def denominator(self, step: Step, X: np.ndarray, prepared: Any) -> tuple[np.ndarray, Any]:
        """``z`` and the cache the adjoint needs (default: the forward pass's ``z``)."""
        return step.z, step.cache

    def ratio(self, R: np.ndarray, z: np.ndarray, step: Step, prepared: Any) -> np.ndarray:
        """``s = R / z``, 0 where ``z = 0`` (may overwrite ``R``)."""
        return lrp_kernels.lrp_ratio(R, z, 0.0, out=R)

    def adjoint(self, s: np.ndarray, step: Step, cache: Any, prepared: Any) -> np.ndarray:
        """``C = adj(s; [v_1, ..., v_k])`` (default: the layer's own adjoint, ``W``)."""
        return step.layer.adjoint(s, cache)


class Epsilon(LRPRule):
    r"""LRP-epsilon (Bach et al. 2015; MATH.md section 4).

    .. math::

        R_i = x_i \sum_j \frac{w_{ji} R_j}{z_j + \epsilon\,\mathrm{sign}(z_j)}, \qquad
        z_j = \sum_i x_i w_{ji} + b_j, \qquad \mathrm{sign}(0) = +1 .

    The engine with no modifier but the divide: ``z`` is the layer's own forward output (no
    extra pass), ``s = R / (z + eps sign(z))``, ``R_in = x * adj(s; W)``. With ``epsilon =
    0`` and zero biases this is LRP-0, which conserves :math:`\sum_i R_i = \sum_j R_j` and
    equals gradient times input on a ReLU network.
    """

    name = "epsilon"

    def __init__(self, epsilon: float = 1e-6) -> None:
        epsilon = float(epsilon)
        if not np.isfinite(epsilon) or epsilon < 0:
            raise ValueError(f"Epsilon: epsilon must be finite and >= 0, got {epsilon!r}")
        self.epsilon = epsilon

    def ratio(self, R: np.ndarray, z: np.ndarray, step: Step, prepared: Any) -> np.ndarray:
        return lrp_kernels.lrp_ratio(R, z, self.epsilon, out=R)


class AlphaBeta(LRPRule):
    r"""LRP-alpha-beta (Bach et al. 2015; Montavon et al. 2017; MATH.md section 4).

    Positive and negative parts of the products :math:`x_i w_{ji}` are normalised
    separately; the bias's positive part joins the positive denominator, its negative part
    the negative one (``bias=False`` drops the bias):

    .. math::

        R_i = \sum_j \Big(\alpha \frac{(x_i w_{ji})^+}{z_j^+}
                          - \beta \frac{(x_i w_{ji})^-}{z_j^-}\Big) R_j, \quad
        z_j^\pm = \sum_i (x_i w_{ji})^\pm + b_j^\pm .

    Forward/adjoint form. After a ReLU (``x >= 0``) :math:`(x_i w_{ji})^\pm = x_i
    w^\pm_{ji}`, so :math:`z^+ = f(x; W^+, b^+)`, :math:`z^- = z - z^+` (``z`` the forward
    pass; ``bias=False`` subtracts ``b`` too), and with :math:`s = [\alpha R / z^+;
    -\beta R / z^-]`,

    .. math:: R_{\mathrm{in}} = x \odot \mathrm{adj}\big(s; [W^+; W^-]\big)

    (one adjoint with 2F output channels; with ``beta = 0``, ``s^-`` and ``W^-`` are
    dropped). For inputs of both signs (a first layer) a product is positive when both
    factors have the same sign, and :math:`2 (x_i w_{ji})^+ = x_i w_{ji} + |x_i| |w_{ji}|`,
    so :math:`z^+ = \tfrac12 \big(z + f(|x|; |W|, |b|)\big)` (one forward pass; ``-b`` in
    place of ``|b|`` when the bias is dropped) and

    .. math::

        R_{\mathrm{in}} = x \odot \mathrm{adj}\big(\tfrac12 (s^+ + s^-); W\big)
                        + |x| \odot \mathrm{adj}\big(\tfrac12 (s^+ - s^-); |W|\big).

    A zero denominator contributes 0.
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

    def prepare(self, layer: Layer, pattern: np.ndarray | None) -> dict[str, Any]:
        """The modified layers, built once: ``"+"`` ``(W^+, b^+)``; ``"adj"`` the adjoint's
        ``[W^+; W^-]`` (``W^+`` if ``beta = 0``); for signed inputs ``"|W|"`` ``(|W|, |b|)``
        (``-b`` for ``bias=False``)
        and ``"W,|W|"`` (both weights on stacked inputs ``[x; |x|]``, for ``beta = 0``);
        ``"offset"``, what ``z - z^+`` holds beyond ``z^-`` (``b`` when the bias is dropped)."""
        W_plus, W_minus = _positive_negative(layer.W)
        b = layer.b if self.bias else np.zeros_like(layer.b)
        adjoint = W_plus if self.beta == 0 else np.concatenate([W_plus, W_minus])
        W_abs = np.abs(layer.W)
        prepared = {
            "+": with_weights(layer, W_plus, np.maximum(b, 0)),
            "adj": with_weights(layer, adjoint, np.zeros(len(adjoint), layer.b.dtype)),
            "|W|": with_weights(layer, W_abs, np.abs(b) - (layer.b - b)),
            "offset": layer.b - b,
        }
        if self.beta == 0:
            zero = np.zeros_like(layer.b)
            prepared["W,|W|"] = with_weights(layer, stack(layer.W, W_abs), zero)
        return prepared

    def backward(self, R: np.ndarray, step: Step, prepared: dict[str, Any]) -> np.ndarray:
        if not nonnegative(step):
            return self._signed(R, step, prepared)
        return super().backward(R, step, prepared)

    def denominator(self, step, X, prepared):
        z_plus, cache = step.forward(prepared["+"], X)  # z^+ = f(x; W^+, b^+)
        return z_plus, cache

    def ratio(self, R, z_plus, step, prepared):
        if self.beta == 0:  # alpha = 1
            return lrp_kernels.lrp_ratio(R, z_plus, 0.0, out=R)
        offset = prepared["offset"].astype(R.dtype, copy=False)
        return lrp_kernels.lrp_ratio_alpha_beta(
            R, step.z, z_plus, offset, self.alpha, self.beta
        )  # [alpha R / z^+; -beta R / z^-], z^- = z - z^+ - offset: (N, 2F, ...)

    def adjoint(self, s, step, cache, prepared):
        return prepared["adj"].adjoint(s, cache)  # adj(s; [W^+; W^-])

    def _signed(self, R: np.ndarray, step: Step, prepared: dict[str, Any]) -> np.ndarray:
        """Inputs of both signs: ``z^+ = (z + f(|x|; |W|, |b|)) / 2``, then one adjoint of
        ``s`` on ``[x; |x|]`` (``beta = 0``) or the adjoints of ``(s^+ +- s^-) / 2``."""
        x, layer = step.x, step.layer
        x_abs = np.abs(x)
        z_plus = step.forward(prepared["|W|"], x_abs)[0]
        z_plus += step.z
        z_plus *= z_plus.dtype.type(0.5)  # z^+ = (z + f(|x|; |W|, |b|)) / 2
        half = 0.5 * self.alpha, 0.5 * self.beta  # the 1/2 of both adjoints, folded into s
        offset = prepared["offset"].astype(R.dtype, copy=False)
        if self.beta == 0:  # s^+ + s^- = s^+ - s^- = s: one adjoint of s on [x; |x|]
            s = lrp_kernels.lrp_ratio(R, z_plus, 0.0, out=R)
            s *= s.dtype.type(half[0])
            X = stack(x, x_abs)  # (N, 2C, ...)
            C = prepared["W,|W|"].adjoint(s, dataclasses.replace(step.cache, x=X))
            return lrp_kernels.lrp_input_relevance(X, C, 2)  # x adj(s; W) + |x| adj(s; |W|)
        s = lrp_kernels.lrp_ratio_alpha_beta(R, step.z, z_plus, offset, *half)
        F = R.shape[1]
        s_plus, s_minus = s[:, :F], s[:, F:]  # (N, F, ...) each
        R_in = layer.adjoint(s_plus + s_minus, step.cache)  # adj((s^+ + s^-) / 2; W)
        R_in *= x
        c_abs = prepared["|W|"].adjoint(s_plus - s_minus, step.cache)  # adj((s^+ - s^-) / 2; |W|)
        c_abs *= x_abs
        R_in += c_abs
        return R_in


class ZPlus(AlphaBeta):
    r"""The z+ rule of deep Taylor decomposition (Montavon et al. 2017).

    Alpha-beta with ``alpha = 1, beta = 0`` and no bias (MATH.md section 4):

    .. math::

        R_i = \sum_j \frac{(x_i w_{ji})^+}{\sum_{i'} (x_{i'} w_{ji'})^+} R_j ,

    which after a ReLU (``x >= 0``) is the familiar :math:`x_i w_{ji}^+ / \sum_{i'} x_{i'}
    w_{ji'}^+`: the engine with ``v = W^+``, one forward and one adjoint.
    """

    name = "z+"

    def __init__(self) -> None:
        super().__init__(alpha=1.0, beta=0.0, bias=False)

    def __repr__(self) -> str:
        return "ZPlus()"


class ZBox(LRPRule):
    r"""The bounded z^B rule for inputs in a box ``low <= x <= high``.

    Montavon et al. 2017 (for the first layer of a network on pixel intervals):

    .. math::

        R_i = \sum_j \frac{x_i w_{ji} - l_i w_{ji}^+ - h_i w_{ji}^-}
                          {\sum_{i'} (x_{i'} w_{ji'} - l_{i'} w_{ji'}^+ - h_{i'} w_{ji'}^-)} R_j .

    The engine with the inputs ``[x; l; h]`` and the weights ``[W, -W^+, -W^-]``; the
    forward reuses ``z``: :math:`z^B = z - f([l; h]; [W^+, W^-], b)`.

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

    def prepare(self, layer: Layer, pattern: np.ndarray | None) -> dict[str, Layer]:
        """``"bounds"``: ``([W^+, W^-], b)``; ``"adj"``: ``[W, -W^+, -W^-]`` (3 inputs)."""
        W_plus, W_minus = _positive_negative(layer.W)
        zero = np.zeros_like(layer.b)
        return {
            "bounds": with_weights(layer, stack(W_plus, W_minus), layer.b),
            "adj": with_weights(layer, stack(layer.W, -W_plus, -W_minus), zero),
        }

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

    def inputs(self, step: Step, prepared: dict[str, Layer]) -> tuple[np.ndarray, int]:
        low, high = self.bounds(step.x)
        return stack(step.x, low, high), 3  # (N, 3C, ...)

    def denominator(self, step, X, prepared):
        C = step.x.shape[1]
        bounds = np.ascontiguousarray(X[:, C:])  # [l; h] (N, 2C, ...)
        z = prepared["bounds"].forward(bounds, check_finite=False)[0]  # f(l; W+) + f(h; W-) + b
        np.subtract(step.z, z, out=z)  # z^B = z - f([l; h]; [W^+, W^-], b)
        return z, dataclasses.replace(step.cache, x=X)

    def adjoint(self, s, step, cache, prepared):
        return prepared["adj"].adjoint(s, cache)  # adj(s; [W, -W^+, -W^-]): (N, 3C, ...)


class WSquare(LRPRule):
    r"""The w^2 rule (Montavon et al. 2017; MATH.md section 2, ``S_w``).

    Relevance is spread in proportion to the squared weights, whatever the input:

    .. math:: R_i = \sum_j \frac{w_{ji}^2}{\sum_{i'} w_{ji'}^2} R_j .

    The engine with the input ``1`` and the weight :math:`W^{\odot 2}`:
    :math:`z = f(\mathbf 1; W^{\odot 2})` (no bias; for Conv2D a padded position holds 0,
    so it receives no relevance), :math:`s = R / z`,
    :math:`R_{\mathrm{in}} = 1 \odot \mathrm{adj}(s; W^{\odot 2})`.
    """

    name = "w2"

    def prepare(self, layer: Layer, pattern: np.ndarray | None) -> Layer:
        return with_weights(layer, layer.W * layer.W, np.zeros_like(layer.b))

    def inputs(self, step: Step, prepared: Layer) -> tuple[np.ndarray, int]:
        return np.ones_like(step.x), 1

    def denominator(self, step, X, prepared):
        return prepared.forward(X, check_finite=False)  # z = f(1; W^2)

    def adjoint(self, s, step, cache, prepared):
        return prepared.adjoint(s, cache)  # adj(s; W^2)
