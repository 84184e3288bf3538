r"""``refnet groundtruth``: score every explanation method against known signal pixels.

For each data set — the four XAI-TRIS scenarios on both backgrounds and Wilming et al. 2022
at :math:`l_1 = 0.08` (:mod:`refnet.datasets`) — the runner

1. draws the data (seeded) and splits it 80/20, stratified by class;
2. trains ``llr``, ``mlp`` and ``cnn`` (:mod:`refnet.groundtruth.models`) with
   :func:`refnet.train.fit` and measures their test accuracy;
3. keeps the test samples that EVERY evaluated model classifies correctly, as the
   benchmark's authors did; like them, it evaluates ``llr`` only on the linear data sets
   (XAI-TRIS ``linear`` and Wilming 2022), since no linear model can solve the others (its
   accuracy is still reported);
4. fits patterns on the training split (kind ``relu``, the paper's :math:`S_{a+-}`, for
   ``mlp`` and ``cnn``; kind ``linear``, Haufe's :math:`a = \mathrm{cov}[x, y] /
   \mathrm{var}[y]`, for the linear ``llr``);
5. explains the true class of those samples with all 11 methods of
   :data:`refnet.attribution.METHODS` and computes the baselines ``random``, ``sobel``,
   ``laplace`` and ``x`` (:mod:`refnet.groundtruth.baselines`);
6. scores every heatmap with :func:`~refnet.evaluate.precision`,
   :func:`~refnet.evaluate.emd_accuracy` and :func:`~refnet.evaluate.mass_accuracy`.

Wilming's data are divided by their global ``max |x|`` first (XAI-TRIS already is), so all
data sets share one input scale; a positive factor changes no mask and no metric. One seed
fixes everything: the data of every set (the XAI-TRIS sets share their base noise, as in the
published code), the split, the models, SmoothGrad's noise and the random baseline.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from threadpoolctl import threadpool_limits

from ..attribution import METHODS, Explainer
from ..datasets import BACKGROUNDS, SCENARIOS, GroundTruthData, wilming2022, xai_tris
from .baselines import BASELINES, baseline
from .models import MODELS, TrainedModel, train

#: The optional packages the benchmark needs (import name, pip name).
DEPENDENCIES = (("ot", "pot"), ("matplotlib", "matplotlib"))

#: The signal weight of the Wilming et al. 2022 data set in the benchmark.
WILMING_L1 = 0.08
WILMING = ("wilming2022", "correlated_gaussian")

#: Every data set as (scenario, background).
DATASETS = tuple((s, b) for s in SCENARIOS for b in BACKGROUNDS) + (WILMING,)

#: Data sets on which the linear model is evaluated (the linearly separable ones).
LINEAR_SCENARIOS = ("linear", "wilming2022")

METRICS = ("precision", "emd", "mass")
EXPLANATION_METHODS = tuple(METHODS)
ALL_METHODS = EXPLANATION_METHODS + BASELINES


@dataclass(frozen=True)
class GroundTruthSettings:
    """The sizes of a run; :meth:`for_run` gives the full and the ``--quick`` ones.

    ``n`` samples per data set; ``epochs`` per model; Adam's learning rate ``lr``; at most
    ``max_eval`` evaluated test samples per data set (``None``: all); the steps of
    integrated gradients and the noisy copies of SmoothGrad.
    """

    n: int
    epochs: dict[str, int] = field(default_factory=dict)
    lr: float = 5e-3
    max_eval: int | None = None
    ig_steps: int = 64
    smoothgrad_samples: int = 32

    @classmethod
    def for_run(cls, quick: bool) -> GroundTruthSettings:
        if quick:
            return cls(2000, {"llr": 10, "mlp": 20, "cnn": 20}, 1e-2, 60, 16, 8)
        return cls(10000, {"llr": 20, "mlp": 30, "cnn": 30}, 5e-3, None, 64, 32)

    def scaled(self, n: int) -> GroundTruthSettings:
        """The same settings with ``n`` samples per data set (a smaller, faster run)."""
        return replace(self, n=n)


def missing_dependencies() -> list[str]:
    """The pip names of the benchmark's optional dependencies that are not installed."""
    return [pip for module, pip in DEPENDENCIES if importlib.util.find_spec(module) is None]


def load_dataset(scenario: str, background: str, n: int, seed: int) -> GroundTruthData:
    """One benchmark data set, with ``X`` as float64 scaled to ``max |x| = 1``."""
    if (scenario, background) == WILMING:
        data = wilming2022(WILMING_L1, n=n, seed=seed)
    else:
        data = xai_tris(scenario, background, n=n, seed=seed)
    X = data.X.astype(np.float64)
    X /= np.abs(X).max()
    return replace(data, X=X)


def stratified_split(y: np.ndarray, seed: int, test: float = 0.2) -> tuple[np.ndarray, ...]:
    """Train and test indices, ``test`` of each class held out, in a seeded random order."""
    rng = np.random.default_rng(seed)
    train_idx, test_idx = [], []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        k = int(round(test * len(members)))
        test_idx.append(members[:k])
        train_idx.append(members[k:])
    return rng.permutation(np.concatenate(train_idx)), rng.permutation(np.concatenate(test_idx))


def evaluated_models(scenario: str) -> tuple[str, ...]:
    """The models whose explanations are scored on ``scenario`` (``llr`` only if linear)."""
    return MODELS if scenario in LINEAR_SCENARIOS else tuple(m for m in MODELS if m != "llr")


def _explainer(name: str, model: TrainedModel, patterns, settings, seed: int) -> Explainer:
    options: dict[str, Any] = {}
    if name == "integrated_gradients":
        options["steps"] = settings.ig_steps
    elif name == "smoothgrad":
        options = {"samples": settings.smoothgrad_samples, "seed": seed}
    return Explainer(model.net, name, patterns if name.startswith("pattern") else None, **options)


def _scores(heatmaps: np.ndarray, masks: np.ndarray) -> dict[str, np.ndarray]:
    from ..evaluate import emd_accuracy, mass_accuracy, precision

    return {
        "precision": precision(heatmaps, masks),
        "emd": emd_accuracy(heatmaps, masks),
        "mass": mass_accuracy(heatmaps, masks),
    }


@dataclass
class DatasetResult:
    """Everything measured on one data set (per-sample scores kept for the box plots)."""

    scenario: str
    background: str
    accuracy: dict[str, dict[str, float]]
    n_train: int
    n_test: int
    evaluated: tuple[str, ...]
    n_eval: int
    scores: dict[tuple[str, str], dict[str, np.ndarray]]  # (model, method) -> metric -> (n,)
    example: dict[str, Any]


def run_dataset(
    scenario: str, background: str, settings: GroundTruthSettings, seed: int, bar=None
) -> DatasetResult:
    """Steps 1-6 of the module docstring on one data set."""
    from ..patterns import fit_patterns

    data = load_dataset(scenario, background, settings.n, seed)
    tr, te = stratified_split(data.y, seed)
    X_tr, y_tr, X_te, y_te = data.X[tr], data.y[tr], data.X[te], data.y[te]
    trained = {}
    for name in MODELS:
        _progress(bar, f"{scenario}/{background}: training {name}")
        trained[name] = train(
            name, X_tr, y_tr, X_te, y_te, settings.epochs[name], settings.lr, seed
        )
    evaluated = evaluated_models(scenario)
    correct = np.logical_and.reduce([trained[m].net.predict(X_te) == y_te for m in evaluated])
    keep = np.flatnonzero(correct)[: settings.max_eval]
    x, y, masks = X_te[keep], y_te[keep], data.masks[te][keep]
    scores: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    heatmaps: dict[str, np.ndarray] = {}
    for b in BASELINES:
        h = baseline(b, x, seed)
        scores["baseline", b] = _scores(h, masks) if len(x) else {}
        heatmaps[b] = h[:1]
    for name in evaluated:
        _progress(bar, f"{scenario}/{background}: explaining {name}")
        kind = "linear" if name == "llr" else "relu"
        patterns = fit_patterns(trained[name].net, X_tr, kind=kind, minus=False)
        for method in EXPLANATION_METHODS:
            h = _explainer(method, trained[name], patterns, settings, seed)(x, y) if len(x) else x
            scores[name, method] = _scores(h, masks) if len(x) else {}
            heatmaps[f"{name}/{method}"] = h[:1]
    accuracy = {
        m: {"train": t.train_accuracy, "test": t.test_accuracy, "seconds": t.seconds}
        for m, t in trained.items()
    }
    example = {"x": x[:1], "mask": masks[:1], "y": y[:1], "heatmaps": heatmaps}
    return DatasetResult(
        scenario, background, accuracy, len(tr), len(te), evaluated, len(x), scores, example
    )


def _progress(bar, text: str) -> None:
    if bar is not None:
        bar.set_postfix_str(text, refresh=True)


def records(results: list[DatasetResult]) -> list[dict[str, Any]]:
    """The ``results.json`` records: one per data set, model, method and metric.

    Each is ``{scenario, background, model, method, metric, mean, std, n}``; the baselines
    do not depend on a model and have ``model = "baseline"``. ``mean`` and ``std`` are
    ``None`` when no test sample was classified correctly by every model (``n = 0``).
    """
    out = []
    for r in results:
        for (model, method), by_metric in r.scores.items():
            for metric in METRICS:
                values = by_metric.get(metric, np.empty(0))
                n = len(values)
                out.append(
                    {
                        "scenario": r.scenario,
                        "background": r.background,
                        "model": model,
                        "method": method,
                        "metric": metric,
                        "mean": float(values.mean()) if n else None,
                        "std": float(values.std()) if n else None,
                        "n": n,
                    }
                )
    return out


def _import_pot_quietly() -> None:
    """Import POT with its PyTorch, JAX, TensorFlow and CuPy backends switched off.

    The benchmark hands POT only NumPy arrays; importing torch for POT's backend list would
    cost seconds. Has no effect if POT is already imported.
    """
    if "ot" in sys.modules:
        return
    for backend in ("PYTORCH", "JAX", "TENSORFLOW", "CUPY"):
        os.environ.setdefault(f"POT_BACKEND_DISABLE_{backend}", "1")
    import ot  # noqa: F401


def _bar(total: int, enabled: bool):
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="groundtruth", unit="data set", file=sys.stderr, leave=False)


def run_groundtruth(
    out: str | Path = "refnet-groundtruth",
    seed: int = 0,
    quick: bool = False,
    progress: bool = True,
    stream: TextIO | None = None,
    settings: GroundTruthSettings | None = None,
) -> dict[str, Any]:
    """Run the benchmark and write ``results.json``, ``report.md`` and the figures to ``out``.

    Parameters
    ----------
    out : output folder (created if needed). Files in it that a previous run did not write
        are never overwritten: a ``ValueError`` is raised before any work.
    seed : seeds the data, the split, the models, SmoothGrad and the random baseline.
    quick : :meth:`GroundTruthSettings.for_run` with ``quick=True`` (fewer samples, epochs
        and evaluated samples; every data set, model, method and metric is still covered).
    progress : show a tqdm progress bar on stderr.
    stream : where the summary lines go (default stdout).
    settings : override the sizes, e.g. ``GroundTruthSettings.for_run(True).scaled(400)``
        for a test; ``quick`` is then only recorded.

    Returns
    -------
    The dictionary written to ``results.json``.
    """
    from . import report

    out = Path(out)
    report.check_output(out)
    settings = GroundTruthSettings.for_run(quick) if settings is None else settings
    stream = sys.stdout if stream is None else stream
    _import_pot_quietly()
    start, cpu = time.perf_counter(), time.process_time()
    # Small arrays: BLAS and OpenMP threads only add overhead (see refnet.demo.run).
    with threadpool_limits(limits=1):
        results = list(_run_all(settings, seed, progress))
    timings = {"compute": time.perf_counter() - start}
    out.mkdir(parents=True, exist_ok=True)
    summary = report.write_all(out, results, records(results), settings, seed, quick, timings)
    total, cpu = time.perf_counter() - start, time.process_time() - cpu
    print(report.summary_text(summary), file=stream)
    print(
        f"wrote {', '.join(summary['files'])} to {out}/ in {total:.1f} s "
        f"({cpu:.1f} s of CPU in this process)",
        file=stream,
    )
    return summary


def _run_all(settings: GroundTruthSettings, seed: int, progress: bool) -> Iterator[DatasetResult]:
    bar = _bar(len(DATASETS), progress)
    try:
        for scenario, background in DATASETS:
            yield run_dataset(scenario, background, settings, seed, bar)
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()


def settings_dict(settings: GroundTruthSettings) -> dict[str, Any]:
    """The settings as a JSON-ready dictionary."""
    return asdict(settings)
