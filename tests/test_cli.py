"""The command line: each command on a small saved network, and every refusal is one line."""

import os
import subprocess
import sys

import numpy as np
import pytest

import refnet
from refnet.cli import main


def _net(seed=0, channels=2):
    rng = np.random.default_rng(seed)
    return refnet.Sequential(
        [
            refnet.Conv2D.create(1, channels, 3, padding=1, seed=rng),
            refnet.ReLU(),
            refnet.MaxPool2D(2),
            refnet.Flatten(),
            refnet.Dense.create(channels * 2 * 2, 3, seed=rng),
        ]
    )


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A saved network, its data, one input, its relu patterns, and a foreign pattern file."""
    d = tmp_path_factory.mktemp("cli")
    refnet.save(_net(), d / "net.npz")
    X = np.random.default_rng(1).random((40, 1, 4, 4))
    np.save(d / "X.npy", X)
    np.save(d / "x.npy", X[:3])
    np.save(d / "x1.npy", X[0])  # one sample, no batch axis
    np.save(d / "bad.npy", X[:, :, :3, :])  # 3x4 images: the Dense layer cannot take them
    np.save(d / "ints.npy", np.arange(6).reshape(1, 6))
    refnet.fit_patterns(_net(), X, kind="relu").save(d / "patterns.npz")
    other = _net(seed=2, channels=3)  # another architecture: its patterns do not fit
    refnet.fit_patterns(other, X, kind="relu").save(d / "foreign.npz")
    (d / "garbage.npz").write_bytes(b"not a refnet file")
    return d


def _run(capsys, argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _refused(capsys, argv, *fragments):
    code, _, err = _run(capsys, argv)
    assert code != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_help_reads_well(capsys):
    code, out, _ = _run(capsys, ["--help"])
    assert code == 0
    for command in ("demo", "fit-patterns", "explain"):
        assert command in out
    for command in ("demo", "fit-patterns", "explain"):
        code, out, _ = _run(capsys, [command, "--help"])
        assert code == 0
        assert "usage: refnet " + command in out
    code, out, _ = _run(capsys, [])
    assert code == 0 and "usage: refnet" in out


def test_python_dash_m_runs_the_cli():
    result = subprocess.run(
        [sys.executable, "-m", "refnet", "--version"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0
    assert result.stdout.strip() == f"refnet {refnet.__version__}"


def test_fit_patterns_writes_patterns_equal_to_the_library(capsys, files, tmp_path):
    out = tmp_path / "p.npz"
    argv = ["fit-patterns", "--model", files / "net.npz", "--data", files / "X.npy"]
    code, stdout, _ = _run(capsys, [*argv, "--kind", "relu", "--out", out, "--no-progress"])
    assert code == 0 and "relu patterns" in stdout
    got = refnet.patterns.Patterns.load(out)
    net = refnet.load(files / "net.npz")
    got.check_compatible(net)
    expected = refnet.fit_patterns(net, np.load(files / "X.npy"), kind="relu")
    for i in net.kernel_layers():
        np.testing.assert_allclose(got.A[i], expected.A[i], rtol=1e-10, atol=1e-12)
    code, _, _ = _run(capsys, [*argv, "--kind", "linear", "--out", out, "--batch-size", 7])
    assert code == 0 and refnet.patterns.Patterns.load(out).kind == "linear"


def test_explain_writes_npy(capsys, files, tmp_path):
    net = refnet.load(files / "net.npz")
    x = np.load(files / "x.npy")
    base = ["explain", "--model", files / "net.npz", "--input", files / "x.npy"]
    code, _, _ = _run(capsys, [*base, "--method", "gradient", "--out", tmp_path / "g.npy"])
    assert code == 0
    np.testing.assert_allclose(np.load(tmp_path / "g.npy"), refnet.explain(net, x, "gradient"))
    pattern_args = ["--patterns", files / "patterns.npz", "--method", "patternattribution"]
    code, _, _ = _run(capsys, [*base, *pattern_args, "--target", 2, "--out", tmp_path / "pa.npy"])
    assert code == 0
    patterns = refnet.patterns.Patterns.load(files / "patterns.npz")
    expected = refnet.explain(net, x, "patternattribution", target=2, patterns=patterns)
    np.testing.assert_allclose(np.load(tmp_path / "pa.npy"), expected)
    # one sample without a batch axis comes back with its own shape
    one = ["explain", "--model", files / "net.npz", "--input", files / "x1.npy"]
    code, _, _ = _run(capsys, [*one, "--method", "lrp.epsilon", "--out", tmp_path / "one.npy"])
    assert code == 0 and np.load(tmp_path / "one.npy").shape == (1, 4, 4)


def test_fit_patterns_refusals(capsys, files, tmp_path):
    out = ["--out", tmp_path / "p.npz"]
    model, data = ["--model", files / "net.npz"], ["--data", files / "X.npy"]
    _refused(
        capsys, ["fit-patterns", "--model", tmp_path / "nope.npz", *data, *out], "does not exist"
    )
    _refused(
        capsys, ["fit-patterns", *model, "--data", tmp_path / "nope.npy", *out], "does not exist"
    )
    _refused(capsys, ["fit-patterns", *model, "--data", files / "bad.npy", *out], "(40, 1, 3, 4)")
    _refused(capsys, ["fit-patterns", *model, "--data", files / "ints.npy", *out], "int64")
    _refused(capsys, ["fit-patterns", *model, *data, "--kind", "cubic", *out], "cubic")
    _refused(
        capsys, ["fit-patterns", "--model", files / "garbage.npz", *data, *out], "garbage.npz"
    )
    _refused(capsys, ["fit-patterns", *model, *data, "--out", tmp_path / "no" / "p.npz"], "folder")
    _refused(capsys, ["fit-patterns", *model, *data], "--out")  # argparse: one line too


def test_explain_refusals(capsys, files, tmp_path):
    out = ["--out", tmp_path / "h.npy"]
    base = ["explain", "--model", files / "net.npz", "--input", files / "x.npy"]
    _refused(capsys, [*base, "--method", "gradient_flow", *out], "unknown method 'gradient_flow'")
    foreign = ["--patterns", files / "foreign.npz", "--method", "patternnet"]
    _refused(capsys, [*base, *foreign, *out], "do not fit this network")
    _refused(capsys, [*base, "--method", "patternnet", *out], "needs --patterns")
    _refused(capsys, [*base, "--method", "gradient", "--target", 3, *out], "out of range")
    _refused(capsys, [*base, "--method", "gradient", "--out", tmp_path / "h.txt"], ".npy or .png")
    bad = ["explain", "--model", files / "net.npz", "--input", files / "bad.npy"]
    _refused(capsys, [*bad, "--method", "gradient", *out], "(40, 1, 3, 4)")
    missing = ["explain", "--model", files / "net.npz", "--input", tmp_path / "nope.npy"]
    _refused(capsys, [*missing, "--method", "gradient", *out], "does not exist")
    no_model = ["explain", "--model", tmp_path / "nope.npz", "--input", files / "x.npy"]
    _refused(capsys, [*no_model, "--method", "gradient", *out], "does not exist")
    no_patterns = ["--patterns", tmp_path / "nope.npz", "--method", "patternnet"]
    _refused(capsys, [*base, *no_patterns, *out], "does not exist")
    _refused(capsys, [*base, "--method", "gradient", "--target", "two", *out], "invalid int")


# --- the CLI never destroys its inputs, and refuses in one line (issue 15) ----------------


def _explain(files, out, x=None):
    """``refnet explain`` of the saved network on ``x`` (default the three inputs)."""
    x = files / "x.npy" if x is None else x
    model = files / "net.npz"
    return ["explain", "--model", model, "--input", x, "--method", "gradient", "--out", out]


def test_explain_png_is_drawn(capsys, files, tmp_path):
    pytest.importorskip("matplotlib")
    code, _, _ = _run(capsys, _explain(files, tmp_path / "g.png"))
    assert code == 0 and (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["g.png"]  # no temporary left


def test_explain_keeps_the_old_heatmap_when_the_disk_is_full(capsys, files, tmp_path, monkeypatch):
    out = tmp_path / "heat.npy"
    out.write_bytes(b"the old heatmaps")

    def full_disk(file, arr, *args, **kwargs):
        if isinstance(file, (str, os.PathLike)):
            file = open(file, "wb")  # noqa: SIM115 -- what np.save does with a file name
        file.write(b"\x93NUMPY trunc")
        file.flush()
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", full_disk)
    code, _, err = _run(capsys, _explain(files, out))
    assert code == 1 and "No space left" in err and len(err.strip().splitlines()) == 1
    assert out.read_bytes() == b"the old heatmaps"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["heat.npy"]


def _copy(src, dst):
    dst.write_bytes(src.read_bytes())
    return dst


@pytest.mark.parametrize("how", ["same path", "other spelling", "symlink", "suffix appended"])
def test_fit_patterns_refuses_to_overwrite_its_model(capsys, files, tmp_path, monkeypatch, how):
    model = _copy(files / "net.npz", tmp_path / "net.npz")
    before = model.read_bytes()
    monkeypatch.chdir(tmp_path)
    out = {
        "same path": model,
        "other spelling": f"../{tmp_path.name}/./net.npz",
        "symlink": tmp_path / "link.npz",
        "suffix appended": tmp_path / "net",  # Patterns.save would write net.npz
    }[how]
    if how == "symlink":
        (tmp_path / "link.npz").symlink_to(model)
    argv = ["fit-patterns", "--model", model, "--data", files / "X.npy", "--out", out]
    _refused(capsys, argv, "same file as --model", "refusing to overwrite")
    assert model.read_bytes() == before


@pytest.mark.parametrize("flag", ["--input", "--model"])
def test_explain_refuses_to_overwrite_its_input(capsys, files, tmp_path, flag):
    x = _copy(files / "x.npy", tmp_path / "x.npy")
    model = _copy(files / "net.npz", tmp_path / "net.npy")  # a model named .npy, for --model
    before = {x: x.read_bytes(), model: model.read_bytes()}
    out = x if flag == "--input" else model
    argv = ["explain", "--model", model, "--input", x, "--method", "gradient", "--out", out]
    _refused(capsys, argv, f"same file as {flag}")
    assert {p: p.read_bytes() for p in before} == before


def test_out_that_is_a_folder_or_a_file_for_the_demo_is_refused_with_exit_2(
    capsys, files, tmp_path
):
    (tmp_path / "d.npy").mkdir()
    (tmp_path / "d.npz").mkdir()
    assert _refused(capsys, _explain(files, tmp_path / "d.npy"), "is a folder")
    fit = ["fit-patterns", "--model", files / "net.npz", "--data", files / "X.npy"]
    _refused(capsys, [*fit, "--out", tmp_path / "d.npz"], "is a folder")
    assert main(["demo", "--out", str(files / "x.npy")]) == 2
    _, err = capsys.readouterr()
    assert "is an existing file" in err and (files / "x.npy").is_file()


def test_a_text_file_or_an_archive_as_input_gets_a_clear_message(capsys, files, tmp_path):
    (tmp_path / "x.npy").write_text("0.1 0.2 0.3\n0.4 0.5 0.6\n")
    line = _refused(capsys, _explain(files, tmp_path / "h.npy", tmp_path / "x.npy"))
    assert "not a NumPy .npy file" in line and "pickle" not in line
    _copy(files / "patterns.npz", tmp_path / "p.npy")
    _refused(capsys, _explain(files, tmp_path / "h.npy", tmp_path / "p.npy"),
             "is an .npz archive")  # fmt: skip
    np.save(tmp_path / "o.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    line = _refused(capsys, _explain(files, tmp_path / "h.npy", tmp_path / "o.npy"))
    assert "dtype object" in line and "allow_pickle" not in line


def test_an_upper_case_suffix_is_written_and_printed_as_given(capsys, files, tmp_path):
    code, out, _ = _run(capsys, _explain(files, tmp_path / "H.NPY"))
    assert code == 0 and out.strip().endswith(str(tmp_path / "H.NPY"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["H.NPY"]
    fit = ["fit-patterns", "--model", files / "net.npz", "--data", files / "X.npy"]
    code, out, _ = _run(capsys, [*fit, "--out", tmp_path / "P.NPZ", "--no-progress"])
    assert code == 0 and out.strip().endswith(str(tmp_path / "P.NPZ"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["H.NPY", "P.NPZ"]
    assert refnet.patterns.Patterns.load(tmp_path / "P.NPZ").kind == "relu"


def test_kind_help_lists_every_kind(capsys):
    _, out, _ = _run(capsys, ["fit-patterns", "--help"])
    for kind in refnet.patterns.KINDS:
        assert kind in " ".join(out.split())


def test_fit_patterns_on_big_endian_data(capsys, files, tmp_path):
    X = np.load(files / "X.npy")
    np.save(tmp_path / "Xbe.npy", X.astype(">f8"))
    argv = ["fit-patterns", "--model", files / "net.npz", "--data", tmp_path / "Xbe.npy"]
    code, _, err = _run(capsys, [*argv, "--out", tmp_path / "p.npz", "--no-progress"])
    assert code == 0, err
    got = refnet.patterns.Patterns.load(tmp_path / "p.npz")
    expected = refnet.patterns.Patterns.load(files / "patterns.npz")
    for i in got.layer_indices:
        np.testing.assert_allclose(got.A[i], expected.A[i], rtol=1e-10, atol=1e-12)


def test_explain_of_an_empty_batch(capsys, files, tmp_path):
    np.save(tmp_path / "x0.npy", np.zeros((0, 1, 4, 4)))
    argv = _explain(files, tmp_path / "h0.npy", tmp_path / "x0.npy")
    code, _, err = _run(capsys, argv)
    assert code == 0, err
    heat = np.load(tmp_path / "h0.npy")
    assert heat.shape == (0, 1, 4, 4) and heat.dtype == np.float64


def test_progress_bars_are_silently_absent_without_tqdm(capsys, files, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tqdm", None)  # import tqdm raises ImportError
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    fit = ["fit-patterns", "--model", files / "net.npz", "--data", files / "X.npy"]
    code, _, err = _run(capsys, [*fit, "--out", tmp_path / "p.npz"])  # progress on
    assert code == 0, err
