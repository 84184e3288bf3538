"""Shared builders for the explanation tests (networks, explicit conv matrices, rule calls)."""

from __future__ import annotations

import numpy as np

from refnet import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential, kernels
from refnet.attribution.rules import Step


def relu_cnn(seed: int = 0, bias: bool = False, dtype=np.float64) -> Sequential:
    """Conv-ReLU-MaxPool-Conv-ReLU-Flatten-Dense-ReLU-Dense on (N, 2, 8, 8) inputs."""
    rng = np.random.default_rng(seed)
    layers = [
        Conv2D.create(2, 4, 3, padding=1, seed=rng),
        ReLU(),
        MaxPool2D(2),
        Conv2D.create(4, 5, (3, 2), stride=1, padding=(1, 0), seed=rng),
        ReLU(),
        Flatten(),
        Dense.create(5 * 4 * 3, 7, seed=rng),
        ReLU(),
        Dense.create(7, 3, seed=rng),
    ]
    if bias:
        for layer in layers:
            if hasattr(layer, "b"):
                layer.b = rng.normal(0.0, 0.1, size=layer.b.shape)
    return Sequential(layers).astype(dtype)


def linear_cnn(seed: int = 0) -> Sequential:
    """A network without ReLU: Conv-MaxPool-Flatten-Dense-Dense on (N, 2, 8, 8)."""
    rng = np.random.default_rng(seed)
    return Sequential(
        [
            Conv2D.create(2, 3, 3, stride=2, padding=1, seed=rng),
            MaxPool2D(2),
            Flatten(),
            Dense.create(3 * 2 * 2, 5, seed=rng),
            Dense.create(5, 4, seed=rng),
        ]
    )


def kernel_weights(net: Sequential) -> list[np.ndarray]:
    """``W`` of every kernel layer, in order (the patterns ``A = W``)."""
    return [net.layers[i].W for i in net.kernel_layers()]


def conv_matrix(conv: Conv2D, weight: np.ndarray, in_shape: tuple[int, int, int]) -> np.ndarray:
    """The convolution with ``weight`` as an explicit matrix ``(F*H'*W', C*H*W)``.

    Built from im2col of the identity basis: column ``d`` is the patch matrix of the ``d``-th
    unit image, so row ``(f, p)`` holds filter ``f`` placed at output position ``p``.
    """
    C, H, W = in_shape
    D = C * H * W
    F = weight.shape[0]
    (kh, kw), (ph, pw) = conv.kernel_size, conv.padding
    basis = np.eye(D).reshape(D, C, H, W)  # (D, C, H, W)
    cols = kernels.im2col(basis, kh, kw, conv.stride, ph, pw)  # (D, C*kh*kw, H'*W')
    M = np.einsum("fk,dkp->fpd", weight.reshape(F, -1), cols)  # (F, H'*W', D)
    return M.reshape(F * cols.shape[2], D)  # (F*H'*W', C*H*W)


def conv_as_dense(conv: Conv2D, in_shape: tuple[int, int, int]) -> Dense:
    """The Dense layer that computes ``conv`` on flattened ``in_shape`` inputs."""
    M = conv_matrix(conv, conv.W, in_shape)
    P = M.shape[0] // conv.W.shape[0]
    return Dense(M, np.repeat(conv.b, P))  # bias (F*H'*W',), f-major like the rows


def apply_rule(rule, layer, x: np.ndarray, R: np.ndarray, pattern=None) -> np.ndarray:
    """Run one rule on one layer: forward, then the rule's backward on a copy of ``R``."""
    z, cache = layer.forward(x)
    step = Step(0, layer, cache, x, z)
    return rule.backward(R.copy(), step, rule.prepare(layer, pattern))
