r"""The elementwise steps of the LRP engine: divide and multiply (twins of ``pyx/lrp.pyx``).

MATH.md section 4. The engine (:mod:`refnet.attribution.rules_lrp`) computes a forward sum
``z``, divides the relevance by it, takes the adjoint and multiplies by the inputs:

.. math::

    s_j = \frac{R_j}{z_j + \epsilon\,\mathrm{sign}(z_j)}, \qquad
    s = \Big[\frac{\alpha R}{z^+};\ -\frac{\beta R}{z^-}\Big],\ z^- = z - z^+ - o, \qquad
    R_i = \sum_k x_{k,i}\, c_{k,i} .

A zero denominator contributes 0, never NaN or infinity.
"""

from __future__ import annotations

import numpy as np


def _ratio(R: np.ndarray, d: np.ndarray) -> np.ndarray:
    """``R / d`` where ``d != 0``, and 0 where ``d == 0``."""
    nonzero = d != 0
    return np.where(nonzero, R / np.where(nonzero, d, 1), 0).astype(R.dtype)


def lrp_ratio(R: np.ndarray, z: np.ndarray, eps: float, out: np.ndarray) -> None:
    """``out = R / (z + eps sign(z))`` with ``sign(0) = +1``: R, z, out (n,); out may be R."""
    e = z.dtype.type(eps)
    d = np.where(z >= 0, z + e, z - e)  # z + eps sign(z)
    out[...] = _ratio(R, d)


def lrp_ratio_alpha_beta(
    R: np.ndarray,
    z: np.ndarray,
    z_plus: np.ndarray,
    offset: np.ndarray,
    alpha: float,
    beta: float,
    out: np.ndarray,
) -> None:
    """``out = [alpha R / z^+; -beta R / z^-]`` with ``z^- = z - z^+ - offset``.

    R, z, z_plus (N, F, P); offset (F,); out (N, 2F, P).
    """
    F = R.shape[1]
    z_minus = z - z_plus - offset[:, None]  # (N, F, P)
    out[:, :F] = _ratio(R.dtype.type(alpha) * R, z_plus)
    out[:, F:] = _ratio(-R.dtype.type(beta) * R, z_minus)


def lrp_input_relevance(X: np.ndarray, c: np.ndarray, out: np.ndarray) -> None:
    """``out = sum_k X[:, k] * c[:, k]``: X, c (N, k, M), out (N, M); out may be c if k = 1."""
    out[...] = (X * c).sum(axis=1)  # (N, M)
