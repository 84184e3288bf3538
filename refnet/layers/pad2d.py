r"""ZeroPad2D: zero padding of ``(N, C, H, W)`` with separate top, bottom, left and right.

Conv2D pads symmetrically; an importer meets asymmetric padding too (ONNX ``pads``,
Keras/TensorFlow ``"same"`` with stride 2, which puts the extra row at the bottom), and
PyTorch's padded average pooling (which averages the padded zeros). Such a layer becomes
this one followed by the unpadded layer. Padding is linear,

.. math::

    y_{n,c,h,w} = x_{n,c,h - t,w - l} \text{ inside, } 0 \text{ outside}, \qquad
    \frac{\partial L}{\partial x} = \delta_{n,c,\,t:t+H,\,l:l+W},

and its adjoint, the crop, is every explanation method's rule for it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Layer, check_input, check_upstream


@dataclass(frozen=True)
class ZeroPad2DCache:
    """What ZeroPad2D's backward needs: the input shape."""

    x_shape: tuple[int, int, int, int]


class ZeroPad2D(Layer):
    """Pad ``(top, bottom, left, right)`` zeros around every channel."""

    def __init__(self, padding: tuple[int, int, int, int]) -> None:
        padding = tuple(padding)
        if len(padding) != 4 or not all(
            isinstance(p, (int, np.integer)) and not isinstance(p, bool) and p >= 0
            for p in padding
        ):
            raise ValueError(
                f"ZeroPad2D: padding must be 4 non-negative ints (top, bottom, left, right), "
                f"got {padding!r}"
            )
        self.padding = tuple(int(p) for p in padding)

    def forward(
        self, x: np.ndarray, check_finite: bool = True
    ) -> tuple[np.ndarray, ZeroPad2DCache]:
        """x (N, C, H, W) -> (N, C, top + H + bottom, left + W + right)."""
        check_input("ZeroPad2D", x, 4, check_finite)
        top, bottom, left, right = self.padding
        y = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))  # (N, C, H', W')
        return y, ZeroPad2DCache(x.shape)

    def backward(self, dy: np.ndarray, cache: ZeroPad2DCache) -> tuple[np.ndarray, dict]:
        """The adjoint, a crop: (N, C, H+t+b, W+l+r) -> (N, C, H, W)."""
        check_upstream("ZeroPad2D", dy, self.output_shape(cache.x_shape))
        top, _, left, _ = self.padding
        H, W = cache.x_shape[2:]
        return np.ascontiguousarray(dy[:, :, top : top + H, left : left + W]), {}

    def config(self) -> dict:
        return {"padding": self.padding}

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        N, C, H, W = input_shape
        top, bottom, left, right = self.padding
        return (N, C, H + top + bottom, W + left + right)
