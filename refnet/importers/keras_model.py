r"""Import a Keras 3 ``Sequential`` or linear functional model as a refnet network.

Keras is NHWC with HWIO kernels and ``(in, out)`` dense kernels; refnet is NCHW, OIHW and
``(out, in)``. The layout is converted once, here: a conv kernel ``K (kh, kw, C, F)``
becomes ``W = K.transpose(3, 2, 0, 1)`` ``(F, C, kh, kw)``, a dense kernel becomes its
transpose. The first Dense after a Flatten of an image also needs its input rows
permuted, because the two layouts flatten in different orders: Keras's feature
``h W C + w C + c`` is refnet's feature ``c H W + h W + w``, so

.. math::

    W_{\mathrm{refnet}}[:, j] = K[\pi(j), :]^\top, \qquad
    \pi = \mathrm{arange}(HWC).\mathrm{reshape}(H, W, C).\mathrm{transpose}(2, 0, 1)
          .\mathrm{reshape}(-1),

and a per-feature BatchNorm between the Flatten and that Dense has its parameters
permuted the same way. ``"same"`` padding follows TensorFlow: the extra row or column of
an odd total goes at the bottom/right (a :class:`~refnet.layers.ZeroPad2D` then).
"""

from __future__ import annotations

import os
import sys
from typing import Any

import numpy as np

from ..layers import Dense, Flatten, GlobalAvgPool2D, MaxPool2D, ReLU, ZeroPad2D
from ..network import Sequential
from .errors import UnsupportedModelError, require, unsupported
from .fold import NetBuilder, same_pads

SUPPORTED = (
    "InputLayer",
    "Sequential (nested)",
    "Conv2D (groups=1, dilation_rate=1, equal strides, 'valid' or 'same')",
    "Dense (on vectors)",
    "activation 'relu', 'linear', or a final 'softmax' (stripped)",
    "Activation, ReLU (plain), Softmax (last)",
    "MaxPooling2D and AveragePooling2D (square; 'same' only when it adds no padding)",
    "GlobalAveragePooling2D",
    "Flatten, Reshape to a vector",
    "BatchNormalization (last axis)",
    "ZeroPadding2D",
    "Dropout/SpatialDropout2D/GaussianNoise/GaussianDropout/Identity (dropped)",
)
DROPPED = ("Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "Identity")


def _keras() -> Any:
    if "keras" not in sys.modules:
        os.environ.setdefault("KERAS_BACKEND", "torch")  # refnet's keras extra ships torch
    return require("keras", "keras", "refnet.from_keras")


def _array(v: Any) -> np.ndarray:
    """A Keras variable's value as a NumPy array (a copy)."""
    return np.array(sys.modules["keras"].ops.convert_to_numpy(v))


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


class _KerasConverter:
    """Converts one Keras layer at a time; tracks the NHWC shape and the flatten order."""

    def __init__(self, input_shape: tuple[int, ...]) -> None:
        if len(input_shape) == 3:  # Keras (H, W, C) -> refnet (C, H, W)
            H, W, C = input_shape
            input_shape = (C, H, W)
        self.builder = NetBuilder("keras", input_shape)
        #: refnet feature j is Keras feature perm[j] (after a Flatten of an image), or None.
        self.perm: np.ndarray | None = None

    def fail(self, layer: Any, why: str) -> Exception:
        return unsupported("keras", type(layer).__name__, layer.name, why, SUPPORTED)

    @property
    def spatial(self) -> bool:
        return len(self.builder.shape) == 4

    def convert(self, layer: Any, last: bool) -> None:
        kind, b = type(layer).__name__, self.builder
        if getattr(layer, "data_format", "channels_last") != "channels_last":
            raise self.fail(layer, f"data_format={layer.data_format!r} (only channels_last)")
        if kind == "InputLayer":
            return
        if kind == "Conv2D":
            self.conv(layer)
        elif kind == "Dense":
            self.dense(layer)
        elif kind in ("Activation", "ReLU", "Softmax"):
            self.activation(layer, last)
            return
        elif kind in ("MaxPooling2D", "AveragePooling2D"):
            self.pool(layer)
        elif kind == "GlobalAveragePooling2D":
            b.add(GlobalAvgPool2D(keepdims=bool(layer.keepdims)), layer.name)
        elif kind == "Flatten" or (kind == "Reshape" and len(layer.target_shape) == 1):
            self.flatten(layer)
        elif kind == "BatchNormalization":
            self.batchnorm(layer)
        elif kind == "ZeroPadding2D":
            (t, bottom), (left, right) = layer.padding
            b.add(ZeroPad2D((t, bottom, left, right)), layer.name)
        elif kind in DROPPED:
            b.drop(layer.name, kind)
            return
        else:
            raise self.fail(layer, "this layer type has no refnet equivalent")
        if kind in ("Conv2D", "Dense"):
            self.apply_activation(layer, layer.activation, last)

    def apply_activation(self, layer: Any, fn: Any, last: bool) -> None:
        name = getattr(fn, "__name__", str(fn))
        if name == "linear":
            return
        if name == "relu":
            self.builder.add(ReLU(), f"{layer.name} (activation)")
        elif name == "softmax" and last:
            self.builder.softmax(layer.name, "activation='softmax'")
        else:
            raise self.fail(layer, f"activation {name!r}")

    def activation(self, layer: Any, last: bool) -> None:
        kind = type(layer).__name__
        if kind == "ReLU":
            plain = layer.max_value is None and not layer.negative_slope and not layer.threshold
            if not plain:
                raise self.fail(layer, "max_value, negative_slope or threshold set")
            self.builder.add(ReLU(), layer.name)
        elif kind == "Softmax":
            if not last:
                raise self.fail(layer, "a Softmax is supported only as the last layer")
            self.builder.softmax(layer.name, "Softmax")
        else:
            self.apply_activation(layer, layer.activation, last)

    def same_or_valid(self, layer: Any, k: tuple, s: tuple) -> tuple[int, int, int, int]:
        if layer.padding == "valid":
            return (0, 0, 0, 0)
        H, W = self.builder.shape[2:]
        return same_pads(H, k[0], s[0]) + same_pads(W, k[1], s[1])

    def conv(self, layer: Any) -> None:
        s = _pair(layer.strides)
        if layer.groups != 1 or _pair(layer.dilation_rate) != (1, 1) or s[0] != s[1]:
            why = f"groups={layer.groups}, dilation_rate={layer.dilation_rate}, strides={s}"
            raise self.fail(layer, why)
        K = _array(layer.kernel)  # (kh, kw, C, F)
        W = K.transpose(3, 2, 0, 1)  # (F, C, kh, kw)
        bias = _array(layer.bias) if layer.use_bias else None
        pads = self.same_or_valid(layer, K.shape[:2], s)
        self.builder.conv(np.ascontiguousarray(W), bias, s[0], pads, layer.name)

    def dense(self, layer: Any) -> None:
        if self.spatial:
            raise self.fail(layer, "Dense on an image (apply a Flatten first)")
        K = _array(layer.kernel)  # (in, out)
        if self.perm is not None:
            K = K[self.perm]  # Keras's NHWC flatten order -> refnet's NCHW order
            self.perm = None
        bias = _array(layer.bias) if layer.use_bias else None
        self.builder.add(Dense(np.ascontiguousarray(K.T), bias), layer.name)  # W (out, in)

    def pool(self, layer: Any) -> None:
        k, s = _pair(layer.pool_size), _pair(layer.strides)
        pads = self.same_or_valid(layer, k, s)
        if any(pads):
            raise self.fail(layer, f"padding='same' that pads {pads} (only 'valid' windows)")
        if type(layer).__name__ == "AveragePooling2D":
            self.builder.avgpool(k, s, pads, layer.name)
        elif k[0] != k[1] or s[0] != s[1]:
            raise self.fail(layer, f"pool_size {k} and strides {s} must be square")
        else:
            self.builder.add(MaxPool2D(k[0], s[0]), layer.name)

    def flatten(self, layer: Any) -> None:
        if not self.spatial:
            return  # already a vector
        _, C, H, W = self.builder.shape
        keras_index = np.arange(H * W * C).reshape(H, W, C)  # (H, W, C): Keras's order
        self.perm = keras_index.transpose(2, 0, 1).reshape(-1)  # (C*H*W,): refnet's order
        self.builder.add(Flatten(), layer.name)
        if H * W > 1:
            self.builder.report.notes.append(
                f"{layer.name}: NHWC flatten order converted (the next Dense's rows permuted)"
            )

    def batchnorm(self, layer: Any) -> None:
        ndim = len(self.builder.shape)
        if layer.axis not in (-1, ndim - 1):
            raise self.fail(layer, f"axis={layer.axis} (only the channel axis, -1)")
        mean = _array(layer.moving_mean)
        var = _array(layer.moving_variance)
        gamma = _array(layer.gamma) if layer.scale else np.ones_like(mean)
        beta = _array(layer.beta) if layer.center else np.zeros_like(mean)
        if not self.spatial and self.perm is not None:
            gamma, beta, mean, var = (a[self.perm] for a in (gamma, beta, mean, var))
        self.builder.batchnorm(gamma, beta, mean, var, float(layer.epsilon), layer.name)


def _flat_layers(keras: Any, model: Any) -> list[Any]:
    """The model's layers in order, nested ``keras.Sequential`` models expanded."""
    out = []
    for layer in model.layers:
        if isinstance(layer, keras.Sequential):
            out.extend(_flat_layers(keras, layer))
        elif type(layer).__name__ != "InputLayer":
            out.append(layer)
    return out


def _check_linear(keras: Any, model: Any) -> None:
    """Raise unless every layer of a functional model feeds only the next one."""
    if isinstance(model, keras.Sequential):
        return
    layers = model.layers
    for prev, layer in zip(layers, layers[1:], strict=False):
        try:
            ok = layer.input is prev.output
        except (AttributeError, ValueError):
            ok = False
        if not ok:
            raise unsupported(
                "keras",
                type(layer).__name__,
                layer.name,
                f"its input is not the output of the layer before it ({prev.name!r}): "
                "a branching or residual graph",
                SUPPORTED,
            )


def from_keras(model_or_path: Any) -> Sequential:
    r"""Import a Keras 3 model (object or ``.keras`` file) as a :class:`refnet.Sequential`.

    Parameters
    ----------
    model_or_path : keras.Model, str or PathLike
        A built ``keras.Sequential`` (nested Sequentials allowed) or a functional model
        whose layers form one chain,
        or the path of a ``.keras`` file (loaded with ``keras.saving.load_model``,
        ``compile=False``). If Keras is not imported yet and ``KERAS_BACKEND`` is unset,
        it is set to ``"torch"`` first.

    Returns
    -------
    Sequential
        NCHW (converted from NHWC once, here; see the module docstring for the flatten
        permutation), float32 unless the model's weights are float64. Feed it NCHW input:
        ``x_nchw = x_nhwc.transpose(0, 3, 1, 2)``. ``net.import_report`` lists what was
        folded, dropped or stripped.

    Raises
    ------
    UnsupportedModelError
        A layer refnet cannot convert exactly (named, with the supported list).
    ImportError
        If Keras is not installed (``pip install 'refnet[keras]'``).
    """
    keras = _keras()
    model = model_or_path
    if isinstance(model_or_path, (str, os.PathLike)):
        path = os.fspath(model_or_path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"from_keras: {path}: no such file")
        try:
            model = keras.saving.load_model(path, compile=False)
        except Exception as exc:  # noqa: BLE001 - Keras raises many types for bad files
            raise ValueError(f"from_keras: {path}: not a readable .keras model ({exc})") from exc
    if not isinstance(model, keras.Model):
        got = type(model).__name__
        raise TypeError(f"from_keras: expected a keras.Model or a path, got {got}")
    try:
        shape = tuple(model.input_shape[1:])
    except (AttributeError, ValueError) as exc:
        raise ValueError(f"from_keras: the model is not built (no input shape): {exc}") from exc
    if isinstance(shape[0], tuple) or None in shape:
        raise UnsupportedModelError(
            f"keras import: the model needs one input of fixed shape, got {model.input_shape}"
        )
    _check_linear(keras, model)
    converter = _KerasConverter(shape)
    layers = _flat_layers(keras, model)
    for i, layer in enumerate(layers):
        rest = layers[i + 1 :]
        last = all(type(r).__name__ in DROPPED for r in rest)
        converter.convert(layer, last)
    dtype = {_array(w).dtype for w in model.weights} or {np.dtype(np.float32)}
    if len(shape) == 3:
        converter.builder.report.notes.append(
            "converted from NHWC to NCHW: feed x.transpose(0, 3, 1, 2)"
        )
    return converter.builder.finish(np.dtype(max(dtype, key=lambda d: d.itemsize)))
