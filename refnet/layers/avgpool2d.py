r"""AvgPool2D: the mean over ``kh x kw`` windows with strides ``(sh, sw)`` (no padding).

``H' = (H - kh) // sh + 1``. Average pooling is linear,

.. math::

    y_{n,c,i,j} = \frac{1}{k_h k_w} \sum_{p<k_h,\,q<k_w} x_{n,c,\,i s_h + p,\,j s_w + q},

so its backward pass is its adjoint: each upstream value is spread evenly over its window
(overlapping windows add). Every explanation method uses that adjoint as the layer's rule
(a linear map has no ReLU mask and no weight to swap). A padded average pool that counts
the padded zeros (PyTorch's default ``count_include_pad=True``) is a
:class:`~refnet.layers.ZeroPad2D` followed by this layer.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kernels
from .base import Layer, check_input, check_upstream


@dataclass(frozen=True)
class AvgPool2DCache:
    """What AvgPool2D's backward needs: the input shape."""

    x_shape: tuple[int, int, int, int]


def _pair(name: str, value: int | tuple[int, int]) -> tuple[int, int]:
    pair = (value, value) if np.isscalar(value) else tuple(value)
    if len(pair) != 2 or not all(
        isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= 1 for v in pair
    ):
        raise ValueError(f"AvgPool2D: {name} must be a positive int or pair, got {value!r}")
    return int(pair[0]), int(pair[1])


class AvgPool2D(Layer):
    """Average pooling over ``size`` windows (int or ``(kh, kw)``); ``stride`` defaults to
    ``size``."""

    def __init__(
        self, size: int | tuple[int, int] = 2, stride: int | tuple[int, int] | None = None
    ) -> None:
        self.size = _pair("size", size)
        self.stride = self.size if stride is None else _pair("stride", stride)

    def forward(
        self, x: np.ndarray, check_finite: bool = True
    ) -> tuple[np.ndarray, AvgPool2DCache]:
        """x (N, C, H, W) -> (N, C, H', W')."""
        check_input("AvgPool2D", x, 4, check_finite)
        (kh, kw), (sh, sw) = self.size, self.stride
        if kh > x.shape[2] or kw > x.shape[3]:
            raise ValueError(
                f"AvgPool2D: window {kh}x{kw} is larger than the input of shape {x.shape}"
            )
        return kernels.avgpool2d_forward(x, kh, kw, sh, sw), AvgPool2DCache(x.shape)

    def backward(self, dy: np.ndarray, cache: AvgPool2DCache) -> tuple[np.ndarray, dict]:
        """The adjoint: dy (N, C, H', W') -> (N, C, H, W), ``dy / (kh kw)`` per window."""
        check_upstream("AvgPool2D", dy, self.output_shape(cache.x_shape))
        (kh, kw), (sh, sw) = self.size, self.stride
        return kernels.avgpool2d_backward(dy, cache.x_shape, kh, kw, sh, sw), {}

    def config(self) -> dict:
        return {"size": self.size, "stride": self.stride}

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        N, C, H, W = input_shape
        (kh, kw), (sh, sw) = self.size, self.stride
        return (N, C, (H - kh) // sh + 1, (W - kw) // sw + 1)
