"""AvgPool2D, GlobalAvgPool2D, ZeroPad2D, ChannelAffine: kernels, adjoints, rules, save/load.

- the compiled average-pooling kernel equals its NumPy twin (and a naive loop) on
  geometry hypothesis builds, each filling an ``out`` prefilled with NaN;
- every layer's backward is the adjoint of its forward (``<f(x), r> = <x, f^T(r)>``) and
  passes a directional finite-difference check in float64;
- dtypes are preserved; bad input raises a ValueError naming the layer;
- all 11 explanation methods run through the new layers, and on a network whose only
  non-linear part is the ReLU the gradient-family methods give the same result as the
  explicit dense-matrix adjoint;
- ``refnet.save`` / ``refnet.load`` round-trip them.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refnet
from refnet import kernels
from refnet.attribution.methods import METHODS
from refnet.kernels import reference
from refnet.layers import AvgPool2D, ChannelAffine, GlobalAvgPool2D, ZeroPad2D

FAST = settings(max_examples=25, deadline=None)
#: Few points for the averaging methods: the tests check that they run, not their accuracy.
QUICK = {"integrated_gradients": {"steps": 4}, "smoothgrad": {"samples": 3, "seed": 0}}


@st.composite
def pool_geometry(draw):
    """A valid average-pooling geometry: the window always fits the input."""
    kh, kw = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    sh, sw = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    H, W = kh + draw(st.integers(0, 6)), kw + draw(st.integers(0, 6))
    N, C = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    return (N, C, H, W), (kh, kw), (sh, sw)


def naive_avgpool(x, k, s):
    N, C, H, W = x.shape
    Ho, Wo = (H - k[0]) // s[0] + 1, (W - k[1]) // s[1] + 1
    y = np.zeros((N, C, Ho, Wo))
    for i in range(Ho):
        for j in range(Wo):
            window = x[:, :, i * s[0] : i * s[0] + k[0], j * s[1] : j * s[1] + k[1]]
            y[:, :, i, j] = window.mean(axis=(2, 3))
    return y


@FAST
@given(pool_geometry(), st.sampled_from([np.float32, np.float64]), st.integers(0, 2**31))
def test_avgpool_kernel_equals_twin_and_naive(geometry, dtype, seed):
    shape, (kh, kw), (sh, sw) = geometry
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    y = kernels.avgpool2d_forward(x, kh, kw, sh, sw)
    out = np.full(y.shape, np.nan, dtype=dtype)
    reference.avgpool2d_forward(x, kh, kw, sh, sw, out)
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(y, out, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(
        y, naive_avgpool(x.astype(np.float64), (kh, kw), (sh, sw)), rtol=rtol, atol=rtol
    )
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = kernels.avgpool2d_backward(dy, shape, kh, kw, sh, sw)
    out = np.full(shape, np.nan, dtype=dtype)
    reference.avgpool2d_backward(dy, kh, kw, sh, sw, out)
    np.testing.assert_allclose(dx, out, rtol=rtol, atol=rtol)
    assert y.dtype == dx.dtype == dtype
    # the backward is the forward's adjoint: <avgpool(x), dy> = <x, avgpool^T(dy)>
    lhs, rhs = np.vdot(y.astype(np.float64), dy), np.vdot(x.astype(np.float64), dx)
    assert np.isclose(lhs, rhs, rtol=100 * rtol, atol=100 * rtol * np.abs(dy).sum())
    if kernels.backend() == "cython":  # the compiled module itself, NaN-prefilled out
        from refnet.kernels import _avgpool

        out = np.full(y.shape, np.nan, dtype=dtype)
        _avgpool.avgpool2d_forward(x, kh, kw, sh, sw, out)
        np.testing.assert_allclose(out, y, rtol=rtol, atol=rtol)
        out = np.full(shape, np.nan, dtype=dtype)
        _avgpool.avgpool2d_backward(dy, kh, kw, sh, sw, out)
        np.testing.assert_allclose(out, dx, rtol=rtol, atol=rtol)


@pytest.mark.parametrize("shape", [(2, 3, 8, 8), (1, 2, 7, 9), (3, 1, 2, 2)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_the_2x2_stride_2_path_equals_the_twin(shape, dtype):
    """The compiled kernel has its own loop for 2x2 windows with stride 2 (odd sizes too)."""
    x = np.random.default_rng(8).standard_normal(shape).astype(dtype)
    y = kernels.avgpool2d_forward(x, 2, 2, 2, 2)
    out = np.full(y.shape, np.nan, dtype=dtype)
    reference.avgpool2d_forward(x, 2, 2, 2, 2, out)
    np.testing.assert_array_equal(y, out)  # the same summation order: bit for bit
    np.testing.assert_allclose(
        y,
        naive_avgpool(x.astype(np.float64), (2, 2), (2, 2)),
        rtol=1e-5 if dtype == np.float32 else 1e-14,
        atol=1e-6 if dtype == np.float32 else 1e-14,
    )


def _layers():
    rng = np.random.default_rng(1)
    return [
        AvgPool2D(2),
        AvgPool2D((3, 2), (1, 2)),
        GlobalAvgPool2D(),
        GlobalAvgPool2D(keepdims=True),
        ZeroPad2D((1, 0, 2, 1)),
        ChannelAffine(rng.uniform(0.5, 2, 3), rng.standard_normal(3)),
    ]


@pytest.mark.parametrize("layer", _layers(), ids=lambda layer: repr(layer))
def test_backward_is_the_adjoint_and_matches_finite_differences(layer):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 6, 5))
    y, cache = layer.forward(x)
    r = rng.standard_normal(y.shape)
    dx, _ = layer.backward(r, cache)
    linear_part = y - layer.forward(np.zeros_like(x))[0]  # the affine layer's shift removed
    assert np.isclose(np.vdot(linear_part, r), np.vdot(x, dx), rtol=1e-12)
    v = rng.standard_normal(x.shape)
    h = 1e-6
    fd = (np.vdot(layer(x + h * v), r) - np.vdot(layer(x - h * v), r)) / (2 * h)
    assert np.isclose(fd, np.vdot(dx, v), rtol=1e-7)


@pytest.mark.parametrize("layer", _layers(), ids=lambda layer: repr(layer))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(layer, dtype):
    x = np.random.default_rng(3).standard_normal((2, 3, 6, 5)).astype(dtype)
    y, cache = layer.forward(x)
    dx, _ = layer.backward(np.ones_like(y), cache)
    assert y.dtype == dx.dtype == dtype


def test_literal_values():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    np.testing.assert_array_equal(AvgPool2D(2)(x)[0, 0], [[2.5, 4.5], [10.5, 12.5]])
    assert GlobalAvgPool2D()(x).tolist() == [[7.5]]
    assert GlobalAvgPool2D(keepdims=True)(x).shape == (1, 1, 1, 1)
    padded = ZeroPad2D((1, 0, 0, 2))(x)
    assert padded.shape == (1, 1, 5, 6) and padded[0, 0, 0].sum() == 0
    np.testing.assert_array_equal(padded[0, 0, 1:, :4], x[0, 0])
    gamma, beta, mu, var, eps = (
        np.array([2.0]),
        np.array([1.0]),
        np.array([3.0]),
        np.array([0.25]),
        0.75,
    )
    bn = ChannelAffine.from_batchnorm(gamma, beta, mu, var, eps)
    assert bn.scale[0] == 2.0 and bn.shift[0] == 1.0 - 3.0 * 2.0  # s = 2 / sqrt(1) = 2
    np.testing.assert_array_equal(bn(np.array([[4.0]])), [[2.0 * 4.0 - 5.0]])


@pytest.mark.parametrize(
    "layer, shape, message",
    [
        (AvgPool2D(3), (1, 1, 2, 2), "AvgPool2D: window 3x3 is larger"),
        (AvgPool2D(2), (1, 4, 4), "AvgPool2D: input must have 4 dimensions"),
        (GlobalAvgPool2D(), (2, 3), "GlobalAvgPool2D: input must have 4 dimensions"),
        (ZeroPad2D((1, 1, 1, 1)), (2, 3), "ZeroPad2D: input must have 4 dimensions"),
        (ChannelAffine(np.ones(3), np.zeros(3)), (2, 4, 2, 2), "ChannelAffine: input has shape"),
    ],
)
def test_bad_input_names_the_layer(layer, shape, message):
    with pytest.raises(ValueError, match=message):
        layer.forward(np.zeros(shape))


def test_bad_construction():
    with pytest.raises(ValueError, match="AvgPool2D: size"):
        AvgPool2D(0)
    with pytest.raises(ValueError, match="ZeroPad2D: padding"):
        ZeroPad2D((1, 2))
    with pytest.raises(ValueError, match="ChannelAffine: shift"):
        ChannelAffine(np.ones(3), np.zeros(2))
    with pytest.raises(ValueError, match="var \\+ eps must be positive"):
        ChannelAffine.from_batchnorm(np.ones(1), np.zeros(1), np.zeros(1), np.zeros(1), 0.0)


def small_net(dtype=np.float64):
    rng = np.random.default_rng(4)
    return refnet.Sequential(
        [
            ChannelAffine(rng.uniform(0.5, 2, 2), rng.standard_normal(2)),
            ZeroPad2D((0, 1, 1, 0)),
            refnet.Conv2D(rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3), 1, 1),
            refnet.ReLU(),
            AvgPool2D(2),
            refnet.Conv2D(rng.standard_normal((4, 3, 2, 2)), rng.standard_normal(4)),
            refnet.ReLU(),
            GlobalAvgPool2D(),
            refnet.Dense(rng.standard_normal((3, 4)), rng.standard_normal(3)),
        ]
    ).astype(dtype)


def test_every_method_and_fit_patterns_run_through_the_new_layers():
    net = small_net()
    x = np.random.default_rng(5).standard_normal((16, 2, 7, 7))
    patterns = refnet.fit_patterns(net, x, batch_size=8)
    assert sorted(patterns.A) == [2, 5, 8]
    for method in METHODS:
        h = refnet.explain(net, x[:3], method, patterns=patterns, **QUICK.get(method, {}))
        assert h.shape == x[:3].shape and np.isfinite(h).all(), method


def test_gradient_through_the_new_layers_equals_the_network_backward():
    net = small_net()
    x = np.random.default_rng(6).standard_normal((3, 2, 7, 7))
    logits, caches = net.forward(x)
    dy = np.zeros_like(logits)
    dy[np.arange(3), logits.argmax(1)] = 1
    grad, _ = net.backward(dy, caches)
    np.testing.assert_allclose(refnet.explain(net, x, method="gradient"), grad, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_save_load_roundtrip_of_the_new_layers(tmp_path, dtype):
    net = small_net(dtype)
    path = tmp_path / "net.npz"
    refnet.save(net, path)
    back = refnet.load(path)
    assert [type(a) for a in back] == [type(b) for b in net]
    assert [a.config() for a in back] == [b.config() for b in net]
    x = np.random.default_rng(7).standard_normal((2, 2, 7, 7)).astype(dtype)
    np.testing.assert_array_equal(back(x), net(x))
    assert back.dtype == dtype
