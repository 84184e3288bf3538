r"""Seeded weight initialisers.

- He (Kaiming) normal for ReLU networks: :math:`W \sim \mathcal N(0, 2 / \text{fan\_in})`
  (He et al. 2015).
- Glorot (Xavier) uniform: :math:`W \sim U(-l, l)`,
  :math:`l = \sqrt{6 / (\text{fan\_in} + \text{fan\_out})}` (Glorot & Bengio 2010).

Biases start at zero. ``fan_in`` is the number of inputs to one neuron (``in`` for a
Dense layer, ``C kh kw`` for a Conv2D filter) and ``fan_out`` the number it feeds.
"""

from __future__ import annotations

import numpy as np

INITIALISERS = ("he", "glorot")


def initial_weights(
    shape: tuple[int, ...],
    fan_in: int,
    fan_out: int,
    init: str = "he",
    rng: np.random.Generator | int | None = None,
    dtype: np.dtype | type = np.float64,
) -> np.ndarray:
    """Draw a weight array of ``shape`` with the named initialiser from a seeded RNG."""
    rng = np.random.default_rng(rng)
    if init == "he":
        W = rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape)
    elif init == "glorot":
        limit = np.sqrt(6.0 / (fan_in + fan_out))
        W = rng.uniform(-limit, limit, size=shape)
    else:
        raise ValueError(f"unknown initialiser {init!r}; choose one of {INITIALISERS}")
    return W.astype(dtype)
