r"""Image degradation: does a heatmap find what the network uses? (paper, Sec. 5.2, Fig. 4)

Each image is cut into non-overlapping ``p x p`` patches. A heatmap (the attribution
summed over channels) gives every patch a score: the sum of the attribution inside it.
Patches are replaced, highest score first, by their own per-channel mean value, and after
each step the softmax probability of the class the network originally predicted is
recorded (MATH.md section 6; Samek et al. 2017, region perturbation). An explanation that
points at what the network really uses makes the probability drop fast. A random patch
order is the baseline.

The curve is summarised by the area over the perturbation curve,

.. math::

    \mathrm{AOPC} = \frac{1}{L} \sum_{k=1}^{L} \left( f(x) - f(x_k) \right),

the mean drop over the ``L`` replacement steps (``x_k``: the image with its top ``k``
patches replaced). Samek et al. also average in the step ``k = 0``, whose drop is 0, which
only scales the value by ``L / (L + 1)``; refnet averages over the steps actually taken.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..network import Sequential
from ..train.loss import softmax  # the one softmax, beside the loss it belongs to


@dataclass(frozen=True)
class DegradationCurve:
    """The result of :func:`degradation_curve`.

    Attributes
    ----------
    probabilities : (N, L+1) per image, the probability of the originally predicted class
        after ``0, 1, ..., L`` replaced patches.
    mean : (L+1,) the curve averaged over images.
    aopc : the AOPC of the averaged curve (:func:`aopc`).
    """

    probabilities: np.ndarray
    mean: np.ndarray
    aopc: float


def aopc(curve: np.ndarray) -> float:
    r"""Mean drop of a perturbation curve below its start (MATH.md section 6).

    Parameters
    ----------
    curve : (L+1,) ``f(x_0), f(x_1), ..., f(x_L)``, or (N, L+1) for N curves (the mean of
        their AOPCs, which equals the AOPC of the mean curve).

    .. math:: \mathrm{AOPC} = \frac{1}{L} \sum_{k=1}^{L} (f(x_0) - f(x_k))
    """
    curve = np.asarray(curve, dtype=np.float64)
    if curve.ndim not in (1, 2) or curve.shape[-1] < 2:
        raise ValueError(f"aopc: need a curve of at least 2 points, got shape {curve.shape}")
    drops = curve[..., :1] - curve[..., 1:]  # (..., L)
    return float(drops.mean())


def _check_patch_grid(x_shape: tuple[int, ...], p: int) -> tuple[int, int]:
    if len(x_shape) != 4:
        raise ValueError(f"degradation: images must be (N, C, H, W), got shape {x_shape}")
    if not isinstance(p, (int, np.integer)) or p < 1:
        raise ValueError(f"degradation: patch size must be a positive integer, got {p!r}")
    H, W = x_shape[2:]
    if H % p or W % p:
        raise ValueError(
            f"degradation: patch size {p} does not tile images of shape {x_shape} "
            f"(H={H}, W={W} must be multiples of {p})"
        )
    return H // p, W // p


def patch_scores(R: np.ndarray, p: int) -> np.ndarray:
    r"""Each ``p x p`` patch's score: the channel-summed attribution summed inside it.

    Parameters
    ----------
    R : (N, C, H, W) attributions (any heatmap of the input's shape).
    p : patch size; ``H`` and ``W`` must be multiples of ``p``.

    Returns
    -------
    (N, H/p * W/p) scores, patches in row-major order.

    .. math:: s_{n,P} = \sum_{c} \sum_{(i,j) \in P} R_{n,c,i,j}
    """
    gh, gw = _check_patch_grid(R.shape, p)
    N = R.shape[0]
    blocks = R.sum(axis=1).reshape(N, gh, p, gw, p)  # (N, H/p, p, W/p, p)
    return blocks.sum(axis=(2, 4)).reshape(N, gh * gw)  # (N, H/p * W/p)


def patch_means(x: np.ndarray, p: int) -> np.ndarray:
    r"""``x`` with every ``p x p`` patch replaced by its own per-channel mean: (N, C, H, W)."""
    gh, gw = _check_patch_grid(x.shape, p)
    N, C = x.shape[:2]
    blocks = x.reshape(N, C, gh, p, gw, p)  # (N, C, H/p, p, W/p, p)
    means = blocks.mean(axis=(3, 5), keepdims=True)  # (N, C, H/p, 1, W/p, 1)
    return np.broadcast_to(means, blocks.shape).reshape(x.shape)  # (N, C, H, W)


def patch_order(scores: np.ndarray) -> np.ndarray:
    """Patch indices per image, highest score first; ties keep row-major order. (N, P)."""
    return np.argsort(-scores, axis=1, kind="stable")


def random_order(n_images: int, n_patches: int, seed: int = 0) -> np.ndarray:
    """A seeded random patch order per image: (N, P), each row a permutation."""
    rng = np.random.default_rng(seed)
    return np.argsort(rng.random((n_images, n_patches)), axis=1)


def degradation_curve(
    net: Sequential,
    x: np.ndarray,
    order: np.ndarray,
    p: int,
    n_steps: int | None = None,
    batch_size: int = 512,
) -> DegradationCurve:
    r"""Replace patches in the given order and record the predicted class's probability.

    Parameters
    ----------
    net : the network (its logits go through a softmax here).
    x : (N, C, H, W) images.
    order : (N, P) patch indices per image, most relevant first (from :func:`patch_order`
        applied to :func:`patch_scores`, or :func:`random_order`).
    p : patch size.
    n_steps : number of patches replaced at the end (default: all ``P``).
    batch_size : images per forward pass.

    Returns
    -------
    DegradationCurve with the (N, L+1) probabilities, the mean curve and its AOPC.

    .. math::

        x_k = x \text{ with its top-}k\text{ patches set to their channel means}, \qquad
        f(x_k) = \mathrm{softmax}(\mathrm{net}(x_k))_{c}, \quad c = \arg\max \mathrm{net}(x).
    """
    gh, gw = _check_patch_grid(x.shape, p)
    N, P = x.shape[0], gh * gw
    if order.shape != (N, P):
        raise ValueError(
            f"degradation_curve: order has shape {order.shape}, expected {(N, P)} for images "
            f"of shape {x.shape} and patch size {p}"
        )
    L = P if n_steps is None else int(n_steps)
    if not 1 <= L <= P:
        raise ValueError(f"degradation_curve: n_steps must be in 1..{P}, got {n_steps!r}")
    replaced = patch_means(x, p)  # (N, C, H, W)
    # rank[n, q] = position of patch q in image n's order.
    rank = np.empty_like(order)
    np.put_along_axis(rank, order, np.arange(P)[None, :].repeat(N, axis=0), axis=1)
    rank_map = rank.reshape(N, gh, 1, gw, 1)  # (N, H/p, 1, W/p, 1)
    rank_map = np.broadcast_to(rank_map, (N, gh, p, gw, p)).reshape(N, 1, gh * p, gw * p)
    probabilities = np.empty((N, L + 1))
    for start in range(0, N, batch_size):
        sl = slice(start, start + batch_size)
        logits = net(x[sl])
        c = logits.argmax(axis=1)  # (n,)
        probabilities[sl, 0] = softmax(logits)[np.arange(len(c)), c]
        for k in range(1, L + 1):
            x_k = np.where(rank_map[sl] < k, replaced[sl], x[sl])  # (n, C, H, W)
            probabilities[sl, k] = softmax(net(x_k))[np.arange(len(c)), c]
    mean = probabilities.mean(axis=0)  # (L+1,)
    return DegradationCurve(probabilities, mean, aopc(mean))


def degrade_by_attribution(
    net: Sequential, x: np.ndarray, R: np.ndarray, p: int, n_steps: int | None = None
) -> DegradationCurve:
    """:func:`degradation_curve` with patches ordered by the attribution ``R`` (x's shape)."""
    if R.shape != x.shape:
        raise ValueError(
            f"degrade_by_attribution: attribution has shape {R.shape}, images {x.shape}"
        )
    return degradation_curve(net, x, patch_order(patch_scores(R, p)), p, n_steps)


def degrade_randomly(
    net: Sequential, x: np.ndarray, p: int, n_steps: int | None = None, seed: int = 0
) -> DegradationCurve:
    """:func:`degradation_curve` with a seeded random patch order (the baseline)."""
    gh, gw = _check_patch_grid(x.shape, p)
    return degradation_curve(net, x, random_order(len(x), gh * gw, seed), p, n_steps)
