r"""Explanation methods as composites: an ordered map from layer types to rules.

A :class:`Method` says, for every layer type, which rule the backward pass applies (the
first matching entry wins, as in zennit's composites), optionally overrides the rule of the
first kernel layer, and fixes the start value at the output (MATH.md section 4):
``"one"`` for the gradient family (gradient, gradient x input, DeConvNet, Guided BackProp,
integrated gradients, SmoothGrad) and ``"logit"`` (``z_t``) for LRP, PatternNet and
PatternAttribution. Methods that average gradients over several inputs (integrated
gradients, SmoothGrad) add a set of :class:`EvaluationPoints`.

======================  ===============  ======================  ========  ========
method                  Dense / Conv2D   ReLU                    MaxPool   Flatten
======================  ===============  ======================  ========  ========
gradient                ``R W``          ``R [z > 0]``           argmax    reshape
deconvnet               ``R W``          ``max(R, 0)``           argmax    reshape
guided_backprop         ``R W``          ``max(R, 0) [z > 0]``   argmax    reshape
lrp.*                   LRP rule         identity                argmax    reshape
patternnet              ``R A``          ``R [z > 0]``           argmax    reshape
patternattribution      ``R (W * A)``    ``R [z > 0]``           argmax    reshape
======================  ===============  ======================  ========  ========

The linear layers without a weight to swap (AvgPool2D, GlobalAvgPool2D, ZeroPad2D and
ChannelAffine, the per-channel affine map of an unfolded BatchNorm) get their adjoint, the
layer's own backward pass, in every method, LRP included. For the gradient family,
PatternNet and PatternAttribution this is the exact backward pass of a linear map. For LRP
it is a choice: average pooling spreads each relevance evenly over its window (weights
``1 / (kh kw)``, which conserves relevance) instead of in proportion to the inputs as the
z-rule would, and the affine map scales relevance by ``s`` (not conservative). Patterns
belong to the kernel layers (Dense, Conv2D) only.

``METHODS`` maps every method name to the function that builds it from its options.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..layers import LINEAR_MAPS, Conv2D, Dense, Flatten, Layer, MaxPool2D, ReLU
from .rules import Identity, LayerBackward, ReLUDeconvNet, ReLUGradient, ReLUGuided, Rule
from .rules_linear import Adjoint
from .rules_lrp import AlphaBeta, Epsilon, WSquare, ZBox, ZPlus

LINEAR = (Dense, Conv2D)
ROUTING = (MaxPool2D, Flatten)

# --------------------------------------------------------------------------- evaluation points


class EvaluationPoints:
    r"""The inputs at which a method evaluates its backward pass, and the weights that
    combine the results: here one pass at ``x`` itself.

    .. math:: h = \sum_k \omega_k\, g(x_k) \quad (\text{here } x_1 = x,\ \omega_1 = 1)

    ``times_input=True`` multiplies the result by ``x`` (gradient x input; Shrikumar et al.
    2016, MATH.md section 4).
    """

    def __init__(self, times_input: bool = False) -> None:
        self.times_input = times_input

    def points(self, x: np.ndarray) -> Iterator[tuple[np.ndarray, float]]:
        """The inputs ``x_k`` and weights ``omega_k`` of the average."""
        yield x, 1.0

    def finish(self, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        """The final scaling of the combined result (may overwrite ``h``)."""
        return np.multiply(h, x, out=h) if self.times_input else h

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


class TrapezoidPath(EvaluationPoints):
    r"""Integrated gradients on a straight path, by the trapezoid rule (MATH.md section 4).

    Sundararajan et al. 2017 (Eq. 1; they approximate it by a Riemann sum); here the
    trapezoid rule at ``m = steps`` points :math:`\alpha_k = k / (m-1)`:

    .. math::

        \mathrm{IG}(x) = (x - x_0) \odot \sum_{k=0}^{m-1} \omega_k\,
            \nabla f_t\big(x_0 + \alpha_k (x - x_0)\big), \qquad
        \omega_k = \tfrac{1}{m-1}, \text{ halved at } k = 0 \text{ and } k = m-1 .

    The weights sum to 1; completeness :math:`\sum_i \mathrm{IG}_i = f_t(x) - f_t(x_0)`
    holds up to the trapezoid error.
    """

    def __init__(self, baseline: float | np.ndarray = 0.0, steps: int = 64) -> None:
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 2:
            raise ValueError(f"integrated_gradients: steps must be an integer >= 2, got {steps!r}")
        baseline = np.asarray(baseline)
        if not np.issubdtype(baseline.dtype, np.number) or not np.isfinite(baseline).all():
            raise ValueError("integrated_gradients: baseline must be a finite number or array")
        super().__init__()
        self.baseline, self.steps = baseline, int(steps)

    def weights(self) -> np.ndarray:
        """The trapezoid weights ``omega`` (m,), summing to 1."""
        m = self.steps
        omega = np.full(m, 1.0 / (m - 1))
        omega[[0, -1]] /= 2
        return omega

    def baseline_for(self, x: np.ndarray) -> np.ndarray:
        """The baseline ``x_0`` as an array of ``x``'s shape and dtype."""
        try:
            return np.broadcast_to(self.baseline.astype(x.dtype), x.shape)
        except ValueError:
            raise ValueError(
                f"integrated_gradients: baseline of shape {self.baseline.shape} does not "
                f"broadcast to the input shape {x.shape}"
            ) from None

    def points(self, x: np.ndarray) -> Iterator[tuple[np.ndarray, float]]:
        x0 = self.baseline_for(x)
        dx = x - x0
        for alpha, omega in zip(np.linspace(0.0, 1.0, self.steps), self.weights(), strict=True):
            yield x0 + x.dtype.type(alpha) * dx, float(omega)

    def finish(self, x: np.ndarray, h: np.ndarray) -> np.ndarray:
        return np.multiply(h, x - self.baseline_for(x), out=h)


class NoisyCopies(EvaluationPoints):
    r"""SmoothGrad: the mean gradient over noisy copies of ``x`` (MATH.md section 4).

    Smilkov et al. 2017, with the noise level relative to each sample's value range, as
    they recommend:

    .. math::

        \hat g(x) = \frac1n \sum_{k=1}^{n} \nabla f_t(x + \varepsilon_k), \qquad
        \varepsilon_k \sim \mathcal N\big(0, \sigma^2 I\big), \quad
        \sigma = \mathrm{noise}\,(\max x - \min x) \text{ per sample}.

    The noise is drawn from ``numpy.random.default_rng(seed)`` afresh on every call, so a
    fixed ``seed`` gives the same result every time.
    """

    def __init__(self, samples: int = 32, noise: float = 0.1, seed: int | None = None) -> None:
        if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
            raise ValueError(f"smoothgrad: samples must be an integer >= 1, got {samples!r}")
        noise = float(noise)
        if not np.isfinite(noise) or noise < 0:
            raise ValueError(f"smoothgrad: noise must be finite and >= 0, got {noise!r}")
        try:
            np.random.default_rng(seed)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"smoothgrad: seed must be None or an int >= 0, got {seed!r}") from exc
        super().__init__()
        self.samples, self.noise, self.seed = int(samples), noise, seed

    def points(self, x: np.ndarray) -> Iterator[tuple[np.ndarray, float]]:
        rng = np.random.default_rng(self.seed)
        axes = tuple(range(1, x.ndim))
        spread = x.max(axis=axes, keepdims=True) - x.min(axis=axes, keepdims=True)  # (N, 1, ..)
        sigma = self.noise * spread
        for _ in range(self.samples):
            noise = rng.standard_normal(x.shape).astype(x.dtype, copy=False)
            yield x + sigma * noise, 1.0 / self.samples


# --------------------------------------------------------------------------- composite


@dataclass(frozen=True)
class Method:
    r"""An explanation method: rules per layer type, a start value and the points.

    Parameters
    ----------
    name : str
        The method's name.
    rules : Mapping[type or tuple of types, Rule]
        Ordered map from layer types to rules; the first entry whose type matches
        (``isinstance``) a layer gives that layer's rule.
    start : {"one", "logit"}
        Start value at the selected output neuron: ``1`` or the logit ``z_t``.
    first_layer : Rule, optional
        Override for the first kernel (Dense or Conv2D) layer, the one that sees the input.
    needs_patterns : bool
        Whether the method requires patterns ``A`` (PatternNet, PatternAttribution).
    points : EvaluationPoints
        Inputs at which the backward runs and how the results combine (one pass at ``x``
        for every single-pass method).
    """

    name: str
    rules: Mapping[type | tuple[type, ...], Rule]
    start: str
    first_layer: Rule | None = None
    needs_patterns: bool = False
    points: EvaluationPoints = field(default_factory=EvaluationPoints)

    def __post_init__(self) -> None:
        if self.start not in ("one", "logit"):
            raise ValueError(f"Method {self.name!r}: start must be 'one' or 'logit'")

    def rule_for(self, layer: Layer, is_first_kernel: bool = False) -> Rule:
        """The rule for ``layer``; ``is_first_kernel`` selects the first-layer override."""
        if is_first_kernel and self.first_layer is not None:
            return self.first_layer
        for types, rule in self.rules.items():
            if isinstance(layer, types):
                return rule
        raise TypeError(
            f"method {self.name!r} has no rule for a {type(layer).__name__} layer "
            f"(it has rules for {[_type_names(t) for t in self.rules]})"
        )


def _type_names(types: type | tuple[type, ...]) -> str:
    types = types if isinstance(types, tuple) else (types,)
    return "/".join(t.__name__ for t in types)


def composite(linear: Rule, relu: Rule) -> dict[type | tuple[type, ...], Rule]:
    """The ordered map ``{(Dense, Conv2D): linear, ReLU: relu, (MaxPool2D, Flatten): argmax
    or reshape, LINEAR_MAPS: adjoint}``, the shape every method in MATH.md section 4 has
    (``LINEAR_MAPS``: average pooling, padding, per-channel affine; their own backward)."""
    return {LINEAR: linear, ReLU: relu, ROUTING: LayerBackward(), LINEAR_MAPS: LayerBackward()}


# --------------------------------------------------------------------------- the methods


def gradient() -> Method:
    r"""The gradient of the target logit, :math:`\partial z_t / \partial x` (Simonyan et al.
    2014); the backward pass of backpropagation."""
    return Method("gradient", composite(Adjoint("W"), ReLUGradient()), "one")


def gradient_x_input() -> Method:
    r"""Gradient times input, :math:`x \odot \partial z_t / \partial x` (MATH.md section 4)."""
    rules = composite(Adjoint("W"), ReLUGradient())
    return Method("gradient_x_input", rules, "one", points=EvaluationPoints(times_input=True))


def deconvnet() -> Method:
    r"""DeConvNet (Zeiler & Fergus 2014): adjoints with ``W``, ReLU :math:`\max(R, 0)`."""
    return Method("deconvnet", composite(Adjoint("W"), ReLUDeconvNet()), "one")


def guided_backprop() -> Method:
    r"""Guided BackProp (Springenberg et al. 2015): ReLU :math:`\max(R, 0) [z > 0]`."""
    return Method("guided_backprop", composite(Adjoint("W"), ReLUGuided()), "one")


def lrp_epsilon(epsilon: float = 1e-6) -> Method:
    """LRP-epsilon on every Dense/Conv2D layer, identity on ReLU (Bach et al. 2015)."""
    return Method("lrp.epsilon", composite(Epsilon(epsilon), Identity()), "logit")


def lrp_alpha_beta(alpha: float = 2.0, beta: float = 1.0) -> Method:
    """LRP-alpha-beta (with the bias split into its parts) on every Dense/Conv2D layer."""
    return Method("lrp.alpha_beta", composite(AlphaBeta(alpha, beta), Identity()), "logit")


def lrp_z_plus(
    first_layer: str | None = None,
    low: float | np.ndarray | None = None,
    high: float | np.ndarray | None = None,
) -> Method:
    """Deep Taylor z+ on every Dense/Conv2D layer (Montavon et al. 2017).

    ``first_layer`` overrides the rule of the first kernel layer, for inputs that are not
    non-negative: ``"zb"`` (the bounded rule, needs ``low`` and ``high``) or ``"w2"``.
    """
    if first_layer is None:
        first = None
    elif first_layer == "zb":
        if low is None or high is None:
            raise ValueError("lrp.z_plus: first_layer='zb' needs both low and high")
        first = ZBox(low, high)
    elif first_layer == "w2":
        first = WSquare()
    else:
        raise ValueError(
            f"lrp.z_plus: first_layer must be None, 'zb' or 'w2', got {first_layer!r}"
        )
    if first_layer != "zb" and (low is not None or high is not None):
        raise ValueError("lrp.z_plus: low and high apply only with first_layer='zb'")
    return Method("lrp.z_plus", composite(ZPlus(), Identity()), "logit", first_layer=first)


def integrated_gradients(baseline: float | np.ndarray = 0.0, steps: int = 64) -> Method:
    """Integrated gradients from ``baseline`` by the trapezoid rule (see TrapezoidPath)."""
    rules = composite(Adjoint("W"), ReLUGradient())
    return Method("integrated_gradients", rules, "one", points=TrapezoidPath(baseline, steps))


def smoothgrad(samples: int = 32, noise: float = 0.1, seed: int | None = None) -> Method:
    """SmoothGrad: the mean gradient over noisy copies (see NoisyCopies)."""
    rules = composite(Adjoint("W"), ReLUGradient())
    return Method("smoothgrad", rules, "one", points=NoisyCopies(samples, noise, seed))


def patternnet() -> Method:
    r"""PatternNet (Kindermans et al. 2018; MATH.md section 4): adjoints with the patterns ``A``.

    Back-projects the signal estimate :math:`\hat s = a\,y` from the target logit down to
    the input, gated by the ReLU masks of the forward pass.
    """
    return Method("patternnet", composite(Adjoint("A"), ReLUGradient()), "logit", None, True)


def patternattribution() -> Method:
    r"""PatternAttribution (Kindermans et al. 2018; MATH.md section 4): adjoints with ``W * A``.

    The attribution :math:`w \odot a\,y` per neuron; it conserves relevance through a
    linear neuron (:math:`w^\top a = 1`) but not exactly through ReLU layers.
    """
    rules = composite(Adjoint("W*A"), ReLUGradient())
    return Method("patternattribution", rules, "logit", None, True)


#: Every method by name, mapped to the function that builds it from its options.
METHODS: dict[str, Callable[..., Method]] = {
    "gradient": gradient,
    "gradient_x_input": gradient_x_input,
    "deconvnet": deconvnet,
    "guided_backprop": guided_backprop,
    "lrp.epsilon": lrp_epsilon,
    "lrp.alpha_beta": lrp_alpha_beta,
    "lrp.z_plus": lrp_z_plus,
    "integrated_gradients": integrated_gradients,
    "smoothgrad": smoothgrad,
    "patternnet": patternnet,
    "patternattribution": patternattribution,
}


def make_method(method: str | Method, **options: Any) -> Method:
    """The :class:`Method` named ``method`` built with ``options`` (a Method passes through).

    Raises a ``ValueError`` listing the valid names for an unknown name, and a
    ``TypeError`` listing the valid options for an unknown option.
    """
    if isinstance(method, Method):
        if options:
            raise TypeError(f"make_method: options {sorted(options)} given with a Method object")
        return method
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"unknown explanation method {method!r}; valid methods: {list(METHODS)}")
    factory = METHODS[method]
    valid = list(inspect.signature(factory).parameters)
    unknown = sorted(set(options) - set(valid))
    if unknown:
        raise TypeError(
            f"method {method!r} does not take option(s) {unknown}; "
            f"valid options: {valid or 'none'}"
        )
    return factory(**options)
