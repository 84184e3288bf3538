"""``refnet demo --quick`` end to end, and the paper's qualitative claims on its numbers."""

import json

import numpy as np
import pytest

pytest.importorskip("matplotlib")
pytest.importorskip("sklearn")

from refnet.cli import main  # noqa: E402
from refnet.demo import OUTPUT_FILES  # noqa: E402
from refnet.demo.report import METRIC_KEYS  # noqa: E402


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """Run the quick demo once (in-process) and return its folder and metrics."""
    out = tmp_path_factory.mktemp("demo")
    code = main(["demo", "--quick", "--seed", "0", "--out", str(out), "--no-progress"])
    assert code == 0
    metrics = json.loads((out / "metrics.json").read_text())
    return out, metrics


def test_every_promised_file_is_written(demo):
    out, metrics = demo
    assert set(metrics["files"]) == set(OUTPUT_FILES)
    for name in OUTPUT_FILES:
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    for name in OUTPUT_FILES:
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:4] == b"\x89PNG"


def test_metrics_have_the_keys_the_report_promises(demo):
    out, metrics = demo
    report = (out / "report.md").read_text()
    for key in METRIC_KEYS:
        assert key in metrics
        assert f"`{key}`" in report
    assert metrics["seed"] == 0 and metrics["quick"] is True
    for step in ("toy", "train", "patterns", "rho", "heatmaps", "degradation", "total"):
        assert metrics["timings"][step] >= 0
    assert {"numpy", "refnet", "python"} <= set(metrics["versions"])
    assert 0.85 < metrics["digits"]["test_accuracy"] <= 1.0
    for figure in ("toy.png", "rho.png", "heatmaps.png", "degradation.png"):
        assert figure in report
    assert metrics["rho_ordering"]["sentence"] in report


def test_toy_pattern_finds_the_signal_and_the_gradient_is_at_45_degrees(demo):
    toy = demo[1]["toy"]
    assert toy["angles"]["patternnet"] < 5.0
    assert toy["angles"]["patternattribution"] < 5.0
    assert toy["angles"]["gradient"] == pytest.approx(45.0, abs=1.0)
    assert toy["angle_w"] == pytest.approx(45.0, abs=1e-9)
    assert toy["w_dot_a"] == pytest.approx(1.0, abs=1e-9)


def test_rho_of_the_pattern_is_at_least_rho_of_random_in_every_layer(demo):
    rho = demo[1]["rho"]
    for target, table in rho["table"].items():
        assert len(table) == 3  # two Conv2D layers and the Dense layer
        for layer, row in table.items():
            assert row["S_x"]["degenerate"] is True and row["S_x"]["mean"] is None
            assert row["S_a"]["mean"] >= row["S_r"]["mean"], (target, layer)
            assert row["S_a+-"]["mean"] >= row["S_r"]["mean"], (target, layer)
    # Eq. 1 against y: S_a removes all linear covariance with y, so its rho is near 1
    for row in rho["table"]["y"].values():
        assert row["S_a"]["mean"] > 0.8
    assert set(demo[1]["rho_ordering"]["reproduces"]) == {"y", "relu"}


def test_pattern_attribution_degrades_faster_than_random(demo):
    deg = demo[1]["degradation"]
    aopc = deg["aopc"]
    assert aopc["patternattribution"] > aopc["random"]
    curves = deg["curves"]
    assert len(curves["random"]) == deg["n_steps"] + 1 == (8 // deg["patch_size"]) ** 2 + 1
    assert curves["random"][0] == pytest.approx(curves["patternattribution"][0])
    # the AOPC in the file is the mean drop of the curve in the file
    c = np.array(curves["patternattribution"])
    assert aopc["patternattribution"] == pytest.approx(np.mean(c[0] - c[1:]))


def test_demo_without_its_extra_says_what_to_install(capsys, monkeypatch, tmp_path):
    import refnet.demo

    monkeypatch.setattr(refnet.demo, "missing_dependencies", lambda: ["matplotlib"])
    code = main(["demo", "--out", str(tmp_path / "d")])
    _, err = capsys.readouterr()
    assert code != 0
    assert err.count("\n") == 1 and "Traceback" not in err
    assert 'pip install "refnet[demo]"' in err and "matplotlib" in err
    assert not (tmp_path / "d").exists()


def test_missing_dependencies_reports_pip_names(monkeypatch):
    import importlib.util

    from refnet.demo import run

    real = importlib.util.find_spec
    monkeypatch.setattr(
        run.importlib.util, "find_spec", lambda name: None if name == "sklearn" else real(name)
    )
    assert run.missing_dependencies() == ["scikit-learn"]
