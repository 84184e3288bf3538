r"""The training loop: mini-batch gradient descent on the softmax cross-entropy.

One epoch visits every training sample once, in an order drawn from
``np.random.default_rng(seed)``; for every mini-batch :math:`B` it runs

.. math::

    z = f_\theta(x_B), \qquad
    L = \mathrm{CE}(z, y_B), \qquad
    g = \nabla_\theta L \ (\text{one backward pass}), \qquad
    \theta \leftarrow \mathrm{optimiser}(\theta, g).

With the same network, data, optimiser settings and ``seed``, two runs give bitwise equal
weights (on the same machine and backend).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from ..kernels.threads import one_blas_thread
from ..layers.base import check_input
from ..network import Sequential
from ..progress import progress_bar
from .loss import softmax_cross_entropy
from .optim import SGD, Adam


@dataclass
class History:
    """Per-epoch training record (one entry per epoch in every list).

    ``loss`` and ``accuracy`` are the mean loss and the accuracy over the epoch's
    mini-batches (each measured before that batch's update); ``val_loss`` and
    ``val_accuracy`` are measured on ``(X_val, y_val)`` after the epoch (empty without
    validation data); ``seconds`` is the wall time of each epoch.
    """

    loss: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_accuracy: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.loss)


def _check_data(func: str, name: str, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Validate inputs ``X`` (float, finite) and integer labels ``y`` (N,); return ``y``."""
    check_input(func, X, None, check_finite=True, what=name)
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"{func}: labels for {name} must be integers, got dtype {y.dtype}")
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(f"{func}: {name} has shape {X.shape} but its labels have shape {y.shape}")
    if len(X) == 0:
        raise ValueError(f"{func}: {name} is empty (shape {X.shape})")
    return y


def _positive_int(name: str, value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"fit: {name} must be a positive integer, got {value!r}")
    return int(value)


def evaluate(
    net: Sequential, X: np.ndarray, y: np.ndarray, batch_size: int = 512
) -> tuple[float, float]:
    """Mean softmax cross-entropy and accuracy of ``net`` on ``(X, y)``, in batches."""
    y = _check_data("evaluate", "X", X, y)
    total_loss, correct = 0.0, 0
    for start in range(0, len(X), batch_size):
        z = net(X[start : start + batch_size])  # (B, K)
        yb = y[start : start + batch_size]
        total_loss += softmax_cross_entropy(z, yb)[0] * len(yb)
        correct += int((z.argmax(axis=1) == yb).sum())
    return total_loss / len(X), correct / len(X)


@one_blas_thread  # one thread pool for the whole training (refnet.kernels.threads)
def fit(
    net: Sequential,
    X: np.ndarray,
    y: np.ndarray,
    *,
    epochs: int,
    batch_size: int = 64,
    optimizer: SGD | Adam | None = None,
    seed: int = 0,
    progress: bool = False,
    X_val: np.ndarray | None = None,
    y_val: np.ndarray | None = None,
) -> History:
    r"""Train ``net`` in place on ``(X, y)`` with mini-batches and the cross-entropy loss.

    .. math::

        \min_\theta \frac{1}{N} \sum_n -\log \mathrm{softmax}(f_\theta(x_n))_{y_n}

    Parameters
    ----------
    net : Sequential
        The network; its parameters are updated in place.
    X : ndarray, shape (N, ...), float32 or float64
        Training inputs (``(N, C, H, W)`` for a convolutional network). Cast to
        ``net.dtype`` when they differ, so training runs in the network's dtype.
    y : ndarray, shape (N,), integer
        Training labels.
    epochs : int
        Number of passes over the data.
    batch_size : int
        Mini-batch size; the last batch of an epoch may be smaller.
    optimizer : SGD or Adam, optional
        Default ``Adam(lr=1e-3)``. Its state carries over if it is passed to ``fit`` again.
    seed : int
        Seeds the shuffling (``np.random.default_rng(seed)``); fixes the run.
    progress : bool
        Show a tqdm progress bar over epochs if tqdm is installed (silently none otherwise).
    X_val, y_val : ndarray, optional
        Validation data, evaluated after every epoch.

    Returns
    -------
    History
        Per-epoch loss, accuracy (and validation loss, accuracy) and wall time.
    """
    if not isinstance(net, Sequential):
        raise TypeError(f"fit: net must be a Sequential, got {type(net).__name__}")
    y = _check_data("fit", "X", X, y)
    epochs = _positive_int("epochs", epochs)
    batch_size = _positive_int("batch_size", batch_size)
    if (X_val is None) != (y_val is None):
        raise ValueError("fit: pass both X_val and y_val, or neither")
    dtype = net.dtype
    X = X.astype(dtype, copy=False)
    if X_val is not None:
        y_val = _check_data("fit", "X_val", X_val, y_val)
        X_val = X_val.astype(dtype, copy=False)
    optimizer = Adam() if optimizer is None else optimizer
    rng = np.random.default_rng(seed)
    history = History()
    N = len(X)

    bar = progress_bar(range(epochs), "fit", progress, unit="epoch")
    for _ in bar:
        start_time = time.perf_counter()
        order = rng.permutation(N)
        total_loss, correct = 0.0, 0
        for start in range(0, N, batch_size):
            batch = order[start : start + batch_size]
            xb, yb = X[batch], y[batch]
            z, caches = net.forward(xb)  # (B, K)
            loss, dz = softmax_cross_entropy(z, yb)
            _, grads = net.backward(dz, caches)
            optimizer.step(net.params(), grads)
            total_loss += loss * len(batch)
            correct += int((z.argmax(axis=1) == yb).sum())
        history.loss.append(total_loss / N)
        history.accuracy.append(correct / N)
        if X_val is not None:
            val_loss, val_acc = evaluate(net, X_val, y_val)
            history.val_loss.append(val_loss)
            history.val_accuracy.append(val_acc)
        history.seconds.append(time.perf_counter() - start_time)
        if hasattr(bar, "set_postfix"):
            shown = {"loss": f"{history.loss[-1]:.4f}", "acc": f"{history.accuracy[-1]:.3f}"}
            if history.val_accuracy:
                shown["val_acc"] = f"{history.val_accuracy[-1]:.3f}"
            bar.set_postfix(shown)
    return history
