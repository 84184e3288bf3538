r"""ReLU: :math:`\mathrm{relu}(z) = \max(z, 0)`, with derivative :math:`[z > 0]`.

The derivative at exactly ``z = 0`` is 0 (MATH.md section 0). The mask ``[z > 0]`` of the
ReLU's own input is what the gradient, Guided BackProp, PatternNet and PatternAttribution
apply on the way back (MATH.md section 4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kernels
from .base import Layer, check_input, check_upstream


@dataclass(frozen=True)
class ReLUCache:
    """What ReLU's backward needs: the mask ``[z > 0]`` of its input (any shape)."""

    active: np.ndarray


class ReLU(Layer):
    """Elementwise rectifier; works on any input shape."""

    def forward(self, x: np.ndarray, check_finite: bool = True) -> tuple[np.ndarray, ReLUCache]:
        check_input("ReLU", x, None, check_finite)
        y, active = kernels.relu_forward(x)  # one pass writes both
        return y, ReLUCache(active)

    def backward(self, dy: np.ndarray, cache: ReLUCache) -> tuple[np.ndarray, dict]:
        """``dx = dy * [z > 0]``."""
        check_upstream("ReLU", dy, cache.active.shape)
        return kernels.relu_backward(dy, cache.active), {}

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(input_shape)
