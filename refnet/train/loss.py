r"""Softmax and the softmax cross-entropy loss (the loss the classifiers are trained with).

The network outputs logits ``z (N, K)``; the softmax belongs to the loss (MATH.md
section 0). For labels ``y (N,)`` the mean cross-entropy and its gradient are

.. math::

    p_{nk} = \frac{e^{z_{nk} - m_n}}{\sum_j e^{z_{nj} - m_n}}, \qquad
    L = \frac{1}{N} \sum_n \Big( m_n + \log \sum_j e^{z_{nj} - m_n} - z_{n y_n} \Big), \qquad
    \frac{\partial L}{\partial z_{nk}} = \frac{1}{N} \big( p_{nk} - [k = y_n] \big),

with :math:`m_n = \max_j z_{nj}` (the log-sum-exp shift): every exponent is at most 0, so
no logit, however large, overflows.
"""

from __future__ import annotations

import numpy as np

from ..layers.base import check_input


def _log_softmax(z: np.ndarray) -> np.ndarray:
    r"""Stable :math:`\log p_{nk} = z_{nk} - m_n - \log \sum_j e^{z_{nj} - m_n}`."""
    shifted = z - z.max(axis=1, keepdims=True)  # (N, K), every entry <= 0
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (N, K)


def softmax(logits: np.ndarray) -> np.ndarray:
    r"""Class probabilities of every row of ``logits`` (N, K), computed stably.

    .. math::

        p_{nk} = \frac{e^{z_{nk} - m_n}}{\sum_j e^{z_{nj} - m_n}}, \qquad m_n = \max_j z_{nj}

    Parameters
    ----------
    logits : ndarray, shape (N, K), float32 or float64
        Finite logits.

    Returns
    -------
    ndarray, shape (N, K), dtype of ``logits``
        Non-negative rows that sum to one.
    """
    check_input("softmax", logits, 2, what="logits")
    return np.exp(_log_softmax(logits))


def softmax_cross_entropy(logits: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    r"""Mean softmax cross-entropy of ``logits`` (N, K) against integer labels ``y`` (N,).

    .. math::

        L = -\frac{1}{N} \sum_n \log p_{n y_n}, \qquad
        \frac{\partial L}{\partial z_{nk}} = \frac{1}{N} \big( p_{nk} - [k = y_n] \big)

    with :math:`\log p` from the log-sum-exp form in the module docstring.

    Parameters
    ----------
    logits : ndarray, shape (N, K), float32 or float64
        Finite logits ``z`` (the network's output, no softmax applied).
    y : ndarray, shape (N,), integer
        The class of every sample, in ``0 .. K-1``.

    Returns
    -------
    loss : float
        The mean loss over the batch.
    dlogits : ndarray, shape (N, K), dtype of ``logits``
        :math:`\partial L / \partial z`, ready for ``Sequential.backward``.
    """
    check_input("softmax_cross_entropy", logits, 2, what="logits")
    y = np.asarray(y)
    N, K = logits.shape
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"softmax_cross_entropy: labels y must be integers, got dtype {y.dtype}")
    if y.shape != (N,):
        raise ValueError(
            f"softmax_cross_entropy: labels y have shape {y.shape}, expected ({N},) "
            f"for logits of shape {logits.shape}"
        )
    if N == 0:
        raise ValueError(f"softmax_cross_entropy: empty batch, logits of shape {logits.shape}")
    if y.min() < 0 or y.max() >= K:
        raise ValueError(
            f"softmax_cross_entropy: labels must lie in [0, {K - 1}] for logits of shape "
            f"{logits.shape}, got range [{y.min()}, {y.max()}]"
        )
    log_p = _log_softmax(logits)  # (N, K)
    rows = np.arange(N)
    loss = -float(log_p[rows, y].mean())
    dlogits = np.exp(log_p)  # (N, K) = p
    dlogits[rows, y] -= 1
    dlogits /= N
    return loss, dlogits
