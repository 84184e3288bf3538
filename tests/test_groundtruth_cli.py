"""``refnet groundtruth --quick`` end to end (with fewer samples), its files and its refusals."""

import json

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

pytest.importorskip("ot")
pytest.importorskip("matplotlib")

from refnet.attribution import METHODS  # noqa: E402
from refnet.cli import main  # noqa: E402
from refnet.groundtruth import DATASETS, GroundTruthSettings  # noqa: E402
from refnet.groundtruth.report import output_files  # noqa: E402
from refnet.groundtruth.run import evaluated_models, run_dataset  # noqa: E402

#: Samples per data set in the test run: --quick's settings otherwise (its 2000 samples per
#: data set take about half a minute, too long for the suite).
SAMPLES = 160
BASELINES = ("random", "sobel", "laplace", "x")
RECORD_KEYS = {"scenario", "background", "model", "method", "metric", "mean", "std", "n"}


def _argv(out, *extra):
    return ["groundtruth", "--quick", "--samples", str(SAMPLES), "--out", str(out), *extra]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gt") / "results"
    assert main([*_argv(out), "--no-progress", "--seed", "3"]) == 0
    return out, json.loads((out / "results.json").read_text())


def test_every_file_is_written(run):
    out, summary = run
    assert summary["files"] == output_files()
    for name in output_files():
        assert (out / name).stat().st_size > 0, name
        if name.endswith(".png"):
            assert (out / name).read_bytes()[:4] == b"\x89PNG"
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))


def test_quick_settings_with_the_sample_override(run):
    summary = run[1]
    quick = GroundTruthSettings.for_run(True)
    assert summary["quick"] is True and summary["seed"] == 3
    assert summary["settings"] == {**json.loads(json.dumps(quick.__dict__)), "n": SAMPLES}


def test_records_cover_every_combination(run):
    records = run[1]["records"]
    assert all(set(r) == RECORD_KEYS for r in records)
    seen = {
        (r["scenario"], r["background"], r["model"], r["method"], r["metric"]) for r in records
    }
    expected = set()
    for scenario, background in DATASETS:
        for metric in ("precision", "emd", "mass"):
            expected |= {(scenario, background, "baseline", b, metric) for b in BASELINES}
            for model in evaluated_models(scenario):
                expected |= {(scenario, background, model, m, metric) for m in METHODS}
    assert seen == expected and len(records) == len(expected)
    assert {m for _, _, model, m, _ in seen if model == "cnn"} == set(METHODS)
    for r in records:
        assert r["n"] >= 0
        if r["n"]:
            assert 0 <= r["mean"] <= 1 and r["std"] >= 0, r
        else:
            assert r["mean"] is None
    assert any(r["n"] > 0 for r in records)
    assert {"llr", "mlp", "cnn"} == set(run[1]["accuracy"]["xor/white"])


def test_report_has_a_table_per_data_set_and_the_paragraph(run):
    out, summary = run
    report = (out / "report.md").read_text()
    for scenario, background in DATASETS:
        assert f"## {scenario} / {background}" in report
    assert summary["paragraph"] in report
    assert "PatternNet beats" in summary["paragraph"]
    assert "PatternAttribution beats" in summary["paragraph"]
    assert "| patternattribution |" in report and "| laplace (baseline) |" in report
    for name in output_files():
        if name.endswith(".png"):
            assert f"({name})" in report


def test_a_second_run_overwrites_its_own_files(run, capsys):
    out, _ = run
    before = (out / "report.md").read_text()
    assert (
        main(["groundtruth", "--quick", "--samples", "40", "--out", str(out), "--no-progress"])
        == 0
    )
    capsys.readouterr()
    again = json.loads((out / "results.json").read_text())
    assert again["settings"]["n"] == 40 and again["seed"] == 0
    assert (out / "report.md").read_text() != before


def _accuracies(result):
    return {m: (a["train"], a["test"]) for m, a in result.accuracy.items()}


def test_a_data_set_run_is_deterministic_in_the_seed():
    settings = GroundTruthSettings.for_run(True).scaled(80)
    with threadpool_limits(limits=1):  # as run_groundtruth does
        a, b = (run_dataset("linear", "white", settings, seed=1) for _ in range(2))
        c = run_dataset("linear", "white", settings, seed=2)
    assert a.scores.keys() == b.scores.keys() and _accuracies(a) == _accuracies(b)
    for key, by_metric in a.scores.items():
        for metric, values in by_metric.items():
            assert np.array_equal(values, b.scores[key][metric]), (key, metric)
    assert _accuracies(c) != _accuracies(a)


def _refused(capsys, argv, fragment):
    code = main(argv)
    err = capsys.readouterr().err
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("refnet groundtruth: error:") or "usage" not in lines[0]
    assert fragment in lines[0], lines[0]


def test_a_users_file_is_never_overwritten(tmp_path, capsys):
    (tmp_path / "report.md").write_text("my notes")
    _refused(capsys, _argv(tmp_path), "refusing to overwrite")
    assert (tmp_path / "report.md").read_text() == "my notes"
    assert not (tmp_path / "results.json").exists()
    # a results.json that is not ours does not make the folder ours
    (tmp_path / "results.json").write_text('{"generator": "someone else", "files": ["report.md"]}')
    _refused(capsys, _argv(tmp_path), "refusing to overwrite")


def test_bad_arguments_are_one_line_and_status_2(tmp_path, capsys):
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    _refused(capsys, _argv(a_file), "not a folder")
    _refused(capsys, ["groundtruth", "--samples", "30", "--out", str(tmp_path)], "--samples")
    _refused(capsys, ["groundtruth", "--seed", "one"], "invalid int value")
    _refused(capsys, ["groundtruth", "--quick", "--fast"], "unrecognized arguments")
