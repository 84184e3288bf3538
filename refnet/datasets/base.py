r"""The container every ground-truth generator returns, and the normalisation they share.

A ground-truth data set knows, for every sample, which pixels carry the class signal: its
``masks``. An explanation can then be scored by how much of its weight falls on those
pixels (:mod:`refnet.evaluate.localization`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass(frozen=True)
class GroundTruthData:
    """Images, labels and the ground-truth masks of one benchmark data set.

    Attributes
    ----------
    X : ndarray (n, 1, 8, 8), float32
        The images (NCHW).
    y : ndarray (n,), int64
        The class, 0 or 1; the first half of the samples are class 0.
    masks : ndarray (n, 1, 8, 8), bool
        The pixels that carry the signal (the ground truth of each sample).
    name : str
        What generated it, e.g. ``"xai_tris/linear/white"`` or ``"wilming2022"``.
    params : mapping
        The generator's arguments (with the defaults filled in), for reports.
    """

    X: np.ndarray
    y: np.ndarray
    masks: np.ndarray
    name: str = ""
    params: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.y)
        if self.y.shape != (n,) or self.X.shape[0] != n or self.masks.shape[0] != n:
            raise ValueError(
                f"GroundTruthData {self.name!r}: X {self.X.shape}, y {self.y.shape} and masks "
                f"{self.masks.shape} must have the same number of samples"
            )
        if self.X.ndim != 4 or self.masks.shape[2:] != self.X.shape[2:]:
            raise ValueError(
                f"GroundTruthData {self.name!r}: X must be (n, C, H, W) and masks (n, 1 or C, "
                f"H, W); got X {self.X.shape}, masks {self.masks.shape}"
            )

    def __len__(self) -> int:
        return len(self.y)


def frobenius_normalised(M: np.ndarray) -> np.ndarray:
    r"""``M / ||M||_F`` over the whole ``(n, 64)`` matrix (unchanged if ``||M||_F = 0``).

    .. math:: \|M\|_F = \Big(\sum_{i,j} M_{ij}^2\Big)^{1/2}

    The benchmarks normalise each component (signal, distractor, noise, background) of the
    *whole data set* this way, not each sample.
    """
    norm = np.linalg.norm(M)
    return M if norm == 0 else M / norm


def check_n(func: str, n: int, multiple: int = 2) -> int:
    """``n`` as an int, if it is a positive multiple of ``multiple`` (classes stay balanced)."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < multiple:
        raise ValueError(f"{func}: n must be an integer >= {multiple}, got {n!r}")
    if n % multiple:
        raise ValueError(
            f"{func}: n must be a multiple of {multiple} so that the classes (and, for xor, "
            f"the four sign combinations) have equal sizes, got n={n}"
        )
    return int(n)


def labels(n: int) -> np.ndarray:
    """``(n,)`` int64: 0 for the first half, 1 for the rest."""
    y = np.zeros(n, dtype=np.int64)
    y[n // 2 :] = 1
    return y
