r"""The quality criterion :math:`\rho` of a signal estimator (paper, Sec. 3, Eq. 1).

For one neuron with weight vector ``w``, input ``x`` and pre-activation ``y = w^T x``, a
signal estimator ``S`` splits the input into signal ``S(x)`` and distractor
``d = x - S(x)``. A good estimator leaves no information about the output in ``d``:

.. math::

    \rho(S) = 1 - \max_v \operatorname{corr}\!\left(y,\; v^\top (x - S(x))\right).

The maximising ``v`` is the least-squares regression (with intercept) of ``y`` on ``d``;
refnet fits it as a ridge regression whose penalty (zero included) is chosen by generalised
cross-validation, because a layer's input dimension can be comparable to the number of
rows (see :mod:`refnet.evaluate.regression`).
Following MATH.md section 5, three disjoint splits are used: the patterns were fitted on
one, ``v`` is fitted on a second, and the correlation is measured on a third (held out), so
an estimator cannot score well by over-fitting.

Every estimator of MATH.md section 2 has the form ``S(x) = u(x) y`` with a direction ``u``
per neuron (``u`` may depend on the sign of ``z`` for ``S_a+-``):

==========  ==============================================  ==========================
name        direction ``u``                                 method it corresponds to
==========  ==============================================  ==========================
``S_x``     (none: ``S(x) = x``, so ``d = 0``)              LRP-0, gradient x input
``S_w``     ``w / (w^T w)``                                 DeConvNet, Guided BackProp
``S_a``     ``a`` (kind ``linear``)                         PatternNet, kind ``linear``
``S_a+-``   ``a_+`` if ``z > 0`` else ``a_-``               PatternNet, kind ``relu``
``S_r``     ``r / (w^T r)``, ``r`` a fixed random vector    baseline
==========  ==============================================  ==========================

The estimates themselves come from :mod:`refnet.patterns.estimators`.

``S_x`` is degenerate: ``d = 0`` carries no information and ``corr`` is undefined, so it is
reported as such and never as a number.

Two variants are computed. ``target="y"`` is Eq. 1 as written: the correlation is with the
pre-activation ``y``. There, ``S_a`` removes all *linear* covariance between ``d`` and ``y``
on the pattern split by construction (``cov[d, y] = cov[x, y] - a var[y] = 0``), so its
held-out :math:`\rho` is close to 1. ``target="relu"`` correlates with ``relu(z)``,
``z = y + b``, the signal the next layer actually receives. Whether the two-component
``S_a+-``, designed for rectified outputs, scores better there is an empirical question;
``refnet demo`` answers it for its network and reports why.

For a convolution the rows are image patches (``D = C kh kw``). To keep the measure fast, a
bounded number of rows is sampled per split (``max_rows``), with a fixed seed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
from threadpoolctl import threadpool_limits

from ..layers import Conv2D, Dense
from ..network import Sequential
from ..patterns import estimators as signal_estimators
from ..patterns.estimators import layer_input_rows
from .regression import ridge_gcv

#: The estimators measured by :func:`layer_rho`, in the order of the paper's Fig. 3.
ESTIMATORS = ("S_x", "S_w", "S_a", "S_a+-", "S_r")

#: The two target variants: Eq. 1's pre-activation ``y``, and the rectified ``relu(z)``.
TARGETS = ("y", "relu")


@dataclass(frozen=True)
class LayerRows:
    """One kernel layer's input rows on one split, and what the neurons compute on them.

    Attributes
    ----------
    X : (n, D) layer inputs (Dense) or image patches (Conv2D), float64.
    y : (n, K) pre-activations without bias, ``X @ W2.T``.
    z : (n, K) pre-activations with bias, ``y + b``.
    """

    X: np.ndarray
    y: np.ndarray
    z: np.ndarray


@dataclass
class RhoResult:
    r"""Per-layer :math:`\rho` statistics for every estimator and both target variants.

    ``table[target][layer_index][estimator]`` is a dict with ``mean``, ``std``,
    ``median``, ``n_neurons`` (neurons measured) and ``n_skipped`` (neurons whose target
    is constant on a split, e.g. a ReLU that never fires, for which :math:`\rho` is
    undefined). For ``S_x`` the entry is ``{"degenerate": True, ...}`` with no numbers.
    ``per_neuron[target][layer_index][estimator]`` holds the (K,) array, NaN marking a
    skipped neuron (kept out of every summary).
    """

    layer_indices: list[int]
    layer_names: dict[int, str]
    table: dict[str, dict[int, dict[str, dict]]] = field(default_factory=dict)
    per_neuron: dict[str, dict[int, dict[str, np.ndarray]]] = field(default_factory=dict)
    n_rows: dict[str, dict[int, int]] = field(default_factory=dict)

    def mean(self, target: str, layer_index: int, estimator: str) -> float:
        """The mean :math:`\rho` over the measured neurons of one layer."""
        return float(self.table[target][layer_index][estimator]["mean"])


def layer_rows(
    net: Sequential,
    x: np.ndarray,
    layer_index: int,
    max_rows: int | None = None,
    seed: int = 0,
) -> LayerRows:
    """The input rows of kernel layer ``layer_index`` for the network input ``x``.

    Parameters
    ----------
    net : the network.
    x : (N, ...) network inputs.
    layer_index : index (into ``net.layers``) of a Dense or Conv2D layer.
    max_rows : if given and the layer has more rows, a seeded random subset of this size
        (without replacement, in increasing order) is kept.
    seed : seed of that subset.

    Returns
    -------
    LayerRows with ``X`` (n, D), ``y`` and ``z`` (n, K), all float64.
    """
    layer = net.layers[layer_index]
    if not isinstance(layer, (Dense, Conv2D)):
        raise ValueError(
            f"layer_rows: layer {layer_index} is {type(layer).__name__}, not Dense or Conv2D"
        )
    h = np.asarray(x, dtype=np.float64)
    for previous in net.layers[:layer_index]:
        h = previous.forward(h, check_finite=False)[0]
    X = layer_input_rows(layer, h)  # (N, in) or (N*H'*W', C*kh*kw)
    if max_rows is not None and len(X) > max_rows:
        keep = np.sort(np.random.default_rng(seed).choice(len(X), max_rows, replace=False))
        X = X[keep]
    W2 = layer.weight_matrix().astype(np.float64)  # (K, D)
    y = X @ W2.T  # (n, K)
    return LayerRows(np.ascontiguousarray(X), y, y + layer.b.astype(np.float64))


def random_directions(W2: np.ndarray, seed: int = 0) -> np.ndarray:
    """The fixed random directions ``u`` of ``S_r``, one per neuron: (K, D), seeded."""
    return np.random.default_rng(seed).standard_normal(W2.shape)  # (K, D)


def distractor(
    estimator: str,
    rows: LayerRows,
    W2: np.ndarray,
    b: np.ndarray,
    k: int,
    patterns: Mapping[str, np.ndarray],
) -> np.ndarray:
    r"""The distractor estimate :math:`d = x - S(x)` of neuron ``k`` on every row: (n, D).

    ``S`` is one of the estimators of :mod:`refnet.patterns.estimators` (MATH.md
    section 2): ``"S_w"``, ``"S_a"`` (needs ``patterns["A"]``), ``"S_a+-"`` (needs
    ``patterns["A_plus"]`` and ``patterns["A_minus"]``; the mask uses ``z = y + b``) or
    ``"S_r"`` (needs ``patterns["U"]``, e.g. from :func:`random_directions`).

    .. math:: d = x - S(x)
    """
    X = rows.X
    if estimator == "S_w":
        S = signal_estimators.S_w(X, W2, neuron=k)
    elif estimator == "S_a":
        S = signal_estimators.S_a(X, W2, patterns["A"], neuron=k)
    elif estimator == "S_a+-":
        S = signal_estimators.S_a_pm(X, W2, b, patterns["A_plus"], patterns["A_minus"], neuron=k)
    elif estimator == "S_r":
        S = signal_estimators.S_r(X, W2, patterns["U"], neuron=k)
    else:
        raise ValueError(f"distractor: unknown estimator {estimator!r}; use {ESTIMATORS[1:]}")
    return X - S  # (n, D)


def neuron_rho(
    d_fit: np.ndarray, T_fit: np.ndarray, d_eval: np.ndarray, T_eval: np.ndarray
) -> np.ndarray:
    r"""One neuron's :math:`\rho` for each target: fit ``v`` on one split, correlate on another.

    Parameters
    ----------
    d_fit, d_eval : (n1, D), (n2, D) the distractor estimates ``x - S(x)`` on the two splits.
    T_fit, T_eval : (n1, m), (n2, m) the targets (columns: ``y``, ``relu(z)``, ...).

    Returns
    -------
    (m,) :math:`1 - \operatorname{corr}(t, v^\top d)` on the evaluation split, with ``v``
    the regression of ``t`` on ``d`` fitted on the fit split
    (:func:`refnet.evaluate.regression.ridge_gcv`). NaN where the target is constant on
    either split (undefined); 1.0 where ``v^T d`` is constant (``d`` carries no linear
    information about ``t``). Held out, the correlation can be slightly negative, so
    :math:`\rho` can slightly exceed 1.

    .. math:: \rho = 1 - \operatorname{corr}(t, v^\top d), \qquad
              v = \arg\min_v \lVert t_c - d_c v \rVert^2 + \lambda \lVert v \rVert^2
    """
    V, _ = ridge_gcv(d_fit, T_fit)  # (D, m)
    P = d_eval @ V  # (n2, m)
    P = P - P.mean(axis=0)
    Q = T_eval - T_eval.mean(axis=0)  # (n2, m)
    pp = np.einsum("nm,nm->m", P, P)  # (m,)
    qq = np.einsum("nm,nm->m", Q, Q)  # (m,)
    pq = np.einsum("nm,nm->m", P, Q)  # (m,)
    constant_target = (np.ptp(T_fit, axis=0) == 0) | (np.ptp(T_eval, axis=0) == 0)
    flat = pp <= 1e-24 * np.maximum(qq, 1.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = 1.0 - pq / np.sqrt(pp * qq)
    rho = np.where(flat, 1.0, rho)
    return np.where(constant_target, np.nan, rho)


def _targets(rows: LayerRows, targets: tuple[str, ...], k: int) -> np.ndarray:
    """Neuron ``k``'s targets as columns: ``y`` and/or ``relu(z)``: (n, m)."""
    columns = {"y": rows.y[:, k], "relu": np.maximum(rows.z[:, k], 0.0)}
    return np.column_stack([columns[t] for t in targets])  # (n, m)


def layer_rho(
    W2: np.ndarray,
    fit: LayerRows,
    evaluation: LayerRows,
    patterns: Mapping[str, np.ndarray | None],
    estimators: tuple[str, ...] = ESTIMATORS,
    targets: tuple[str, ...] = TARGETS,
    seed: int = 0,
    b: np.ndarray | None = None,
) -> dict[str, dict[str, np.ndarray | None]]:
    r"""Per-neuron :math:`\rho` of one layer for each estimator and target (MATH.md section 5).

    Parameters
    ----------
    W2 : (K, D) the layer's weight vectors.
    fit : rows of the split on which ``v`` is fitted (not the pattern split).
    evaluation : rows of the held-out split on which the correlation is measured.
    patterns : ``{"A": (K, D), "A_plus": (K, D), "A_minus": (K, D)}``; an estimator whose
        pattern is missing (None) is skipped.
    estimators : subset of :data:`ESTIMATORS`.
    targets : subset of :data:`TARGETS`: ``"y"`` (Eq. 1, pre-activation), ``"relu"``.
    seed : seed of ``S_r``'s random directions.
    b : (K,) the bias, for ``S_a+-``'s mask ``z = y + b > 0`` (default 0).

    Returns
    -------
    ``{target: {estimator: (K,) array}}`` (NaN for undefined neurons); ``None`` for ``S_x``
    (degenerate) and for an estimator without its pattern.
    """
    unknown = [t for t in targets if t not in TARGETS]
    if unknown or not targets:
        raise ValueError(f"layer_rho: targets must be a subset of {TARGETS}, got {targets!r}")
    K = W2.shape[0]
    if fit.y.shape[1] != K or evaluation.y.shape[1] != K:
        raise ValueError(
            f"layer_rho: W2 has shape {W2.shape} but the rows give {fit.y.shape[1]} and "
            f"{evaluation.y.shape[1]} neurons"
        )
    b = np.zeros(K) if b is None else np.asarray(b, dtype=np.float64)
    arrays = {k: np.asarray(v, dtype=np.float64) for k, v in patterns.items() if v is not None}
    arrays["U"] = random_directions(W2, seed)
    needs = {"S_a": ("A",), "S_a+-": ("A_plus", "A_minus")}
    out: dict[str, dict[str, np.ndarray | None]] = {t: {} for t in targets}
    for name in estimators:
        if name == "S_x" or any(key not in arrays for key in needs.get(name, ())):
            for t in targets:
                out[t][name] = None
            continue
        rho = np.array(
            [
                neuron_rho(
                    distractor(name, fit, W2, b, k, arrays),
                    _targets(fit, targets, k),
                    distractor(name, evaluation, W2, b, k, arrays),
                    _targets(evaluation, targets, k),
                )
                for k in range(K)
            ]
        )  # (K, m)
        for j, t in enumerate(targets):
            out[t][name] = rho[:, j]
    return out


def _summary(values: np.ndarray | None) -> dict:
    if values is None:
        return {
            "degenerate": True,
            "mean": None,
            "std": None,
            "median": None,
            "n_neurons": 0,
            "n_skipped": 0,
        }
    ok = values[np.isfinite(values)]
    if ok.size == 0:
        return {
            "degenerate": False,
            "mean": None,
            "std": None,
            "median": None,
            "n_neurons": 0,
            "n_skipped": int(values.size),
        }
    return {
        "degenerate": False,
        "mean": float(ok.mean()),
        "std": float(ok.std()),
        "median": float(np.median(ok)),
        "n_neurons": int(ok.size),
        "n_skipped": int(values.size - ok.size),
    }


def _pattern_arrays(patterns_by_kind: Mapping[str, object], index: int, W_shape) -> dict:
    """``{"A", "A_plus", "A_minus"}`` as (K, D) arrays (or None) from fitted patterns."""
    K = W_shape[0]

    def get(kind: str, attribute: str) -> np.ndarray | None:
        p = patterns_by_kind.get(kind)
        table = getattr(p, attribute, None) if p is not None else None
        if not table or index not in table or table[index] is None:
            return None
        return np.asarray(table[index], dtype=np.float64).reshape(K, -1)  # (K, D)

    return {"A": get("linear", "A"), "A_plus": get("relu", "A"), "A_minus": get("relu", "A_minus")}


def quality(
    net: Sequential,
    patterns_by_kind: Mapping[str, object],
    X_fit: np.ndarray,
    X_eval: np.ndarray,
    max_rows: int = 3000,
    seed: int = 0,
    targets: tuple[str, ...] = TARGETS,
    progress=None,
) -> RhoResult:
    r"""The quality :math:`\rho` of ``S_x``, ``S_w``, ``S_a``, ``S_a+-``, ``S_r`` per layer.

    Parameters
    ----------
    net : the network.
    patterns_by_kind : ``{"linear": Patterns, "relu": Patterns}`` fitted on a split
        disjoint from ``X_fit`` and ``X_eval``; ``linear``'s ``A`` gives ``S_a``,
        ``relu``'s ``A`` and ``A_minus`` give ``S_a+-``.
    X_fit : network inputs of the regression split (``v`` is fitted on it).
    X_eval : network inputs of the held-out evaluation split.
    max_rows : at most this many rows per layer and split (conv patches are sampled).
    seed : seed of the row sampling and of ``S_r``.
    targets : the variants to compute, a subset of :data:`TARGETS`.
    progress : optional wrapper ``progress(iterable, desc)`` for a progress bar.

    Returns
    -------
    RhoResult, with mean and spread over neurons per layer, estimator and target.

    .. math:: \rho(S) = 1 - \max_v \operatorname{corr}(w^\top x, v^\top (x - S(x)))
              \quad \text{(paper, Eq. 1)}
    """
    if len(X_fit) == 0 or len(X_eval) == 0:
        raise ValueError(
            f"quality: the regression and evaluation splits must not be empty, got "
            f"{len(X_fit)} and {len(X_eval)} samples"
        )
    indices = net.kernel_layers()
    names = {i: f"{i}:{type(net.layers[i]).__name__}" for i in indices}
    result = RhoResult(indices, names)
    for t in targets:
        result.table[t], result.per_neuron[t] = {}, {}
    result.n_rows = {"fit": {}, "eval": {}}
    loop = indices if progress is None else progress(indices, "rho per layer")
    # Many small eigendecompositions: a multi-threaded BLAS only adds overhead here (and
    # on a busy 2-core machine it was measured 15x slower), so BLAS runs single-threaded.
    with threadpool_limits(limits=1, user_api="blas"):
        for index in loop:
            _layer_quality(
                net, index, patterns_by_kind, X_fit, X_eval, max_rows, seed, targets, result
            )
    return result


def _layer_quality(
    net: Sequential,
    index: int,
    patterns_by_kind: Mapping[str, object],
    X_fit: np.ndarray,
    X_eval: np.ndarray,
    max_rows: int,
    seed: int,
    targets: tuple[str, ...],
    result: RhoResult,
) -> None:
    """Fill ``result`` with one kernel layer's rho table (see :func:`quality`)."""
    layer = net.layers[index]
    W2 = layer.weight_matrix().astype(np.float64)  # (K, D)
    fit = layer_rows(net, X_fit, index, max_rows, seed)
    evaluation = layer_rows(net, X_eval, index, max_rows, seed + 1)
    result.n_rows["fit"][index], result.n_rows["eval"][index] = len(fit.X), len(evaluation.X)
    arrays = _pattern_arrays(patterns_by_kind, index, layer.W.shape)
    b = layer.b.astype(np.float64)
    by_target = layer_rho(W2, fit, evaluation, arrays, targets=targets, seed=seed + index, b=b)
    for t, values in by_target.items():
        result.per_neuron[t][index] = {
            k: (np.full(W2.shape[0], np.nan) if v is None else v) for k, v in values.items()
        }
        result.table[t][index] = {k: _summary(v) for k, v in values.items()}
