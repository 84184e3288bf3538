"""The benchmark networks (float32, seeded random weights) and their input shapes.

Shared by ``bench_explain.py`` and ``bench_threads.py``; importing it changes nothing in the
process (no settings, no torch).
"""

from __future__ import annotations

import numpy as np

from refnet import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential


def networks() -> dict[str, tuple[Sequential, tuple[int, ...]]]:
    """``{"digits", "c32", "anchor"}``: each network and its input shape (batch first)."""
    f32 = np.float32
    digits = Sequential(
        [
            Conv2D.create(1, 16, 3, padding=1, seed=0, dtype=f32),
            ReLU(),
            MaxPool2D(2),
            Conv2D.create(16, 32, 3, padding=1, seed=1, dtype=f32),
            ReLU(),
            Flatten(),
            Dense.create(32 * 4 * 4, 10, seed=2, dtype=f32),
        ]
    )
    c32 = Sequential(
        [
            Conv2D.create(32, 64, 3, padding=1, seed=3, dtype=f32),
            ReLU(),
            MaxPool2D(2),
            Flatten(),
            Dense.create(64 * 16 * 16, 10, seed=4, dtype=f32),
        ]
    )
    anchor = Sequential(
        [
            Conv2D.create(3, 32, 3, padding=1, seed=5, dtype=f32),
            ReLU(),
            Conv2D.create(32, 64, 3, padding=1, seed=6, dtype=f32),
            ReLU(),
            MaxPool2D(2),
            Flatten(),
            Dense.create(64 * 16 * 16, 10, seed=7, dtype=f32),
        ]
    )
    return {
        "digits": (digits, (256, 1, 8, 8)),
        "c32": (c32, (64, 32, 32, 32)),
        "anchor": (anchor, (64, 3, 32, 32)),
    }
