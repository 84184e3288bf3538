"""Checks of the layers' integer arguments (sizes, strides, paddings).

``True`` is an ``int`` in Python and ``2.7`` truncates silently under ``int()``; neither is
a stride. A layer argument must be a real integer (a Python or NumPy integer, not a bool).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def whole_number(layer: str, name: str, value: Any, minimum: int) -> int:
    """``value`` as an ``int``: a ``TypeError`` unless it is an integer (not a bool or a
    float), a ``ValueError`` if it is below ``minimum``; both messages name ``layer``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(
            f"{layer}: {name} must be an integer, got {value!r} ({type(value).__name__})"
        )
    if value < minimum:
        raise ValueError(f"{layer}: {name} must be an integer >= {minimum}, got {value!r}")
    return int(value)
