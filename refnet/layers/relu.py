r"""ReLU: :math:`\mathrm{relu}(z) = \max(z, 0)`, with derivative :math:`[z > 0]`.

The derivative at exactly ``z = 0`` is 0 (MATH.md section 0). The mask ``[z > 0]`` of the
ReLU's own input is what the gradient, Guided BackProp, PatternNet and PatternAttribution
apply on the way back (MATH.md section 4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Layer, check_input, check_upstream


@dataclass(frozen=True)
class ReLUCache:
    """What ReLU's backward needs: the mask ``[z > 0]`` of its input (any shape)."""

    active: np.ndarray


class ReLU(Layer):
    """Elementwise rectifier; works on any input shape."""

    def forward(self, x: np.ndarray, check_finite: bool = True) -> tuple[np.ndarray, ReLUCache]:
        check_input("ReLU", x, None, check_finite)
        active = x > 0
        return np.maximum(x, 0), ReLUCache(active)  # one pass each; np.where is 10x slower

    def backward(self, dy: np.ndarray, cache: ReLUCache) -> tuple[np.ndarray, dict]:
        """``dx = dy * [z > 0]``."""
        check_upstream("ReLU", dy, cache.active.shape)
        return dy * cache.active, {}

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(input_shape)
