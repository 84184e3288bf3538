"""Parts of refnet groundtruth without optional packages: baselines, models, safe writes."""

import json

import numpy as np
import pytest
from scipy import ndimage

from refnet.groundtruth.baselines import BASELINES, baseline
from refnet.groundtruth.models import BUILDERS, train
from refnet.groundtruth.output import GENERATOR, check_output_folder, write_atomic
from refnet.groundtruth.run import evaluated_models, stratified_split


def test_baselines():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 1, 8, 8))
    for name in BASELINES:
        assert baseline(name, x, seed=1).shape == x.shape
    assert np.array_equal(baseline("x", x), x)
    assert np.array_equal(baseline("random", x, seed=1), baseline("random", x, seed=1))
    assert np.abs(baseline("random", x, 1)).max() <= 1
    edges = np.hypot(ndimage.sobel(x[1, 0], axis=0), ndimage.sobel(x[1, 0], axis=1))
    np.testing.assert_allclose(baseline("sobel", x)[1, 0], edges, rtol=1e-12)
    np.testing.assert_allclose(baseline("laplace", x)[2, 0], ndimage.laplace(x[2, 0]), rtol=1e-12)
    assert not baseline("sobel", np.ones((1, 1, 8, 8))).any()  # no edges in a constant image
    with pytest.raises(ValueError, match="unknown baseline"):
        baseline("canny", x)


def test_models_have_the_benchmark_shapes_and_llr_keeps_zero_bias():
    x = np.random.default_rng(0).normal(size=(5, 1, 8, 8))
    for name, build in BUILDERS.items():
        assert build(0)(x).shape == (5, 2), name
    cnn = BUILDERS["cnn"](0)
    assert [type(layer).__name__ for layer in cnn.layers[:3]] == ["Conv2D", "ReLU", "MaxPool2D"]
    assert cnn.layers[-1].W.shape == (2, 4) and cnn.layers[0].W.shape == (4, 1, 2, 2)
    mlp = BUILDERS["mlp"](0)
    assert [layer.W.shape for layer in mlp.layers if hasattr(layer, "W")] == [
        (32, 64),
        (16, 32),
        (8, 16),
        (2, 8),
    ]
    y = np.array([0, 1, 0, 1, 1])
    llr = train("llr", x, y, x, y, epochs=3, lr=1e-2, seed=0).net
    assert not llr.layers[-1].b.any() and llr.layers[-1].W.shape == (2, 64)


def test_stratified_split_and_evaluated_models():
    y = np.repeat([0, 1], 50)
    tr, te = stratified_split(y, seed=0)
    assert len(te) == 20 and len(tr) == 80 and (y[te] == 0).sum() == 10
    assert set(tr) | set(te) == set(range(100)) and not set(tr) & set(te)
    assert evaluated_models("linear") == ("llr", "mlp", "cnn")
    assert evaluated_models("xor") == ("mlp", "cnn")


def test_write_atomic_leaves_no_half_file(tmp_path):
    target = tmp_path / "a.txt"
    target.write_text("old")

    def fail(f):
        f.write(b"half")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        write_atomic(target, fail)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["a.txt"]
    write_atomic(target, lambda f: f.write(b"new"))
    assert target.read_text() == "new"


def test_check_output_folder(tmp_path):
    check_output_folder(tmp_path / "missing", ["report.md"])  # created later
    (tmp_path / "report.md").write_text("mine")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        check_output_folder(tmp_path, ["report.md", "results.json"])
    ours = {"generator": GENERATOR, "files": ["results.json", "report.md"]}
    (tmp_path / "results.json").write_text(json.dumps(ours))
    check_output_folder(tmp_path, ["report.md", "results.json"])
    (tmp_path / "results.json").write_text("not json")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        check_output_folder(tmp_path, ["report.md"])
    with pytest.raises(ValueError, match="not a folder"):
        check_output_folder(tmp_path / "report.md", ["x"])
