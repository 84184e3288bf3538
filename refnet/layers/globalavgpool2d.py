r"""GlobalAvgPool2D: the mean of every channel over all its positions.

.. math::

    y_{n,c} = \frac{1}{H W} \sum_{h,w} x_{n,c,h,w}, \qquad
    \frac{\partial L}{\partial x_{n,c,h,w}} = \frac{\delta_{n,c}}{H W}.

The output is ``(N, C)`` by default, ready for a Dense layer (Keras's
``GlobalAveragePooling2D``); ``keepdims=True`` gives ``(N, C, 1, 1)`` instead, like
PyTorch's ``AdaptiveAvgPool2d(1)`` and ONNX's ``GlobalAveragePool``, whose importers use
it so that a following ``Flatten`` (or a 1x1 convolution) sees the shape it expects. The
layer is linear; every explanation method uses its adjoint (the backward pass) as its
rule. It is one memory-bound reduction, so it has no compiled kernel of its own.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Layer, check_input, check_upstream


@dataclass(frozen=True)
class GlobalAvgPool2DCache:
    """What GlobalAvgPool2D's backward needs: the input shape."""

    x_shape: tuple[int, int, int, int]


class GlobalAvgPool2D(Layer):
    """Mean over ``(H, W)``: (N, C, H, W) -> (N, C), or (N, C, 1, 1) with ``keepdims``."""

    def __init__(self, keepdims: bool = False) -> None:
        if not isinstance(keepdims, (bool, np.bool_)):
            raise TypeError(f"GlobalAvgPool2D: keepdims must be a bool, got {keepdims!r}")
        self.keepdims = bool(keepdims)

    def forward(
        self, x: np.ndarray, check_finite: bool = True
    ) -> tuple[np.ndarray, GlobalAvgPool2DCache]:
        check_input("GlobalAvgPool2D", x, 4, check_finite)
        y = x.mean(axis=(2, 3), keepdims=self.keepdims)  # (N, C) or (N, C, 1, 1)
        return y, GlobalAvgPool2DCache(x.shape)

    def backward(self, dy: np.ndarray, cache: GlobalAvgPool2DCache) -> tuple[np.ndarray, dict]:
        """The adjoint: each ``dy`` value divided by ``H W`` at every position."""
        check_upstream("GlobalAvgPool2D", dy, self.output_shape(cache.x_shape))
        N, C, H, W = cache.x_shape
        share = dy.reshape(N, C, 1, 1) / dy.dtype.type(H * W)  # (N, C, 1, 1)
        return np.broadcast_to(share, cache.x_shape).copy(), {}  # (N, C, H, W)

    def config(self) -> dict:
        return {"keepdims": self.keepdims}

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        N, C = input_shape[:2]
        return (N, C, 1, 1) if self.keepdims else (N, C)
