r"""Explanation methods on linear models: literal values (MATH.md sections 1 and 4).

Worked example of MATH.md section 1: signal direction ``a_s = (1, 0)``, distractor
``a_d = (1, 1)``, so ``w = (1, -1)`` (``w^T a_s = 1``, ``w^T a_d = 0``) and ``y = w^T x``.
The gradient returns the filter ``w``; PatternNet the signal ``a y``; PatternAttribution
``w * a * y``, which sums to ``y``; LRP-epsilon with zero bias ``w * x``.
"""

import numpy as np
import pytest
from conftest import assert_close

import refnet
from refnet import Dense, Sequential
from refnet.attribution.methods import METHODS

a_s = np.array([1.0, 0.0])
a_d = np.array([1.0, 1.0])
w = np.array([1.0, -1.0])


def worked_example(n: int = 6, seed: int = 0):
    """The 2-D model ``y = w^T x`` and data ``x = a_s y + a_d eps``."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=n)
    eps = rng.normal(size=n)
    x = y[:, None] * a_s + eps[:, None] * a_d  # (n, 2)
    net = Sequential([Dense(w[None, :], np.zeros(1))])
    return net, x, y


def test_worked_example_is_consistent():
    net, x, y = worked_example()
    assert w @ a_s == 1 and w @ a_d == 0
    assert_close(net(x)[:, 0], y)


@pytest.mark.parametrize("method", ["gradient", "deconvnet", "guided_backprop"])
def test_filter_methods_return_w_times_start_value(method):
    net, x, _ = worked_example()
    h = refnet.explain(net, x, method)
    assert_close(h, np.tile(w, (len(x), 1)))  # start value 1


def test_patternnet_returns_signal_a_y():
    net, x, y = worked_example()
    h = refnet.explain(net, x, "patternnet", patterns=[a_s[None, :]])
    assert_close(h, y[:, None] * a_s)


def test_patternattribution_returns_w_a_y_and_sums_to_y():
    net, x, y = worked_example()
    h = refnet.explain(net, x, "patternattribution", patterns={0: a_s[None, :]})
    assert_close(h, y[:, None] * w * a_s)
    assert_close(h.sum(axis=1), y)


def test_lrp_epsilon_zero_bias_returns_w_x():
    net, x, _ = worked_example()
    assert_close(refnet.explain(net, x, "lrp.epsilon", epsilon=0.0), w * x)
    h = refnet.explain(net, x, "lrp.epsilon")  # default epsilon 1e-6 shrinks by z / (z + eps)
    np.testing.assert_allclose(h, w * x, rtol=1e-4)


def test_gradient_x_input_returns_w_x():
    net, x, _ = worked_example()
    assert_close(refnet.explain(net, x, "gradient_x_input"), w * x)


def test_multiclass_targets_pick_rows_and_start_values():
    """Several outputs: the row ``W[t]`` times 1 (gradient) or times ``z_t`` (others)."""
    rng = np.random.default_rng(1)
    W, b = rng.normal(size=(4, 5)), rng.normal(size=4)
    net = Sequential([Dense(W, b)])
    x = rng.normal(size=(3, 5))
    z = net(x)
    t = np.array([2, 0, 3])
    assert_close(refnet.explain(net, x, "gradient", target=t), W[t])
    assert_close(refnet.explain(net, x, "gradient", target=1), np.tile(W[1], (3, 1)))
    argmax = z.argmax(axis=1)
    assert_close(refnet.explain(net, x, "gradient"), W[argmax])
    A = rng.normal(size=(4, 5))
    z_t = z[np.arange(3), t][:, None]
    assert_close(refnet.explain(net, x, "patternnet", target=t, patterns=[A]), z_t * A[t])
    h = refnet.explain(net, x, "patternattribution", target=t, patterns=[A])
    assert_close(h, z_t * W[t] * A[t])


def test_lrp_alpha_beta_on_linear_model_literal():
    """Two inputs, one output: positive and negative products normalised separately."""
    net = Sequential([Dense(np.array([[2.0, -1.0]]), np.array([0.0]))])
    x = np.array([[1.0, 1.0]])  # products (2, -1), z = 1, z+ = 2, z- = -1
    h = refnet.explain(net, x, "lrp.alpha_beta", alpha=2, beta=1)
    # R = z = 1: R_1 = 2 * (2/2) * 1 = 2, R_2 = -1 * (-1/-1) * 1 = -1
    assert_close(h, np.array([[2.0, -1.0]]))
    assert_close(refnet.explain(net, x, "lrp.z_plus"), np.array([[1.0, 0.0]]))


def test_explainer_is_reusable_and_equals_explain():
    net, x, _ = worked_example()
    e = refnet.Explainer(net, "patternattribution", patterns=[a_s[None, :]])
    assert_close(e(x), refnet.explain(net, x, "patternattribution", patterns=[a_s[None, :]]))
    assert_close(e(x[:2]), refnet.explain(net, x[:2], "patternattribution", patterns=[a_s[None]]))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_and_shape_preserved(dtype):
    net, x, _ = worked_example()
    x = x.astype(dtype)
    for method in METHODS:
        h = refnet.explain(net, x, method, patterns=[a_s[None, :]])
        assert h.dtype == dtype and h.shape == x.shape


def test_normalize_per_sample_by_max_abs():
    h = np.array([[1.0, -4.0, 2.0], [0.0, 0.0, 0.0], [0.5, 0.25, -0.1]])
    out = refnet.normalize(h)
    assert_close(out, np.array([[0.25, -1.0, 0.5], [0.0, 0.0, 0.0], [1.0, 0.5, -0.2]]))
    assert np.isfinite(out).all()
    h32 = np.zeros((2, 1, 3, 3), dtype=np.float32)
    h32[0, 0, 1, 1] = -3
    out32 = refnet.normalize(h32)
    assert out32.dtype == np.float32 and out32.shape == h32.shape
    assert out32[0, 0, 1, 1] == -1 and not out32[1].any()


def test_normalize_rejects_nan():
    with pytest.raises(ValueError, match="normalize"):
        refnet.normalize(np.array([[np.nan, 1.0]]))


def test_fitted_patterns_integration():
    """With ``refnet.fit_patterns`` (issue 3): PatternAttribution sums to ``y`` (w^T a = 1)
    and PatternNet recovers the signal ``a_s y`` up to sampling error."""
    fit_patterns = getattr(refnet, "fit_patterns", None)
    if fit_patterns is None:
        pytest.skip("refnet.fit_patterns is not available yet")
    net, x, y = worked_example(n=20000, seed=3)
    fitted = fit_patterns(net, x, kind="linear")
    patterns = fitted[0] if isinstance(fitted, tuple) else fitted
    h = refnet.explain(net, x[:50], "patternattribution", patterns=patterns)
    assert_close(h.sum(axis=1), y[:50])
    s = refnet.explain(net, x[:50], "patternnet", patterns=patterns)
    np.testing.assert_allclose(s, y[:50, None] * a_s, atol=0.05 * np.abs(y[:50]).max())
