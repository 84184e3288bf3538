r"""Conv2D layer: cross-correlation with ``W (F, C, kh, kw)``, bias ``b (F,)``.

Integer ``stride`` ``s``; zero ``padding`` an int or an ``(ph, pw)`` pair;
``H' = (H + 2 ph - kh) // s + 1`` (MATH.md section 0). A convolution is a Dense layer
applied to every patch: with ``cols = im2col(x)`` ``(N, C kh kw, H' W')`` and
``W_2 = W.reshape(F, C kh kw)``,

.. math::

    z_n = W_2\,\mathrm{cols}_n + b, \qquad
    \frac{\partial L}{\partial x} = \mathrm{col2im}(W_2^\top \delta_n), \qquad
    \frac{\partial L}{\partial W_2} = \textstyle\sum_n \delta_n\,\mathrm{cols}_n^\top .

``adjoint(r, cache, weight)`` is the transposed convolution with a swappable ``weight`` of
``W``'s shape (``W``, a pattern ``A`` or ``W * A``; MATH.md section 4). The arithmetic runs
in :mod:`refnet.kernels` (Cython when compiled, NumPy otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import kernels
from .args import whole_number
from .base import Layer, as_param, cast_like, check_input, check_upstream
from .init import initial_weights


@dataclass(frozen=True)
class Conv2DCache:
    """What Conv2D's backward needs: the layer input ``x`` (N, C, H, W)."""

    x: np.ndarray


def _pair(name: str, value: int | tuple[int, int], minimum: int) -> tuple[int, int]:
    pair = (value, value) if np.isscalar(value) else tuple(value)
    if len(pair) != 2:
        raise TypeError(f"Conv2D: {name} must be an int or a pair of ints, got {value!r}")
    return whole_number("Conv2D", name, pair[0], minimum), whole_number(
        "Conv2D", name, pair[1], minimum
    )


class Conv2D(Layer):
    """2-D cross-correlation layer, NCHW, with integer stride and zero padding."""

    param_names = ("W", "b")

    def __init__(
        self,
        W: np.ndarray,
        b: np.ndarray | None = None,
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        W = as_param("Conv2D", "W", W)
        if W.ndim != 4:
            raise ValueError(f"Conv2D: W must have shape (F, C, kh, kw), got {W.shape}")
        stride = whole_number("Conv2D", "stride", stride, 1)
        self.W = W
        self.b = (
            np.zeros(W.shape[0], dtype=W.dtype)
            if b is None
            else as_param("Conv2D", "b", b, (W.shape[0],)).astype(W.dtype)
        )
        self.stride = stride
        self.padding = _pair("padding", padding, 0)

    @classmethod
    def create(
        cls,
        in_channels: int,
        out_channels: int,
        kernel_size: int | tuple[int, int],
        stride: int = 1,
        padding: int | tuple[int, int] = 0,
        init: str = "he",
        seed: np.random.Generator | int | None = None,
        dtype: np.dtype | type = np.float64,
    ) -> Conv2D:
        """A Conv2D layer from sizes, with seeded He or Glorot weights and zero bias."""
        kh, kw = _pair("kernel_size", kernel_size, 1)
        in_channels = whole_number("Conv2D", "in_channels", in_channels, 1)
        out_channels = whole_number("Conv2D", "out_channels", out_channels, 1)
        shape = (out_channels, in_channels, kh, kw)
        fan_in, fan_out = in_channels * kh * kw, out_channels * kh * kw
        W = initial_weights(shape, fan_in, fan_out, init, seed, dtype)
        return cls(W, np.zeros(out_channels, dtype=dtype), stride, padding)

    @property
    def kernel_size(self) -> tuple[int, int]:
        return self.W.shape[2], self.W.shape[3]

    def _check(self, x: np.ndarray, check_finite: bool) -> None:
        check_input("Conv2D", x, 4, check_finite)
        F, C, kh, kw = self.W.shape
        ph, pw = self.padding
        if x.shape[1] != C:
            raise ValueError(
                f"Conv2D: input has shape {x.shape} ({x.shape[1]} channels) "
                f"but W has shape {self.W.shape} (expects {C} channels)"
            )
        if kh > x.shape[2] + 2 * ph or kw > x.shape[3] + 2 * pw:
            raise ValueError(
                f"Conv2D: kernel ({kh}, {kw}) is larger than the padded input "
                f"({x.shape[2] + 2 * ph}, {x.shape[3] + 2 * pw}) for input shape {x.shape} "
                f"and padding {self.padding}"
            )

    def forward(
        self, x: np.ndarray, check_finite: bool = True, *, exact: bool = False
    ) -> tuple[np.ndarray, Conv2DCache]:
        """x (N, C, H, W) -> z (N, F, H', W').

        ``exact=True`` takes the kernels' translation-exact route (equal patches give
        bit-equal outputs; :func:`refnet.kernels.conv2d_forward`), as the explanation
        forward does ahead of a max-pool.
        """
        self._check(x, check_finite)
        ph, pw = self.padding
        W, b = cast_like(self.W, x), cast_like(self.b, x)
        z = kernels.conv2d_forward(x, W, b, self.stride, ph, pw, exact=exact)  # (N, F, H', W')
        return z, Conv2DCache(x)

    def backward(
        self, dy: np.ndarray, cache: Conv2DCache
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """dy (N, F, H', W') -> dx (N, C, H, W), and the gradients of ``W`` and ``b``."""
        ph, pw = self.padding
        dx = self.adjoint(dy, cache)
        dW = kernels.conv2d_backward_weight(
            dy, cast_like(cache.x, dy), self.W.shape, self.stride, ph, pw
        )  # (F, C, kh, kw)
        return dx, {"W": dW, "b": dy.sum(axis=(0, 2, 3))}

    def adjoint(
        self, r: np.ndarray, cache: Conv2DCache, weight: np.ndarray | None = None
    ) -> np.ndarray:
        """Transposed convolution of r (N, F, H', W') with ``weight`` (default ``W``)."""
        weight = self.W if weight is None else weight
        if weight.shape != self.W.shape:
            raise ValueError(
                f"Conv2D: adjoint weight has shape {weight.shape}, expected {self.W.shape}"
            )
        check_upstream("Conv2D", r, self.output_shape(cache.x.shape))
        ph, pw = self.padding
        return kernels.conv2d_backward_input(
            r, cast_like(weight, r), cache.x.shape, self.stride, ph, pw
        )  # (N, C, H, W)

    def weight_matrix(self, weight: np.ndarray | None = None) -> np.ndarray:
        """The filters as rows, ``(K, D) = (F, C*kh*kw)``, in im2col's patch order."""
        weight = self.W if weight is None else weight
        return weight.reshape(weight.shape[0], -1)  # (F, C*kh*kw)

    def config(self) -> dict:
        F, C, kh, kw = self.W.shape
        return {
            "in_channels": C,
            "out_channels": F,
            "kernel_size": (kh, kw),
            "stride": self.stride,
            "padding": self.padding,
        }

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        N, _, H, Wd = input_shape
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        s = self.stride
        return (N, self.W.shape[0], (H + 2 * ph - kh) // s + 1, (Wd + 2 * pw - kw) // s + 1)
