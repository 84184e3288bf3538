r"""The adjoint rule for Dense and Conv2D, with a swappable weight.

Gradient, DeConvNet, Guided BackProp, PatternNet and PatternAttribution treat a linear layer
the same way: they apply its transpose, the *adjoint* :math:`r \mapsto r V`, and differ only
in the matrix ``V`` that stands in for the weight (MATH.md section 4; Kindermans et al.
2018):

.. math::

    R_{\mathrm{in}} = R\,V, \qquad V = \begin{cases}
        W & \text{gradient, DeConvNet, Guided BackProp} \\
        A & \text{PatternNet (the signal } \hat s = a\,y \text{ back-projected)} \\
        W \odot A & \text{PatternAttribution}
    \end{cases}

For Conv2D, ``R V`` is the transposed convolution (col2im of ``R @ V_2``), so one compiled
kernel, ``Conv2D.adjoint``, serves every one of these methods.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..layers import Layer
from .rules import Rule, Step

WEIGHTS = ("W", "A", "W*A")


class Adjoint(Rule):
    r"""``R_in = R V`` through the layer's ``adjoint`` with ``V`` one of ``W``, ``A``, ``W * A``.

    Parameters
    ----------
    weight : {"W", "A", "W*A"}
        ``"W"``: the layer's weight (the gradient; Zeiler & Fergus 2014; Springenberg et al.
        2015). ``"A"``: the layer's pattern (PatternNet, Kindermans et al. 2018).
        ``"W*A"``: the elementwise product (PatternAttribution, ibid.).

    Notes
    -----
    PatternAttribution conserves relevance through one linear neuron, because its pattern
    satisfies :math:`w^\top a = 1`; it does *not* conserve it exactly through ReLU layers,
    where relevance reaching an inactive unit is dropped (MATH.md section 4). This is the
    method as published, not a defect.
    """

    def __init__(self, weight: str = "W") -> None:
        if weight not in WEIGHTS:
            raise ValueError(f"Adjoint: weight must be one of {WEIGHTS}, got {weight!r}")
        self.weight = weight

    @property
    def name(self) -> str:  # type: ignore[override]
        return f"adjoint[{self.weight}]"

    def prepare(self, layer: Layer, pattern: np.ndarray | None) -> np.ndarray:
        """The stand-in weight ``V`` in the layer's dtype, computed once."""
        W = layer.W
        if self.weight == "W":
            return W
        if pattern is None:
            raise ValueError(
                f"Adjoint[{self.weight}]: {type(layer).__name__} with W {W.shape} has no pattern"
            )
        A = pattern.astype(W.dtype, copy=False)
        return A if self.weight == "A" else W * A

    def backward(self, R: np.ndarray, step: Step, prepared: Any) -> np.ndarray:
        return step.layer.adjoint(R, step.cache, prepared)
