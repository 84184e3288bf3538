r"""Building the refnet network: BatchNorm folding, softmax stripping, the final check.

Every importer walks its source model in order and hands each converted layer to one
:class:`NetBuilder`. A BatchNorm with eval statistics is folded into the layer before it
when that layer is a Conv2D or Dense (exact: the BatchNorm is a per-output-channel affine
map of that layer's output),

.. math::

    s = \frac{\gamma}{\sqrt{\sigma^2 + \varepsilon}}, \qquad
    W' = s\,W \ (\text{row } f \text{ scaled by } s_f), \qquad
    b' = (b - \mu)\,s + \beta ,

with :math:`\varepsilon` inside :math:`s`, computed in float64 and cast back to the
layer's dtype. Anywhere else it becomes a :class:`~refnet.layers.ChannelAffine` layer: a
BatchNorm *before* a convolution is not folded forward, because with zero padding the
padded border is not normalised, so the fold would be wrong at the edges.
"""

from __future__ import annotations

import numpy as np

from ..layers import AvgPool2D, ChannelAffine, Conv2D, Dense, Layer, ZeroPad2D
from ..layers.affine import batchnorm_scale_shift
from ..network import Sequential
from .errors import UnsupportedModelError
from .report import ImportReport


def fold_batchnorm(
    layer: Conv2D | Dense,
    gamma: np.ndarray,
    beta: np.ndarray,
    mean: np.ndarray,
    var: np.ndarray,
    eps: float,
) -> Conv2D | Dense:
    r"""The Conv2D or Dense equal to ``layer`` followed by the BatchNorm (a new layer).

    .. math:: W'_f = s_f W_f, \quad b'_f = (b_f - \mu_f) s_f + \beta_f, \quad
        s = \gamma / \sqrt{\sigma^2 + \varepsilon}
    """
    s, t = batchnorm_scale_shift(gamma, beta, mean, var, eps)
    n_out = layer.W.shape[0]
    if s.shape != (n_out,):
        raise ValueError(
            f"BatchNorm over {s.shape[0]} channels cannot follow a {type(layer).__name__} "
            f"with {n_out} outputs (W of shape {layer.W.shape})"
        )
    s64, t64 = s.astype(np.float64), t.astype(np.float64)
    shape = (n_out,) + (1,) * (layer.W.ndim - 1)  # (F, 1, 1, 1) or (out, 1)
    W = (layer.W.astype(np.float64) * s64.reshape(shape)).astype(layer.W.dtype)  # W's shape
    b = (layer.b.astype(np.float64) * s64 + t64).astype(layer.b.dtype)  # = (b - mu) s + beta
    if isinstance(layer, Conv2D):
        return Conv2D(W, b, stride=layer.stride, padding=layer.padding)
    return Dense(W, b)


def same_pads(size: int, k: int, s: int, lower: bool = False) -> tuple[int, int]:
    r"""The ``(before, after)`` zero padding of ``"same"`` on an axis of length ``size``.

    .. math:: H' = \lceil H / s \rceil, \quad p = \max((H' - 1) s + k - H, 0),

    split as ``p // 2`` before and the rest after (TensorFlow/Keras, PyTorch and ONNX
    ``SAME_UPPER``); ``lower=True`` puts the extra one before (ONNX ``SAME_LOWER``).
    """
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    small, large = total // 2, total - total // 2
    return (large, small) if lower else (small, large)


class NetBuilder:
    """Collects converted layers in order and writes the :class:`ImportReport`."""

    def __init__(self, source: str, input_shape: tuple[int, ...]) -> None:
        self.source = source
        self.input_shape = tuple(input_shape)
        #: The current output shape, batch axis 1 included (NCHW or (1, D)).
        self.shape: tuple[int, ...] = (1, *self.input_shape)
        self.layers: list[Layer] = []
        self.names: list[str] = []  # the source name of each refnet layer
        self.report = ImportReport(source)
        self._softmax: str | None = None  # name of a softmax seen (it must stay last)

    def add(self, layer: Layer, name: str) -> None:
        """Append ``layer`` converted from the source layer ``name``."""
        if self._softmax is not None:
            raise UnsupportedModelError(
                f"{self.source} import: {self._softmax!r} (a softmax) is followed by "
                f"{name!r}; a softmax is supported only as the last layer, where it is "
                "stripped"
            )
        self.layers.append(layer)
        self.names.append(name)
        self.shape = layer.output_shape(self.shape)

    def conv(
        self, W: np.ndarray, b: np.ndarray | None, stride: int, pads: tuple, name: str
    ) -> None:
        """A Conv2D with zero padding ``pads = (top, bottom, left, right)``: symmetric
        padding stays inside the Conv2D, asymmetric padding becomes a ZeroPad2D before it."""
        t, bottom, left, right = pads
        if t == bottom and left == right:
            self.add(Conv2D(W, b, stride=stride, padding=(t, left)), name)
            return
        self.add(ZeroPad2D(pads), f"{name} (padding)")
        self.add(Conv2D(W, b, stride=stride, padding=0), name)
        self.report.notes.append(f"{name}: asymmetric padding {pads} became a ZeroPad2D layer")

    def avgpool(self, size: tuple, stride: tuple, pads: tuple, name: str) -> None:
        """An AvgPool2D whose average counts the zero padding ``pads`` (as a ZeroPad2D)."""
        if any(pads):
            self.add(ZeroPad2D(pads), f"{name} (padding)")
        self.add(AvgPool2D(size, stride), name)

    def drop(self, name: str, kind: str) -> None:
        """Record that ``name`` (of type ``kind``) was dropped as an inference identity."""
        self.report.dropped.append(f"{name} ({kind})")

    def softmax(self, name: str, kind: str) -> None:
        """A softmax: stripped, provided nothing but dropped layers follow it."""
        if self._softmax is not None:
            raise UnsupportedModelError(
                f"{self.source} import: {self._softmax!r} and {name!r} are two softmaxes in "
                "a row; only one trailing softmax is stripped"
            )
        self._softmax = name
        self.report.stripped.append(
            f"{name} ({kind}): explanations are of the logits (the softmax's input)"
        )

    def batchnorm(
        self,
        gamma: np.ndarray,
        beta: np.ndarray,
        mean: np.ndarray,
        var: np.ndarray,
        eps: float,
        name: str,
    ) -> None:
        """Fold the BatchNorm into the previous Conv2D/Dense, or add a ChannelAffine."""
        last = self.layers[-1] if self.layers else None
        if isinstance(last, (Conv2D, Dense)) and self._softmax is None:
            self.layers[-1] = fold_batchnorm(last, gamma, beta, mean, var, eps)
            i = len(self.layers) - 1
            self.report.folded.append(
                f"{name} -> layer {i} ({type(last).__name__} {self.names[i]!r})"
            )
            return
        after = f"after {self.names[-1]!r}" if self.layers else "at the input"
        self.add(ChannelAffine.from_batchnorm(gamma, beta, mean, var, eps), name)
        self.report.affine.append(
            f"{name} -> layer {len(self.layers) - 1} (ChannelAffine; {after}, not foldable)"
        )

    def finish(self, dtype: np.dtype) -> Sequential:
        """The network, checked by one forward pass on zeros of ``(1, *input_shape)``."""
        input_shape = self.input_shape
        if not self.layers:
            raise UnsupportedModelError(f"{self.source} import: the model has no layers")
        net = Sequential(self.layers)
        net.astype(dtype)
        x = np.zeros((1, *input_shape), dtype=dtype)
        try:
            z = net(x)
        except ValueError as exc:
            raise UnsupportedModelError(
                f"{self.source} import: the converted layers do not fit an input of shape "
                f"{tuple(input_shape)} (NCHW, batch axis excluded): {exc}"
            ) from exc
        if z.ndim != 2:
            raise UnsupportedModelError(
                f"{self.source} import: the model's output has shape {z.shape[1:]} per "
                "sample; refnet explains models whose output is a vector of logits (N, K)"
            )
        net.import_report = self.report
        return net
