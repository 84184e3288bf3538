r"""Streaming sufficient statistics of one kernel layer, and the patterns they give.

For a Dense or Conv2D layer with weight rows ``W_2`` (``K x D``), input rows ``x`` (dense
inputs, or conv patches) and pre-activations ``z = W_2 x + b``, ``y = z - b``, the
two-component patterns of the paper (Kindermans et al. 2018, Eq. 8; MATH.md section 2) are

.. math::

    a_+ = \frac{E_+[x y] - E_+[x]\,E[y]}{w^\top E_+[x y] - w^\top E_+[x]\,E[y]},

with ``E_+`` over the rows with ``z > 0`` and ``E`` over all rows (``a_-``: mask
``z <= 0``). Kind ``"linear"`` masks nothing, which gives ``a = cov[x, y] / var[y]`` (Eq. 4).
Kind ``"relu_masked_mean"`` is Eq. 8 with ``E_+[y]`` in place of ``E[y]`` (the masked
covariance): unlike Eq. 8 it does not depend on the mean of the distractor (see the tests).

:class:`LayerStats` keeps, in float64, the sums of MATH.md section 3 over shifted data
``x' = x - x_0``, ``y' = y - y_0`` (``x_0``, ``y_0``: the first batch's means), and applies
the shift correction

.. math::

    E_+[x y] - E_+[x] E[y] = (E_+[x' y'] - E_+[x'] E[y']) + x_0 (E_+[y'] - E[y']).

The batch sums come from :mod:`refnet.kernels.stats` (two GEMMs per batch).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..kernels.stats import BatchStats, n_columns, pattern_stats_conv, pattern_stats_dense
from ..layers import Conv2D, Dense

#: The pattern kinds: MATH.md section 2 and the docstring above.
KINDS = ("linear", "relu", "relu_masked_mean")

#: A neuron is degenerate when its denominator ``w^T num`` vanishes up to rounding:
#: ``|w^T num| <= rtol * sum_d |w_d| (|E_+[x'y']| + |E_+[x'] E[y']| + |x0 (E_+[y'] - E[y'])|)_d``,
#: the sum bounding the terms that cancel; ``rtol`` by the input dtype (float32 statistics come
#: from float32 GEMMs per chunk). This catches ``num = 0`` exactly, zero variance within the
#: mask (e.g. a single active row for kind relu_masked_mean) and constant neurons.
DEGENERATE_RTOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}


def check_kind(kind: str) -> str:
    """Return ``kind`` if it is one of :data:`KINDS`, else raise a ``ValueError``."""
    if kind not in KINDS:
        raise ValueError(f"unknown pattern kind {kind!r}; valid kinds are {', '.join(KINDS)}")
    return kind


@dataclass(frozen=True)
class LayerPatterns:
    """Patterns of one layer (arrays of the layer's ``W`` shape, float64) and diagnostics.

    ``A`` is ``a_+`` for the relu kinds and ``a`` for kind linear; ``A_minus`` is ``a_-``
    (``None`` when not collected). ``active`` counts the rows with ``z > 0`` per neuron;
    ``degenerate`` / ``degenerate_minus`` flag neurons whose pattern was set to 0.
    """

    A: np.ndarray
    A_minus: np.ndarray | None
    active: np.ndarray
    degenerate: np.ndarray
    degenerate_minus: np.ndarray | None
    rows: int


def _first_batch_shift(values: np.ndarray, axis: tuple[int, ...]) -> np.ndarray:
    """Float64 mean over ``axis``; exactly the value where it is constant (so x' = 0)."""
    mean = values.mean(axis=axis, dtype=np.float64)
    lo, hi = values.min(axis=axis), values.max(axis=axis)
    return np.where(lo == hi, lo.astype(np.float64), mean)


class LayerStats:
    r"""Accumulator of one kernel layer's pattern statistics: ``update``, ``merge``, ``patterns``.

    Parameters
    ----------
    layer : Dense or Conv2D
        The layer whose neurons get patterns.
    kind : {"linear", "relu", "relu_masked_mean"}
        Which patterns :meth:`patterns` returns.
    minus : bool
        For the relu kinds, also collect what ``a_-`` needs (the unmasked block; about
        1.5x the GEMM work of ``a_+`` alone).
    xx : bool
        Also collect ``X'^T X'`` (for :meth:`covariance`; ``D x D`` memory).

    Notes
    -----
    Sums (all float64): ``S = X'^T R`` (``D x n_cols``, column blocks ``[M, M Y']`` and
    ``[1, Y']``), ``ysum = [sum M; sum M Y'; sum Y']`` (``3 x K``), ``rows``, and optionally
    ``XX``. Accumulators of disjoint data merge into the accumulator of their union, even
    when their shifts differ (the sums are re-shifted exactly).
    """

    def __init__(
        self, layer: Dense | Conv2D, kind: str = "relu", minus: bool = True, xx: bool = False
    ) -> None:
        if not isinstance(layer, (Dense, Conv2D)):
            raise TypeError(
                f"LayerStats: needs a Dense or Conv2D layer, got {type(layer).__name__}"
            )
        self.layer = layer
        self.kind = check_kind(kind)
        self.masked = kind != "linear"
        self.unmasked = kind == "linear" or bool(minus) or bool(xx)
        self.xx = bool(xx)
        self.W2 = layer.weight_matrix().astype(np.float64)  # (K, D)
        K, D = self.W2.shape
        self.x0: np.ndarray | None = None  # (D,)
        self.y0: np.ndarray | None = None  # (K,)
        self.rows = 0
        self.dtype: np.dtype | None = None  # the least precise input dtype seen
        self.S = np.zeros((D, n_columns(K, self.masked, self.unmasked)))
        self.ysum = np.zeros((3, K))
        self.XX = np.zeros((D, D)) if self.xx else None

    @property
    def name(self) -> str:
        return f"LayerStats({type(self.layer).__name__} {self.layer.W.shape})"

    # ------------------------------------------------------------------ update

    def update(self, x: np.ndarray, z: np.ndarray | None = None) -> LayerStats:
        r"""Add a batch of layer inputs ``x`` (``(N, D)`` Dense, ``(N, C, H, W)`` Conv2D).

        ``z`` is the layer's output ``layer.forward(x)`` (pre-activation, bias included) if
        already computed; otherwise it is computed here. The first batch fixes the shifts.
        """
        if z is None:
            z = self.layer.forward(x)[0]
        if len(x) == 0:
            return self
        b = self.layer.b.astype(x.dtype, copy=False)
        if self.x0 is None:
            self._set_shifts(x, z, b)
        self._note_dtype(x.dtype)
        layer = self.layer
        if isinstance(layer, Dense):
            batch = pattern_stats_dense(
                x, z, b, self.x0, self.y0, self.masked, self.unmasked, self.xx
            )
        else:
            kh, kw = layer.kernel_size
            ph, pw = layer.padding
            batch = pattern_stats_conv(
                x, z, b, self.x0, self.y0, kh, kw, layer.stride, ph, pw,
                self.masked, self.unmasked, self.xx,
            )  # fmt: skip
        self._add(batch)
        return self

    def _set_shifts(self, x: np.ndarray, z: np.ndarray, b: np.ndarray) -> None:
        b64 = b.astype(np.float64)  # y = z - b, so y0 = (shift of z) - b
        if isinstance(self.layer, Dense):
            self.x0 = _first_batch_shift(x, (0,))  # (D,)
            self.y0 = _first_batch_shift(z, (0,)) - b64  # (K,)
        else:
            kh, kw = self.layer.kernel_size
            per_channel = _first_batch_shift(x, (0, 2, 3))  # (C,)
            self.x0 = np.repeat(per_channel, kh * kw)  # (C*kh*kw,) in im2col order
            self.y0 = _first_batch_shift(z, (0, 2, 3)) - b64  # (K,)

    def _note_dtype(self, dtype: np.dtype) -> None:
        if self.dtype is None or np.dtype(dtype).itemsize < self.dtype.itemsize:
            self.dtype = np.dtype(dtype)

    def _add(self, batch: BatchStats) -> None:
        self.S += batch.S
        self.ysum += batch.ysum
        if self.XX is not None:
            self.XX += batch.XX
        self.rows += batch.rows

    # ------------------------------------------------------------------ merge

    def merge(self, other: LayerStats) -> LayerStats:
        r"""Add the sums of ``other`` (disjoint data of the same layer) to this accumulator.

        ``other``'s sums are re-shifted to this accumulator's ``x_0, y_0``: with
        ``\Delta x = x_0^{o} - x_0``, ``\Delta y = y_0^{o} - y_0``,

        .. math::

            \textstyle\sum M x' y' = \sum M x'' y'' + \Delta y \sum M x''
            + \Delta x \sum M y'' + \Delta x \Delta y \sum M,

        and likewise for the other sums.
        """
        if not isinstance(other, LayerStats):
            raise TypeError(
                f"{self.name}.merge: expected a LayerStats, got {type(other).__name__}"
            )
        same = other.W2.shape == self.W2.shape and (
            other.kind,
            other.masked,
            other.unmasked,
            other.xx,
        ) == (self.kind, self.masked, self.unmasked, self.xx)
        if not same:
            raise ValueError(
                f"{self.name}.merge: cannot merge with {other.name} (kind {other.kind!r} vs "
                f"{self.kind!r}, weights {other.W2.shape} vs {self.W2.shape}, or different "
                "collected statistics)"
            )
        if other.x0 is None:
            return self
        if self.x0 is None:
            self.x0, self.y0 = other.x0.copy(), other.y0.copy()
        self._note_dtype(other.dtype)
        S, ysum, XX = other._shifted_sums(self.x0, self.y0)
        self._add(BatchStats(S, ysum, XX, other.rows))
        return self

    def _shifted_sums(self, x0: np.ndarray, y0: np.ndarray):
        """This accumulator's sums as if its shifts had been ``x0``, ``y0``."""
        dx, dy = self.x0 - x0, self.y0 - y0  # (D,), (K,)
        K = len(dy)
        count, summy, sumy = self.ysum  # (K,) each
        n = float(self.rows)
        S = self.S.copy()
        ysum = np.stack([count, summy + dy * count, sumy + dy * n])  # (3, K)
        col = 0
        if self.masked:
            Sx, Sxy = self.S[:, :K], self.S[:, K : 2 * K]  # (D, K) each
            S[:, :K] = Sx + np.outer(dx, count)
            S[:, K : 2 * K] = Sxy + Sx * dy + np.outer(dx, summy) + np.outer(dx, dy * count)
            col = 2 * K
        XX = None
        if self.unmasked:
            s1, Sy = self.S[:, col], self.S[:, col + 1 : col + 1 + K]  # (D,), (D, K)
            S[:, col] = s1 + dx * n
            S[:, col + 1 : col + 1 + K] = Sy + np.outer(s1, dy) + np.outer(dx, sumy + dy * n)
            if self.XX is not None:
                XX = self.XX + np.outer(s1, dx) + np.outer(dx, s1) + n * np.outer(dx, dx)
        return S, ysum, XX

    # ------------------------------------------------------------------ results

    def _masked_moments(self, minus: bool):
        """``(count, sum M x', sum M x'y', sum M y')`` for the mask ``z > 0`` or ``z <= 0``."""
        K = self.W2.shape[0]
        count, summy, sumy = self.ysum
        if self.masked:
            Sx, Sxy = self.S[:, :K], self.S[:, K : 2 * K]  # (D, K) each
        if self.unmasked:
            c = 2 * K if self.masked else 0
            s1, Sy = self.S[:, c], self.S[:, c + 1 : c + 1 + K]  # (D,), (D, K)
        if not self.masked:  # kind linear: the mask is every row
            n = np.full(K, float(self.rows))
            return n, np.repeat(s1[:, None], K, axis=1), Sy, sumy
        if not minus:
            return count, Sx, Sxy, summy
        return self.rows - count, s1[:, None] - Sx, Sy - Sxy, sumy - summy

    def _pattern(self, minus: bool) -> tuple[np.ndarray, np.ndarray]:
        """Pattern rows ``(K, D)`` and the degenerate mask ``(K,)`` for one mask."""
        count, Sx, Sxy, summy = self._masked_moments(minus)
        K, D = self.W2.shape
        safe = np.maximum(count, 1.0)
        E_x = Sx / safe  # (D, K): E_+[x']
        E_xy = Sxy / safe  # (D, K): E_+[x' y']
        E_y_mask = summy / safe  # (K,): E_+[y']
        E_y = self.ysum[2] / max(self.rows, 1)  # (K,): E[y'] over all rows
        E_ref = E_y_mask if self.kind == "relu_masked_mean" else E_y
        correction = np.outer(self.x0, E_y_mask - E_ref)  # (D, K)
        num = E_xy - E_x * E_ref + correction  # (D, K)
        den = np.einsum("kd,dk->k", self.W2, num)  # (K,): w^T num
        terms = np.abs(E_xy) + np.abs(E_x * E_ref) + np.abs(correction)  # (D, K)
        scale = np.einsum("kd,dk->k", np.abs(self.W2), terms)  # (K,)
        ok = (count > 0) & (np.abs(den) > DEGENERATE_RTOL[self.dtype] * scale)
        A2 = np.zeros((K, D))
        A2[ok] = num[:, ok].T / den[ok, None]  # (K, D)
        return A2, ~ok

    def patterns(self) -> LayerPatterns:
        r"""The layer's patterns (Eq. 8, or Eq. 4 for kind linear), in ``W``'s shape.

        Degenerate neurons (no row in the mask, or a vanishing denominator) get 0 and are
        flagged; nothing is divided by zero.
        """
        if self.x0 is None:
            raise ValueError(f"{self.name}.patterns: no data has been accumulated")
        shape = self.layer.W.shape
        A2, bad = self._pattern(minus=False)
        A_minus = bad_minus = None
        if self.masked and self.unmasked:
            A2m, bad_minus = self._pattern(minus=True)
            A_minus = A2m.reshape(shape)
        return LayerPatterns(
            A=A2.reshape(shape),
            A_minus=A_minus,
            active=np.rint(self.ysum[0]).astype(np.int64),
            degenerate=bad,
            degenerate_minus=bad_minus,
            rows=self.rows,
        )

    def mean(self) -> np.ndarray:
        """``E[x]`` over all rows, shape (D,) (needs the unmasked block)."""
        if not self.unmasked or self.x0 is None:
            raise ValueError(f"{self.name}.mean: needs data and minus=True or kind 'linear'")
        c = 2 * self.W2.shape[0] if self.masked else 0
        return self.x0 + self.S[:, c] / max(self.rows, 1)

    def covariance(self) -> np.ndarray:
        r"""``cov[x] = E[x' x'^T] - E[x'] E[x']^T``, shape (D, D) (needs ``xx=True``)."""
        if self.XX is None or self.x0 is None:
            raise ValueError(f"{self.name}.covariance: needs data and xx=True")
        m = self.mean() - self.x0  # (D,): E[x']
        return self.XX / max(self.rows, 1) - np.outer(m, m)
