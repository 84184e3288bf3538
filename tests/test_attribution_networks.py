r"""Equivalences between methods on whole networks (MATH.md section 4; STYLE.md, "Tests").

- LRP-epsilon with epsilon -> 0 on a bias-free ReLU network equals gradient x input and
  conserves the target logit;
- PatternNet with patterns ``A = W`` equals ``z_t`` times the gradient;
- alpha = 1, beta = 0 equals z+ on non-negative inputs without bias;
- without ReLU, gradient, DeConvNet and Guided BackProp coincide;
- integrated gradients is complete up to the trapezoid error;
- float32 runs agree with float64 and keep their dtype.
"""

import numpy as np
import pytest
from attribution_helpers import kernel_weights, linear_cnn, relu_cnn
from conftest import assert_close, seeds
from hypothesis import given, settings

import refnet
from refnet.attribution.methods import METHODS

N = 4


def batch(seed: int, shape=(N, 2, 8, 8)) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape)


def target_logit(net, x, t):
    return net(x)[np.arange(len(x)), t]


@settings(max_examples=10, deadline=None)
@given(seed=seeds)
def test_lrp_zero_equals_gradient_x_input_and_conserves(seed):
    net, x = relu_cnn(seed % 1000), batch(seed)
    t = net(x).argmax(axis=1)
    h = refnet.explain(net, x, "lrp.epsilon", epsilon=0.0)
    assert_close(h, refnet.explain(net, x, "gradient_x_input"))
    assert_close(h.reshape(N, -1).sum(axis=1), target_logit(net, x, t))
    h_small = refnet.explain(net, x, "lrp.epsilon", epsilon=1e-12)
    # epsilon moves each denominator z_j by 1e-12, a relative 1e-12 / |z_j| of the relevance
    # through j; with |z_j| down to ~1e-5 here that is ~1e-7 of the largest entries, so
    # compare against the scale of h, not entry by entry (an entry near 0 may move by 1e-8)
    np.testing.assert_allclose(h_small, h, rtol=0, atol=1e-6 * np.abs(h).max())


@settings(max_examples=10, deadline=None)
@given(seed=seeds)
def test_patternnet_with_a_equal_w_is_logit_times_gradient(seed):
    net, x = relu_cnn(seed % 1000, bias=True), batch(seed)
    t = np.arange(N) % 3
    h = refnet.explain(net, x, "patternnet", target=t, patterns=kernel_weights(net))
    g = refnet.explain(net, x, "gradient", target=t)
    assert_close(h, target_logit(net, x, t)[:, None, None, None] * g)


@settings(max_examples=10, deadline=None)
@given(seed=seeds)
def test_alpha_one_beta_zero_equals_z_plus_on_nonnegative_input(seed):
    net, x = relu_cnn(seed % 1000), np.abs(batch(seed))
    h = refnet.explain(net, x, "lrp.alpha_beta", alpha=1, beta=0)
    assert_close(h, refnet.explain(net, x, "lrp.z_plus"))
    z_t = net(x).max(axis=1)[:, None, None, None]
    assert (h * z_t >= 0).all()  # z+ keeps the sign of the start value z_t in every sample


def test_z_plus_conserves_positive_logit_without_bias():
    net, x = relu_cnn(5), np.abs(batch(5))
    z = net(x)
    t = z.argmax(axis=1)
    h = refnet.explain(net, x, "lrp.z_plus").reshape(N, -1).sum(axis=1)
    z_t = z[np.arange(N), t]
    ok = z_t > 0
    assert ok.any()
    # positive relevance is conserved unless a neuron has no positive input (then dropped)
    assert (h[ok] <= z_t[ok] * (1 + 1e-10)).all() and (h[ok] > 0).all()


def test_z_plus_first_layer_overrides():
    net, x = relu_cnn(6), batch(6)
    low, high = x.min(), x.max()
    e = refnet.Explainer(net, "lrp.z_plus", first_layer="zb", low=low, high=high)
    assert type(e.rules[0][0]).__name__ == "ZBox"
    assert all(type(r).__name__ != "ZBox" for r, _ in e.rules[1:])
    assert np.isfinite(e(x)).all()
    h_w2 = refnet.explain(net, x, "lrp.z_plus", first_layer="w2")
    assert np.isfinite(h_w2).all()
    assert not np.allclose(h_w2, refnet.explain(net, x, "lrp.z_plus"))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_deconvnet_guided_backprop_coincide_without_relu(seed):
    net, x = linear_cnn(seed), batch(seed)
    g = refnet.explain(net, x, "gradient")
    assert_close(refnet.explain(net, x, "deconvnet"), g)
    assert_close(refnet.explain(net, x, "guided_backprop"), g)
    relu_net = relu_cnn(seed)
    assert not np.allclose(
        refnet.explain(relu_net, x, "deconvnet"), refnet.explain(relu_net, x, "gradient")
    )


def test_integrated_gradients_exact_on_a_linear_network():
    """Without ReLU and max-pool the gradient is constant on the path: trapezoid is exact."""
    rng = np.random.default_rng(0)
    net = refnet.Sequential(
        [refnet.Conv2D.create(2, 3, 3, padding=1, seed=rng), refnet.Flatten()]
        + [refnet.Dense.create(3 * 64, 4, seed=rng)]
    )
    x, x0 = batch(1), batch(2)
    t = net(x).argmax(axis=1)
    h = refnet.explain(net, x, "integrated_gradients", baseline=x0, steps=3)
    assert_close(h.reshape(N, -1).sum(axis=1), target_logit(net, x, t) - target_logit(net, x0, t))


@pytest.mark.parametrize("seed", [0, 1])
def test_integrated_gradients_complete_within_trapezoid_error(seed):
    r"""``|sum IG - (f_t(x) - f_t(x_0))| <= h * TV(g)``, ``g(alpha) = grad f_t . (x - x_0)``.

    The trapezoid rule errs on an interval of width ``h = 1/(m-1)`` by at most ``h`` times
    the oscillation of ``g`` there; ``TV(g)`` is estimated on a 16x finer grid.
    """
    net, x = relu_cnn(seed, bias=True), batch(seed)
    t = net(x).argmax(axis=1)
    delta = target_logit(net, x, t) - target_logit(net, 0 * x, t)
    fine = np.linspace(0, 1, 16 * 31 + 1)
    path = (fine[:, None, None, None, None] * x).reshape(-1, *x.shape[1:])  # (F*N, C, H, W)
    grads = refnet.explain(net, path, "gradient", target=np.tile(t, len(fine)))
    g = (grads.reshape(len(fine), N, -1) * x.reshape(1, N, -1)).sum(axis=2)  # (F, N)
    tv = np.abs(np.diff(g, axis=0)).sum(axis=0)  # (N,)
    for steps in (8, 32):
        h = refnet.explain(net, x, "integrated_gradients", steps=steps)
        error = h.reshape(N, -1).sum(axis=1) - delta
        assert (np.abs(error) <= tv / (steps - 1) + 1e-12).all(), (steps, error, tv)
    assert tv.max() > 0  # the path crosses ReLU kinks: the bound is not trivially exact


def test_integrated_gradients_is_trapezoid_average_of_gradients():
    net, x = relu_cnn(3, bias=True), batch(3)
    t = net(x).argmax(axis=1)
    m = 5
    alphas = np.linspace(0, 1, m)
    weights = np.array([0.5, 1, 1, 1, 0.5]) / (m - 1)
    pairs = zip(alphas, weights, strict=True)
    avg = sum(w * refnet.explain(net, a * x, "gradient", target=t) for a, w in pairs)
    assert_close(refnet.explain(net, x, "integrated_gradients", steps=m), x * avg)


def test_smoothgrad_is_seeded_and_zero_noise_is_gradient():
    net, x = relu_cnn(4), batch(4)
    g = refnet.explain(net, x, "gradient")
    assert_close(refnet.explain(net, x, "smoothgrad", samples=3, noise=0.0), g)
    a = refnet.explain(net, x, "smoothgrad", samples=4, seed=7)
    assert_close(refnet.explain(net, x, "smoothgrad", samples=4, seed=7), a)
    assert not np.allclose(a, g)


@pytest.mark.parametrize("method", list(METHODS))
def test_float32_matches_float64(method):
    net64, x64 = relu_cnn(8, bias=True), batch(8)
    net32 = relu_cnn(8, bias=True)
    for layer in net32:
        if hasattr(layer, "b"):
            layer.b = layer.b.astype(np.float32)
    net32 = net32.astype(np.float32)
    options = {"first_layer": "w2"} if method == "lrp.z_plus" else {}
    if method == "smoothgrad":
        options = {"samples": 2, "seed": 0}
    if method == "integrated_gradients":
        options = {"steps": 4}
    t = net64(x64).argmax(axis=1)
    h64 = refnet.explain(net64, x64, method, t, kernel_weights(net64), **options)
    x32 = x64.astype(np.float32)
    h32 = refnet.explain(net32, x32, method, t, kernel_weights(net32), **options)
    assert h32.dtype == np.float32 and h32.shape == x32.shape
    if method == "smoothgrad":  # noise is drawn in each dtype: compare loosely
        np.testing.assert_allclose(h32, h64, rtol=1e-2, atol=1e-2 * np.abs(h64).max())
    else:
        np.testing.assert_allclose(h32, h64, rtol=1e-3, atol=1e-4 * np.abs(h64).max())


def test_every_method_runs_on_a_relu_cnn_and_is_finite():
    net, x = relu_cnn(9, bias=True), batch(9)
    few = {"integrated_gradients": {"steps": 4}, "smoothgrad": {"samples": 3}}
    for method in METHODS:
        h = refnet.explain(net, x, method, patterns=kernel_weights(net), **few.get(method, {}))
        assert h.shape == x.shape and h.dtype == x.dtype and np.isfinite(h).all(), method


def test_fitted_relu_patterns_on_a_cnn():
    """``refnet.fit_patterns`` output drives both pattern methods; other nets are refused."""
    fit_patterns = getattr(refnet, "fit_patterns", None)
    if fit_patterns is None:
        pytest.skip("refnet.fit_patterns is not available yet")
    net, data = relu_cnn(10, bias=True), batch(10, shape=(200, 2, 8, 8))
    fitted = fit_patterns(net, data, kind="relu")
    patterns = fitted[0] if isinstance(fitted, tuple) else fitted
    x = data[:N]
    as_dict = {i: patterns[i] for i in net.kernel_layers()}
    for method in ("patternnet", "patternattribution"):
        h = refnet.explain(net, x, method, patterns=patterns)
        assert h.shape == x.shape and np.isfinite(h).all() and np.abs(h).max() > 0
        assert_close(h, refnet.explain(net, x, method, patterns=as_dict))
    other = relu_cnn(10)
    other.layers[3] = refnet.Conv2D.create(4, 6, (3, 2), padding=(1, 0), seed=0)
    other.layers[6] = refnet.Dense.create(6 * 4 * 3, 7, seed=0)
    with pytest.raises(ValueError):
        refnet.explain(other, x, "patternnet", patterns=patterns)
