"""Explanation methods as per-layer backward rules (MATH.md section 4).

- :mod:`.rules`, :mod:`.rules_linear`, :mod:`.rules_lrp`: small named rule objects per
  layer type (ReLU, MaxPool/Flatten routing, the adjoint with ``W``/``A``/``W * A``, LRP);
- :mod:`.methods`: every method as an ordered map from layer types to rules, with an
  optional first-layer override, its start value, and the registry ``METHODS``;
- :mod:`.backward`: the one forward/backward loop all methods share;
- :mod:`.explainer`: :class:`Explainer` (reusable) and :func:`explain` (one call);
- :mod:`.normalize`: per-sample scaling of heatmaps for display.

The package is ``refnet.attribution``; ``refnet.explain`` is the one-call function
(:func:`refnet.attribution.explainer.explain`).
"""

from .backward import backward_steps, forward_steps, start_signal
from .explainer import Explainer, explain, select_target
from .methods import METHODS, EvaluationPoints, Method, composite, make_method
from .normalize import normalize
from .rules import (
    Identity,
    LayerBackward,
    ReLUDeconvNet,
    ReLUGradient,
    ReLUGuided,
    Rule,
    Step,
)
from .rules_linear import Adjoint
from .rules_lrp import AlphaBeta, Epsilon, WSquare, ZBox, ZPlus

__all__ = [
    "METHODS",
    "Adjoint",
    "AlphaBeta",
    "Epsilon",
    "EvaluationPoints",
    "Explainer",
    "Identity",
    "LayerBackward",
    "Method",
    "ReLUDeconvNet",
    "ReLUGradient",
    "ReLUGuided",
    "Rule",
    "Step",
    "WSquare",
    "ZBox",
    "ZPlus",
    "backward_steps",
    "composite",
    "explain",
    "forward_steps",
    "make_method",
    "normalize",
    "select_target",
    "start_signal",
]
