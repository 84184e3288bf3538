r"""ReLU forward (with its mask) and backward.

.. math:: y = \max(x, 0), \qquad a = [x > 0], \qquad dx = dy \odot a

(MATH.md section 0: the derivative at ``x = 0`` is 0.) All arrays are flat (``(n,)``) and
C-contiguous; the mask is the bytes (``uint8``, 0 or 1) of a boolean array. In
:func:`relu_backward`, ``out`` may be ``dy`` itself.
"""

import numpy as np


def relu_forward(x: np.ndarray, out: np.ndarray, active: np.ndarray) -> None:
    """Fill ``out`` (n,) with ``max(x, 0)`` and ``active`` (n,) uint8 with ``[x > 0]``."""
    np.greater(x, 0, out=active)
    np.maximum(x, 0, out=out)


def relu_backward(dy: np.ndarray, active: np.ndarray, out: np.ndarray) -> None:
    """Fill ``out`` (n,) with ``dy * active``; ``active`` is (n,) uint8, 0 or 1."""
    np.multiply(dy, active, out=out)
