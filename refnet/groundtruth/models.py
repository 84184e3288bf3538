r"""The three classifiers of the XAI-TRIS benchmark (8x8 versions), trained with refnet.train.

- ``llr``: ``Flatten - Dense(64 -> 2)`` without bias (linear logistic regression);
- ``mlp``: ``Flatten - Dense(64 -> 32) - ReLU - Dense(32 -> 16) - ReLU - Dense(16 -> 8) -
  ReLU - Dense(8 -> 2)``;
- ``cnn``: four blocks ``Conv(2x2, pad 1, 4 channels) - ReLU - MaxPool 2``, then
  ``Flatten - Dense(4 -> 2)``. Shapes: ``(N,1,8,8) -> (N,4,4,4) -> (N,4,2,2) -> (N,4,1,1)
  -> (N,4,1,1) -> (N,4) -> (N,2)``.

Every model is He-initialised from its seed and trained by :func:`refnet.train.fit` (Adam,
mini-batches, softmax cross-entropy).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU
from ..network import Sequential
from ..train import Adam, evaluate, fit

MODELS = ("llr", "mlp", "cnn")


class FrozenBias:
    """An optimiser wrapper that never updates a bias ``b``: with ``b = 0`` at the start,
    the model is trained without bias (the benchmark's ``llr``)."""

    def __init__(self, inner: Adam) -> None:
        self.inner = inner

    def step(self, params: list[dict], grads: list[dict]) -> None:
        def weights_only(layers: list[dict]) -> list[dict]:
            return [{k: v for k, v in d.items() if k != "b"} for d in layers]

        self.inner.step(weights_only(params), weights_only(grads))


def llr(seed: int = 0) -> Sequential:
    """``Flatten - Dense(64 -> 2)``; its zero bias stays zero when trained by :func:`train`."""
    return Sequential([Flatten(), Dense.create(64, 2, seed=seed)])


def mlp(seed: int = 0) -> Sequential:
    """``64 - 32 - 16 - 8 - 2`` with ReLU between the Dense layers."""
    rng = np.random.default_rng(seed)
    sizes = (64, 32, 16, 8, 2)
    layers: list = [Flatten()]
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(Dense.create(n_in, n_out, seed=rng))
        if i < len(sizes) - 2:
            layers.append(ReLU())
    return Sequential(layers)


def cnn(seed: int = 0) -> Sequential:
    """Four blocks ``Conv(2x2, pad 1, 4 ch) - ReLU - MaxPool 2``, then ``Dense(4 -> 2)``."""
    rng = np.random.default_rng(seed)
    layers: list = []
    for c_in in (1, 4, 4, 4):
        layers += [Conv2D.create(c_in, 4, 2, padding=1, seed=rng), ReLU(), MaxPool2D(2)]
    layers += [Flatten(), Dense.create(4, 2, seed=rng)]
    return Sequential(layers)


BUILDERS = {"llr": llr, "mlp": mlp, "cnn": cnn}


@dataclass(frozen=True)
class TrainedModel:
    """A trained classifier with its test accuracy and training time (wall clock, s)."""

    name: str
    net: Sequential
    train_accuracy: float
    test_accuracy: float
    seconds: float


def train(
    name: str,
    X_train: np.ndarray,
    y_train: np.ndarray,
    X_test: np.ndarray,
    y_test: np.ndarray,
    epochs: int,
    lr: float,
    seed: int,
    batch_size: int = 64,
) -> TrainedModel:
    """Build model ``name`` from ``seed``, train it with :func:`refnet.train.fit`, test it."""
    net = BUILDERS[name](seed)
    optimizer = Adam(lr=lr)
    start = time.perf_counter()
    history = fit(
        net,
        X_train,
        y_train,
        epochs=epochs,
        batch_size=batch_size,
        optimizer=FrozenBias(optimizer) if name == "llr" else optimizer,
        seed=seed,
    )
    seconds = time.perf_counter() - start
    _, test_accuracy = evaluate(net, X_test, y_test)
    return TrainedModel(name, net, history.accuracy[-1], test_accuracy, seconds)
