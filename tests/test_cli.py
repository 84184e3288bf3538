"""The command line: each command on a small saved network, and every refusal is one line."""

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


def test_explain_writes_npy_and_png(capsys, files, tmp_path):
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
    code, _, _ = _run(capsys, [*base, "--method", "gradient", "--out", tmp_path / "g.png"])
    assert code == 0 and (tmp_path / "g.png").read_bytes()[:4] == b"\x89PNG"


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
