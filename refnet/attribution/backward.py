r"""The one forward/backward loop shared by every explanation method.

MATH.md section 4: every method is one forward pass that keeps what each layer needs, then
one backward pass from the selected output neuron ``t``, layer by layer, with a rule per
layer. The start value at the output is

.. math::

    R^{(L)}_{n,k} = [k = t_n]\; s_n, \qquad
    s_n = 1 \text{ (gradient family)}, \quad s_n = z_{n,t_n} \text{ (all other methods)},

and :math:`R^{(l)} = \mathrm{rule}_l(R^{(l+1)})` down to the input. Nothing in this file
depends on the method: the method only chooses the rules (:mod:`refnet.attribution.methods`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from ..layers import Conv2D, Flatten, MaxPool2D, ReLU
from ..network import Sequential
from .rules import Rule, Step

#: A rule together with what it prepared for its layer.
BoundRule = tuple[Rule, Any]


def forward_steps(net: Sequential, x: np.ndarray) -> tuple[np.ndarray, list[Step]]:
    """Run the network on a checked ``x``, keeping every layer's input, output and cache.

    ``x`` must already be validated (finite, float); the layers skip their own checks.
    Returns the logits ``(N, K)`` and one :class:`Step` per layer. A layer input is known to
    be non-negative after a ReLU (and after max-pooling or flattening such an input).

    The MaxPool tie rule (MATH.md section 0, MaxPool2D): in a window of equal maxima the
    first one wins. Ties are common (flat image regions give equal conv outputs), and they
    stay ties only if every conv ahead of the max-pool computes equal patches to bit-equal
    outputs. So every :class:`Conv2D` followed, anywhere later, by a :class:`MaxPool2D` runs
    its translation-exact route here (``exact=True``, :func:`refnet.kernels.conv2d_forward`),
    on both backends alike; otherwise Winograd's or BLAS's position-dependent rounding
    would move the argmax, and the backward signal, to another pixel. Training and pattern
    fitting keep the fastest route: at a tie the forward values agree to rounding either
    way.
    """
    exact = _ahead_of_max_pool(net)
    steps = []
    nonnegative = False
    for i, layer in enumerate(net.layers):
        if exact[i]:
            z, cache = layer.forward(x, check_finite=False, exact=True)
        else:
            z, cache = layer.forward(x, check_finite=False)
        steps.append(Step(i, layer, cache, x, z, nonnegative, exact[i]))
        nonnegative = isinstance(layer, ReLU) or (
            nonnegative and isinstance(layer, (MaxPool2D, Flatten))
        )
        x = z
    return x, steps


def _ahead_of_max_pool(net: Sequential) -> list[bool]:
    """Per layer: a :class:`Conv2D` with a :class:`MaxPool2D` somewhere after it."""
    pool_after = False
    flags = []
    for layer in reversed(net.layers):
        flags.append(isinstance(layer, Conv2D) and pool_after)
        pool_after = pool_after or isinstance(layer, MaxPool2D)
    return flags[::-1]


def start_signal(logits: np.ndarray, target: np.ndarray, start: str) -> np.ndarray:
    r"""The backward pass's start ``R^{(L)}`` (N, K): ``1`` or ``z_t`` at ``t``, 0 elsewhere.

    .. math:: R^{(L)}_{n,k} = [k = t_n]\, s_n, \quad s_n \in \{1, z_{n,t_n}\}
    """
    N = logits.shape[0]
    rows = np.arange(N)
    R = np.zeros_like(logits)  # (N, K)
    if start == "one":
        R[rows, target] = 1
    elif start == "logit":
        R[rows, target] = logits[rows, target]
    else:
        raise ValueError(f"start_signal: start must be 'one' or 'logit', got {start!r}")
    return R


def backward_steps(steps: Sequence[Step], rules: Sequence[BoundRule], R: np.ndarray) -> np.ndarray:
    r"""Walk the layers in reverse, applying each layer's rule: :math:`R \leftarrow
    \mathrm{rule}_l(R)`. Returns the signal at the network's input.

    The loop owns ``R``: a rule may overwrite the array it receives.
    """
    if len(steps) != len(rules):
        raise ValueError(f"backward_steps: {len(steps)} layers but {len(rules)} rules")
    for step, (rule, prepared) in zip(reversed(steps), reversed(rules), strict=True):
        R = rule.backward(R, step, prepared)
    return R
