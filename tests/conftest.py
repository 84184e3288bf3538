"""Shared test helpers: the tolerance table, memory layouts and geometry strategies.

The hypothesis strategies BUILD valid geometry (the kernel always fits the padded input)
instead of drawing anything and filtering, so every example is used.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).parent))  # so that tests can `import naive`

# Keras 3 runs its tests on the torch backend (its numpy backend needs jax); it reads this
# variable when it is first imported.
os.environ.setdefault("KERAS_BACKEND", "torch")

#: Relative tolerance per dtype (STYLE.md, "Tests").
TOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-4}

DTYPES = (np.float32, np.float64)

#: Memory layouts that the public kernel wrappers must accept (values are identical).
LAYOUTS = ("C", "F", "sliced", "transposed")


def tol(dtype: np.dtype | type) -> float:
    """The relative tolerance for ``dtype``."""
    return TOL[np.dtype(dtype)]


def assert_close(actual: np.ndarray, expected: np.ndarray, dtype=None) -> None:
    """``actual == expected`` up to the dtype's tolerance, relative to ``max |expected|``."""
    dtype = np.dtype(actual.dtype if dtype is None else dtype)
    expected = np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(
        np.asarray(actual, dtype=np.float64), expected, rtol=tol(dtype), atol=tol(dtype) * scale
    )


def as_layout(a: np.ndarray, layout: str) -> np.ndarray:
    """A copy of ``a`` with the same values in the given memory ``layout``.

    ``"C"`` is C-contiguous; ``"F"`` Fortran order; ``"sliced"`` every second element of a
    twice-as-wide buffer; ``"transposed"`` a transposed view of a C array of the last two
    axes swapped.
    """
    if layout == "C":
        out = np.ascontiguousarray(a).copy()
    elif layout == "F":
        out = np.asfortranarray(a)
    elif layout == "sliced":
        wide = np.zeros(a.shape[:-1] + (2 * a.shape[-1],), dtype=a.dtype)
        wide[..., ::2] = a
        out = wide[..., ::2]
    elif layout == "transposed":
        out = np.ascontiguousarray(np.swapaxes(a, -1, -2)).swapaxes(-1, -2)
    else:
        raise ValueError(f"unknown layout {layout!r}")
    assert out.dtype == a.dtype and np.array_equal(out, a)
    return out


def rng_from(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


seeds = st.integers(0, 2**32 - 1)
dtypes = st.sampled_from(DTYPES)
layouts = st.sampled_from(LAYOUTS)


@dataclass(frozen=True)
class ConvGeometry:
    """One convolution: input (N, C, H, W), filters (F, C, kh, kw), stride, padding."""

    N: int
    C: int
    H: int
    W: int
    F: int
    kh: int
    kw: int
    s: int
    ph: int
    pw: int

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C, self.H, self.W)

    @property
    def w_shape(self) -> tuple[int, int, int, int]:
        return (self.F, self.C, self.kh, self.kw)

    @property
    def Ho(self) -> int:
        return (self.H + 2 * self.ph - self.kh) // self.s + 1

    @property
    def Wo(self) -> int:
        return (self.W + 2 * self.pw - self.kw) // self.s + 1

    @property
    def y_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.F, self.Ho, self.Wo)

    @property
    def cols_shape(self) -> tuple[int, int, int]:
        return (self.N, self.C * self.kh * self.kw, self.Ho * self.Wo)

    @property
    def geometry(self) -> tuple[int, int, int, int, int]:
        """``(kh, kw, s, ph, pw)``, the trailing arguments of im2col / col2im."""
        return (self.kh, self.kw, self.s, self.ph, self.pw)


@st.composite
def conv_geometries(draw, max_n: int = 4, max_c: int = 5, max_hw: int = 12):
    """Valid conv geometry: kernels 1-5, stride 1-3, padding 0-2 per axis, H, W 1-12.

    ``H`` is drawn from ``max(1, kh - 2 ph)`` upwards so the kernel fits the padded input.
    """
    kh, kw = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    H = draw(st.integers(max(1, kh - 2 * ph), max_hw))
    W = draw(st.integers(max(1, kw - 2 * pw), max_hw))
    return ConvGeometry(
        N=draw(st.integers(1, max_n)),
        C=draw(st.integers(1, max_c)),
        H=H,
        W=W,
        F=draw(st.integers(1, 4)),
        kh=kh,
        kw=kw,
        s=draw(st.integers(1, 3)),
        ph=ph,
        pw=pw,
    )


@dataclass(frozen=True)
class PoolGeometry:
    """One max-pooling: input (N, C, H, W), square window ``size``, stride ``s``."""

    N: int
    C: int
    H: int
    W: int
    size: int
    s: int

    @property
    def x_shape(self) -> tuple[int, int, int, int]:
        return (self.N, self.C, self.H, self.W)

    @property
    def y_shape(self) -> tuple[int, int, int, int]:
        Ho, Wo = (self.H - self.size) // self.s + 1, (self.W - self.size) // self.s + 1
        return (self.N, self.C, Ho, Wo)


@st.composite
def pool_geometries(draw, max_n: int = 4, max_c: int = 5, max_hw: int = 12):
    """Valid max-pool geometry: window 1-4, stride 1-3 (overlapping when < size)."""
    size = draw(st.integers(1, 4))
    return PoolGeometry(
        N=draw(st.integers(1, max_n)),
        C=draw(st.integers(1, max_c)),
        H=draw(st.integers(size, max_hw)),
        W=draw(st.integers(size, max_hw)),
        size=size,
        s=draw(st.integers(1, 3)),
    )


def tie_free(rng: np.random.Generator, shape: tuple[int, ...], dtype=np.float64) -> np.ndarray:
    """Distinct values (a random permutation, spaced 1/size apart, centred on 0)."""
    n = int(np.prod(shape))
    return ((rng.permutation(n) - n / 2) / max(n, 1)).reshape(shape).astype(dtype)


def away_from_zero(
    rng: np.random.Generator, shape: tuple[int, ...], margin: float = 0.1
) -> np.ndarray:
    """Random values with ``|v| >= margin`` and random signs (for ReLU inputs)."""
    magnitude = rng.uniform(margin, 1.0, size=shape)
    return magnitude * rng.choice([-1.0, 1.0], size=shape)
