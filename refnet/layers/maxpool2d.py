r"""MaxPool2D: the maximum over ``size x size`` windows with stride ``stride`` (no padding).

``H' = (H - size) // stride + 1``. A tie inside a window goes to the first maximum in
row-major order; the backward pass routes each upstream value to its window's argmax, and
overlapping windows (``stride < size``) add their contributions (MATH.md section 0). Every
explanation method routes through max-pooling the same way (MATH.md section 4).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kernels
from .args import whole_number
from .base import Layer, check_input, check_upstream


@dataclass(frozen=True)
class MaxPool2DCache:
    """What MaxPool2D's backward needs: the input shape and each window's argmax."""

    x_shape: tuple[int, int, int, int]
    argmax: np.ndarray  # (N, C, H', W') int64, flat h * W + w inside the channel


class MaxPool2D(Layer):
    """Max-pooling over square windows; ``stride`` defaults to ``size``."""

    def __init__(self, size: int = 2, stride: int | None = None) -> None:
        size = whole_number("MaxPool2D", "size", size, 1)
        stride = size if stride is None else whole_number("MaxPool2D", "stride", stride, 1)
        self.size, self.stride = size, stride

    def forward(
        self, x: np.ndarray, check_finite: bool = True
    ) -> tuple[np.ndarray, MaxPool2DCache]:
        """x (N, C, H, W) -> (N, C, H', W')."""
        check_input("MaxPool2D", x, 4, check_finite)
        if self.size > x.shape[2] or self.size > x.shape[3]:
            raise ValueError(
                f"MaxPool2D: window {self.size}x{self.size} is larger than the input "
                f"of shape {x.shape}"
            )
        y, argmax = kernels.maxpool2d_forward(x, self.size, self.stride)
        return y, MaxPool2DCache(x.shape, argmax)

    def backward(self, dy: np.ndarray, cache: MaxPool2DCache) -> tuple[np.ndarray, dict]:
        """Each ``dy`` value goes to its window's argmax: dy (N, C, H', W') -> (N, C, H, W)."""
        check_upstream("MaxPool2D", dy, cache.argmax.shape)
        return kernels.maxpool2d_backward(dy, cache.argmax, cache.x_shape), {}

    def config(self) -> dict:
        return {"size": self.size, "stride": self.stride}

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        N, C, H, W = input_shape
        k, s = self.size, self.stride
        return (N, C, (H - k) // s + 1, (W - k) // s + 1)
