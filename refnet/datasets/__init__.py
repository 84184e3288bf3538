"""Data sets with a known ground truth of signal pixels, for scoring explanations.

- :func:`wilming2022` — linear data with a suppressor blob (Wilming et al. 2022);
- :func:`xai_tris` — the four XAI-TRIS scenarios on white or correlated backgrounds
  (Clark, Wilming and Haufe 2024).

Each returns a :class:`GroundTruthData` (``X (n, 1, 8, 8)`` float32, ``y (n,)`` int64 with
the first half 0, ``masks (n, 1, 8, 8)`` bool), deterministic in ``seed``. The metrics that
score a heatmap against the masks are in :mod:`refnet.evaluate.localization`.
"""

from .base import GroundTruthData, frobenius_normalised
from .wilming import PB, covariance_factors, wilming2022, wilming_patterns
from .xaitris import (
    BACKGROUNDS,
    DEFAULT_ALPHA,
    L_CORNER,
    L_SHAPE,
    SCENARIOS,
    T_CORNER,
    T_SHAPE,
    tl_mask,
    xai_tris,
)

__all__ = [
    "BACKGROUNDS",
    "DEFAULT_ALPHA",
    "L_CORNER",
    "L_SHAPE",
    "PB",
    "SCENARIOS",
    "T_CORNER",
    "T_SHAPE",
    "GroundTruthData",
    "covariance_factors",
    "frobenius_normalised",
    "tl_mask",
    "wilming2022",
    "wilming_patterns",
    "xai_tris",
]
