"""The benchmark's written results: ``results.json`` (every number) and ``report.md``.

``report.md`` is generated from the same records as ``results.json``, and its paragraph on
PatternNet and PatternAttribution is computed from the numbers (:func:`pattern_paragraph`),
so the prose cannot disagree with the tables.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .output import GENERATOR, RESULTS, check_output_folder, write_text_atomic
from .run import (
    ALL_METHODS,
    BASELINES,
    DATASETS,
    METRICS,
    MODELS,
    DatasetResult,
    GroundTruthSettings,
    settings_dict,
)

PATTERN_METHODS = ("patternnet", "patternattribution")
#: Below this test accuracy the report warns that a model has learned little.
WEAK_ACCURACY = 0.6
REPORT = "report.md"
FIGURE_SCENARIOS = tuple(dict.fromkeys(s for s, _ in DATASETS))


def output_files() -> list[str]:
    """Every file a run writes, ``results.json`` first."""
    boxes = [f"box_{metric}.png" for metric in METRICS]
    grids = [f"examples_{scenario}.png" for scenario in FIGURE_SCENARIOS]
    return [RESULTS, REPORT] + boxes + grids


def check_output(out: Path) -> None:
    """``ValueError`` if writing the run's files into ``out`` would overwrite a user's file."""
    check_output_folder(out, output_files())


Key = tuple[str, str, str, str, str]  # scenario, background, model, method, metric


def _means(recs: Sequence[Mapping[str, Any]]) -> dict[Key, float | None]:
    return {
        (r["scenario"], r["background"], r["model"], r["method"], r["metric"]): r["mean"]
        for r in recs
    }


def _value(means: Mapping[Key, float | None], s: str, b: str, model: str, method: str, metric):
    """The mean of ``method`` for ``model``; baselines are looked up under ``"baseline"``."""
    owner = "baseline" if method in BASELINES else model
    return means.get((s, b, owner, method, metric))


def _comparisons(results, means, method: str):
    """Per data set: (cells, wins, {baseline: times it was the best one when ours lost})."""
    out = []
    for r in results:
        cells, wins, beaten_by = 0, 0, {}
        for model in r.evaluated:
            for metric in METRICS:
                ours = _value(means, r.scenario, r.background, model, method, metric)
                if ours is None:
                    continue
                base = {
                    b: _value(means, r.scenario, r.background, model, b, metric) for b in BASELINES
                }
                best = max(base, key=lambda b: base[b])
                cells += 1
                if ours > base[best]:
                    wins += 1
                else:
                    beaten_by[best] = beaten_by.get(best, 0) + 1
        out.append((r, cells, wins, beaten_by))
    return out


def pattern_paragraph(results: Sequence[DatasetResult], recs: Sequence[Mapping]) -> str:
    """Where PatternNet and PatternAttribution beat every baseline (mean score), and where not.

    A "cell" is one (data set, model, metric); the method wins it if its mean score is above
    the best of the four baselines' means.
    """
    means = _means(recs)
    parts = []
    for method in PATTERN_METHODS:
        label = "PatternNet" if method == "patternnet" else "PatternAttribution"
        comparisons = _comparisons(results, means, method)
        cells = sum(c for _, c, _, _ in comparisons)
        wins = sum(w for _, _, w, _ in comparisons)
        everywhere = [f"{r.scenario}/{r.background}" for r, c, w, _ in comparisons if c and w == c]
        losses = [
            f"{r.scenario}/{r.background} ({c - w} of {c}, mostly to "
            f"{max(beaten, key=lambda b: beaten[b])})"
            for r, c, w, beaten in comparisons
            if w < c
        ]
        text = (
            f"{label} beats the best of the baselines ({', '.join(BASELINES)}) in {wins} of "
            f"{cells} (data set, model, metric) cells"
        )
        text += f"; in every cell on {', '.join(everywhere)}" if everywhere else ""
        text += f"; it loses cells on {', '.join(losses)}." if losses else "."
        parts.append(text)
    weak = [
        f"{r.scenario}/{r.background} ({', '.join(weak_models)})"
        for r in results
        if (weak_models := [m for m in r.evaluated if r.accuracy[m]["test"] < WEAK_ACCURACY])
    ]
    if weak:
        parts.append(
            f"Caution: some evaluated models are close to chance (test accuracy below "
            f"{WEAK_ACCURACY}) on {', '.join(weak)}; what their heatmaps show is not a "
            "learned signal, and the samples they get right are partly luck."
        )
    empty = [f"{r.scenario}/{r.background}" for r in results if r.n_eval == 0]
    if empty:
        parts.append(
            f"No test sample was classified correctly by every model on {', '.join(empty)}, "
            "so nothing is scored there."
        )
    return " ".join(parts)


def _table(r: DatasetResult, means: Mapping[Key, float | None]) -> list[str]:
    columns = [(m, k) for m in r.evaluated for k in METRICS]
    values = {
        (method, col): _value(means, r.scenario, r.background, col[0], method, col[1])
        for method in ALL_METHODS
        for col in columns
    }
    best = {
        col: max((v for (_, c), v in values.items() if c == col and v is not None), default=None)
        for col in columns
    }
    lines = [
        "| method | " + " | ".join(f"{m} {k}" for m, k in columns) + " |",
        "| --- |" + " ---: |" * len(columns),
    ]
    for method in ALL_METHODS:
        cells = []
        for col in columns:
            v = values[method, col]
            cell = "n/a" if v is None else f"{v:.3f}"
            cells.append(f"**{cell}**" if v is not None and v == best[col] else cell)
        name = f"{method} (baseline)" if method in BASELINES else method
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _accuracy_table(results: Sequence[DatasetResult]) -> list[str]:
    lines = [
        "| data set | " + " | ".join(f"{m} test acc." for m in MODELS) + " | train / test | "
        "evaluated (correct for all evaluated models) |",
        "| --- |" + " ---: |" * (len(MODELS) + 2),
    ]
    for r in results:
        accs = []
        for m in MODELS:
            acc = f"{r.accuracy[m]['test']:.3f}"
            accs.append(acc if m in r.evaluated else f"({acc}, not evaluated)")
        lines.append(
            f"| {r.scenario}/{r.background} | "
            + " | ".join(accs)
            + f" | {r.n_train} / {r.n_test} | {r.n_eval} |"
        )
    return lines


def write_report(path: Path, results: Sequence[DatasetResult], summary: Mapping[str, Any]) -> None:
    """Write ``report.md``: accuracies, one table per data set, the paragraph, the figures."""
    means = _means(summary["records"])
    quick = " --quick" if summary["quick"] else ""
    lines = [
        "# refnet ground-truth benchmark",
        "",
        f"Generated by `refnet groundtruth{quick} --seed {summary['seed']}` in "
        f"{summary['seconds']:.1f} s (training, explaining, scoring). Data: XAI-TRIS "
        "(Clark, Wilming and Haufe 2024) 8x8, "
        "four scenarios on white and correlated backgrounds, and Wilming et al. 2022 at "
        "l1 = 0.08. Scores are means over the test samples that every evaluated model "
        "classifies correctly (1 is best): `precision` (share of the top-n pixels inside the "
        "ground truth, chance = n / 64), `emd` (1 - earth mover's distance to the ground truth "
        "/ sqrt(128); a uniform map scores about 0.83 against the 8-pixel T∪L mask), `mass` "
        "(share of |heatmap| inside the ground truth). Standard deviations are in "
        "`results.json`. The best value of each column is bold.",
        "",
        "## Models",
        "",
        *_accuracy_table(results),
        "",
        "## PatternNet and PatternAttribution against the baselines",
        "",
        summary["paragraph"],
        "",
    ]
    for r in results:
        lines += [f"## {r.scenario} / {r.background}", "", *_table(r, means), ""]
    lines += ["## Figures", ""]
    lines += [f"![{name}]({name})" for name in summary["files"] if name.endswith(".png")]
    lines += ["", f"Settings: `{json.dumps(summary['settings'])}`.", ""]
    write_text_atomic(path, "\n".join(lines))


def write_all(
    out: Path,
    results: Sequence[DatasetResult],
    recs: list[dict[str, Any]],
    settings: GroundTruthSettings,
    seed: int,
    quick: bool,
    timings: dict[str, float],
) -> dict[str, Any]:
    """Write ``results.json`` (first: it lists the files), ``report.md`` and the figures."""
    from . import figures

    summary: dict[str, Any] = {
        "generator": GENERATOR,
        "seed": seed,
        "quick": quick,
        "settings": settings_dict(settings),
        "seconds": timings["compute"],
        "accuracy": {f"{r.scenario}/{r.background}": r.accuracy for r in results},
        "evaluated": {f"{r.scenario}/{r.background}": r.n_eval for r in results},
        "paragraph": pattern_paragraph(results, recs),
        "files": output_files(),
        "records": recs,
    }
    text = json.dumps(summary, indent=1, allow_nan=False) + "\n"
    write_text_atomic(out / RESULTS, text)
    write_report(out / REPORT, results, summary)
    for metric in METRICS:
        figures.box_plot(results, metric, out / f"box_{metric}.png")
    for scenario in FIGURE_SCENARIOS:
        chosen = [r for r in results if r.scenario == scenario]
        figures.example_grid(chosen, out / f"examples_{scenario}.png")
    return summary


def summary_text(summary: Mapping[str, Any]) -> str:
    """A few lines for stdout: accuracies and the paragraph."""
    lines = []
    for name, acc in summary["accuracy"].items():
        accs = ", ".join(f"{m} {a['test']:.3f}" for m, a in acc.items())
        lines.append(f"  {name:<42} {accs}; evaluated {summary['evaluated'][name]}")
    return "\n".join(lines + ["", summary["paragraph"]])
