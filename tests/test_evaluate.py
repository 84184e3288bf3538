"""Tests of the evaluation measures: rho (MATH.md section 5), degradation (section 6), toy."""

import numpy as np
import pytest

import refnet
from refnet.evaluate import (
    A_S,
    aopc,
    degradation_curve,
    degrade_by_attribution,
    degrade_randomly,
    layer_rho,
    layer_rows,
    line_angle,
    neuron_rho,
    patch_means,
    patch_order,
    patch_scores,
    quality,
    random_order,
)
from refnet.evaluate.quality import LayerRows, distractor
from refnet.evaluate.regression import ridge_gcv

# ----------------------------------------------------------------------------------- rho


def _linear_generative(n, seed, D=6, K=2, M=3):
    """x = A_s s + A_d eps; W recovers s exactly, so the true pattern of neuron k is A_s[:, k]."""
    rng = np.random.default_rng(seed)
    A_s = rng.standard_normal((D, K))
    A_d = rng.standard_normal((D, M))
    s = rng.standard_normal((n, K))
    eps = rng.standard_normal((n, M))
    X = s @ A_s.T + eps @ A_d.T  # (n, D)
    W2 = np.linalg.pinv(np.hstack([A_s, A_d]))[:K]  # (K, D): W2 @ A_s = I, W2 @ A_d = 0
    return X, W2, A_s


def _rows(X, W2, b=None):
    y = X @ W2.T
    return LayerRows(X, y, y if b is None else y + b)


def _linear_pattern(X, W2):
    """a = cov[x, y] / (w^T cov[x, y]) per neuron, from data (MATH.md section 2)."""
    Xc = X - X.mean(axis=0)
    cov_xy = Xc.T @ (Xc @ W2.T) / len(X)  # (D, K)
    return (cov_xy / np.einsum("kd,dk->k", W2, cov_xy)).T  # (K, D)


def test_rho_linear_model_S_a_near_one_and_others_lower():
    X, W2, A_s = _linear_generative(12000, seed=0)
    patterns_split, fit_split, eval_split = X[:4000], X[4000:8000], X[8000:]
    A = _linear_pattern(patterns_split, W2)
    assert np.allclose(A, A_s.T, atol=0.1)  # the pattern recovers the signal direction
    rho = layer_rho(W2, _rows(fit_split, W2), _rows(eval_split, W2), {"A": A})["y"]
    assert rho["S_x"] is None  # degenerate: d = 0
    assert rho["S_a+-"] is None  # no two-component pattern given
    assert np.all(rho["S_a"] > 0.95)
    assert np.all(rho["S_w"] < rho["S_a"] - 0.1)
    assert np.all(rho["S_r"] < rho["S_a"] - 0.1)


def test_rho_true_pattern_is_one_and_filter_rho_matches_closed_form():
    # 2-D toy (MATH.md section 1): x = a_s y + a_d eps, w = (1, -1).
    rng = np.random.default_rng(1)
    y, eps = rng.standard_normal((2, 20000))
    X = np.outer(y, [1.0, 0.0]) + np.outer(eps, [1.0, 1.0])
    W2 = np.array([[1.0, -1.0]])
    fit, ev = _rows(X[:10000], W2), _rows(X[10000:], W2)
    rho = layer_rho(W2, fit, ev, {"A": np.array([[1.0, 0.0]])}, estimators=("S_w", "S_a"))["y"]
    assert rho["S_a"][0] == pytest.approx(1.0, abs=0.03)
    # S_w: d = x - w y / 2 = (y/2 + eps, y/2 + eps): the best v gives corr(y, y/2 + eps).
    assert rho["S_w"][0] == pytest.approx(1 - 0.5 / np.sqrt(1.25), abs=0.03)


def test_neuron_rho_constant_target_is_nan_and_zero_distractor_is_one():
    rng = np.random.default_rng(2)
    d = rng.standard_normal((50, 3))
    t = rng.standard_normal((50, 1))
    assert np.isnan(neuron_rho(d, np.zeros((50, 1)), d, t)[0])
    assert neuron_rho(np.zeros((50, 3)), t, np.zeros((50, 3)), t)[0] == 1.0
    # d that contains t exactly: rho = 0, for both columns of a two-target call.
    d_t = np.column_stack([t[:, 0], rng.standard_normal(50)])
    T = np.column_stack([t[:, 0], 2 * t[:, 0] + 1])
    assert np.allclose(neuron_rho(d_t, T, d_t, T), 0.0, atol=1e-10)


def test_ridge_gcv_is_least_squares_when_data_are_plentiful_and_primal_equals_dual():
    rng = np.random.default_rng(8)
    d = rng.standard_normal((400, 5))
    t = d @ np.array([1.0, -2.0, 0.5, 0.0, 3.0]) + 0.01 * rng.standard_normal(400) + 7.0
    V, lambdas = ridge_gcv(d, t[:, None])
    dc = d - d.mean(axis=0)
    v_ls = np.linalg.lstsq(dc, t - t.mean(), rcond=None)[0]
    assert np.allclose(V[:, 0], v_ls, rtol=1e-4)
    assert lambdas[0] <= 1e-5 * np.mean(np.linalg.eigvalsh(dc.T @ dc))
    # n < D goes through the (n x n) eigendecomposition: the same ridge solution.
    d2 = rng.standard_normal((20, 30))
    t2 = rng.standard_normal((20, 2))
    V2, lam2 = ridge_gcv(d2, t2)
    d2c, t2c = d2 - d2.mean(axis=0), t2 - t2.mean(axis=0)
    for j in range(2):
        ridge = np.linalg.solve(d2c.T @ d2c + lam2[j] * np.eye(30), d2c.T @ t2c[:, j])
        assert lam2[j] > 0  # plain least squares would interpolate: GCV refuses it
        assert np.allclose(V2[:, j], ridge, rtol=1e-6, atol=1e-8)


def test_relu_target_two_component_beats_linear_pattern():
    # x = a_+ relu(s) + a_- min(s, 0) + noise: the output's sign decides the direction.
    rng = np.random.default_rng(3)
    n = 30000
    s = rng.standard_normal(n)
    a_plus, a_minus = np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0])
    noise = np.outer(rng.standard_normal(n), [1.0, 1.0, 2.0])  # w^T (1, 1, 2) = 0
    X = np.outer(np.maximum(s, 0), a_plus) + np.outer(np.minimum(s, 0), a_minus) + noise
    W2 = np.array([[1.0, 1.0, -1.0]])  # y = s exactly
    rows = [_rows(X[i : i + 10000], W2) for i in (0, 10000, 20000)]
    A = _linear_pattern(rows[0].X, W2)
    rho = layer_rho(
        W2,
        rows[1],
        rows[2],
        {"A": A, "A_plus": a_plus[None], "A_minus": a_minus[None]},
        estimators=("S_a", "S_a+-"),
        targets=("relu",),
    )["relu"]
    assert rho["S_a+-"][0] > 0.99
    assert rho["S_a+-"][0] > rho["S_a"][0] + 0.05


def test_distractors_of_the_filter_and_pattern_estimators_are_orthogonal_to_w():
    # w^T u = 1 for S_w, S_a (w^T a = 1), S_r, and both a_+ and a_-: so w^T d = 0.
    rng = np.random.default_rng(4)
    X, W2, _ = _linear_generative(300, seed=4)
    A = _linear_pattern(X, W2)
    rows = _rows(X, W2, b=np.array([0.3, -0.2]))
    patterns = {
        "A": A,
        "A_plus": A,
        "A_minus": A[::-1] * 0 + A,
        "U": rng.standard_normal(W2.shape),
    }
    for name in ("S_w", "S_a", "S_a+-", "S_r"):
        for k in range(2):
            d = distractor(name, rows, W2, np.array([0.3, -0.2]), k, patterns)
            assert d.shape == X.shape
            np.testing.assert_allclose(d @ W2[k], 0.0, atol=1e-9)
    with pytest.raises(ValueError, match="unknown estimator"):
        distractor("S_q", rows, W2, np.zeros(2), 0, patterns)


def _small_cnn(seed=0):
    rng = np.random.default_rng(seed)
    return refnet.Sequential(
        [
            refnet.Conv2D.create(1, 3, 3, padding=1, seed=rng),
            refnet.ReLU(),
            refnet.Flatten(),
            refnet.Dense.create(3 * 4 * 4, 2, seed=rng),
        ]
    )


def test_layer_rows_conv_are_patches_and_sampling_is_bounded():
    net = _small_cnn()
    x = np.random.default_rng(5).random((3, 1, 4, 4))
    rows = layer_rows(net, x, 0)
    assert rows.X.shape == (3 * 16, 9)
    z = net.layers[0](x)  # (3, 3, 4, 4)
    assert np.allclose(rows.z, z.transpose(0, 2, 3, 1).reshape(-1, 3))
    assert layer_rows(net, x, 0, max_rows=10).X.shape == (10, 9)
    dense = layer_rows(net, x, 3)
    assert dense.X.shape == (3, 48)
    with pytest.raises(ValueError, match="not Dense or Conv2D"):
        layer_rows(net, x, 1)


def _pattern_along(W: np.ndarray) -> np.ndarray:
    """The pattern ``a = w / (w^T w)`` per neuron (``w^T a = 1``), in ``W``'s shape."""
    W2 = W.reshape(len(W), -1)  # (K, D)
    return (W2 / np.einsum("kd,kd->k", W2, W2)[:, None]).reshape(W.shape)


def test_quality_on_a_cnn_reports_every_layer_without_nan():
    net = _small_cnn()
    rng = np.random.default_rng(6)
    x_fit, x_eval = rng.random((40, 1, 4, 4)), rng.random((40, 1, 4, 4))

    class P:  # a stand-in for fitted patterns along W: a = w / (w^T w), so S_a = S_w
        def __init__(self):
            self.A = {i: _pattern_along(net.layers[i].W) for i in net.kernel_layers()}
            self.A_minus = self.A

    result = quality(net, {"linear": P(), "relu": P()}, x_fit, x_eval, max_rows=200)
    for target in ("y", "relu"):
        for i in net.kernel_layers():
            row = result.table[target][i]
            assert row["S_x"]["degenerate"]
            for name in ("S_w", "S_a", "S_a+-", "S_r"):
                assert row[name]["mean"] is not None and np.isfinite(row[name]["mean"])
    assert result.per_neuron["y"][0]["S_w"].shape == (3,)
    # With the pattern along w, S_a and S_a+- are S_w, so their rho is S_w's (NaN where the
    # neuron's target is constant).
    for target in ("y", "relu"):
        for i in net.kernel_layers():
            rho = result.per_neuron[target][i]
            np.testing.assert_array_equal(rho["S_a"], rho["S_w"])
            np.testing.assert_array_equal(rho["S_a+-"], rho["S_w"])
    with pytest.raises(ValueError, match="must not be empty"):
        quality(net, {}, x_fit[:0], x_eval)


# --------------------------------------------------------------------------- degradation


def test_aopc_of_a_literal_curve():
    assert aopc(np.array([1.0, 0.5, 0.25, 0.0])) == pytest.approx((0.5 + 0.75 + 1.0) / 3)
    assert aopc(np.array([[1.0, 1.0], [1.0, 0.0]])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="at least 2 points"):
        aopc(np.array([1.0]))


def test_patch_scores_and_means_literal():
    R = np.arange(2 * 4 * 4, dtype=float).reshape(1, 2, 4, 4)
    s = patch_scores(R, 2)  # channel sum, then 2x2 sums
    c = R.sum(axis=1)[0]
    expect = [c[:2, :2].sum(), c[:2, 2:].sum(), c[2:, :2].sum(), c[2:, 2:].sum()]
    assert np.allclose(s[0], expect)
    m = patch_means(R, 2)
    assert np.allclose(m[0, 1, :2, 2:], R[0, 1, :2, 2:].mean())
    assert np.allclose(patch_means(m, 2), m)
    assert list(patch_order(np.array([[1.0, 3.0, 3.0, 2.0]]))[0]) == [1, 2, 3, 0]
    order = random_order(5, 4, seed=0)
    assert np.array_equal(np.sort(order, axis=1), np.tile(np.arange(4), (5, 1)))
    with pytest.raises(ValueError, match="does not tile"):
        patch_scores(np.zeros((1, 1, 5, 4)), 2)


def _one_patch_model():
    """Logit 0 reads a checkerboard in the top-left 2x2 patch of a 4x4 image; logit 1 is 0."""
    W = np.zeros((2, 1, 4, 4))
    W[0, 0, :2, :2] = 5.0 * np.array([[1.0, -1.0], [-1.0, 1.0]])
    return refnet.Sequential([refnet.Flatten(), refnet.Dense(W.reshape(2, 16), np.zeros(2))])


def test_attribution_on_the_used_patch_degrades_faster_than_random():
    net = _one_patch_model()
    rng = np.random.default_rng(7)
    x = 0.5 + 0.1 * rng.random((64, 1, 4, 4))
    x[:, 0, :2, :2] += np.array([[0.4, -0.4], [-0.4, 0.4]])  # the checkerboard: class 0
    R = np.zeros_like(x)
    R[:, :, :2, :2] = 1.0  # points at the patch the model uses
    good = degrade_by_attribution(net, x, R, 2)
    rand = degrade_randomly(net, x, 2, seed=0)
    assert good.probabilities.shape == (64, 5)
    assert good.mean[0] == pytest.approx(rand.mean[0])
    assert good.mean[1] == pytest.approx(0.5, abs=1e-6)  # logit 0 is killed in one step
    assert good.aopc > rand.aopc + 0.05
    # the reverse order (used patch last) degrades slower than random
    worst = degradation_curve(net, x, np.tile([3, 2, 1, 0], (64, 1)), 2)
    assert worst.aopc < rand.aopc


def test_degradation_bad_input():
    net = _one_patch_model()
    x = np.zeros((2, 1, 4, 4))
    with pytest.raises(ValueError, match="order has shape"):
        degradation_curve(net, x, np.zeros((2, 3), dtype=int), 2)
    with pytest.raises(ValueError, match="n_steps"):
        degradation_curve(net, x, np.tile(np.arange(4), (2, 1)), 2, n_steps=9)
    with pytest.raises(ValueError, match="attribution has shape"):
        degrade_by_attribution(net, x, np.zeros((2, 1, 4, 2)), 2)


# ---------------------------------------------------------------------------------- toy


def test_line_angle():
    assert line_angle(np.array([1.0, -1.0]), A_S) == pytest.approx(45.0)
    assert line_angle(np.array([-3.0, 0.0]), A_S) == pytest.approx(0.0)
    assert np.isnan(line_angle(np.zeros(2), A_S))


def test_linear_toy_patternnet_finds_the_signal_and_the_gradient_does_not():
    pytest.importorskip("refnet.attribution")
    pytest.importorskip("refnet.patterns")
    from refnet.evaluate import linear_toy

    toy = linear_toy(n=2000, seed=0)
    assert toy.angle_w == pytest.approx(45.0)
    assert toy.angle_a < 5.0
    assert toy.angles["patternnet"] < 5.0
    assert toy.angles["patternattribution"] < 5.0
    for method in ("gradient", "deconvnet", "guided_backprop"):
        assert toy.angles[method] == pytest.approx(45.0, abs=1e-6)
    assert 5.0 < toy.angles["lrp.epsilon"] < 85.0
    # PatternAttribution conserves the output through one linear neuron: sum = y.
    assert np.allclose(toy.explanations["patternattribution"].sum(axis=1), toy.y, atol=0.1)


def test_quality_and_degradation_are_deterministic_for_a_seed():
    net = _small_cnn(seed=3)
    rng = np.random.default_rng(9)
    x_fit, x_eval = rng.random((30, 1, 4, 4)), rng.random((30, 1, 4, 4))

    class P:
        A = {i: net.layers[i].W for i in net.kernel_layers()}
        A_minus = A

    runs = [quality(net, {"linear": P, "relu": P}, x_fit, x_eval, max_rows=100, seed=4)]
    runs.append(quality(net, {"linear": P, "relu": P}, x_fit, x_eval, max_rows=100, seed=4))
    for t in ("y", "relu"):
        for i in net.kernel_layers():
            for name, values in runs[0].per_neuron[t][i].items():
                np.testing.assert_array_equal(values, runs[1].per_neuron[t][i][name])
    a, b = (degrade_randomly(net, x_eval, 2, seed=5) for _ in range(2))
    np.testing.assert_array_equal(a.probabilities, b.probabilities)
