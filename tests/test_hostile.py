"""Hostile but legal input at the network level (issue 15), and the one-home helpers (issue 10).

- An empty batch (N = 0) flows through ``net(x)``, ``Sequential.predict`` and
  ``refnet.explain`` and comes back empty, of the right shape and dtype.
- Layer arguments must be real integers: ``stride=True`` or ``2.7`` is a ``TypeError``.
- ``smoothgrad(seed="abc")`` is refused with refnet's own message.
- One softmax, one progress bar (which is silently absent without tqdm).
- ``Patterns.save`` accepts its ``.npz`` suffix in any case.
"""

import sys

import numpy as np
import pytest

import refnet
from refnet import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential, kernels
from refnet.attribution.methods import METHODS, smoothgrad
from refnet.progress import progress_bar


def cnn(dtype=np.float64) -> Sequential:
    return Sequential(
        [
            Conv2D.create(1, 3, 3, padding=1, seed=0, dtype=dtype),
            ReLU(),
            MaxPool2D(2),
            Flatten(),
            Dense.create(3 * 4 * 4, 5, seed=1, dtype=dtype),
        ]
    )


def dense(dtype=np.float64) -> Sequential:
    layers = [
        Dense.create(6, 4, seed=0, dtype=dtype),
        ReLU(),
        Dense.create(4, 3, seed=1, dtype=dtype),
    ]
    return Sequential(layers)


# --- empty batches --------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_forward_and_predict_of_an_empty_batch(dtype):
    for net, shape in ((cnn(dtype), (0, 1, 8, 8)), (dense(dtype), (0, 6))):
        x = np.zeros(shape, dtype=dtype)
        logits = net(x)
        assert logits.shape == (0, net.output_shape((1, *shape[1:]))[1]) and logits.dtype == dtype
        predicted = net.predict(x, batch_size=4)
        assert predicted.shape == (0,) and predicted.dtype.kind == "i"


def test_flatten_of_an_empty_batch_keeps_the_sample_size():
    y, cache = Flatten().forward(np.zeros((0, 3, 4, 5)))
    assert y.shape == (0, 60)
    assert Flatten().backward(y, cache)[0].shape == (0, 3, 4, 5)


def test_predict_of_an_empty_batch_still_checks_the_sample_shape():
    with pytest.raises(ValueError, match="Conv2D"):
        cnn().predict(np.zeros((0, 2, 8, 8)))  # two channels, the network takes one
    with pytest.raises(ValueError, match="batch_size"):
        cnn().predict(np.zeros((3, 1, 8, 8)), batch_size=0)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_explain_of_an_empty_batch_on_a_cnn(method):
    net = cnn(np.float32)
    X = np.random.default_rng(0).random((20, 1, 8, 8)).astype(np.float32)
    patterns = refnet.fit_patterns(net, X, kind="relu") if method.startswith("pattern") else None
    x = np.zeros((0, 1, 8, 8), dtype=np.float32)
    heat = refnet.explain(net, x, method, patterns=patterns)
    assert heat.shape == (0, 1, 8, 8) and heat.dtype == np.float32
    assert refnet.explain(net, x, method, target=2, patterns=patterns).shape == (0, 1, 8, 8)


def test_explain_of_an_empty_batch_on_a_dense_net():
    heat = refnet.explain(dense(), np.zeros((0, 6)), "gradient")
    assert heat.shape == (0, 6) and heat.dtype == np.float64


# --- layer arguments are real integers ---------------------------------------------------


W = np.ones((2, 1, 3, 3))


@pytest.mark.parametrize(
    "make, pattern",
    [
        (lambda: Conv2D(W, stride=True), "Conv2D: stride must be an integer, got True"),
        (lambda: Conv2D(W, stride=2.7), "Conv2D: stride must be an integer, got 2.7"),
        (lambda: Conv2D(W, stride=np.float64(2)), "Conv2D: stride"),
        (lambda: Conv2D(W, padding=False), "Conv2D: padding"),
        (lambda: Conv2D(W, padding=(1, True)), "Conv2D: padding"),
        (lambda: Conv2D.create(1, 2, kernel_size=True), "Conv2D: kernel_size"),
        (lambda: Conv2D.create(True, 2, 3), "Conv2D: in_channels"),
        (lambda: MaxPool2D(True), "MaxPool2D: size must be an integer, got True"),
        (lambda: MaxPool2D(2, stride=True), "MaxPool2D: stride"),
        (lambda: MaxPool2D(2.0), "MaxPool2D: size"),
        (lambda: Dense.create(True, 2), "Dense: n_in"),
    ],
)
def test_a_bool_or_a_float_is_not_an_integer_argument(make, pattern):
    with pytest.raises(TypeError, match=pattern):
        make()


def test_numpy_integers_are_integer_arguments():
    assert Conv2D(W, stride=np.int64(2), padding=(np.int32(1), 0)).stride == 2
    assert MaxPool2D(np.int64(3)).config() == {"size": 3, "stride": 3}


# --- clear errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", ["abc", 2.5, -1, [1, "x"]])
def test_smoothgrad_refuses_a_seed_that_is_not_one(seed):
    with pytest.raises(TypeError, match="smoothgrad: seed must be None or an int"):
        smoothgrad(seed=seed)


def test_patterns_save_accepts_its_suffix_in_any_case(tmp_path):
    patterns = refnet.fit_patterns(dense(), np.random.default_rng(0).random((10, 6)))
    assert patterns.save(tmp_path / "p.NPZ") == tmp_path / "p.NPZ"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p.NPZ"]


# --- one home per helper --------------------------------------------------------------------


def test_there_is_one_softmax():
    from refnet.evaluate import degradation

    assert degradation.softmax is refnet.train.softmax


def test_progress_bar_without_tqdm_is_the_iterable_itself(monkeypatch):
    items = [1, 2, 3]
    assert progress_bar(items, "x", enabled=False) is items
    monkeypatch.setitem(sys.modules, "tqdm", None)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    assert progress_bar(items, "x") is items
    X = np.random.default_rng(0).random((10, 6))
    assert refnet.fit_patterns(dense(), X, progress=True).kind == "relu"


def test_progress_bar_with_tqdm_counts_everything():
    pytest.importorskip("tqdm")
    assert list(progress_bar(range(5), "x", total=5)) == list(range(5))


# --- atomic writes ---------------------------------------------------------------------------


def test_atomic_write_keeps_the_old_file_when_the_writer_fails(tmp_path):
    from refnet.fileio import atomic_write, write_text

    path = tmp_path / "report.md"
    write_text(path, "old")
    with pytest.raises(RuntimeError), atomic_write(path) as f:
        f.write(b"half")
        raise RuntimeError("the writer failed")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == [
        "report.md"
    ]
    with pytest.raises(IsADirectoryError), atomic_write(tmp_path):
        pass


def test_run_demo_refuses_an_existing_file_as_its_folder(tmp_path):
    from refnet.demo import run_demo

    (tmp_path / "out").write_text("keep me")
    with pytest.raises(ValueError, match="is an existing file"):
        run_demo(tmp_path / "out", quick=True, progress=False)
    assert (tmp_path / "out").read_text() == "keep me"


# --- unbounded outputs (item 11) --------------------------------------------------------


@pytest.mark.parametrize("F", [1, 0])
def test_a_huge_padding_is_refused_before_anything_is_allocated(F):
    """Before the bound, NumPy allocated until the machine killed it, the compiled geometry
    overflowed ``int``, and an F = 0 conv still asked for a 2.3 GB patch workspace."""
    x = np.zeros((1, 2, 4, 4))
    W, b = np.zeros((F, 2, 3, 3)), np.zeros(F)
    for exact in (False, True):
        with pytest.raises(ValueError, match=r"conv2d_forward: .* would exceed 2147483647"):
            kernels.conv2d_forward(x, W, b, 1, 50_000, 50_000, exact=exact)
    with pytest.raises(ValueError, match="im2col: .* would exceed"):
        kernels.im2col(x, 3, 3, 1, 50_000, 50_000)
    with pytest.raises(ValueError, match="maxpool2d_forward: .* would exceed"):
        huge = np.broadcast_to(np.float32(0), (1, 1, 50_000, 50_000))  # no memory behind it
        kernels.maxpool2d_forward(huge, 1, 1)


def test_the_bound_leaves_large_valid_batches_alone():
    x = np.zeros((3000, 3, 32, 32), dtype=np.float32)  # patches of all samples: 2.5e8
    y = kernels.conv2d_forward(x, np.zeros((1, 3, 3, 3), np.float32), np.zeros(1, np.float32))
    assert y.shape == (3000, 1, 30, 30)


@pytest.mark.parametrize("exact", [False, True])
def test_the_kernels_take_zero_filters_and_empty_pools_on_both_backends(exact):
    """The NumPy twins rejected F = 0 in the conv and N C = 0 in the pool's backward, which
    the compiled kernels accepted."""
    x = np.ones((2, 3, 5, 5))
    y = kernels.conv2d_forward(x, np.zeros((0, 3, 3, 3)), np.zeros(0), 1, 1, 1, exact=exact)
    assert y.shape == (2, 0, 5, 5)
    dx = kernels.conv2d_backward_input(y, np.zeros((0, 3, 3, 3)), x.shape, 1, 1, 1)
    assert dx.shape == x.shape and not dx.any()
    for shape in [(0, 3, 4, 4), (2, 0, 4, 4)]:
        out, argmax = kernels.maxpool2d_forward(np.zeros(shape), 2, 2)
        assert kernels.maxpool2d_backward(out, argmax, shape).shape == shape
