"""Flatten: C-order reshape of ``(N, C, H, W)`` (or any ``(N, ...)``) to ``(N, C*H*W)``."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .base import Layer, check_input, check_upstream


@dataclass(frozen=True)
class FlattenCache:
    """What Flatten's backward needs: the input shape."""

    x_shape: tuple[int, ...]


class Flatten(Layer):
    """Reshape every sample to a vector; the backward pass reshapes back."""

    def forward(self, x: np.ndarray, check_finite: bool = True) -> tuple[np.ndarray, FlattenCache]:
        check_input("Flatten", x, None, check_finite)
        if x.ndim < 2:
            raise ValueError(f"Flatten: input must have a batch axis, got shape {x.shape}")
        # The sample size comes from the known shape, not -1, which NumPy cannot infer for
        # an empty batch (N = 0).
        return x.reshape(self.output_shape(x.shape)), FlattenCache(x.shape)  # (N, C*H*W)

    def backward(self, dy: np.ndarray, cache: FlattenCache) -> tuple[np.ndarray, dict]:
        check_upstream("Flatten", dy, self.output_shape(cache.x_shape))
        return dy.reshape(cache.x_shape), {}  # (N, C, H, W)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return (input_shape[0], math.prod(input_shape[1:]))
