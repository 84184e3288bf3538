r"""Training: the loss and its gradient, the optimisers' update rules, the loop, the digits.

The loss gradient is checked against central differences in float64,

.. math:: \frac{L(z + \epsilon E_{nk}) - L(z - \epsilon E_{nk})}{2 \epsilon}
          \approx \frac{\partial L}{\partial z_{nk}}, \qquad \epsilon = 10^{-6};

the optimisers against hand-worked steps and a quadratic they must minimise; the loop for
bitwise reproducibility; and the digits CNN for the accuracy the demo relies on (>= 97%).
"""

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refnet
from refnet import Dense, ReLU, Sequential
from refnet.train import SGD, Adam, History, evaluate, fit, softmax, softmax_cross_entropy
from refnet.train.digits import digits_cnn, load_digits, train_digits_cnn

# --- loss -------------------------------------------------------------------------------


@settings(max_examples=20, deadline=None)
@given(N=st.integers(1, 6), K=st.integers(2, 7), seed=st.integers(0, 2**31 - 1))
def test_loss_gradient_matches_finite_differences(N, K, seed):
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 3, size=(N, K))
    y = rng.integers(0, K, size=N)
    _, dz = softmax_cross_entropy(z, y)
    eps = 1e-6
    numeric = np.zeros_like(z)
    for n in range(N):
        for k in range(K):
            e = np.zeros_like(z)
            e[n, k] = eps
            numeric[n, k] = (
                softmax_cross_entropy(z + e, y)[0] - softmax_cross_entropy(z - e, y)[0]
            ) / (2 * eps)
    np.testing.assert_allclose(dz, numeric, rtol=1e-6, atol=1e-8)  # FD round-off ~ 1e-9


def test_loss_literal_values():
    # Uniform logits: p = 1/K, L = log K, dL/dz = (1/K - [k = y]) / N.
    N, K = 4, 5
    y = np.array([0, 3, 4, 3])
    loss, dz = softmax_cross_entropy(np.zeros((N, K)), y)
    assert loss == pytest.approx(np.log(K), abs=1e-15)
    expected = np.full((N, K), 1 / K)
    expected[np.arange(N), y] -= 1
    np.testing.assert_allclose(dz, expected / N, atol=1e-15)
    # One confident correct row: L = log(1 + e^{-10}) for logits (10, 0).
    loss, _ = softmax_cross_entropy(np.array([[10.0, 0.0]]), np.array([0]))
    assert loss == pytest.approx(np.log1p(np.exp(-10.0)), rel=1e-12)


def test_softmax_is_stable_for_huge_logits():
    z = np.array([[1e4, 0.0, -1e4], [-1e5, -1e5 + 1, -1e5 + 2], [800.0, 800.0, 0.0]])
    p = softmax(z)
    assert np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(p[0], [1.0, 0.0, 0.0], atol=1e-300)
    np.testing.assert_allclose(p[1], softmax(np.array([[0.0, 1.0, 2.0]]))[0], rtol=1e-12)
    np.testing.assert_allclose(p[2], [0.5, 0.5, 0.0], atol=1e-300)
    # The loss is finite and exact even where a naive exp would overflow: the wrong class
    # by a margin of 1e4 costs exactly 1e4.
    loss, dz = softmax_cross_entropy(z, np.array([1, 2, 0]))
    assert np.isfinite(loss) and np.isfinite(dz).all()
    loss0, _ = softmax_cross_entropy(z[:1], np.array([1]))
    assert loss0 == pytest.approx(1e4, rel=1e-12)


def test_softmax_is_shift_invariant():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(5, 4))
    np.testing.assert_allclose(softmax(z + 1000.0), softmax(z), rtol=1e-10)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_loss_preserves_dtype(dtype):
    rng = np.random.default_rng(1)
    z = rng.normal(size=(3, 4)).astype(dtype)
    loss, dz = softmax_cross_entropy(z, np.array([0, 1, 2]))
    assert isinstance(loss, float) and dz.dtype == dtype and softmax(z).dtype == dtype
    ref_loss, ref_dz = softmax_cross_entropy(z.astype(np.float64), np.array([0, 1, 2]))
    assert loss == pytest.approx(ref_loss, rel=1e-5)
    np.testing.assert_allclose(dz, ref_dz, rtol=1e-4, atol=1e-7)


@pytest.mark.parametrize(
    ("z", "y", "error", "match"),
    [
        (np.zeros((2, 3)), np.array([0, 3]), ValueError, r"\[0, 2\]"),
        (np.zeros((2, 3)), np.array([-1, 0]), ValueError, r"\[0, 2\]"),
        (np.zeros((2, 3)), np.array([0, 1, 2]), ValueError, r"shape \(3,\).*\(2, 3\)"),
        (np.zeros((2, 3)), np.array([0.0, 1.0]), TypeError, "integers"),
        (np.zeros(3), np.array([0]), ValueError, "2 dimensions"),
        (np.array([[np.nan, 0.0]]), np.array([0]), ValueError, "NaN"),
        (np.zeros((2, 3), dtype=np.int64), np.array([0, 1]), TypeError, "float32 or float64"),
    ],
)
def test_loss_rejects_bad_input(z, y, error, match):
    with pytest.raises(error, match=match):
        softmax_cross_entropy(z, y)


# --- optimisers -------------------------------------------------------------------------


def test_sgd_momentum_literal_steps():
    # v1 = g1 = (1, -2); theta1 = (1, 1) - 0.1 (1, -2) = (0.9, 1.2)
    # v2 = 0.9 v1 + g2 = (0.9, -1.8) + (2, 0) = (2.9, -1.8); theta2 = (0.61, 1.38)
    theta = np.array([1.0, 1.0])
    opt = SGD(lr=0.1, momentum=0.9)
    opt.step([{"W": theta}], [{"W": np.array([1.0, -2.0])}])
    np.testing.assert_allclose(theta, [0.9, 1.2], rtol=1e-15)
    opt.step([{"W": theta}], [{"W": np.array([2.0, 0.0])}])
    np.testing.assert_allclose(theta, [0.61, 1.38], rtol=1e-14)


def test_adam_literal_first_and_second_step():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    g1, g2 = np.array([0.5, -3.0, 1e-3]), np.array([-1.0, 2.0, 0.0])
    theta = np.array([1.0, 2.0, 3.0])
    opt = Adam(lr=lr, beta1=b1, beta2=b2, eps=eps)
    opt.step([{"W": theta}], [{"W": g1}])
    # First step: m_hat = g, v_hat = g^2, so the step is -lr g / (|g| + eps) ~ -lr sign(g).
    np.testing.assert_allclose(theta, [1.0 - lr, 2.0 + lr, 3.0 - lr], atol=1e-6)
    expected1 = np.array([1.0, 2.0, 3.0]) - lr * g1 / (np.abs(g1) + eps)
    np.testing.assert_allclose(theta, expected1, rtol=1e-15)
    opt.step([{"W": theta}], [{"W": g2}])
    m = b1 * (1 - b1) * g1 + (1 - b1) * g2
    v = b2 * (1 - b2) * g1**2 + (1 - b2) * g2**2
    expected2 = expected1 - lr * (m / (1 - b1**2)) / (np.sqrt(v / (1 - b2**2)) + eps)
    np.testing.assert_allclose(theta, expected2, rtol=1e-14)


@pytest.mark.parametrize(
    ("make", "steps"),
    [(lambda: SGD(lr=0.05, momentum=0.9), 300), (lambda: Adam(lr=0.01), 1000)],
)
def test_optimiser_minimises_a_quadratic(make, steps):
    # f(theta) = 1/2 theta^T H theta - c^T theta, minimised at H^{-1} c.
    rng = np.random.default_rng(3)
    Q = rng.normal(size=(4, 4))
    H = Q @ Q.T + np.eye(4)
    c = rng.normal(size=4)
    theta = np.zeros(4)
    b = np.zeros(2)  # a second array: state must be kept per array
    opt = make()
    for _ in range(steps):
        opt.step([{"W": theta}, {"b": b}], [{"W": H @ theta - c}, {"b": b - 1.0}])
    np.testing.assert_allclose(theta, np.linalg.solve(H, c), atol=1e-6)
    np.testing.assert_allclose(b, 1.0, atol=1e-6)


@pytest.mark.parametrize("make", [lambda: SGD(0.1), lambda: Adam()])
def test_optimiser_updates_in_place_and_keeps_dtype(make):
    net = Sequential([Dense.create(3, 2, seed=0, dtype=np.float32)])
    W_before = net[0].W
    copy = W_before.copy()
    grads = [{"W": np.ones((2, 3), np.float32), "b": np.ones(2, np.float32)}]
    make().step(net.params(), grads)
    assert net[0].W is W_before and W_before.dtype == np.float32
    assert (W_before < copy).all()


@pytest.mark.parametrize("make", [lambda: SGD(0.1), lambda: Adam()])
def test_optimiser_rejects_mismatched_gradients(make):
    params = [{"W": np.zeros((2, 3)), "b": np.zeros(2)}]
    with pytest.raises(ValueError, match=r"shape \(2, 3\).*\(3, 2\)"):
        make().step(params, [{"W": np.zeros((3, 2)), "b": np.zeros(2)}])
    with pytest.raises(ValueError, match=r"\['W', 'b'\].*\['W'\]"):
        make().step(params, [{"W": np.zeros((2, 3))}])
    with pytest.raises(ValueError, match="1 layers.*2"):
        make().step(params, [{}, {}])
    with pytest.raises(ValueError, match="NaN"):
        make().step(params, [{"W": np.full((2, 3), np.nan), "b": np.zeros(2)}])
    np.testing.assert_array_equal(params[0]["W"], 0.0)


@pytest.mark.parametrize(
    "make",
    [lambda: SGD(0.0), lambda: SGD(0.1, momentum=1.0), lambda: Adam(beta2=-0.1)],
)
def test_optimiser_rejects_bad_settings(make):
    with pytest.raises(ValueError, match="must"):
        make()


# --- the loop ---------------------------------------------------------------------------


def blobs(seed: int, n: int = 120, dtype=np.float64):
    """Three unit Gaussian blobs in 4-D, centres 5.7 apart: an easy 3-class problem."""
    rng = np.random.default_rng(seed)
    centres = 4.0 * np.eye(3, 4)
    y = rng.integers(0, 3, size=n)
    X = centres[y] + rng.normal(size=(n, 4))
    return X.astype(dtype), y


def mlp(seed: int, dtype=np.float64) -> Sequential:
    return Sequential(
        [
            Dense.create(4, 16, seed=seed, dtype=dtype),
            ReLU(),
            Dense.create(16, 3, seed=seed + 1, dtype=dtype),
        ]
    )


def test_fit_is_bitwise_reproducible_for_a_seed():
    X, y = blobs(0)
    runs = []
    for _ in range(2):
        net = mlp(0)
        history = fit(net, X, y, epochs=3, batch_size=16, seed=7)
        runs.append((net, history))
    (net_a, hist_a), (net_b, hist_b) = runs
    for pa, pb in zip(net_a.params(), net_b.params(), strict=True):
        for name in pa:
            np.testing.assert_array_equal(pa[name], pb[name])
    assert hist_a.loss == hist_b.loss
    # A different shuffling seed gives a different run.
    net_c = mlp(0)
    fit(net_c, X, y, epochs=3, batch_size=16, seed=8)
    assert not np.array_equal(net_c[0].W, net_a[0].W)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fit_learns_and_keeps_dtype(dtype):
    X, y = blobs(1, dtype=dtype)
    X_val, y_val = blobs(1, n=60, dtype=dtype)
    net = mlp(1, dtype)
    history = fit(
        net, X, y, epochs=15, batch_size=32, optimizer=Adam(1e-2), X_val=X_val, y_val=y_val
    )
    assert isinstance(history, History) and history.epochs == 15
    assert len(history.accuracy) == len(history.val_loss) == len(history.seconds) == 15
    assert history.loss[-1] < 0.5 * history.loss[0]
    assert history.val_accuracy[-1] >= 0.95
    assert all(p.dtype == dtype for layer in net.params() for p in layer.values())
    assert evaluate(net, X_val, y_val) == pytest.approx(
        (history.val_loss[-1], history.val_accuracy[-1])
    )


def test_fit_casts_input_to_the_network_dtype():
    X, y = blobs(2)
    net = mlp(2, np.float32)
    fit(net, X, y, epochs=1)  # float64 data, float32 network
    assert net.dtype == np.float32 and net[0].W.dtype == np.float32


def test_fit_with_sgd_and_a_partial_last_batch():
    X, y = blobs(3, n=50)
    net = mlp(3)
    history = fit(net, X, y, epochs=20, batch_size=16, optimizer=SGD(0.05))
    assert history.loss[-1] < history.loss[0] and history.accuracy[-1] >= 0.9


def test_fit_progress_bar_is_optional(monkeypatch, capsys):
    X, y = blobs(4, n=20)
    fit(mlp(4), X, y, epochs=2, progress=True)  # tqdm installed: a bar on stderr
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)  # tqdm missing: no bar, no error
    history = fit(mlp(4), X, y, epochs=2, progress=True)
    assert history.epochs == 2
    capsys.readouterr()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"epochs": 0}, ValueError, "epochs"),
        ({"epochs": 1, "batch_size": 0}, ValueError, "batch_size"),
        ({"epochs": 1, "y": np.zeros(3, dtype=int)}, ValueError, r"\(120, 4\).*\(3,\)"),
        ({"epochs": 1, "y": np.zeros(120)}, TypeError, "integers"),
        ({"epochs": 1, "X_val": np.zeros((2, 4))}, ValueError, "both"),
        ({"epochs": 1, "X": np.zeros((120, 4), dtype=int)}, TypeError, "float32 or float64"),
        ({"epochs": 1, "net": "net"}, TypeError, "Sequential"),
    ],
)
def test_fit_rejects_bad_arguments(kwargs, error, match):
    X, y = blobs(5)
    args = {"net": mlp(5), "X": X, "y": y, **kwargs}
    with pytest.raises(error, match=match):
        fit(args.pop("net"), args.pop("X"), args.pop("y"), **args)


# --- digits -----------------------------------------------------------------------------


def test_load_digits_split():
    pytest.importorskip("sklearn")  # the bundled digits come with scikit-learn (demo extra)
    data = load_digits(seed=0)
    assert data.X_train.shape == (1347, 1, 8, 8) and data.X_test.shape == (450, 1, 8, 8)
    assert data.X_train.dtype == np.float64 and data.y_train.dtype == np.int64
    assert data.X_train.min() == 0.0 and data.X_train.max() == 1.0
    # Stratified: every class holds about a quarter of its images out for testing.
    test_counts = np.bincount(data.y_test, minlength=10)
    all_counts = test_counts + np.bincount(data.y_train, minlength=10)
    assert np.all(np.abs(test_counts - 0.25 * all_counts) <= 1)
    # Deterministic in the seed, different across seeds.
    again = load_digits(seed=0, dtype=np.float32)
    assert again.X_train.dtype == np.float32
    np.testing.assert_array_equal(again.y_train, data.y_train)
    assert not np.array_equal(load_digits(seed=1).y_train, data.y_train)


def test_load_digits_without_sklearn_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)
    with pytest.raises(ImportError, match=r"pip install 'refnet\[demo\]'"):
        load_digits()


def test_load_digits_rejects_bad_arguments():
    with pytest.raises(ValueError, match="test_size"):
        load_digits(test_size=1.5)
    with pytest.raises(TypeError, match="dtype"):
        load_digits(dtype=np.int32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_digits_cnn_shapes(dtype):
    net = digits_cnn(seed=0, dtype=dtype)
    assert net.output_shape((5, 1, 8, 8)) == (5, 10)
    assert net(np.zeros((5, 1, 8, 8), dtype)).dtype == dtype
    np.testing.assert_array_equal(digits_cnn(seed=0)[0].W, digits_cnn(seed=0)[0].W)


def test_digits_cnn_reaches_97_percent():
    """The demo's network: at least 97% test accuracy with the default settings."""
    pytest.importorskip("sklearn")
    net, result = train_digits_cnn(seed=0)
    assert result.test_accuracy >= 0.97, result.test_accuracy
    assert result.history.epochs == len(result.history.loss) >= 1
    assert result.seconds > 0 and result.data.X_test.shape == (450, 1, 8, 8)
    accuracy = float((net.predict(result.data.X_test) == result.data.y_test).mean())
    assert accuracy == result.test_accuracy


def test_refnet_exports():
    assert refnet.train.fit is fit and callable(refnet.save) and callable(refnet.load)
