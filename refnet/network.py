"""The network container: an ordered list of layers ending in a Dense layer of logits.

``net(x)`` returns the logits. ``forward`` keeps every layer's cache so that one backward
pass (the gradient, or any explanation rule) can walk the layers in reverse.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from .kernels.threads import one_blas_thread
from .layers import KERNEL_LAYERS, Layer
from .layers.base import check_input


class Sequential:
    """A feed-forward network: ``layers[0]`` sees the input, ``layers[-1]`` gives the logits."""

    def __init__(self, layers: Iterable[Layer]) -> None:
        layers = list(layers)
        if not layers:
            raise ValueError("Sequential: needs at least one layer")
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise TypeError(f"Sequential: item {i} is {type(layer).__name__}, not a Layer")
        self.layers = layers

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self) -> Iterator[Layer]:
        return iter(self.layers)

    def __getitem__(self, i: int) -> Layer:
        return self.layers[i]

    def __repr__(self) -> str:
        inner = ",\n  ".join(repr(layer) for layer in self.layers)
        return f"Sequential([\n  {inner},\n])"

    @one_blas_thread
    def forward(self, x: np.ndarray) -> tuple[np.ndarray, list[Any]]:
        """Logits and the per-layer caches. The input is checked once (finite, float)."""
        check_input("Sequential", x, None, check_finite=True)
        caches = []
        for layer in self.layers:
            x, cache = layer.forward(x, check_finite=False)
            caches.append(cache)
        return x, caches

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return self.forward(x)[0]

    @one_blas_thread
    def predict(self, x: np.ndarray, batch_size: int = 512) -> np.ndarray:
        """Predicted class per sample (argmax of the logits), computed in batches.

        Returns an int64 array of shape ``(N,)``; an empty batch (N = 0) gives an empty one.
        """
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
            raise TypeError(f"Sequential.predict: batch_size must be an int, got {batch_size!r}")
        if batch_size < 1:
            raise ValueError(f"Sequential.predict: batch_size must be >= 1, got {batch_size}")
        if not isinstance(x, np.ndarray) or x.ndim == 0 or len(x) == 0:
            return self(x).argmax(axis=1)  # (0,), or the forward's error for a bad input
        return np.concatenate(
            [self(x[i : i + batch_size]).argmax(axis=1) for i in range(0, len(x), batch_size)]
        )

    @one_blas_thread
    def backward(
        self, dy: np.ndarray, caches: list[Any]
    ) -> tuple[np.ndarray, list[dict[str, np.ndarray]]]:
        """Gradient w.r.t. the input and the parameter gradients of every layer (in order)."""
        if len(caches) != len(self.layers):
            raise ValueError(f"Sequential: got {len(caches)} caches for {len(self.layers)} layers")
        grads: list[dict[str, np.ndarray]] = [{} for _ in self.layers]
        for i in reversed(range(len(self.layers))):
            dy, grads[i] = self.layers[i].backward(dy, caches[i])
        return dy, grads

    def kernel_layers(self) -> list[int]:
        """Indices of the layers with weights (Dense, Conv2D), which get patterns."""
        return [i for i, layer in enumerate(self.layers) if isinstance(layer, KERNEL_LAYERS)]

    def params(self) -> list[dict[str, np.ndarray]]:
        """Per layer, the parameters by name (empty dicts for layers without any)."""
        return [layer.params() for layer in self.layers]

    def astype(self, dtype: np.dtype | type) -> Sequential:
        """Cast every parameter to ``dtype`` in place and return the network."""
        for layer in self.layers:
            layer.astype(dtype)
        return self

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the parameters (of the first layer that has any)."""
        for layer in self.layers:
            for p in layer.params().values():
                return p.dtype
        return np.dtype(np.float64)

    def output_shape(self, input_shape: tuple[int, ...]) -> tuple[int, ...]:
        for layer in self.layers:
            input_shape = layer.output_shape(input_shape)
        return input_shape
