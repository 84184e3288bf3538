r"""Wilming et al. 2022: linear ground-truth data with a suppressor variable.

Wilming, Budding, Müller and Haufe, "Scrutinizing XAI using linear ground-truth data with
suppressor variables", *Machine Learning* 111 (2022). Two 4x4 blobs of an 8x8 image carry
the class signal; a distractor shares the top-left blob with the signal and adds a second,
top-right blob that is independent of the class. A linear model must subtract the top-right
blob to cancel the distractor in the top-left one, so its weights are large on pixels that
have no statistical relation to the class: the top-right blob is a *suppressor*.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import expm

from .base import GroundTruthData, check_n, frobenius_normalised, labels

#: One blob: ``PB = [[0,.5,.5,0],[.5,1,1,.5],[.5,1,1,.5],[0,.5,.5,0]]``.
PB = np.array(
    [[0.0, 0.5, 0.5, 0.0], [0.5, 1.0, 1.0, 0.5], [0.5, 1.0, 1.0, 0.5], [0.0, 0.5, 0.5, 0.0]]
)


def wilming_patterns() -> tuple[np.ndarray, np.ndarray]:
    """The signal pattern ``a`` and the distractor pattern ``d``, both (8, 8).

    ``a[0:4, 0:4] = PB``, ``a[4:8, 0:4] = -PB``; ``d[0:4, 0:4] = PB``, ``d[0:4, 4:8] = -PB``.
    The suppressor is where ``d != 0`` and ``a == 0`` (the top-right blob).
    """
    a = np.zeros((8, 8))
    a[0:4, 0:4], a[4:8, 0:4] = PB, -PB
    d = np.zeros((8, 8))
    d[0:4, 0:4], d[0:4, 4:8] = PB, -PB
    return a, d


def covariance_factors(rng: np.random.Generator, dim: int = 64) -> tuple[np.ndarray, np.ndarray]:
    r"""``U`` and ``ev`` of the noise covariance :math:`\Sigma = U \operatorname{diag}(ev) U^\top`.

    .. math::

        A = \operatorname{triu}(2\pi\, \mathcal U[0,1)^{d \times d} - \pi), \quad
        U = \exp(A - A^\top), \quad
        ev \sim \mathcal U[0,1)^d, \quad ev \mathrel{+}= 0.01 \max(ev).

    ``U`` is orthogonal (the exponential of a skew-symmetric matrix); the shift keeps every
    eigenvalue at least ``0.01 max(ev)``. Draws ``A`` first, then ``ev``.
    """
    A = np.triu(2 * np.pi * rng.random((dim, dim)) - np.pi)  # (d, d)
    U = expm(A - A.T)  # (d, d), orthogonal
    ev = rng.random(dim)
    ev += 0.01 * ev.max()
    return U, ev


def wilming2022(l1: float, n: int = 1000, seed: int = 0) -> GroundTruthData:
    r"""The suppressor data set of Wilming et al. 2022 (Sec. 3, "two blobs" pattern).

    .. math::

        x_i = l_1\, \frac{S}{\|S\|_F} + l_2\, \frac{D}{\|D\|_F} + l_3\, \frac{E}{\|E\|_F},
        \qquad S = z\, a^\top, \quad D = \zeta\, d^\top, \quad E = \eta,
        \qquad l_2 = l_3 = \frac{1 - l_1}{2},

    with ``z = -1`` for the first half of the samples (class 0) and ``+1`` for the rest,
    :math:`\zeta \sim \mathcal N(0, 1)` per sample and
    :math:`\eta \sim \mathcal N(0, \Sigma)` (:func:`covariance_factors`). ``S``, ``D`` and
    ``E`` are ``n x 64`` matrices, each divided by its own Frobenius norm over the whole
    data set. The signal ``a`` and the distractor ``d`` are given by
    :func:`wilming_patterns`; the ground truth is ``a != 0`` (the same 24 pixels for every
    sample).

    Parameters
    ----------
    l1 : float in [0, 1]
        The signal weight (the paper's :math:`\lambda_1`; the benchmark uses 0.08).
    n : int
        Number of samples, even (default 1000, as in the paper).
    seed : int
        Seeds ``numpy.random.default_rng``; draws, in this order, ``zeta (n,)``, then ``A``
        and ``ev`` of :func:`covariance_factors`, then the ``(n, 64)`` standard normals
        ``g`` that give :math:`\eta = g\, \operatorname{diag}(\sqrt{ev})\, U^\top`.

    Returns
    -------
    GroundTruthData
        ``X (n, 1, 8, 8)`` float32, ``y (n,)`` int64, ``masks (n, 1, 8, 8)`` bool.

    Notes
    -----
    The values are not rescaled: with the Frobenius normalisation over ``n x 64`` entries a
    pixel is of order :math:`1 / \sqrt{64 n}`. The benchmark runner divides by the global
    ``max |x|`` before training, as XAI-TRIS does; one positive factor changes neither the
    ground truth nor any localisation metric.
    """
    l1 = float(l1)
    if not 0.0 <= l1 <= 1.0:
        raise ValueError(f"wilming2022: l1 must lie in [0, 1], got {l1!r}")
    n = check_n("wilming2022", n)
    rng = np.random.default_rng(seed)
    a, d = wilming_patterns()
    y = labels(n)
    z = np.where(y == 0, -1.0, 1.0)  # (n,)
    zeta = rng.standard_normal(n)  # (n,)
    U, ev = covariance_factors(rng)  # (64, 64), (64,)
    eta = (rng.standard_normal((n, 64)) * np.sqrt(ev)) @ U.T  # (n, 64) ~ N(0, U diag(ev) U^T)
    S = np.outer(z, a.ravel())  # (n, 64)
    D = np.outer(zeta, d.ravel())  # (n, 64)
    l2 = l3 = (1.0 - l1) / 2
    x = l1 * frobenius_normalised(S) + l2 * frobenius_normalised(D)
    x += l3 * frobenius_normalised(eta)
    X = x.reshape(n, 1, 8, 8).astype(np.float32)  # (n, 1, 8, 8)
    masks = np.broadcast_to(a != 0, (n, 1, 8, 8)).copy()
    params = {"l1": l1, "l2": l2, "l3": l3, "n": n, "seed": seed}
    return GroundTruthData(X, y, masks, "wilming2022", params)
