"""Bad input raises a ValueError or TypeError that names the layer (or kernel) and the shapes.

Layers: wrong rank, wrong channel count, a kernel larger than the padded input, NaN and
infinity, wrong dtypes (int, complex, float16), a wrong Dense width, bad constructor
arguments. Kernels: hypothesis fuzzes the public wrappers of :mod:`refnet.kernels` with
invalid geometry (kernel too large, mismatched shapes, negative padding, zero stride,
argmax out of range, wrong dtypes); they must raise, never crash or return garbage.
"""

import re

import numpy as np
import pytest
from conftest import conv_geometries, pool_geometries, rng_from, seeds
from hypothesis import given, settings
from hypothesis import strategies as st

from refnet import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential, kernels

FUZZ = settings(max_examples=30, deadline=None)
BAD_DTYPES = (np.int64, np.int32, np.complex128, np.float16, np.bool_)


def raises(exc, who: str, *shapes):
    """``pytest.raises`` whose message must name ``who`` and then every one of ``shapes``."""
    pattern = re.escape(who) + "".join(".*" + re.escape(str(tuple(s))) for s in shapes)
    return pytest.raises(exc, match=pattern)


def conv(C=3, F=2, k=(3, 3), stride=1, padding=0):
    rng = rng_from(0)
    return Conv2D(rng.standard_normal((F, C) + k), rng.standard_normal(F), stride, padding)


# --------------------------------------------------------------------------- layer inputs


@pytest.mark.parametrize("shape", [(3, 5, 5), (2, 3, 5, 5, 1), (5,)])
def test_conv2d_wrong_rank(shape):
    with raises(ValueError, "Conv2D", shape):
        conv().forward(np.zeros(shape))


def test_conv2d_wrong_channel_count():
    x = np.zeros((2, 4, 6, 6))
    with raises(ValueError, "Conv2D", x.shape, (2, 3, 3, 3)):
        conv(C=3).forward(x)


@pytest.mark.parametrize(
    "k, padding, shape",
    [((3, 3), 0, (1, 3, 2, 5)), ((3, 5), (1, 0), (1, 3, 4, 4)), ((5, 5), 1, (1, 3, 2, 2))],
)
def test_conv2d_kernel_larger_than_padded_input(k, padding, shape):
    with raises(ValueError, "Conv2D", k, shape):
        conv(k=k, padding=padding).forward(np.zeros(shape))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize(
    "layer, shape",
    [
        (conv(), (2, 3, 5, 5)),
        (Dense(np.ones((2, 4))), (3, 4)),
        (MaxPool2D(2), (1, 2, 4, 4)),
        (ReLU(), (2, 3)),
        (Flatten(), (2, 3, 2)),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, tuple) else str(v),
)
def test_non_finite_input(layer, shape, bad):
    x = np.zeros(shape)
    x.flat[-1] = bad
    with raises(ValueError, type(layer).__name__, shape):
        layer.forward(x)
    layer.forward(x, check_finite=False)  # the check can be skipped inside a network


@pytest.mark.parametrize("dtype", BAD_DTYPES)
@pytest.mark.parametrize(
    "layer, shape",
    [
        (conv(), (2, 3, 5, 5)),
        (Dense(np.ones((2, 4))), (3, 4)),
        (MaxPool2D(2), (1, 2, 4, 4)),
        (ReLU(), (2, 3)),
        (Flatten(), (2, 3, 2)),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, tuple) else str(v),
)
def test_wrong_dtype(layer, shape, dtype):
    with raises(TypeError, type(layer).__name__, shape):
        layer.forward(np.zeros(shape, dtype=dtype))


@pytest.mark.parametrize("layer", [conv(), Dense(np.ones((2, 4))), MaxPool2D(2), ReLU()])
def test_not_an_array(layer):
    with pytest.raises(TypeError, match=type(layer).__name__):
        layer.forward([[1.0, 2.0, 3.0, 4.0]])


@pytest.mark.parametrize("shape", [(3, 5), (3, 3), (4, 1)])
def test_dense_wrong_width(shape):
    with raises(ValueError, "Dense", shape, (2, 4)):
        Dense(np.ones((2, 4))).forward(np.zeros(shape))


@pytest.mark.parametrize("shape", [(4,), (2, 4, 1), (1, 1, 2, 4)])
def test_dense_wrong_rank(shape):
    with raises(ValueError, "Dense", shape):
        Dense(np.ones((2, 4))).forward(np.zeros(shape))


@pytest.mark.parametrize("shape", [(1, 1, 1, 5), (2, 3, 4, 2), (2, 4, 4)])
def test_maxpool2d_bad_shape(shape):
    with raises(ValueError, "MaxPool2D", shape):
        MaxPool2D(3).forward(np.zeros(shape))


def test_flatten_needs_a_batch_axis():
    with raises(ValueError, "Flatten", (5,)):
        Flatten().forward(np.zeros(5))


def test_sequential_checks_its_input_and_names_the_failing_layer():
    net = Sequential([conv(C=3), ReLU(), Flatten(), Dense(np.ones((2, 18)))])
    x = np.zeros((1, 3, 5, 5))
    x[0, 0, 0, 0] = np.nan
    with raises(ValueError, "Sequential", x.shape):
        net.forward(x)
    with raises(TypeError, "Sequential", x.shape):
        net.forward(x.astype(np.float16))
    with raises(ValueError, "Conv2D", (1, 2, 5, 5)):
        net.forward(np.zeros((1, 2, 5, 5)))
    with raises(ValueError, "Dense", (1, 50)):  # 7x7 input -> 2 * 5 * 5 = 50 features
        net.forward(np.zeros((1, 3, 7, 7)))


# --------------------------------------------------------------------------- backward / adjoint


def test_adjoint_weight_of_the_wrong_shape():
    layer = conv()
    _, cache = layer.forward(np.zeros((1, 3, 5, 5)))
    with raises(ValueError, "Conv2D", (2, 3, 3, 2), (2, 3, 3, 3)):
        layer.adjoint(np.zeros((1, 2, 3, 3)), cache, weight=np.zeros((2, 3, 3, 2)))
    dense = Dense(np.ones((2, 4)))
    _, dcache = dense.forward(np.zeros((1, 4)))
    with raises(ValueError, "Dense", (4, 2), (2, 4)):
        dense.adjoint(np.zeros((1, 2)), dcache, weight=np.ones((4, 2)))
    with raises(ValueError, "Dense", (1, 3)):
        dense.adjoint(np.zeros((1, 3)), dcache)


def test_relu_backward_shape_mismatch():
    _, cache = ReLU().forward(np.ones((2, 3)))
    with raises(ValueError, "ReLU", (3, 2), (2, 3)):
        ReLU().backward(np.ones((3, 2)), cache)


@pytest.mark.parametrize(
    "layer, x_shape, dy_shape",
    [
        (Dense(np.ones((2, 4))), (1, 4), (1, 3)),
        (Dense(np.ones((2, 4))), (1, 4), (3, 2)),
        (conv(), (1, 3, 5, 5), (1, 2, 4, 3)),
        (MaxPool2D(2), (1, 2, 4, 4), (1, 2, 3, 2)),
        (Flatten(), (2, 3, 2), (2, 5)),
        (ReLU(), (2, 3), (3, 2)),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, tuple) else str(v),
)
def test_backward_with_wrong_upstream_shape_names_the_layer(layer, x_shape, dy_shape):
    _, cache = layer.forward(np.ones(x_shape))
    with raises(ValueError, type(layer).__name__, dy_shape):
        layer.backward(np.ones(dy_shape), cache)


# --------------------------------------------------------------------------- constructors


@pytest.mark.parametrize(
    "make, exc, pattern",
    [
        (lambda: Conv2D(np.ones((2, 3, 3))), ValueError, r"Conv2D.*\(2, 3, 3\)"),
        (lambda: Conv2D(np.ones((2, 1, 3, 3)), np.ones(3)), ValueError, r"Conv2D.*\(3,\)"),
        (lambda: Conv2D(np.full((1, 1, 2, 2), np.nan)), ValueError, r"Conv2D.*NaN"),
        (lambda: Conv2D(np.ones((1, 1, 2, 2)), stride=0), ValueError, "Conv2D: stride"),
        (lambda: Conv2D(np.ones((1, 1, 2, 2)), padding=-1), ValueError, "Conv2D: padding"),
        (lambda: Conv2D(np.ones((1, 1, 2, 2)), padding=(1,)), TypeError, "Conv2D: padding"),
        (lambda: Conv2D(np.ones((1, 1, 2, 2), complex)), TypeError, "Conv2D: W"),
        (lambda: Dense(np.ones(4)), ValueError, r"Dense.*\(4,\)"),
        (lambda: Dense(np.ones((2, 4)), np.ones(4)), ValueError, r"Dense.*\(4,\)"),
        (lambda: Dense(np.full((2, 2), np.inf)), ValueError, r"Dense.*infinity"),
        (lambda: MaxPool2D(0), ValueError, "MaxPool2D: size"),
        (lambda: MaxPool2D(2, stride=0), ValueError, "MaxPool2D: stride"),
        (lambda: Sequential([]), ValueError, "Sequential"),
        (lambda: Sequential([ReLU(), "relu"]), TypeError, "Sequential"),
    ],
)
def test_bad_constructor_arguments(make, exc, pattern):
    with pytest.raises(exc, match=pattern):
        make()


# --------------------------------------------------------------------------- kernel fuzzing


def _conv_arrays(g, seed, dtype=np.float64):
    rng = rng_from(seed)
    x = rng.standard_normal(g.x_shape).astype(dtype)
    W = rng.standard_normal(g.w_shape).astype(dtype)
    b = rng.standard_normal(g.F).astype(dtype)
    dy = rng.standard_normal(g.y_shape).astype(dtype)
    cols = rng.standard_normal(g.cols_shape).astype(dtype)
    return x, W, b, dy, cols


def _all_conv_calls(x, W, b, dy, cols, x_shape, w_shape, kh, kw, s, ph, pw):
    """Every conv-family wrapper with the given (possibly invalid) arguments."""
    return {
        "im2col": lambda: kernels.im2col(x, kh, kw, s, ph, pw),
        "col2im": lambda: kernels.col2im(cols, x_shape, kh, kw, s, ph, pw),
        "conv2d_forward": lambda: kernels.conv2d_forward(x, W, b, s, ph, pw),
        "conv2d_backward_input": lambda: kernels.conv2d_backward_input(dy, W, x_shape, s, ph, pw),
        "conv2d_backward_weight": lambda: kernels.conv2d_backward_weight(
            dy, x, w_shape, s, ph, pw
        ),
    }


def _assert_all_raise(calls, exc=(ValueError, TypeError)):
    for name, call in calls.items():
        with pytest.raises(exc, match=name):
            call()


@FUZZ
@given(
    g=conv_geometries(),
    axis=st.sampled_from(["height", "width"]),
    extra=st.integers(1, 4),
    seed=seeds,
)
def test_kernels_reject_a_kernel_larger_than_the_padded_input(g, axis, extra, seed):
    x, _, b, _, _ = _conv_arrays(g, seed)
    if axis == "height":
        kh, kw = g.H + 2 * g.ph + extra, g.kw
    else:
        kh, kw = g.kh, g.W + 2 * g.pw + extra
    W = np.ones((g.F, g.C, kh, kw))
    dy = np.ones((g.N, g.F, 1, 1))
    cols = np.ones((g.N, g.C * kh * kw, 1))
    calls = _all_conv_calls(x, W, b, dy, cols, g.x_shape, W.shape, kh, kw, g.s, g.ph, g.pw)
    for name, call in calls.items():
        with raises(ValueError, name, (kh, kw)):
            call()
    size = (g.H if axis == "height" else g.W) + extra
    with raises(ValueError, "maxpool2d_forward", (size, size)):
        kernels.maxpool2d_forward(x, size, g.s)


@FUZZ
@given(
    g=conv_geometries(),
    bad=st.sampled_from(["ph", "pw", "s"]),
    value=st.integers(-3, -1),
    seed=seeds,
)
def test_kernels_reject_negative_padding_and_nonpositive_stride(g, bad, value, seed):
    x, W, b, dy, cols = _conv_arrays(g, seed)
    geometry = {"s": g.s, "ph": g.ph, "pw": g.pw}
    geometry[bad] = value + 1 if bad == "s" else value  # stride 0 .. -2, padding -1 .. -3
    calls = _all_conv_calls(x, W, b, dy, cols, g.x_shape, g.w_shape, g.kh, g.kw, **geometry)
    _assert_all_raise(calls, ValueError)
    if bad == "s":
        with pytest.raises(ValueError, match="maxpool2d_forward"):
            kernels.maxpool2d_forward(x, 1, geometry["s"])


@FUZZ
@given(g=conv_geometries(), axis=st.integers(0, 2), delta=st.sampled_from([-1, 1, 2]), seed=seeds)
def test_col2im_rejects_mismatched_cols(g, axis, delta, seed):
    shape = list(g.cols_shape)
    shape[axis] += delta
    bad = rng_from(seed).standard_normal(shape)
    with raises(ValueError, "col2im", bad.shape, g.cols_shape):
        kernels.col2im(bad, g.x_shape, *g.geometry)


@FUZZ
@given(
    g=conv_geometries(),
    which=st.sampled_from(["x_channels", "b", "dy_batch", "dy_filters", "dy_spatial"]),
    seed=seeds,
)
def test_conv_kernels_reject_mismatched_shapes(g, which, seed):
    x, W, b, dy, _ = _conv_arrays(g, seed)
    if which == "x_channels":
        x = np.zeros((g.N, g.C + 1, g.H, g.W))
        with raises(ValueError, "conv2d_forward", W.shape):
            kernels.conv2d_forward(x, W, b, g.s, g.ph, g.pw)
        with raises(ValueError, "conv2d_backward_weight", x.shape):
            kernels.conv2d_backward_weight(dy, x, g.w_shape, g.s, g.ph, g.pw)
        with raises(ValueError, "conv2d_backward_input", W.shape):
            kernels.conv2d_backward_input(dy, W, x.shape, g.s, g.ph, g.pw)
        return
    if which == "b":
        b = np.zeros(g.F + 1)
        with raises(ValueError, "conv2d_forward", b.shape):
            kernels.conv2d_forward(x, W, b, g.s, g.ph, g.pw)
        return
    shape = list(g.y_shape)
    shape[{"dy_batch": 0, "dy_filters": 1, "dy_spatial": 2}[which]] += 1
    dy = np.zeros(shape)
    with raises(ValueError, "conv2d_backward_input", dy.shape):
        kernels.conv2d_backward_input(dy, W, g.x_shape, g.s, g.ph, g.pw)
    with raises(ValueError, "conv2d_backward_weight", dy.shape):
        kernels.conv2d_backward_weight(dy, x, g.w_shape, g.s, g.ph, g.pw)


@FUZZ
@given(g=pool_geometries(), offset=st.integers(0, 50), below=st.booleans(), seed=seeds)
def test_maxpool2d_backward_rejects_argmax_out_of_range(g, offset, below, seed):
    rng = rng_from(seed)
    x = rng.standard_normal(g.x_shape)
    y, argmax = kernels.maxpool2d_forward(x, g.size, g.s)
    argmax = argmax.copy()
    where = tuple(rng.integers(0, n) for n in argmax.shape)
    argmax[where] = -1 - offset if below else g.H * g.W + offset
    with raises(ValueError, "maxpool2d_backward", (g.H, g.W)):
        kernels.maxpool2d_backward(np.ones_like(y), argmax, g.x_shape)


@FUZZ
@given(g=pool_geometries(), which=st.sampled_from(["dtype", "shape", "channels"]), seed=seeds)
def test_maxpool2d_backward_rejects_mismatched_argmax(g, which, seed):
    y, argmax = kernels.maxpool2d_forward(rng_from(seed).standard_normal(g.x_shape), g.size, g.s)
    dy, x_shape = np.ones_like(y), g.x_shape
    if which == "dtype":
        argmax = argmax.astype(np.int32)
    elif which == "shape":
        argmax = np.zeros(argmax.shape[:-1] + (argmax.shape[-1] + 1,), dtype=np.int64)
    else:
        x_shape = (g.N, g.C + 1, g.H, g.W)
    with raises(ValueError, "maxpool2d_backward", dy.shape):
        kernels.maxpool2d_backward(dy, argmax, x_shape)


@FUZZ
@given(
    g=conv_geometries(),
    bad_dtype=st.sampled_from(BAD_DTYPES),
    victim=st.integers(0, 2),
    seed=seeds,
)
def test_kernels_reject_wrong_dtypes(g, bad_dtype, victim, seed):
    arrays = list(_conv_arrays(g, seed))  # x, W, b, dy, cols
    # Make x (victim 0), W (1) or dy/cols (2) the wrong dtype; all wrappers must refuse.
    targets = {0: [0], 1: [1], 2: [3, 4]}[victim]
    for t in targets:
        arrays[t] = arrays[t].astype(bad_dtype)
    x, W, b, dy, cols = arrays
    calls = _all_conv_calls(x, W, b, dy, cols, g.x_shape, g.w_shape, *g.geometry)
    affected = {
        0: ["im2col", "conv2d_forward", "conv2d_backward_weight"],
        1: ["conv2d_forward", "conv2d_backward_input"],
        2: ["col2im", "conv2d_backward_input", "conv2d_backward_weight"],
    }[victim]
    _assert_all_raise({k: calls[k] for k in affected}, TypeError)
    if victim == 0:
        with pytest.raises(TypeError, match="maxpool2d_forward"):
            kernels.maxpool2d_forward(x, 1, 1)


@FUZZ
@given(g=conv_geometries(), seed=seeds)
def test_kernels_reject_mixed_float_dtypes(g, seed):
    x, W, b, dy, _ = _conv_arrays(g, seed)
    with pytest.raises(TypeError, match="conv2d_forward"):
        kernels.conv2d_forward(x.astype(np.float32), W, b, g.s, g.ph, g.pw)
    with pytest.raises(TypeError, match="conv2d_backward_input"):
        kernels.conv2d_backward_input(dy, W.astype(np.float32), g.x_shape, g.s, g.ph, g.pw)
    with pytest.raises(TypeError, match="conv2d_backward_weight"):
        kernels.conv2d_backward_weight(dy.astype(np.float32), x, g.w_shape, g.s, g.ph, g.pw)


def test_maxpool2d_backward_rejects_a_non_array_argmax():
    with pytest.raises(TypeError, match="maxpool2d_backward"):
        kernels.maxpool2d_backward(np.zeros((1, 1, 1, 1)), [[[[0]]]], (1, 1, 2, 2))


@pytest.mark.parametrize("rank", [2, 3, 5])
def test_kernels_reject_wrong_rank(rank):
    a = np.zeros((2,) * rank)
    W = np.zeros((1, 2, 1, 1))
    for name, call in {
        "im2col": lambda: kernels.im2col(a, 1, 1),
        "conv2d_forward": lambda: kernels.conv2d_forward(a, W, np.zeros(1)),
        "conv2d_backward_weight": lambda: kernels.conv2d_backward_weight(a, a, (1, 2, 1, 1)),
        "conv2d_backward_input": lambda: kernels.conv2d_backward_input(a, W, (2, 2, 2, 2)),
        "maxpool2d_forward": lambda: kernels.maxpool2d_forward(a, 1, 1),
        "maxpool2d_backward": lambda: kernels.maxpool2d_backward(a, a.astype(int), (2,) * 4),
    }.items():
        with raises(ValueError, name, a.shape):
            call()


@pytest.mark.parametrize("value", [1.5, "2", None])
def test_kernels_reject_non_integer_geometry(value):
    x = np.zeros((1, 1, 4, 4))
    with pytest.raises((ValueError, TypeError), match="im2col"):
        kernels.im2col(x, 2, 2, value, 0, 0)
    with pytest.raises((ValueError, TypeError), match="im2col"):
        kernels.im2col(x, 2, 2, 1, value, 0)
