r"""Layers and networks: finite differences, adjoints, conv-as-dense, dtype preservation.

The gradient checks are directional central differences in float64: for a scalar loss
``L = sum(out * d)`` with a random direction ``d``, and a random perturbation ``v`` of the
input (or of a parameter),

.. math:: \frac{L(x + \epsilon v) - L(x - \epsilon v)}{2 \epsilon} \approx
          \langle \nabla_x L, v \rangle, \qquad \epsilon = 10^{-6}.

ReLU inputs are kept away from 0 and max-pool inputs free of ties, so that ``L`` is smooth
around the point where it is differentiated.
"""

import naive
import numpy as np
import pytest
from conftest import (
    as_layout,
    assert_close,
    away_from_zero,
    conv_geometries,
    dtypes,
    layouts,
    pool_geometries,
    rng_from,
    seeds,
    tie_free,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from refnet import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential, kernels

EPS = 1e-6
FD_RTOL = 1e-6
FAST = settings(max_examples=25, deadline=None)


def assert_directional(loss, analytic: float, eps: float = EPS) -> None:
    """``(loss(+eps) - loss(-eps)) / (2 eps) == analytic`` to a relative ``FD_RTOL``."""
    numeric = (loss(eps) - loss(-eps)) / (2 * eps)
    assert abs(numeric - analytic) <= FD_RTOL * max(1.0, abs(analytic)), (numeric, analytic)


def check_layer_gradients(layer, x, rng):
    """Directional FD checks of ``layer`` w.r.t. its input and every parameter."""
    y, cache = layer.forward(x)
    d = rng.standard_normal(y.shape)  # the loss is sum(out * d)
    dx, grads = layer.backward(d, cache)
    assert dx.shape == x.shape
    v = rng.standard_normal(x.shape)
    assert_directional(lambda e: np.sum(layer.forward(x + e * v)[0] * d), np.sum(dx * v))
    assert set(grads) == set(layer.param_names)
    for name in layer.param_names:
        p0 = getattr(layer, name).copy()
        assert grads[name].shape == p0.shape
        V = rng.standard_normal(p0.shape)

        def loss(e, name=name, p0=p0, V=V):
            setattr(layer, name, p0 + e * V)
            try:
                return np.sum(layer.forward(x)[0] * d)
            finally:
                setattr(layer, name, p0)

        assert_directional(loss, np.sum(grads[name] * V))


# --------------------------------------------------------------------------- per layer


@FAST
@given(n=st.integers(1, 5), n_in=st.integers(1, 8), n_out=st.integers(1, 6), seed=seeds)
def test_dense_finite_differences(n, n_in, n_out, seed):
    rng = rng_from(seed)
    layer = Dense(rng.standard_normal((n_out, n_in)), rng.standard_normal(n_out))
    check_layer_gradients(layer, rng.standard_normal((n, n_in)), rng)


@FAST
@given(g=conv_geometries(), seed=seeds)
def test_conv2d_finite_differences(g, seed):
    rng = rng_from(seed)
    layer = Conv2D(rng.standard_normal(g.w_shape), rng.standard_normal(g.F), g.s, (g.ph, g.pw))
    check_layer_gradients(layer, rng.standard_normal(g.x_shape), rng)


@FAST
@given(shape=st.lists(st.integers(1, 5), min_size=2, max_size=4), seed=seeds)
def test_relu_finite_differences(shape, seed):
    rng = rng_from(seed)
    check_layer_gradients(ReLU(), away_from_zero(rng, tuple(shape)), rng)


@FAST
@given(g=pool_geometries(), seed=seeds)
def test_maxpool2d_finite_differences(g, seed):
    rng = rng_from(seed)
    check_layer_gradients(MaxPool2D(g.size, g.s), tie_free(rng, g.x_shape), rng)


@FAST
@given(shape=st.lists(st.integers(1, 4), min_size=2, max_size=5), seed=seeds)
def test_flatten_finite_differences(shape, seed):
    rng = rng_from(seed)
    check_layer_gradients(Flatten(), rng.standard_normal(tuple(shape)), rng)


# --------------------------------------------------------------------------- whole network


def small_net(rng, dtype=np.float64):
    """Conv-ReLU-MaxPool-Conv-ReLU-Flatten-Dense on (N, 2, 9, 8) inputs, random biases."""
    conv1 = Conv2D(rng.standard_normal((3, 2, 3, 2)) * 0.5, rng.standard_normal(3), 1, (1, 0))
    conv2 = Conv2D(rng.standard_normal((4, 3, 2, 3)) * 0.5, rng.standard_normal(4), 2, (0, 1))
    # (N, 2, 9, 8) -> conv1 (N, 3, 9, 7) -> pool(3, 2) (N, 3, 4, 3) -> conv2 (N, 4, 2, 2)
    dense = Dense(rng.standard_normal((5, 16)), rng.standard_normal(5))
    layers = [conv1, ReLU(), MaxPool2D(3, 2), conv2, ReLU(), Flatten(), dense]
    return Sequential(layers).astype(dtype)


def _assert_smooth_at(net, x, margin=1e-4):
    """Preconditions of the FD check: every ReLU input is at least ``margin`` away from 0,
    and in every max-pool window the maximum beats the runner-up by ``margin`` (ties among
    zeros that a ReLU produced are harmless: those units get no gradient either way)."""
    for layer in net:
        if isinstance(layer, ReLU):
            assert np.abs(x).min() > margin, "a ReLU input is too close to 0 for this seed"
        if isinstance(layer, MaxPool2D):
            k, s = layer.size, layer.stride
            N, C = x.shape[:2]
            windows = kernels.im2col(x, k, k, s).reshape(N, C, k * k, -1)  # (N, C, k*k, P)
            top2 = np.sort(windows, axis=2)[:, :, -2:]  # (N, C, 2, P)
            gap = top2[:, :, 1] - top2[:, :, 0]  # (N, C, P)
            assert gap[top2[:, :, 1] > 0].min() > margin, "a max-pool window nearly ties"
        x = layer(x)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_network_finite_differences(seed):
    rng = rng_from(seed)
    net = small_net(rng)
    x = rng.standard_normal((3, 2, 9, 8))
    logits, caches = net.forward(x)
    assert logits.shape == (3, 5) == net.output_shape(x.shape)
    _assert_smooth_at(net, x)
    d = rng.standard_normal(logits.shape)
    dx, grads = net.backward(d, caches)
    assert [i for i, g in enumerate(grads) if g] == net.kernel_layers() == [0, 3, 6]

    v = rng.standard_normal(x.shape)
    assert_directional(lambda e: np.sum(net(x + e * v) * d), np.sum(dx * v))
    for i in net.kernel_layers():
        layer = net[i]
        for name in ("W", "b"):
            p0 = getattr(layer, name).copy()
            V = rng.standard_normal(p0.shape)

            def loss(e, layer=layer, name=name, p0=p0, V=V):
                setattr(layer, name, p0 + e * V)
                try:
                    return np.sum(net(x) * d)
                finally:
                    setattr(layer, name, p0)

            assert_directional(loss, np.sum(grads[i][name] * V))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_network_preserves_dtype_end_to_end(dtype):
    rng = rng_from(3)
    net = small_net(rng, dtype)
    assert net.dtype == dtype
    x = rng.standard_normal((2, 2, 9, 8)).astype(dtype)
    logits, caches = net.forward(x)
    assert logits.dtype == dtype
    dx, grads = net.backward(np.ones_like(logits), caches)
    assert dx.dtype == dtype
    for i in net.kernel_layers():
        assert grads[i]["W"].dtype == dtype and grads[i]["b"].dtype == dtype
    for layer, cache in zip(net, caches, strict=True):
        y = layer.forward(x)[0]
        assert y.dtype == dtype, type(layer).__name__
        if isinstance(layer, (Conv2D, Dense)):
            assert layer.adjoint(np.ones(y.shape, dtype), cache).dtype == dtype
        x = y


def test_float32_network_agrees_with_float64():
    net64 = small_net(rng_from(4), np.float64)
    net32 = small_net(rng_from(4), np.float32)
    x = rng_from(5).standard_normal((2, 2, 9, 8))
    y64, c64 = net64.forward(x)
    y32, c32 = net32.forward(x.astype(np.float32))
    assert_close(y32, y64)
    dy = rng_from(6).standard_normal(y64.shape)
    dx64, g64 = net64.backward(dy, c64)
    dx32, g32 = net32.backward(dy.astype(np.float32), c32)
    assert_close(dx32, dx64)
    for i in net64.kernel_layers():
        assert_close(g32[i]["W"], g64[i]["W"])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float64_layer_on_float32_input_computes_in_float32(dtype):
    rng = rng_from(7)
    conv = Conv2D(rng.standard_normal((2, 1, 2, 2)))  # float64 weights
    dense = Dense(rng.standard_normal((3, 4)))
    x = rng.standard_normal((1, 1, 3, 3)).astype(dtype)
    y, cache = conv.forward(x)
    dx, grads = conv.backward(np.ones_like(y), cache)
    assert y.dtype == dx.dtype == grads["W"].dtype == grads["b"].dtype == dtype
    z, dcache = dense.forward(x[:, 0, 0, :].repeat(2, axis=1)[:, :4])
    dz, dgrads = dense.backward(np.ones_like(z), dcache)
    assert z.dtype == dz.dtype == dgrads["W"].dtype == dtype


# --------------------------------------------------------------------------- layers vs oracle


@FAST
@given(g=conv_geometries(), dtype=dtypes, layout=layouts, seed=seeds)
def test_conv2d_layer_matches_naive_loops(g, dtype, layout, seed):
    rng = rng_from(seed)
    W = rng.standard_normal(g.w_shape).astype(dtype)
    b = rng.standard_normal(g.F).astype(dtype)
    layer = Conv2D(W, b, g.s, (g.ph, g.pw))
    x = rng.standard_normal(g.x_shape).astype(dtype)
    y, cache = layer.forward(as_layout(x, layout))
    assert y.shape == g.y_shape == layer.output_shape(g.x_shape)
    assert_close(y, naive.conv2d_forward(x, W, b, g.s, g.ph, g.pw))
    dy = rng.standard_normal(g.y_shape).astype(dtype)
    dx, grads = layer.backward(as_layout(dy, layout), cache)
    assert_close(dx, naive.conv2d_backward_input(dy, W, g.x_shape, g.s, g.ph, g.pw))
    assert_close(grads["W"], naive.conv2d_backward_weight(dy, x, g.w_shape, g.s, g.ph, g.pw))
    assert_close(grads["b"], dy.astype(np.float64).sum(axis=(0, 2, 3)))


@FAST
@given(g=pool_geometries(), seed=seeds)
def test_maxpool2d_layer_matches_naive_loops(g, seed):
    rng = rng_from(seed)
    x = rng.integers(-2, 3, size=g.x_shape).astype(np.float64)  # many ties
    layer = MaxPool2D(g.size, g.s)
    y, cache = layer.forward(x)
    y_naive, arg_naive = naive.maxpool2d_forward(x, g.size, g.s)
    np.testing.assert_array_equal(y, y_naive)
    np.testing.assert_array_equal(cache.argmax, arg_naive)
    assert y.shape == layer.output_shape(g.x_shape)
    dy = rng.standard_normal(y.shape)
    dx, grads = layer.backward(dy, cache)
    assert grads == {}
    assert_close(dx, naive.maxpool2d_backward(dy, arg_naive, g.x_shape))


@FAST
@given(g=conv_geometries(), seed=seeds)
def test_conv2d_is_dense_on_every_patch(g, seed):
    r"""``z_n = W.reshape(F, -1) @ im2col(x)_n + b`` (MATH.md section 0, conv as dense)."""
    rng = rng_from(seed)
    layer = Conv2D(rng.standard_normal(g.w_shape), rng.standard_normal(g.F), g.s, (g.ph, g.pw))
    x = rng.standard_normal(g.x_shape)
    cols = naive.im2col(x, *g.geometry)  # (N, C*kh*kw, H'*W')
    W2 = layer.weight_matrix()  # (F, C*kh*kw)
    expected = (np.matmul(W2, cols) + layer.b[:, None]).reshape(g.y_shape)  # (N, F, H', W')
    assert_close(layer(x), expected)


# --------------------------------------------------------------------------- adjoints


@FAST
@given(g=conv_geometries(), seed=seeds)
def test_conv2d_adjoint_with_swapped_weight(g, seed):
    r"""``<conv_A(x), r> = <x, Conv2D(W).adjoint(r, weight=A)>`` for any ``A`` of W's shape."""
    rng = rng_from(seed)
    layer = Conv2D(rng.standard_normal(g.w_shape), rng.standard_normal(g.F), g.s, (g.ph, g.pw))
    A = rng.standard_normal(g.w_shape)
    x = rng.standard_normal(g.x_shape)
    _, cache = layer.forward(x)
    r = rng.standard_normal(g.y_shape)
    adj = layer.adjoint(r, cache, weight=A)
    assert_close(adj, naive.conv2d_backward_input(r, A, g.x_shape, g.s, g.ph, g.pw))
    conv_A = Conv2D(A, None, g.s, (g.ph, g.pw))  # bias-free: a linear map
    lhs, rhs = np.sum(conv_A(x) * r), np.sum(x * adj)
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10)
    # The default weight is W itself, i.e. the input gradient.
    assert_close(layer.adjoint(r, cache), layer.backward(r, cache)[0])


@FAST
@given(n=st.integers(1, 4), n_in=st.integers(1, 7), n_out=st.integers(1, 6), seed=seeds)
def test_dense_adjoint_with_swapped_weight(n, n_in, n_out, seed):
    rng = rng_from(seed)
    layer = Dense(rng.standard_normal((n_out, n_in)), rng.standard_normal(n_out))
    A = rng.standard_normal((n_out, n_in))
    x = rng.standard_normal((n, n_in))
    _, cache = layer.forward(x)
    r = rng.standard_normal((n, n_out))
    adj = layer.adjoint(r, cache, weight=A)
    assert_close(adj, r @ A)
    lhs, rhs = np.sum(Dense(A)(x) * r), np.sum(x * adj)
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10)
    np.testing.assert_array_equal(layer.weight_matrix(), layer.W)


# --------------------------------------------------------------------------- literal cases


def test_relu_derivative_at_zero_is_zero():
    x = np.array([[-1.0, 0.0, 2.0]])
    y, cache = ReLU().forward(x)
    np.testing.assert_array_equal(y, [[0.0, 0.0, 2.0]])
    dx, grads = ReLU().backward(np.array([[5.0, 6.0, 7.0]]), cache)
    np.testing.assert_array_equal(dx, [[0.0, 0.0, 7.0]])
    assert grads == {}


def test_flatten_is_c_order_and_backward_restores_shape():
    x = np.arange(24.0).reshape(2, 3, 2, 2)
    y, cache = Flatten().forward(x)
    np.testing.assert_array_equal(y, [np.arange(12.0), np.arange(12.0, 24.0)])
    dx, _ = Flatten().backward(y * 2, cache)
    np.testing.assert_array_equal(dx, x * 2)


def test_dense_literal():
    layer = Dense(np.array([[1.0, 2.0], [0.0, -1.0], [3.0, 1.0]]), np.array([0.5, 0.0, -1.0]))
    y, cache = layer.forward(np.array([[1.0, 1.0]]))
    np.testing.assert_array_equal(y, [[3.5, -1.0, 3.0]])
    dx, grads = layer.backward(np.array([[1.0, 0.0, 2.0]]), cache)
    np.testing.assert_array_equal(dx, [[7.0, 4.0]])
    np.testing.assert_array_equal(grads["W"], [[1.0, 1.0], [0.0, 0.0], [2.0, 2.0]])
    np.testing.assert_array_equal(grads["b"], [1.0, 0.0, 2.0])


def test_network_backward_equals_layer_by_layer_chain():
    rng = rng_from(8)
    net = small_net(rng)
    x = rng.standard_normal((2, 2, 9, 8))
    logits, caches = net.forward(x)
    d = rng.standard_normal(logits.shape)
    dx, _ = net.backward(d, caches)
    for layer, cache in zip(reversed(net.layers), reversed(caches), strict=True):
        d, _ = layer.backward(d, cache)
    np.testing.assert_array_equal(dx, d)


def test_kernels_backend_reported():
    assert kernels.backend() in ("cython", "numpy")
