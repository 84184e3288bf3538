r"""``Explainer`` (reusable) and ``explain`` (one call): one implementation underneath.

An :class:`Explainer` binds a network, a method (:mod:`refnet.attribution.methods`) and, for
PatternNet and PatternAttribution, the patterns; it chooses every layer's rule and lets each
rule prepare its per-layer constants (``A``, ``W * A``, ``W^+``, ...) once. Calling it on a
batch runs the forward pass, picks the target, and runs the one backward loop of
:mod:`refnet.attribution.backward` (MATH.md section 4):

.. math::

    h(x) = \mathrm{finish}\Big(x, \sum_k \omega_k\,
        \mathrm{backward}\big(x_k,\ s_k\,e_{t}\big)\Big),

with a single point ``x_1 = x`` for every method except integrated gradients and
SmoothGrad. :func:`explain` is ``Explainer(net, method, patterns, **options)(x, target)``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..kernels.threads import one_blas_thread
from ..layers.base import check_input
from ..network import Sequential
from .backward import BoundRule, backward_steps, forward_steps, start_signal
from .methods import Method, make_method
from .pattern_input import resolve_patterns


class Explainer:
    r"""A reusable explanation: ``Explainer(net, method, patterns, **options)(x, target)``.

    Parameters
    ----------
    net : Sequential
        The network; it must end in a layer that outputs logits ``(N, K)``.
    method : str or Method
        One of :data:`refnet.attribution.methods.METHODS` (``"gradient"``, ``"patternnet"``,
        ``"lrp.epsilon"``, ...), or a :class:`~refnet.attribution.methods.Method` composite.
    patterns : optional
        Required by ``"patternnet"`` and ``"patternattribution"`` (ignored by the other
        methods, so one call signature serves a loop over methods): a fitted patterns
        object, a dict ``{layer_index: A}``, or a list with one ``A`` per kernel layer.
    **options
        The method's options, e.g. ``epsilon=1e-6`` or ``steps=64`` (see the method table
        in :func:`explain`).

    Notes
    -----
    The network's parameters are read when the explainer is built (rules prepare ``A``,
    ``W * A``, ``W^+`` ...); build a new explainer after changing the weights.
    """

    def __init__(
        self, net: Sequential, method: str | Method, patterns: Any = None, **options: Any
    ) -> None:
        if not isinstance(net, Sequential):
            raise TypeError(
                f"Explainer: net must be a refnet.Sequential, got {type(net).__name__}"
            )
        self.net = net
        self.method = make_method(method, **options)
        A = resolve_patterns(net, patterns, self.method.name) if self.method.needs_patterns else {}
        kernel = net.kernel_layers()
        first = kernel[0] if kernel else None
        self.rules: list[BoundRule] = []
        for i, layer in enumerate(net.layers):
            rule = self.method.rule_for(layer, is_first_kernel=(i == first))
            self.rules.append((rule, rule.prepare(layer, A.get(i))))

    def __repr__(self) -> str:
        return f"Explainer(method={self.method.name!r}, rules={[r for r, _ in self.rules]})"

    @one_blas_thread
    def __call__(self, x: np.ndarray, target: int | np.ndarray | None = None) -> np.ndarray:
        r"""Explain the batch ``x`` for ``target``; returns an array of ``x``'s shape and dtype.

        Parameters
        ----------
        x : np.ndarray
            Input batch, float32 or float64, finite, with the batch on axis 0.
        target : None, int or int array (N,)
            ``None``: the argmax of the logits per sample; an int: that class for every
            sample; an array: one class per sample. For integrated gradients and SmoothGrad
            the target is chosen at ``x`` itself and kept for every point.
        """
        check_input("explain", x, None, check_finite=True, what="input x")
        if x.ndim < 2:
            raise ValueError(f"explain: input x must have a batch axis, got shape {x.shape}")
        points = self.method.points
        t = None
        h = None
        for x_k, omega in points.points(x):
            logits, steps = forward_steps(self.net, x_k)
            if t is None:
                at_x = logits if x_k is x else forward_steps(self.net, x)[0]
                t = select_target(target, at_x)
            R = backward_steps(steps, self.rules, start_signal(logits, t, self.method.start))
            if omega != 1.0:
                R *= R.dtype.type(omega)
            h = R if h is None else np.add(h, R, out=h)
        h = points.finish(x, h)
        if not np.isfinite(h).all():  # e.g. R / z overflowing for a denominator near 0
            raise FloatingPointError(
                f"explain: {self.method.name} produced non-finite values for input of shape "
                f"{x.shape} (overflow in a rule); check the network's weights and input scale"
            )
        return h


def select_target(target: int | np.ndarray | None, logits: np.ndarray) -> np.ndarray:
    """The target class per sample (N,) from ``None`` (argmax), an int, or an int array.

    Raises a ``ValueError`` for a class outside ``[0, K)`` or an array of the wrong shape and
    a ``TypeError`` for a non-integer target.
    """
    if logits.ndim != 2:
        raise ValueError(
            f"explain: the network's output must be logits (N, K), got {logits.shape}"
        )
    N, K = logits.shape
    if target is None:
        return logits.argmax(axis=1)
    t = np.asarray(target)
    if t.dtype == bool or not np.issubdtype(t.dtype, np.integer):
        raise TypeError(f"explain: target must be None, an int or an int array, got {target!r}")
    if t.ndim == 0:
        t = np.full(N, int(t))
    elif t.shape != (N,):
        raise ValueError(f"explain: target has shape {t.shape}, expected ({N},) for input of {N}")
    if t.size and (t.min() < 0 or t.max() >= K):
        bad = np.unique(t[(t < 0) | (t >= K)])
        raise ValueError(
            f"explain: target {bad.tolist()[:5]} out of range [0, {K}) for a network with "
            f"{K} classes (logits of shape {logits.shape})"
        )
    return t.astype(np.intp, copy=False)


def explain(
    net: Sequential,
    x: np.ndarray,
    method: str | Method,
    target: int | np.ndarray | None = None,
    patterns: Any = None,
    **options: Any,
) -> np.ndarray:
    r"""Explain ``net``'s decision for ``target`` on the batch ``x`` with ``method``.

    Returns an array of ``x``'s shape and dtype (MATH.md section 4). Methods and options
    (defaults):

    ==========================  =================================================================
    ``"gradient"``              :math:`\partial z_t / \partial x`
    ``"gradient_x_input"``      :math:`x \odot \partial z_t / \partial x`
    ``"deconvnet"``             Zeiler & Fergus 2014
    ``"guided_backprop"``       Springenberg et al. 2015
    ``"lrp.epsilon"``           ``epsilon=1e-6`` (Bach et al. 2015)
    ``"lrp.alpha_beta"``        ``alpha=2, beta=1``
    ``"lrp.z_plus"``            ``first_layer=None``, ``"zb"`` with ``low``/``high``, or ``"w2"``
    ``"integrated_gradients"``  ``baseline=0, steps=64`` (trapezoid rule)
    ``"smoothgrad"``            ``samples=32, noise=0.1, seed=None``
    ``"patternnet"``            ``patterns`` required (Kindermans et al. 2018)
    ``"patternattribution"``    ``patterns`` required (Kindermans et al. 2018)
    ==========================  =================================================================

    ``target`` is ``None`` (argmax per sample), an int, or one int per sample. For many
    batches, build an :class:`Explainer` once and call it.
    """
    return Explainer(net, method, patterns, **options)(x, target)
