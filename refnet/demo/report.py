"""The demo's written results: ``metrics.json`` (every number) and ``report.md`` (prose).

``metrics.json`` has the top-level keys of :data:`METRIC_KEYS`; ``report.md`` is generated
from the same dictionary, so the two cannot disagree. The sentence on which rho variant
reproduces the paper's ordering is computed from the numbers (:func:`paper_ordering`).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from ..fileio import write_text

#: The top-level keys of metrics.json, each documented in report.md.
METRIC_KEYS = (
    "seed",
    "quick",
    "settings",
    "versions",
    "timings",
    "toy",
    "digits",
    "patterns",
    "rho",
    "rho_ordering",
    "degradation",
    "files",
)

#: The estimators compared in the rho table, in the paper's order.
RHO_ESTIMATORS = ("S_x", "S_w", "S_a", "S_a+-", "S_r")

_TARGET_TITLES = {
    "y": "against the pre-activation y = w^T x (the paper's Eq. 1)",
    "relu": "against relu(z), z = y + b (what the next layer receives)",
}


def package_versions() -> dict[str, str]:
    """Versions of Python, refnet and its (optional) dependencies, and the kernel backend."""
    from importlib import metadata

    from .. import __version__, kernels

    versions = {"python": sys.version.split()[0], "refnet": __version__}
    for name in ("numpy", "scipy", "matplotlib", "scikit-learn", "tqdm", "threadpoolctl"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "not installed"
    versions["kernel backend"] = kernels.backend()
    return versions


def _jsonable(value: Any) -> Any:
    """NumPy scalars and arrays to plain Python; dict keys to str; NaN and inf to None.

    A NaN only marks an undefined value (e.g. rho of a neuron that never fires); JSON has
    no NaN, so it is written as ``null``.
    """
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return _jsonable(value.tolist())
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


def write_metrics(metrics: Mapping[str, Any], path: Path) -> None:
    """Write ``metrics`` as indented JSON; every key of :data:`METRIC_KEYS` must be present."""
    missing = [k for k in METRIC_KEYS if k not in metrics]
    if missing:
        raise ValueError(f"write_metrics: missing keys {missing}")
    write_text(path, json.dumps(_jsonable(metrics), indent=2, allow_nan=False) + "\n")


# ------------------------------------------------------------------------- rho ordering


def _mean(table: Mapping, layer: Any, estimator: str) -> float:
    value = table[layer][estimator]["mean"]
    return float("nan") if value is None else float(value)


def paper_ordering(
    rho_table: Mapping[str, Mapping],
    layer_names: Mapping,
    per_neuron: Mapping[str, Mapping] | None = None,
) -> dict[str, Any]:
    """Check, per target variant, the paper's ordering of the estimators (MATH.md section 5).

    The paper's finding on VGG-16, split into three checks per layer:

    1. ``random_lowest``: ``S_r`` has the lowest mean rho;
    2. ``patterns_beat_filter``: ``S_a`` and ``S_a+-`` are above ``S_w``;
    3. ``two_component_best_on_dense``: on Dense layers, ``S_a+-`` is the best.

    With ``per_neuron`` (``{target: {layer: {estimator: (K,)}}}``), the paired difference
    ``S_a+- - S_a`` over the neurons of each Dense layer is also reported, with its standard
    error, because check 3 can hinge on differences smaller than the spread.

    Returns ``{"checks": {target: {check: {layer: bool}}}, "reproduces": {target: bool},
    "dense_difference": {target: {layer: {"mean", "stderr"}}}, "sentence": str}``; the
    sentence names the variant(s) that reproduce the ordering and explains the failures.
    """
    checks: dict[str, dict[str, dict[str, bool]]] = {}
    reproduces: dict[str, bool] = {}
    differences: dict[str, dict[str, dict[str, float]]] = {}
    for target, table in rho_table.items():
        c: dict[str, dict[str, bool]] = {
            "random_lowest": {},
            "patterns_beat_filter": {},
            "two_component_best_on_dense": {},
        }
        differences[target] = {}
        for layer in table:
            m = {e: _mean(table, layer, e) for e in ("S_w", "S_a", "S_a+-", "S_r")}
            name = str(layer_names[layer])
            c["random_lowest"][name] = bool(m["S_r"] <= min(m["S_w"], m["S_a"], m["S_a+-"]))
            c["patterns_beat_filter"][name] = bool(min(m["S_a"], m["S_a+-"]) > m["S_w"])
            if "Dense" in name:
                c["two_component_best_on_dense"][name] = bool(
                    m["S_a+-"] >= max(m["S_w"], m["S_a"], m["S_r"])
                )
                if per_neuron is not None:
                    diff = np.asarray(per_neuron[target][layer]["S_a+-"]) - np.asarray(
                        per_neuron[target][layer]["S_a"]
                    )
                    diff = diff[np.isfinite(diff)]
                    if diff.size:
                        stderr = diff.std(ddof=1) / np.sqrt(diff.size) if diff.size > 1 else 0.0
                        differences[target][name] = {
                            "mean": float(diff.mean()),
                            "stderr": float(stderr),
                        }
        checks[target] = c
        reproduces[target] = all(all(v.values()) for v in c.values())
    sentence = _ordering_sentence(rho_table, checks, reproduces, differences)
    return {
        "checks": checks,
        "reproduces": reproduces,
        "dense_difference": differences,
        "sentence": sentence,
    }


def _failed(checks: Mapping[str, Mapping[str, bool]]) -> list[str]:
    return [
        f"{check} ({', '.join(k for k, ok in v.items() if not ok)})"
        for check, v in checks.items()
        if not all(v.values())
    ]


_WHY = {
    "y": (
        "against y, S_a removes all linear covariance between the distractor and y by "
        "construction (cov[x - a y, y] = 0 on the pattern split), so its held-out rho is "
        "close to 1 and S_a+- can at best tie with it: the order of the two at the top is "
        "decided by differences of the size of their standard error"
    ),
    "relu": (
        "against relu(z), switching between a_+ and a_- at z = 0 puts the term "
        "(a_+ - a_-) y [z > 0], i.e. about (a_+ - a_-) relu(z), into the distractor x - S(x); "
        "unless the data really contain that two-component signal, a linear v reads relu(z) "
        "back out of it, while the single direction of S_a leaves no such term"
    ),
}


def _ordering_sentence(rho_table, checks, reproduces, differences) -> str:
    good = [t for t in rho_table if reproduces[t]]
    parts = []
    if good:
        names = " and ".join(f"'{t}'" for t in good)
        plural = len(good) > 1
        parts.append(
            f"On this data the {names} variant{'s' if plural else ''} "
            f"reproduce{'' if plural else 's'} the paper's ordering (S_r lowest, S_a and "
            "S_a+- above S_w, S_a+- best on the dense layer)."
        )
    else:
        parts.append("On this data neither variant reproduces every part of the paper's ordering.")
    for t in rho_table:
        if not reproduces[t]:
            parts.append(f"The '{t}' variant fails: {'; '.join(_failed(checks[t]))}.")
    for t in rho_table:
        for layer, d in differences.get(t, {}).items():
            parts.append(
                f"S_a+- minus S_a on {layer} ('{t}'): {d['mean']:+.3f} ± {d['stderr']:.3f} "
                "(paired over neurons, mean ± standard error)."
            )
    for t in rho_table:
        failed_top = not all(checks[t]["two_component_best_on_dense"].values())
        if t in _WHY and (failed_top or t == "y"):
            parts.append(f"Why: {_WHY[t]}.")
    return " ".join(parts)


#: The attribution methods of the paper's Fig. 4 that refnet runs, by estimator, in the
#: paper's order (fastest degradation first); ``S_w``'s attribution has no method here.
PAPER_DEGRADATION_ORDER = (
    ("patternattribution", "PatternAttribution (S_a+-)"),
    ("lrp.epsilon", "LRP (S_x)"),
    ("patternattribution.linear", "PatternAttribution (S_a)"),
    ("random", "random"),
)


def degradation_comparison(aopc: Mapping[str, float]) -> str:
    """A sentence comparing the AOPC ranking with the paper's Fig. 4, from the numbers."""
    present = [(m, label) for m, label in PAPER_DEGRADATION_ORDER if m in aopc]
    ours = sorted(present, key=lambda ml: -aopc[ml[0]])
    ranking = sorted(aopc, key=lambda m: -aopc[m])
    fmt = ", then ".join(f"{label} {aopc[m]:.3f}" for m, label in ours)
    same = [m for m, _ in ours] == [m for m, _ in present]
    pa = "patternattribution"
    parts = [
        "In the paper (ImageNet, VGG-16) PatternAttribution with S_a+- degrades fastest, then "
        f"LRP (S_x), S_w, S_a, and random is slowest. Here the order is: {fmt}, which "
        f"{'matches' if same else 'does not match'} the paper's order of these methods."
    ]
    if pa in aopc and "random" in aopc:
        parts.append(
            f"PatternAttribution (S_a+-) ranks {ranking.index(pa) + 1} of {len(ranking)} "
            f"curves and is {'above' if aopc[pa] > aopc['random'] else 'not above'} the "
            f"random baseline ({aopc[pa]:.3f} vs {aopc['random']:.3f}); the fastest curve "
            f"here is {ranking[0]} ({aopc[ranking[0]]:.3f})."
        )
    return " ".join(parts)


def _patterns_line(kind: str, info: Mapping[str, Any]) -> str:
    if "samples" not in info:
        return f"- `{kind}`: layers {info.get('layers')}"
    layers = list(info["rows"])
    per_layer = "; ".join(
        f"layer {i}: {info['rows'][i]} rows, {info['degenerate'][i]} degenerate"
        + (f" ({info['degenerate_minus'][i]} for a_-)" if "degenerate_minus" in info else "")
        + f", {info['never_active'][i]} never active"
        for i in layers
    )
    return f"- `{kind}` ({info['samples']} samples): {per_layer}."


# ------------------------------------------------------------------------------- tables


def rho_markdown(rho_table: Mapping[str, Mapping], layer_names: Mapping) -> str:
    """The rho tables as Markdown: one per variant, mean ± std over neurons per cell."""
    lines = []
    for target, table in rho_table.items():
        lines.append(f"**rho {_TARGET_TITLES.get(target, target)}**")
        lines.append("")
        lines.append("| layer | " + " | ".join(RHO_ESTIMATORS) + " |")
        lines.append("| --- |" + " ---: |" * len(RHO_ESTIMATORS))
        for layer, row in table.items():
            cells = []
            for e in RHO_ESTIMATORS:
                cell = row[e]
                if cell.get("degenerate"):
                    cells.append("degenerate (d = 0)")
                elif cell["mean"] is None:
                    cells.append("n/a")
                else:
                    cells.append(f"{cell['mean']:.3f} ± {cell['std']:.3f}")
            lines.append(f"| {layer_names[layer]} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def rho_text(rho_table: Mapping[str, Mapping], layer_names: Mapping) -> str:
    """The rho tables as fixed-width text for stdout."""
    out = []
    for target, table in rho_table.items():
        out.append(f"rho {_TARGET_TITLES.get(target, target)} (mean ± std over neurons)")
        out.append(f"  {'layer':<12}" + "".join(f"{e:>16}" for e in RHO_ESTIMATORS))
        for layer, row in table.items():
            cells = []
            for e in RHO_ESTIMATORS:
                cell = row[e]
                if cell.get("degenerate"):
                    cells.append(f"{'degenerate':>16}")
                elif cell["mean"] is None:
                    cells.append(f"{'n/a':>16}")
                else:
                    cells.append(f"{cell['mean']:>9.3f} ± {cell['std']:.3f}")
            out.append(f"  {str(layer_names[layer]):<12}" + "".join(cells))
    return "\n".join(out)


def _toy_and_digits_section(m: Mapping[str, Any]) -> list[str]:
    """The report's title and sections 1 (the linear toy) and 2 (the digits CNN)."""
    toy, digits = m["toy"], m["digits"]
    lines = [
        "# refnet demo report",
        "",
        "Reproduction of Kindermans et al., *Learning how to explain neural networks: PatternNet "
        "and PatternAttribution* (ICLR 2018) on scikit-learn's 8x8 digits, generated by "
        f"`refnet demo{' --quick' if m['quick'] else ''} --seed {m['seed']}`. Every number "
        "below is also in `metrics.json`.",
        "",
        "## 1. The linear toy (Fig. 2)",
        "",
        "Data `x = a_s y + a_d eps` with `a_s = (1, 0)`, `a_d = (1, 1)`; the model `y = w^T x` "
        f"with `w = (1, -1)` recovers `y` exactly. Pattern fitted on {toy['n_samples']} samples: "
        f"`a = ({toy['a'][0]:.4f}, {toy['a'][1]:.4f})`, `w^T a = {toy['w_dot_a']:.4f}`. "
        "Mean angle (degrees) between what each method returns and the signal direction `a_s`:",
        "",
        "| method | angle to a_s |",
        "| --- | ---: |",
    ]
    lines += [f"| {k} | {v:.2f} |" for k, v in toy["angles"].items()]
    lines += [
        "",
        f"Filter `w`: {toy['angle_w']:.2f} degrees; pattern `a`: {toy['angle_a']:.2f} degrees. "
        "The gradient, DeConvNet and Guided BackProp return the filter; PatternNet and "
        "PatternAttribution return the signal. ![toy](toy.png)",
        "",
        "## 2. The digits CNN and its patterns",
        "",
        f"Network: {digits['architecture']}. Trained for {digits['epochs']} epochs on "
        f"{digits['n_train']} images in {digits['train_seconds']:.1f} s; test accuracy "
        f"**{digits['test_accuracy']:.4f}** on {digits['n_test']} images. Patterns of kind "
        f"`linear` and `relu` fitted on the {digits['n_train']} training images.",
        "",
    ]
    for kind, info in m["patterns"].items():
        lines.append(_patterns_line(kind, info))
    return lines


def _rho_and_heatmaps_section(m: Mapping[str, Any]) -> list[str]:
    """Sections 3 (rho per layer) and 4 (the heatmaps)."""
    rho = m["rho"]
    return [
        "",
        "## 3. Quality of the signal estimators, rho (Fig. 3)",
        "",
        f"Three disjoint splits: patterns on the training split ({rho['splits']['patterns']} "
        f"images), the regression `v` on {rho['splits']['regression']} test images, the "
        f"correlation on the other {rho['splits']['evaluation']} test images. Conv layers use "
        f"at most {rho['max_rows']} sampled patch rows per split. `S_x` leaves `d = 0`, so its "
        "rho is undefined (degenerate). Neurons whose target is constant on a split (dead "
        "ReLUs) are skipped and counted in `metrics.json`.",
        "",
        rho_markdown(rho["table"], rho["layer_names"]),
        m["rho_ordering"]["sentence"],
        "",
        "![rho](rho.png)",
        "",
        "## 4. Heatmaps (Figs. 5-6)",
        "",
        "One correctly classified test digit per class; signal methods (gradient, DeConvNet, "
        "Guided BackProp, SmoothGrad, PatternNet) drawn as `x / (2 max|x|) + 1/2` in grey, "
        "attribution methods with a diverging colormap centred at 0 (red positive, blue "
        "negative). ![heatmaps](heatmaps.png)",
    ]


def _degradation_and_run_section(m: Mapping[str, Any]) -> list[str]:
    """Sections 5 (image degradation) and 6 (the run: settings, timings, versions)."""
    deg = m["degradation"]
    lines = [
        "",
        "## 5. Image degradation (Fig. 4)",
        "",
        f"{deg['n_images']} test images, {deg['patch_size']}x{deg['patch_size']} patches "
        f"({deg['n_steps']} steps), each replaced by its own mean, most relevant first; the "
        "curve is the mean softmax probability of the originally predicted class. AOPC is the "
        "mean drop `f(x) - f(x_k)` over the steps (higher: the heatmap finds what the network "
        "uses).",
        "",
        "| method | AOPC |",
        "| --- | ---: |",
    ]
    for method, value in sorted(deg["aopc"].items(), key=lambda kv: -kv[1]):
        lines.append(f"| {method} | {value:.4f} |")
    lines += [
        "",
        deg["comparison"],
        "",
        "![degradation](degradation.png)",
        "",
        "## 6. Run",
        "",
        f"Seed {m['seed']}; settings: `{json.dumps(m['settings'])}`.",
        "",
        "| step | seconds |",
        "| --- | ---: |",
    ]
    lines += [f"| {k} | {v:.2f} |" for k, v in m["timings"].items()]
    lines += ["", "| package | version |", "| --- | --- |"]
    lines += [f"| {k} | {v} |" for k, v in m["versions"].items()]
    lines += [
        "",
        "`metrics.json` keys: " + ", ".join(f"`{k}`" for k in METRIC_KEYS) + ".",
        "",
    ]
    return lines


def write_report(metrics: Mapping[str, Any], path: Path) -> None:
    """Write ``report.md`` from the metrics dictionary (figures referenced by file name)."""
    lines = _toy_and_digits_section(metrics) + _rho_and_heatmaps_section(metrics)
    write_text(path, "\n".join(lines + _degradation_and_run_section(metrics)))
