r"""Explanation rules: what one layer does to the signal on the way back.

An explanation method is one forward pass that keeps what each layer needs, then one
backward pass from the selected output neuron, layer by layer (MATH.md section 4). A *rule*
is the small named object that maps the signal ``R`` arriving at a layer's output to the
signal leaving its input. Following zennit, a rule knows nothing about the network: it sees
one layer, that layer's forward record (a :class:`Step`) and whatever it prepared once for
that layer (a weight such as ``A`` or ``W * A``, or the parts ``W^+``, ``W^-``).

This file holds the base class and the rules of the layers without weights (ReLU,
MaxPool2D, Flatten). Rules for Dense and Conv2D live in :mod:`refnet.attribution.rules_linear`
(the adjoint with a swappable weight) and :mod:`refnet.attribution.rules_lrp` (layer-wise
relevance propagation).

.. math::

    R^{(l)} = \mathrm{rule}_l\big(R^{(l+1)}\big), \qquad
    R^{(L)} = s\, e_t, \quad s = 1 \text{ (gradient family) or } z_t \text{ (all others)}.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import kernels
from ..layers import Layer


@dataclass(frozen=True)
class Step:
    """One layer's forward record, as the backward pass sees it.

    Attributes
    ----------
    index : int
        Position of the layer in the network.
    layer : Layer
        The layer itself.
    cache : Any
        What the layer's ``forward`` returned for its backward (e.g. ``ReLUCache.active``).
    x : np.ndarray
        The layer's input.
    z : np.ndarray
        The layer's output (for Dense and Conv2D: the pre-activation, bias included).
    x_nonnegative : bool
        ``True`` when ``x >= 0`` is known from the network (a ReLU output, possibly pooled or
        flattened); ``False`` means unknown (a rule that cares checks ``x`` itself).
    exact : bool
        ``True`` when a Conv2D's ``z`` came from the translation-exact route (see
        :func:`refnet.attribution.forward_steps`); a rule that combines ``z`` with forward
        passes of its own runs them on the same route (:meth:`forward`).
    """

    index: int
    layer: Layer
    cache: Any
    x: np.ndarray
    z: np.ndarray
    x_nonnegative: bool = False
    exact: bool = False

    def forward(self, layer: Layer, x: np.ndarray) -> tuple[np.ndarray, Any]:
        """``layer``'s forward pass (a twin of this step's layer) on this step's route."""
        if self.exact:
            return layer.forward(x, check_finite=False, exact=True)
        return layer.forward(x, check_finite=False)


class Rule:
    """Base class of a per-layer backward rule.

    ``prepare(layer, pattern)`` runs once per layer when an :class:`~refnet.attribution.Explainer`
    is built and returns the rule's per-layer constants (``None`` by default).
    ``backward(R, step, prepared)`` maps the signal at the layer's output to its input.
    """

    #: Short name shown in ``repr`` and in error messages.
    name: str = "rule"

    def prepare(self, layer: Layer, pattern: np.ndarray | None) -> Any:
        """Per-layer constants computed once (weights, their positive parts, ...)."""
        return None

    def backward(self, R: np.ndarray, step: Step, prepared: Any) -> np.ndarray:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{type(self).__name__}({args})"


class LayerBackward(Rule):
    r"""Use the layer's own backward pass: ``R_in = layer.backward(R)``.

    For MaxPool2D this routes every value to its window's argmax (overlapping windows add);
    for Flatten it reshapes back. Every method treats these layers this way (MATH.md
    section 4, table). For ReLU it would be the gradient rule :class:`ReLUGradient`.

    .. math:: R_{\mathrm{in}} = J^\top R \quad (J \text{ the layer's Jacobian}).
    """

    name = "layer-backward"

    def backward(self, R: np.ndarray, step: Step, prepared: Any) -> np.ndarray:
        return step.layer.backward(R, step.cache)[0]


class Identity(Rule):
    r"""Pass the signal through unchanged: LRP's rule for ReLU (Bach et al. 2015).

    .. math:: R_{\mathrm{in}} = R
    """

    name = "identity"

    def backward(self, R: np.ndarray, step: Step, prepared: Any) -> np.ndarray:
        return R


class ReLUGradient(Rule):
    r"""The ReLU's derivative, masked by its own forward input (MATH.md section 4).

    Used by the gradient, PatternNet and PatternAttribution; the mask is 0 at ``z = 0``.

    .. math:: R_{\mathrm{in}} = R \odot [z > 0]
    """

    name = "relu-gradient"

    def backward(self, R: np.ndarray, step: Step, prepared: Any) -> np.ndarray:
        return kernels.relu_backward(R, step.cache.active, out=R)  # R: the previous rule's output


class ReLUDeconvNet(Rule):
    r"""DeConvNet's ReLU: rectify the backward signal, ignore the forward mask.

    Zeiler & Fergus 2014; MATH.md section 4.

    .. math:: R_{\mathrm{in}} = \max(R, 0)
    """

    name = "relu-deconvnet"

    def backward(self, R: np.ndarray, step: Step, prepared: Any) -> np.ndarray:
        return np.maximum(R, 0, out=R)


class ReLUGuided(Rule):
    r"""Guided BackProp's ReLU: rectify the backward signal and apply the forward mask.

    Springenberg et al. 2015; MATH.md section 4.

    .. math:: R_{\mathrm{in}} = \max(R, 0) \odot [z > 0]
    """

    name = "relu-guided"

    def backward(self, R: np.ndarray, step: Step, prepared: Any) -> np.ndarray:
        np.maximum(R, 0, out=R)
        return kernels.relu_backward(R, step.cache.active, out=R)
