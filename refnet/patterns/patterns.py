r"""The fitted patterns of a network: one array per kernel layer, plus the fit report.

``Patterns`` holds, for every kernel layer (Dense, Conv2D) of a network, an array of that
layer's ``W`` shape: ``a`` (kind ``"linear"``, Eq. 4) or ``a_+`` (kinds ``"relu"``, Eq. 8,
and ``"relu_masked_mean"``) of Kindermans et al. 2018; and, for the relu kinds, ``a_-``
(the other component of the estimator ``S_a+-``, Eq. 5). PatternNet uses ``A`` in place of
``W`` in the backward pass, PatternAttribution ``W * A`` (MATH.md section 4).

Saved as ``.npz`` with a format version (:mod:`refnet.serialize`); loading never unpickles.

Patterns belong to the weights they were fitted on: after retraining, or with a sibling
model of the same shapes, they would give finite but meaningless heatmaps. ``fit_patterns``
therefore stores a fingerprint of every kernel layer's ``W`` and ``b``
(:func:`weights_fingerprint`), and :meth:`Patterns.check_compatible` refuses a network whose
weights differ, naming the first such layer. :meth:`Patterns.assume_fitted_on` accepts
patterns for another network explicitly. Patterns without a fingerprint (made by
``patterns_from_stats``, built by hand, or loaded from a file written before fingerprints)
are checked by their shapes only.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..network import Sequential
from ..serialize import read_npz, write_npz
from .stats import check_kind

#: Kind and version of the ``.npz`` layout written by :meth:`Patterns.save`.
FILE_KIND = "patterns"
FORMAT_VERSION = 1


def weights_fingerprint(net: Sequential) -> dict[int, str]:
    """Per kernel layer, the SHA-256 of its ``W`` and ``b`` (shapes and values).

    The values are hashed as little-endian float32, so a network and its ``astype`` copy in
    the other float dtype share a fingerprint; weights that differ anywhere beyond float32
    rounding do not.
    """
    fingerprint = {}
    for i in net.kernel_layers():
        layer = net.layers[i]
        h = hashlib.sha256()
        for a in (layer.W, layer.b):
            h.update(repr(a.shape).encode())
            h.update(np.ascontiguousarray(a, dtype="<f4").tobytes())
        fingerprint[i] = h.hexdigest()
    return fingerprint


@dataclass(frozen=True)
class FitReport:
    """What a fit saw, per kernel layer (keys: layer indices in the network).

    Attributes
    ----------
    samples : int
        Samples (images or input vectors) seen.
    rows : dict[int, int]
        Rows seen per layer: ``samples`` for Dense, ``samples * H' * W'`` for Conv2D.
    active : dict[int, ndarray]
        Per layer, ``(K,)`` count of rows with ``z > 0`` per neuron.
    degenerate : dict[int, int]
        Per layer, neurons whose pattern ``A`` was set to 0 (no row in the mask, or a
        vanishing denominator ``w^T cov``).
    degenerate_minus : dict[int, int] or None
        The same for ``A_minus`` (``None`` when ``A_minus`` was not fitted).
    """

    samples: int
    rows: dict[int, int]
    active: dict[int, np.ndarray]
    degenerate: dict[int, int]
    degenerate_minus: dict[int, int] | None = None

    def __str__(self) -> str:
        lines = [f"FitReport: {self.samples} samples"]
        for i in self.rows:
            K = len(self.active[i])
            line = (
                f"  layer {i}: {self.rows[i]} rows, {K} neurons, {self.degenerate[i]} degenerate"
            )
            if self.degenerate_minus is not None:
                line += f" ({self.degenerate_minus[i]} for A_minus)"
            lines.append(line + f", never active {int((self.active[i] == 0).sum())}")
        return "\n".join(lines)


class Patterns(Mapping):
    """Fitted patterns ``{layer_index: A}`` (a read-only mapping) with ``A_minus`` and report.

    Attributes
    ----------
    kind : str
        ``"linear"``, ``"relu"`` or ``"relu_masked_mean"``.
    layer_indices : tuple[int, ...]
        Indices of the kernel layers in the network, ascending.
    A : dict[int, ndarray]
        Per kernel layer, an array of the layer's ``W`` shape (float64): ``a``, or ``a_+``
        for the relu kinds.
    A_minus : dict[int, ndarray] or None
        ``a_-`` per layer (relu kinds fitted with ``minus=True``), else ``None``.
    report : FitReport or None
    fingerprint : dict[int, str] or None
        :func:`weights_fingerprint` of the network the patterns were fitted on (``None``:
        unknown, shapes are checked only).
    """

    def __init__(
        self,
        kind: str,
        A: dict[int, np.ndarray],
        A_minus: dict[int, np.ndarray] | None = None,
        report: FitReport | None = None,
        fingerprint: dict[int, str] | None = None,
    ) -> None:
        self.kind = check_kind(kind)
        self.A = {int(i): np.asarray(a) for i, a in sorted(A.items())}
        self.A_minus = None
        if A_minus is not None:
            self.A_minus = {int(i): np.asarray(a) for i, a in sorted(A_minus.items())}
        if self.A_minus is not None and set(self.A_minus) != set(self.A):
            raise ValueError(
                f"Patterns: A_minus covers layers {sorted(self.A_minus)}, A {sorted(self.A)}"
            )
        self.report = report
        self.fingerprint = None
        if fingerprint is not None:
            self.fingerprint = {int(i): str(f) for i, f in sorted(fingerprint.items())}
            if set(self.fingerprint) != set(self.A):
                raise ValueError(
                    f"Patterns: the fingerprint covers layers {sorted(self.fingerprint)}, "
                    f"A {sorted(self.A)}"
                )

    @property
    def layer_indices(self) -> tuple[int, ...]:
        return tuple(self.A)

    def __getitem__(self, layer_index: int) -> np.ndarray:
        try:
            return self.A[int(layer_index)]
        except KeyError:
            raise KeyError(
                f"Patterns: no pattern for layer {layer_index}; layers are {self.layer_indices}"
            ) from None

    def __iter__(self) -> Iterator[int]:
        return iter(self.A)

    def __len__(self) -> int:
        return len(self.A)

    def __repr__(self) -> str:
        shapes = ", ".join(f"{i}: {a.shape}" for i, a in self.A.items())
        minus = "" if self.A_minus is None else ", with A_minus"
        return f"Patterns(kind={self.kind!r}, {{{shapes}}}{minus})"

    # ------------------------------------------------------------------ compatibility

    def check_compatible(self, net: Sequential) -> None:
        """Raise a ``ValueError`` naming the layer and shapes if these do not fit ``net``."""
        kernel = net.kernel_layers()
        if tuple(kernel) != self.layer_indices:
            raise ValueError(
                f"Patterns: fitted for kernel layers {list(self.layer_indices)}, but the "
                f"network's kernel layers are {kernel}"
            )
        for i in kernel:
            layer = net.layers[i]
            for name, arrays in (("A", self.A), ("A_minus", self.A_minus)):
                if arrays is not None and arrays[i].shape != layer.W.shape:
                    raise ValueError(
                        f"Patterns: {name} for layer {i} ({type(layer).__name__}) has shape "
                        f"{arrays[i].shape}, but the layer's W has shape {layer.W.shape}"
                    )
        if self.fingerprint is None:
            return
        now = weights_fingerprint(net)
        for i in kernel:
            if now[i] != self.fingerprint[i]:
                raise ValueError(
                    f"Patterns: fitted on other weights than layer {i} "
                    f"({type(net.layers[i]).__name__}, W {net.layers[i].W.shape}) has now: the "
                    "network was retrained or these are another model's patterns. Refit them "
                    "with refnet.fit_patterns(net, data), or accept them explicitly with "
                    "patterns.assume_fitted_on(net)"
                )

    def assume_fitted_on(self, net: Sequential) -> Patterns:
        """These patterns, marked as fitted on ``net``'s weights (shapes are still checked).

        The explicit way to use patterns with a network whose weights differ from the ones
        they were fitted on, e.g. a fine-tuned copy, knowing what that means.
        """
        unchecked = Patterns(self.kind, self.A, self.A_minus, self.report)
        unchecked.check_compatible(net)
        return Patterns(self.kind, self.A, self.A_minus, self.report, weights_fingerprint(net))

    # ------------------------------------------------------------------ save / load

    def save(self, path: str | Path) -> Path:
        """Write an ``.npz`` (``.npz`` is appended if missing); return the path written.

        Layout (:func:`refnet.serialize.write_npz`, kind ``"patterns"``): arrays ``A.<i>``,
        ``A_minus.<i>`` and ``report.active.<i>`` per kernel layer ``i``; the kind, layer
        indices and report counts in the JSON metadata.
        """
        path = Path(path)
        if path.suffix.lower() != ".npz":
            path = path.with_name(path.name + ".npz")
        idx = self.layer_indices
        arrays = {f"A.{i}": self.A[i] for i in idx}
        if self.A_minus is not None:
            arrays.update({f"A_minus.{i}": self.A_minus[i] for i in idx})
        meta: dict = {"kind": self.kind, "layer_indices": list(idx)}
        meta["has_minus"] = self.A_minus is not None
        if self.fingerprint is not None:
            meta["fingerprint"] = [self.fingerprint[i] for i in idx]
        r = self.report
        if r is not None:
            arrays.update({f"report.active.{i}": r.active[i] for i in idx})
            meta["report"] = {
                "samples": r.samples,
                "rows": [int(r.rows[i]) for i in idx],
                "degenerate": [int(r.degenerate[i]) for i in idx],
                "degenerate_minus": (
                    None
                    if r.degenerate_minus is None
                    else [int(r.degenerate_minus[i]) for i in idx]
                ),
            }
        write_npz(path, FILE_KIND, FORMAT_VERSION, arrays, meta)
        return path

    @classmethod
    def load(cls, path: str | Path) -> Patterns:
        """Read patterns written by :meth:`save` (no pickle; kind and version are checked)."""
        arrays, meta = read_npz(path, FILE_KIND, [FORMAT_VERSION])
        try:
            idx = [int(i) for i in meta["layer_indices"]]
            A = {i: arrays[f"A.{i}"] for i in idx}
            A_minus = {i: arrays[f"A_minus.{i}"] for i in idx} if meta["has_minus"] else None
            report = None
            if "report" in meta:
                r = meta["report"]
                minus = r["degenerate_minus"]
                report = FitReport(
                    samples=int(r["samples"]),
                    rows=dict(zip(idx, r["rows"], strict=True)),
                    active={i: arrays[f"report.active.{i}"] for i in idx},
                    degenerate=dict(zip(idx, r["degenerate"], strict=True)),
                    degenerate_minus=None if minus is None else dict(zip(idx, minus, strict=True)),
                )
            fingerprint = None
            if "fingerprint" in meta:  # files written before fingerprints have none
                fingerprint = dict(zip(idx, [str(f) for f in meta["fingerprint"]], strict=True))
            return cls(meta["kind"], A, A_minus, report, fingerprint)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: malformed patterns file ({exc!r})") from exc
