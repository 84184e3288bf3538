"""``refnet demo``: the paper's experiments, offline, in a few minutes on a laptop.

The steps, each timed (wall clock) and written to ``metrics.json``:

1. ``toy`` — the linear toy of Fig. 2 (:func:`refnet.evaluate.toy.linear_toy`);
2. ``train`` — the digits CNN (:func:`refnet.train.digits.train_digits_cnn`);
3. ``patterns`` — patterns of kind ``linear`` and ``relu`` on the training split;
4. ``rho`` — the quality of the signal estimators per layer (Fig. 3,
   :func:`refnet.evaluate.quality.quality`) on two further disjoint splits of the test set;
5. ``heatmaps`` — one test digit per class, every explanation method (Figs. 5-6);
6. ``degradation`` — 2x2 patch replacement curves and AOPC (Fig. 4,
   :mod:`refnet.evaluate.degradation`);
7. ``report`` — figures, ``report.md``, ``metrics.json``.

Everything is seeded from ``seed``: the same seed gives the same numbers.
"""

from __future__ import annotations

import importlib.util
import sys
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np
from threadpoolctl import threadpool_limits

from ..progress import progress_bar

#: The optional packages the demo needs (import name, pip name).
DEMO_DEPENDENCIES = (("matplotlib", "matplotlib"), ("sklearn", "scikit-learn"))

#: Every explanation method shown in the heatmap grid and the degradation curves.
DEMO_METHODS = (
    "gradient",
    "smoothgrad",
    "deconvnet",
    "guided_backprop",
    "patternnet",
    "gradient_x_input",
    "integrated_gradients",
    "lrp.epsilon",
    "lrp.alpha_beta",
    "lrp.z_plus",
    "patternattribution",
)

#: The figures and files the demo writes into its output folder.
OUTPUT_FILES = (
    "toy.png",
    "rho.png",
    "heatmaps.png",
    "degradation.png",
    "report.md",
    "metrics.json",
    "digits_cnn.npz",
    "patterns_relu.npz",
)


@dataclass(frozen=True)
class DemoSettings:
    """The sizes of a demo run; :meth:`for_run` gives the full and the ``--quick`` ones."""

    epochs: int
    toy_samples: int
    rho_max_rows: int
    degradation_images: int
    patch_size: int
    ig_steps: int
    smoothgrad_samples: int

    @classmethod
    def for_run(cls, quick: bool) -> DemoSettings:
        from ..train.digits import DEFAULT_EPOCHS, QUICK_EPOCHS

        if quick:
            return cls(QUICK_EPOCHS, 500, 1000, 150, 2, 16, 8)
        return cls(DEFAULT_EPOCHS, 2000, 3000, 450, 2, 64, 32)


def missing_dependencies() -> list[str]:
    """The pip names of the demo's optional dependencies that are not installed."""
    return [pip for module, pip in DEMO_DEPENDENCIES if importlib.util.find_spec(module) is None]


class _Clock:
    """Times the demo's steps and prints one line per step."""

    def __init__(self, stream: TextIO) -> None:
        self.timings: dict[str, float] = {}
        self.stream = stream
        self.start = time.perf_counter()

    @contextmanager
    def step(self, name: str, title: str) -> Iterator[None]:
        print(f"[{len(self.timings) + 1}] {title} ...", file=self.stream, flush=True)
        t0 = time.perf_counter()
        yield
        self.timings[name] = time.perf_counter() - t0
        print(f"    done in {self.timings[name]:.1f} s", file=self.stream, flush=True)


def _one_per_class(y: np.ndarray, predicted: np.ndarray, n_classes: int = 10) -> np.ndarray:
    """Index of the first correctly classified test image of each class (first of the class
    if none is correct)."""
    picks = []
    for c in range(n_classes):
        correct = np.flatnonzero((y == c) & (predicted == c))
        fallback = np.flatnonzero(y == c)
        picks.append(correct[0] if len(correct) else fallback[0])
    return np.array(picks)


def _method_options(method: str, settings: DemoSettings, seed: int) -> dict[str, Any]:
    if method == "integrated_gradients":
        return {"steps": settings.ig_steps}
    if method == "smoothgrad":
        return {"samples": settings.smoothgrad_samples, "seed": seed}
    return {}


def _patterns_summary(patterns) -> dict[str, Any]:
    """Counts from the fit report: samples, rows, degenerate and never-active neurons."""
    r = patterns.report
    summary: dict[str, Any] = {"kind": patterns.kind, "layers": list(patterns.layer_indices)}
    if r is not None:
        summary["samples"] = r.samples
        summary["rows"] = {str(i): int(n) for i, n in r.rows.items()}
        summary["degenerate"] = {str(i): int(n) for i, n in r.degenerate.items()}
        if r.degenerate_minus is not None:
            summary["degenerate_minus"] = {str(i): int(n) for i, n in r.degenerate_minus.items()}
        summary["never_active"] = {str(i): int((a == 0).sum()) for i, a in r.active.items()}
    return summary


def run_demo(
    out: str | Path = "refnet-demo",
    seed: int = 0,
    quick: bool = False,
    progress: bool = True,
    stream: TextIO | None = None,
) -> dict[str, Any]:
    """Run every step of the demo and write its figures and reports into ``out``.

    Parameters
    ----------
    out : output folder (created if needed).
    seed : seeds the data split, the training, the toy, rho's sampling and baselines.
    quick : smaller sizes (:meth:`DemoSettings.for_run`), for a run in well under 30 s.
    progress : show progress bars (tqdm) on stderr.
    stream : where the step lines and the rho table are printed (default stdout).

    Returns
    -------
    The metrics dictionary written to ``metrics.json``.
    """
    # The demo's arrays are small (8x8 images, at most 512 x 512 matrices): threads only add
    # overhead on them, and on a busy 2-core machine the OpenMP and BLAS worker threads
    # fight for the cores (measured: training 5x and a forward pass 17-30x slower than with
    # one thread). BLAS and OpenMP therefore run single-threaded for the whole demo; the
    # results are the same.
    with threadpool_limits(limits=1):
        return _run_steps(
            Path(out), seed, quick, progress, sys.stdout if stream is None else stream
        )


@dataclass
class _Run:
    """What every step of the demo shares: where to write, the settings, and the results."""

    out: Path
    seed: int
    settings: DemoSettings
    progress: bool
    clock: _Clock
    stream: TextIO
    metrics: dict[str, Any]

    def bar(self, iterable: Iterable, desc: str) -> Iterable:
        return progress_bar(iterable, desc, self.progress)


def _run_steps(
    out: Path, seed: int, quick: bool, progress: bool, stream: TextIO
) -> dict[str, Any]:
    """The body of :func:`run_demo` (arguments as there)."""
    from . import report

    if out.exists() and not out.is_dir():
        raise ValueError(f"run_demo: out '{out}' is an existing file; give a folder")
    out.mkdir(parents=True, exist_ok=True)
    settings = DemoSettings.for_run(quick)
    metrics: dict[str, Any] = {"seed": seed, "quick": quick, "settings": asdict(settings)}
    run = _Run(out, seed, settings, progress, _Clock(stream), stream, metrics)
    _toy_step(run)
    net, data = _train_step(run)
    patterns = _patterns_step(run, net, data)
    _rho_step(run, net, patterns, data)
    explainers = _explainers(run, net, patterns)
    _heatmaps_step(run, net, data, explainers)
    _degradation_step(run, net, data, explainers)

    clock = run.clock
    clock.timings["total"] = time.perf_counter() - clock.start
    metrics["timings"] = dict(clock.timings)
    metrics["versions"] = report.package_versions()
    metrics["files"] = list(OUTPUT_FILES)
    report.write_metrics(metrics, out / "metrics.json")
    report.write_report(metrics, out / "report.md")
    print(
        f"wrote {', '.join(OUTPUT_FILES)} to {out}/ in {clock.timings['total']:.1f} s", file=stream
    )
    return metrics


def _toy_step(run: _Run) -> None:
    """Step 1: the linear toy (Fig. 2)."""
    from ..evaluate.toy import TOY_METHODS, linear_toy
    from . import figures

    settings, labels = run.settings, dict(TOY_METHODS)
    with run.clock.step("toy", "linear toy (Fig. 2)"):
        toy = linear_toy(n=settings.toy_samples, seed=run.seed)
        figures.toy_figure(toy, run.out / "toy.png", labels)
        run.metrics["toy"] = {
            "n_samples": settings.toy_samples,
            "a_s": [1.0, 0.0],
            "a_d": [1.0, 1.0],
            "w": toy.w,
            "a": toy.a,
            "w_dot_a": float(toy.w @ toy.a),
            "angle_w": toy.angle_w,
            "angle_a": toy.angle_a,
            "angles": toy.angles,
        }
        for method, angle in toy.angles.items():
            print(f"    {labels[method]:<20} {angle:6.2f} degrees to a_s", file=run.stream)


def _train_step(run: _Run) -> tuple[Any, Any]:
    """Step 2: train the digits CNN; returns the network and the data splits."""
    from .. import save
    from ..train.digits import train_digits_cnn

    epochs = run.settings.epochs
    with run.clock.step("train", f"training the digits CNN ({epochs} epochs)"):
        net, trained = train_digits_cnn(seed=run.seed, epochs=epochs, progress=run.progress)
        data = trained.data
        save(net, run.out / "digits_cnn.npz")
        run.metrics["digits"] = {
            "architecture": " - ".join(repr(layer) for layer in net.layers),
            "epochs": epochs,
            "n_train": len(data.X_train),
            "n_test": len(data.X_test),
            "train_seconds": trained.seconds,
            "test_accuracy": float(trained.test_accuracy),
        }
        print(f"    test accuracy {trained.test_accuracy:.4f}", file=run.stream)
    return net, data


def _patterns_step(run: _Run, net, data) -> dict[str, Any]:
    """Step 3: patterns of kind linear and relu on the training split."""
    from ..patterns import fit_patterns

    with run.clock.step("patterns", "fitting patterns of kind linear and relu (training split)"):
        patterns = {
            kind: fit_patterns(net, data.X_train, kind=kind, progress=run.progress)
            for kind in ("linear", "relu")
        }
        patterns["relu"].save(run.out / "patterns_relu.npz")
        run.metrics["patterns"] = {kind: _patterns_summary(p) for kind, p in patterns.items()}
    return patterns


def _rho_step(run: _Run, net, patterns: dict[str, Any], data) -> None:
    """Step 4: the quality rho of every signal estimator per layer (Fig. 3)."""
    from ..evaluate.quality import quality
    from . import figures, report

    with run.clock.step("rho", "quality rho of S_w, S_a, S_a+-, S_r per layer (Fig. 3)"):
        half = len(data.X_test) // 2
        X_fit, X_eval = data.X_test[:half], data.X_test[half:]
        max_rows = run.settings.rho_max_rows
        rho = quality(
            net, patterns, X_fit, X_eval, max_rows=max_rows, seed=run.seed, progress=run.bar
        )
        names = rho.layer_names
        ordering = report.paper_ordering(rho.table, names, rho.per_neuron)
        figures.rho_figure(rho.table, names, run.out / "rho.png")
        run.metrics["rho"] = {
            "splits": {
                "patterns": len(data.X_train),
                "regression": half,
                "evaluation": len(X_eval),
            },
            "max_rows": max_rows,
            "rows": rho.n_rows,
            "layer_names": names,
            "table": rho.table,
            "per_neuron": rho.per_neuron,
        }
        run.metrics["rho_ordering"] = ordering
        print(report.rho_text(rho.table, names), file=run.stream)
        print("    " + ordering["sentence"], file=run.stream)


def _explainers(run: _Run, net, patterns: dict[str, Any]) -> dict[str, Any]:
    """One Explainer per demo method, plus PatternAttribution with the linear patterns."""
    from ..attribution import Explainer

    explainers = {
        method: Explainer(
            net,
            method,
            patterns["relu"] if method.startswith("pattern") else None,
            **_method_options(method, run.settings, run.seed),
        )
        for method in DEMO_METHODS
    }
    explainers["patternattribution.linear"] = Explainer(
        net, "patternattribution", patterns["linear"]
    )
    return explainers


def _heatmaps_step(run: _Run, net, data, explainers: dict[str, Any]) -> None:
    """Step 5: the heatmaps of every method, one test digit per class (Figs. 5-6)."""
    from . import figures

    with run.clock.step(
        "heatmaps", "heatmaps of every method, one test digit per class (Figs. 5-6)"
    ):
        predicted = net.predict(data.X_test)
        picks = _one_per_class(data.y_test, predicted)
        x_show = data.X_test[picks]
        heatmaps = {m: explainers[m](x_show) for m in DEMO_METHODS}
        figures.heatmap_grid(
            x_show, heatmaps, [int(c) for c in data.y_test[picks]], run.out / "heatmaps.png"
        )


def _degradation_step(run: _Run, net, data, explainers: dict[str, Any]) -> None:
    """Step 6: image degradation with the settings' patches, AOPC per method (Fig. 4)."""
    from ..evaluate import degradation as deg
    from . import figures, report

    with run.clock.step("degradation", "image degradation with 2x2 patches (Fig. 4)"):
        x_deg = data.X_test[: run.settings.degradation_images]
        p = run.settings.patch_size
        curves, aopcs = {}, {}
        for method in run.bar(list(explainers), "degradation"):
            R = explainers[method](x_deg)
            curve = deg.degrade_by_attribution(net, x_deg, R, p)
            curves[method], aopcs[method] = curve.mean, curve.aopc
        baseline = deg.degrade_randomly(net, x_deg, p, seed=run.seed)
        curves["random"], aopcs["random"] = baseline.mean, baseline.aopc
        figures.degradation_figure(curves, aopcs, run.out / "degradation.png")
        run.metrics["degradation"] = {
            "patch_size": p,
            "n_images": len(x_deg),
            "n_steps": len(baseline.mean) - 1,
            "curves": curves,
            "aopc": aopcs,
            "comparison": report.degradation_comparison(aopcs),
        }
        for method, value in sorted(aopcs.items(), key=lambda kv: -kv[1]):
            print(f"    AOPC {method:<26} {value:.4f}", file=run.stream)
        print("    " + run.metrics["degradation"]["comparison"], file=run.stream)
