"""Degenerate neurons get ``a = 0`` and are counted (no NaN, no warning); bad input errors."""

import warnings

import numpy as np
import pytest

import refnet


@pytest.fixture(autouse=True)
def warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind", refnet.patterns.KINDS)
def test_degenerate_neurons(kind, dtype):
    """Never active (0, relu kinds), constant output (1, 2), zero weights (3); 4 is fine.

    For ``A_minus`` (mask ``z <= 0``) neuron 0 sees every row and is fine, while 1-3 have
    no row or a constant output.
    """
    rng = np.random.default_rng(0)
    n, D = 500, 4
    X = rng.normal(size=(n, D))
    X[:, 3] = 0.7  # a constant feature
    W = np.array(
        [
            [1.0, 0.5, 0.0, 0.0],  # 0: never active (bias -100)
            [0.0, 0.0, 0.0, 2.0],  # 1: y constant (only the constant feature)
            [0.0, 0.0, 0.0, -1.0],  # 2: y constant, z > 0 everywhere
            [0.0, 0.0, 0.0, 0.0],  # 3: w = 0
            [1.0, -1.0, 0.5, 0.1],  # 4: an ordinary neuron
        ]
    )
    b = np.array([-100.0, 0.1, 1.0, 0.5, 0.0])
    net = refnet.Sequential([refnet.Dense(W, b)]).astype(dtype)
    P = refnet.fit_patterns(net, X.astype(dtype), kind=kind, batch_size=128)
    A = P[0]
    assert np.isfinite(A).all()
    expected = [1, 2, 3] if kind == "linear" else [0, 1, 2, 3]
    assert not A[expected].any()
    assert abs(W[4] @ A[4] - 1.0) < 1e-6
    assert P.report.degenerate[0] == len(expected)
    assert P.report.active[0][0] == 0 and P.report.active[0][2] == n
    if P.A_minus is not None:
        assert np.isfinite(P.A_minus[0]).all()
        assert not P.A_minus[0][1:4].any()  # no row, constant y, or w = 0
        assert abs(W[0] @ P.A_minus[0][0] - 1.0) < 1e-6
        assert P.report.degenerate_minus[0] == 3


def test_all_zero_input():
    """All-zero input: y = 0 for every neuron, so every pattern is 0 and counted."""
    conv = refnet.Conv2D.create(2, 3, 3, padding=1, seed=0)
    conv.b[:] = [0.5, -0.5, 0.0]
    net = refnet.Sequential([conv, refnet.ReLU(), refnet.Flatten(), refnet.Dense.create(48, 2)])
    P = refnet.fit_patterns(net, np.zeros((10, 2, 4, 4)), kind="relu")
    for i in P:
        assert not P[i].any() and not P.A_minus[i].any()
        assert P.report.degenerate[i] == P.report.degenerate_minus[i] == len(P[i])
    assert list(P.report.active[0]) == [160, 0, 0]


def _net():
    return refnet.Sequential(
        [refnet.Conv2D.create(1, 2, 3, seed=0), refnet.ReLU(), refnet.Flatten(),
         refnet.Dense.create(2 * 4 * 4, 3, seed=1)]
    )  # fmt: skip


def test_data_shape_not_fitting_network():
    with pytest.raises(ValueError, match=r"batch 0 of shape \(4, 2, 6, 6\) does not fit.*layer 0"):
        refnet.fit_patterns(_net(), np.zeros((4, 2, 6, 6)))
    with pytest.raises(ValueError, match=r"does not fit the network at layer 3 \(Dense\)"):
        refnet.fit_patterns(_net(), np.zeros((4, 1, 7, 7)))
    with pytest.raises(ValueError, match="sample axis"):
        refnet.fit_patterns(_net(), np.zeros(5))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values(bad):
    x = np.zeros((8, 1, 6, 6))
    x[5, 0, 2, 3] = bad
    with pytest.raises(ValueError, match=r"batch 1.*NaN or infinity"):
        refnet.fit_patterns(_net(), x, batch_size=4)


def test_empty_data():
    with pytest.raises(ValueError, match="no samples"):
        refnet.fit_patterns(_net(), iter([]))
    with pytest.raises(ValueError, match="no samples"):
        refnet.fit_patterns(_net(), np.zeros((0, 1, 6, 6)))
    with pytest.raises(ValueError, match="no samples"):
        refnet.fit_patterns(_net(), [np.zeros((0, 1, 6, 6))])


def test_misspelt_kind():
    with pytest.raises(ValueError, match="'rellu'.*linear, relu, relu_masked_mean"):
        refnet.fit_patterns(_net(), np.zeros((2, 1, 6, 6)), kind="rellu")


def test_wrong_types():
    with pytest.raises(TypeError, match="float32 or float64"):
        refnet.fit_patterns(_net(), np.zeros((2, 1, 6, 6), dtype=np.int64))
    with pytest.raises(TypeError, match="Sequential"):
        refnet.fit_patterns("net", np.zeros((2, 1, 6, 6)))
    with pytest.raises(TypeError, match="iterable of batches"):
        refnet.fit_patterns(_net(), 3.0)
    with pytest.raises(ValueError, match="batch_size"):
        refnet.fit_patterns(_net(), np.zeros((2, 1, 6, 6)), batch_size=0)
    with pytest.raises(TypeError, match="Dense or Conv2D"):
        refnet.patterns.LayerStats(refnet.ReLU())
