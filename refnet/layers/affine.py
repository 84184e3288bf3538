r"""ChannelAffine: a per-channel scale and shift, the form of a BatchNorm at inference.

A BatchNorm with eval statistics (mean :math:`\mu`, variance :math:`\sigma^2`, scale
:math:`\gamma`, shift :math:`\beta`, and :math:`\varepsilon`) is the affine map

.. math::

    s = \frac{\gamma}{\sqrt{\sigma^2 + \varepsilon}}, \qquad
    y = s\,x + (\beta - \mu s), \qquad
    \frac{\partial L}{\partial x} = s\,\delta ,

with :math:`\varepsilon` kept inside :math:`s`. The importers fold a BatchNorm that follows
a Conv2D or Dense directly into that layer (``refnet.importers.fold``); anywhere else (for
example before a padded convolution, where folding is not exact because the padding zeros
are not normalised) it becomes this layer. The channel axis is axis 1, so the layer works
on ``(N, C, H, W)`` and on ``(N, C)`` (a BatchNorm1d). It is linear and has no patterns of
its own; every explanation method uses its adjoint ``R s`` as its rule.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .base import Layer, as_param, cast_like, check_input, check_upstream


@dataclass(frozen=True)
class ChannelAffineCache:
    """What ChannelAffine's backward needs: the input ``x`` (for the scale's gradient)."""

    x: np.ndarray


class ChannelAffine(Layer):
    """``y = scale * x + shift`` per channel (axis 1); ``scale`` and ``shift`` are (C,)."""

    param_names = ("scale", "shift")

    def __init__(self, scale: np.ndarray, shift: np.ndarray) -> None:
        scale = as_param("ChannelAffine", "scale", scale)
        if scale.ndim != 1:
            raise ValueError(f"ChannelAffine: scale must have shape (C,), got {scale.shape}")
        self.scale = scale
        self.shift = as_param("ChannelAffine", "shift", shift, scale.shape).astype(scale.dtype)

    @classmethod
    def from_batchnorm(
        cls,
        gamma: np.ndarray,
        beta: np.ndarray,
        mean: np.ndarray,
        var: np.ndarray,
        eps: float,
    ) -> ChannelAffine:
        r"""The layer equal to a BatchNorm at inference: :math:`s = \gamma /
        \sqrt{\sigma^2 + \varepsilon}`, shift :math:`\beta - \mu s` (in ``gamma``'s dtype)."""
        s, t = batchnorm_scale_shift(gamma, beta, mean, var, eps)
        return cls(s, t)

    @property
    def channels(self) -> int:
        return self.scale.shape[0]

    def _broadcast(self, a: np.ndarray, x: np.ndarray) -> np.ndarray:
        return cast_like(a, x).reshape((1, -1) + (1,) * (x.ndim - 2))  # (1, C, 1, 1) or (1, C)

    def forward(
        self, x: np.ndarray, check_finite: bool = True
    ) -> tuple[np.ndarray, ChannelAffineCache]:
        """``y = s x + t``: x (N, C, ...) -> y of the same shape."""
        check_input("ChannelAffine", x, None, check_finite)
        if x.ndim < 2 or x.shape[1] != self.channels:
            raise ValueError(
                f"ChannelAffine: input has shape {x.shape} but scale has shape "
                f"{self.scale.shape} (expects {self.channels} channels on axis 1)"
            )
        y = x * self._broadcast(self.scale, x) + self._broadcast(self.shift, x)
        return y, ChannelAffineCache(x)

    def backward(
        self, dy: np.ndarray, cache: ChannelAffineCache
    ) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """dx = s dy (the adjoint), and the gradients of ``scale`` and ``shift``."""
        check_upstream("ChannelAffine", dy, cache.x.shape)
        axes = (0, *range(2, dy.ndim))
        grads = {"scale": (dy * cache.x).sum(axis=axes), "shift": dy.sum(axis=axes)}
        return dy * self._broadcast(self.scale, dy), grads

    def config(self) -> dict:
        return {"channels": self.channels}

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        return tuple(input_shape)


def batchnorm_scale_shift(
    gamma: np.ndarray, beta: np.ndarray, mean: np.ndarray, var: np.ndarray, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    r"""A BatchNorm's per-channel scale and shift, computed in float64 and returned in
    ``gamma``'s dtype:

    .. math:: s = \gamma / \sqrt{\sigma^2 + \varepsilon}, \qquad t = \beta - \mu s .
    """
    arrays = [np.asarray(a) for a in (gamma, beta, mean, var)]
    shapes = {a.shape for a in arrays}
    if len(shapes) != 1 or arrays[0].ndim != 1:
        raise ValueError(
            f"BatchNorm: gamma, beta, mean and var must share one shape (C,), got "
            f"{[a.shape for a in arrays]}"
        )
    g, b, mu, v = (a.astype(np.float64) for a in arrays)
    if (v + eps <= 0).any():
        raise ValueError(f"BatchNorm: var + eps must be positive (eps = {eps})")
    s = g / np.sqrt(v + float(eps))
    dtype = arrays[0].dtype if arrays[0].dtype.type in (np.float32, np.float64) else np.float64
    return s.astype(dtype), (b - mu * s).astype(dtype)
