r"""The linear toy of the paper's Fig. 2: why the filter is not the signal (MATH.md section 1).

Data are signal plus distractor,

.. math::

    x = a_s\, y + a_d\, \varepsilon, \qquad a_s = (1, 0), \quad a_d = (1, 1),
    \qquad y, \varepsilon \sim \mathcal N(0, 1) \text{ independent}.

The linear model that recovers ``y`` exactly must cancel the distractor, ``w^T a_d = 0``,
and keep the signal, ``w^T a_s = 1``: so ``w = (1, -1)``, at 45 degrees to the signal
direction. The gradient, DeConvNet and Guided BackProp all return ``w`` (up to a scale);
LRP returns ``w * x``, which still contains the distractor. The pattern fitted from data,
``a = cov[x, y] / var[y]``, recovers ``a_s``; PatternNet returns ``a y`` and
PatternAttribution ``w * a * y``, both along ``a_s``.

:func:`linear_toy` builds this model as a one-layer refnet network, fits its pattern with
:func:`refnet.fit_patterns` and runs every method through :func:`refnet.explain`, so the
figure exercises the same code as a real network.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..layers import Dense
from ..network import Sequential

#: True signal and distractor directions, and the filter that cancels the distractor.
A_S = np.array([1.0, 0.0])
A_D = np.array([1.0, 1.0])
W_TOY = np.array([1.0, -1.0])

#: The methods compared on the toy, as (method name for ``refnet.explain``, label).
TOY_METHODS = (
    ("gradient", "Gradient"),
    ("deconvnet", "DeConvNet"),
    ("guided_backprop", "Guided BackProp"),
    ("lrp.epsilon", "LRP"),
    ("patternnet", "PatternNet"),
    ("patternattribution", "PatternAttribution"),
)


@dataclass
class ToyResult:
    r"""What :func:`linear_toy` computed.

    Attributes
    ----------
    X : (n, 2) the data; ``y`` (n,) the signal amplitude (the model's output).
    w : (2,) the filter; ``a`` (2,) the fitted pattern (kind ``linear``).
    explanations : ``{method: (n, 2)}`` what each method returns for every sample.
    angles : ``{method: degrees}`` mean over samples of the angle between the returned
        vector and the line spanned by ``a_s`` (unsigned, in [0, 90]); samples whose
        explanation is exactly 0 are left out (90 if all of them are: no direction).
    angle_w, angle_a : the angles of ``w`` and ``a`` to ``a_s``, in degrees.
    """

    X: np.ndarray
    y: np.ndarray
    w: np.ndarray
    a: np.ndarray
    explanations: dict[str, np.ndarray] = field(default_factory=dict)
    angles: dict[str, float] = field(default_factory=dict)
    angle_w: float = 0.0
    angle_a: float = 0.0


def line_angle(v: np.ndarray, direction: np.ndarray) -> np.ndarray:
    r"""Angle in degrees between vectors ``v`` (..., d) and the line spanned by ``direction``.

    .. math:: \theta = \arccos \frac{|v^\top u|}{\lVert v \rVert \lVert u \rVert} \in [0°, 90°]

    NaN where ``v`` is exactly 0 (no direction).
    """
    v = np.asarray(v, dtype=np.float64)
    norm = np.linalg.norm(v, axis=-1) * np.linalg.norm(direction)
    dot = np.abs(v @ direction)
    with np.errstate(invalid="ignore", divide="ignore"):
        cos = np.where(norm > 0, dot / np.where(norm > 0, norm, 1.0), np.nan)
    return np.degrees(np.arccos(np.clip(cos, 0.0, 1.0)))


def toy_data(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    r"""``n`` samples of :math:`x = a_s y + a_d \varepsilon`: returns ``X (n, 2)``, ``y (n,)``."""
    rng = np.random.default_rng(seed)
    y = rng.standard_normal(n)
    eps = rng.standard_normal(n)
    X = y[:, None] * A_S + eps[:, None] * A_D  # (n, 2)
    return X, y


def toy_network() -> Sequential:
    """The one-neuron linear model ``y = w^T x`` with ``w = (1, -1)``, no bias."""
    return Sequential([Dense(W_TOY[None, :].copy(), np.zeros(1))])


def linear_toy(n: int = 2000, seed: int = 0) -> ToyResult:
    """Fit the toy's pattern and run every method of :data:`TOY_METHODS` on its data.

    Parameters
    ----------
    n : number of samples (the pattern is fitted on all of them).
    seed : seed of the data.

    Returns
    -------
    ToyResult with the explanations and their angles to the signal direction ``a_s``.
    """
    from ..attribution import explain
    from ..patterns import fit_patterns

    X, y = toy_data(n, seed)
    net = toy_network()
    patterns = fit_patterns(net, X, kind="linear")
    a = np.asarray(patterns.A[0], dtype=np.float64).reshape(-1)  # (2,)
    result = ToyResult(X, y, W_TOY.copy(), a)
    for method, _ in TOY_METHODS:
        needs_patterns = method.startswith("pattern")
        e = explain(net, X, method, patterns=patterns if needs_patterns else None)
        e = np.asarray(e, dtype=np.float64).reshape(n, 2)  # (n, 2)
        result.explanations[method] = e
        angles = line_angle(e, A_S)  # (n,)
        result.angles[method] = float(np.nanmean(angles)) if np.isfinite(angles).any() else 90.0
    result.angle_w = float(line_angle(result.w, A_S))
    result.angle_a = float(line_angle(result.a, A_S))
    return result
