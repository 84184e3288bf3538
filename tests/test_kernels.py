"""Kernels: naive loops = NumPy reference = active backend, adjoint identities, max-pool rules.

Three tiers are compared on geometry hypothesis builds:

1. the naive-loop oracle (:mod:`naive`),
2. the NumPy twin ``refnet.kernels.reference.<fn>`` called with a preallocated ``out``,
3. the public wrapper ``refnet.kernels.<fn>`` (Cython when compiled), fed C-contiguous,
   Fortran-ordered, sliced and transposed inputs.

When the compiled backend is active, ``refnet.kernels._impl`` is also held equal to the
reference directly, each filling an ``out`` prefilled with NaN (so an element left
unwritten fails the test).
"""

import dataclasses

import naive
import numpy as np
import pytest
from conftest import (
    as_layout,
    assert_close,
    conv_geometries,
    dtypes,
    layouts,
    pool_geometries,
    rng_from,
    seeds,
    tie_free,
)
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from refnet import kernels
from refnet.kernels import reference

FAST = settings(max_examples=60, deadline=None)
compiled_only = pytest.mark.skipif(
    kernels.backend() != "cython", reason="compiled kernels not active"
)


def _nan_out(shape, dtype):
    return np.full(shape, np.nan, dtype=dtype)


def _data(seed, g, dtype):
    """x, W, b, dy for a conv geometry, in ``dtype``."""
    rng = rng_from(seed)
    x = rng.standard_normal(g.x_shape).astype(dtype)
    W = rng.standard_normal(g.w_shape).astype(dtype)
    b = rng.standard_normal(g.F).astype(dtype)
    dy = rng.standard_normal(g.y_shape).astype(dtype)
    return x, W, b, dy


# --------------------------------------------------------------------------- three tiers


@FAST
@given(g=conv_geometries(), dtype=dtypes, layout=layouts, seed=seeds)
def test_im2col_three_tiers(g, dtype, layout, seed):
    x = _data(seed, g, dtype)[0]
    expected = naive.im2col(x, *g.geometry)
    ref = _nan_out(g.cols_shape, dtype)
    reference.im2col(x, *g.geometry, ref)
    public = kernels.im2col(as_layout(x, layout), *g.geometry)
    assert ref.dtype == public.dtype == dtype
    # im2col only copies values: all three tiers agree exactly.
    np.testing.assert_array_equal(ref, expected.astype(dtype))
    np.testing.assert_array_equal(public, expected.astype(dtype))


@FAST
@given(g=conv_geometries(), dtype=dtypes, layout=layouts, seed=seeds)
def test_col2im_three_tiers(g, dtype, layout, seed):
    cols = rng_from(seed).standard_normal(g.cols_shape).astype(dtype)
    expected = naive.col2im(cols, g.x_shape, *g.geometry)
    ref = _nan_out(g.x_shape, dtype)
    reference.col2im(cols, *g.geometry, ref)
    public = kernels.col2im(as_layout(cols, layout), g.x_shape, *g.geometry)
    assert ref.dtype == public.dtype == dtype
    assert_close(ref, expected)
    assert_close(public, expected)


@FAST
@given(g=conv_geometries(), dtype=dtypes, layout=layouts, seed=seeds)
def test_conv2d_forward_three_tiers(g, dtype, layout, seed):
    x, W, b, _ = _data(seed, g, dtype)
    expected = naive.conv2d_forward(x, W, b, g.s, g.ph, g.pw)
    ref = _nan_out(g.y_shape, dtype)
    reference.conv2d_forward(x, W, b, g.s, g.ph, g.pw, ref)
    public = kernels.conv2d_forward(as_layout(x, layout), as_layout(W, layout), b, g.s, g.ph, g.pw)
    assert ref.dtype == public.dtype == dtype
    assert_close(ref, expected)
    assert_close(public, expected)


@FAST
@given(g=conv_geometries(), dtype=dtypes, layout=layouts, seed=seeds)
def test_conv2d_backward_input_three_tiers(g, dtype, layout, seed):
    _, W, _, dy = _data(seed, g, dtype)
    expected = naive.conv2d_backward_input(dy, W, g.x_shape, g.s, g.ph, g.pw)
    ref = _nan_out(g.x_shape, dtype)
    reference.conv2d_backward_input(dy, W, g.s, g.ph, g.pw, ref)
    public = kernels.conv2d_backward_input(
        as_layout(dy, layout), as_layout(W, layout), g.x_shape, g.s, g.ph, g.pw
    )
    assert ref.dtype == public.dtype == dtype
    assert_close(ref, expected)
    assert_close(public, expected)


@FAST
@given(g=conv_geometries(), dtype=dtypes, layout=layouts, seed=seeds)
def test_conv2d_backward_weight_three_tiers(g, dtype, layout, seed):
    x, _, _, dy = _data(seed, g, dtype)
    expected = naive.conv2d_backward_weight(dy, x, g.w_shape, g.s, g.ph, g.pw)
    ref = _nan_out(g.w_shape, dtype)
    reference.conv2d_backward_weight(dy, x, g.s, g.ph, g.pw, ref)
    public = kernels.conv2d_backward_weight(
        as_layout(dy, layout), as_layout(x, layout), g.w_shape, g.s, g.ph, g.pw
    )
    assert ref.dtype == public.dtype == dtype
    assert_close(ref, expected)
    assert_close(public, expected)


def _pool_input(seed, g, dtype, ties):
    """Tie-free values, or small integers so that most windows hold ties."""
    rng = rng_from(seed)
    if ties:
        return rng.integers(-2, 3, size=g.x_shape).astype(dtype)
    return tie_free(rng, g.x_shape, dtype)


@FAST
@given(g=pool_geometries(), dtype=dtypes, layout=layouts, seed=seeds, ties=st.booleans())
def test_maxpool2d_forward_three_tiers(g, dtype, layout, seed, ties):
    x = _pool_input(seed, g, dtype, ties)
    y_naive, arg_naive = naive.maxpool2d_forward(x, g.size, g.s)
    y_ref, arg_ref = _nan_out(g.y_shape, dtype), np.full(g.y_shape, -1, dtype=np.int64)
    reference.maxpool2d_forward(x, g.size, g.s, y_ref, arg_ref)
    y_pub, arg_pub = kernels.maxpool2d_forward(as_layout(x, layout), g.size, g.s)
    assert y_ref.dtype == y_pub.dtype == dtype
    assert arg_ref.dtype == arg_pub.dtype == np.int64
    # Selecting a maximum is exact, and the tie rule fixes the argmax uniquely.
    np.testing.assert_array_equal(y_ref, y_naive.astype(dtype))
    np.testing.assert_array_equal(y_pub, y_naive.astype(dtype))
    np.testing.assert_array_equal(arg_ref, arg_naive)
    np.testing.assert_array_equal(arg_pub, arg_naive)


@FAST
@given(g=pool_geometries(), dtype=dtypes, layout=layouts, seed=seeds, ties=st.booleans())
def test_maxpool2d_backward_three_tiers(g, dtype, layout, seed, ties):
    x = _pool_input(seed, g, dtype, ties)
    _, argmax = naive.maxpool2d_forward(x, g.size, g.s)
    dy = rng_from(seed + 1).standard_normal(g.y_shape).astype(dtype)
    expected = naive.maxpool2d_backward(dy, argmax, g.x_shape)
    ref = _nan_out(g.x_shape, dtype)
    reference.maxpool2d_backward(dy, argmax, ref)
    public = kernels.maxpool2d_backward(
        as_layout(dy, layout), as_layout(argmax, layout), g.x_shape
    )
    assert ref.dtype == public.dtype == dtype
    assert_close(ref, expected)
    assert_close(public, expected)


# --------------------------------------------------------------------------- compiled = reference


def _both(name, *args, outs):
    """Run ``_impl.<name>`` and ``reference.<name>`` on NaN-prefilled copies of ``outs``."""
    got = [o.copy() for o in outs]
    want = [o.copy() for o in outs]
    getattr(kernels._impl, name)(*args, *got)
    getattr(reference, name)(*args, *want)
    return got, want


@FAST
@given(g=conv_geometries(max_c=9, max_hw=20), F=st.integers(1, 13), dtype=dtypes, seed=seeds)
def test_direct_forward_equals_reference(g, F, dtype, seed):
    """The direct stride-1 forward (chosen for small C kh kw) on C = 1..9, kernels 1-5,
    padding 0-2, F = 1..13 (every mix of its 1- to 4-channel register blocks), rows
    shorter and longer than a vector, images smaller than one register block of vectors;
    stride 1 only, as the kernel serves only stride 1."""
    g = dataclasses.replace(g, s=1, F=F)
    x, W, b, _ = _data(seed, g, dtype)
    got, want = _nan_out(g.y_shape, dtype), _nan_out(g.y_shape, dtype)
    twin = _nan_out(g.y_shape, dtype)
    kernels._impl.conv2d_forward_direct(x, W, b, g.ph, g.pw, got)
    reference.conv2d_forward_direct(x, W, b, g.ph, g.pw, twin)
    reference.conv2d_forward(x, W, b, 1, g.ph, g.pw, want)
    assert got.dtype == dtype
    assert_close(twin, want)
    assert_close(got, want)
    assert_close(kernels.conv2d_forward(x, W, b, 1, g.ph, g.pw), want)


@FAST
@given(g=conv_geometries(max_c=9, max_hw=20), F=st.integers(1, 20), dtype=dtypes, seed=seeds)
def test_direct_input_grad_equals_reference(g, F, dtype, seed):
    """The direct stride-1 input gradient (the flipped-kernel convolution of ``dy``) for
    C = 1..9 input channels (every register block size), F = 1..20 output channels (its
    taps), kernels 1-5, padding below the kernel size, rows shorter and longer than a
    vector; the dispatching wrapper agrees too."""
    assume(g.ph < g.kh and g.pw < g.kw)
    g = dataclasses.replace(g, s=1, F=F)
    x, W, _, dy = _data(seed, g, dtype)
    got, twin, want = (_nan_out(g.x_shape, dtype) for _ in range(3))
    kernels._impl.conv2d_backward_input_direct(dy, W, g.ph, g.pw, got)
    reference.conv2d_backward_input_direct(dy, W, g.ph, g.pw, twin)
    reference.conv2d_backward_input(dy, W, 1, g.ph, g.pw, want)
    assert got.dtype == dtype
    assert_close(twin, want)
    assert_close(got, want)
    assert_close(kernels.conv2d_backward_input(dy, W, g.x_shape, 1, g.ph, g.pw), want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(
    ("N", "C", "H", "W", "F"),
    [(3, 3, 32, 32, 32), (5, 1, 8, 8, 16), (2, 3, 7, 33, 5), (2, 1, 13, 11, 6), (2, 6, 9, 9, 1)],
)
def test_direct_forward_and_input_grad_on_benchmark_shapes(N, C, H, W, F, dtype):
    """The benchmark's few-channel layers (3x3, padding 1) on the direct kernels: several
    register blocks per plane, a last block that runs past the last vector, odd widths,
    and the one-channel column blocks (input gradient with C = 1, forward with F = 1) with
    a last row band and column vector overlapping their neighbours."""
    rng = rng_from(7)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wk = rng.standard_normal((F, C, 3, 3)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    dy = rng.standard_normal((N, F, H, W)).astype(dtype)
    y, want_y = _nan_out((N, F, H, W), dtype), _nan_out((N, F, H, W), dtype)
    dx, want_dx = _nan_out(x.shape, dtype), _nan_out(x.shape, dtype)
    kernels._impl.conv2d_forward_direct(x, Wk, b, 1, 1, y)
    reference.conv2d_forward(x, Wk, b, 1, 1, 1, want_y)
    kernels._impl.conv2d_backward_input_direct(dy, Wk, 1, 1, dx)
    reference.conv2d_backward_input(dy, Wk, 1, 1, 1, want_dx)
    assert_close(y, want_y)
    assert_close(dx, want_dx)


@FAST
@given(g=conv_geometries(max_c=2, max_hw=20), F=st.integers(1, 9), dtype=dtypes, seed=seeds)
def test_direct_weight_grad_equals_reference(g, F, dtype, seed):
    """The direct stride-1 weight gradient (tiny C kh kw) on the geometry of the forward
    test above: taps past a multiple of four, rows shorter and longer than a vector and
    the overlapping last vector of a row (masked, so no output is counted twice)."""
    g = dataclasses.replace(g, s=1, F=F)
    x, _, _, dy = _data(seed, g, dtype)
    got, twin, want = (_nan_out(g.w_shape, dtype) for _ in range(3))
    kernels._impl.conv2d_backward_weight_direct(dy, x, g.ph, g.pw, got)
    reference.conv2d_backward_weight_direct(dy, x, g.ph, g.pw, twin)
    reference.conv2d_backward_weight(dy, x, 1, g.ph, g.pw, want)
    assert got.dtype == dtype
    assert_close(twin, want)
    assert_close(got, want)
    assert_close(kernels.conv2d_backward_weight(dy, x, g.w_shape, 1, g.ph, g.pw), want)


@compiled_only
@FAST
@given(g=conv_geometries(), dtype=dtypes, seed=seeds)
def test_compiled_conv_kernels_equal_reference(g, dtype, seed):
    assert kernels._impl is not reference
    x, W, b, dy = _data(seed, g, dtype)
    cols = rng_from(seed + 1).standard_normal(g.cols_shape).astype(dtype)
    cases = [
        ("im2col", (x, *g.geometry), g.cols_shape),
        ("col2im", (cols, *g.geometry), g.x_shape),
        ("conv2d_forward", (x, W, b, g.s, g.ph, g.pw), g.y_shape),
        ("conv2d_backward_input", (dy, W, g.s, g.ph, g.pw), g.x_shape),
        ("conv2d_backward_weight", (dy, x, g.s, g.ph, g.pw), g.w_shape),
    ]
    for name, args, shape in cases:
        (got,), (want,) = _both(name, *args, outs=[_nan_out(shape, dtype)])
        assert got.dtype == dtype, name
        assert_close(got, want)


@compiled_only
@FAST
@given(g=pool_geometries(), dtype=dtypes, seed=seeds, ties=st.booleans())
def test_compiled_pool_kernels_equal_reference(g, dtype, seed, ties):
    x = _pool_input(seed, g, dtype, ties)
    outs = [_nan_out(g.y_shape, dtype), np.full(g.y_shape, -1, dtype=np.int64)]
    (y, arg), (y_ref, arg_ref) = _both("maxpool2d_forward", x, g.size, g.s, outs=outs)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(arg, arg_ref)
    dy = rng_from(seed + 1).standard_normal(g.y_shape).astype(dtype)
    outs = [_nan_out(g.x_shape, dtype)]
    (dx,), (dx_ref,) = _both("maxpool2d_backward", dy, arg_ref, outs=outs)
    assert_close(dx, dx_ref)


# --------------------------------------------------------------------------- adjoint identities


def _dot(a, b):
    return float(np.sum(np.asarray(a, dtype=np.float64) * b))


@FAST
@given(g=conv_geometries(), seed=seeds)
def test_col2im_is_the_adjoint_of_im2col(g, seed):
    r"""``<im2col(x), C> = <x, col2im(C)>`` in float64."""
    rng = rng_from(seed)
    x = rng.standard_normal(g.x_shape)
    C = rng.standard_normal(g.cols_shape)
    lhs = _dot(kernels.im2col(x, *g.geometry), C)
    rhs = _dot(x, kernels.col2im(C, g.x_shape, *g.geometry))
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10)


@FAST
@given(g=conv_geometries(), seed=seeds)
def test_conv_backward_input_is_the_adjoint_of_conv(g, seed):
    r"""``<conv(x), y> = <x, conv2d_backward_input(y)>`` (no bias) in float64."""
    x, W, _, y = _data(seed, g, np.float64)
    zero = np.zeros(g.F)
    lhs = _dot(kernels.conv2d_forward(x, W, zero, g.s, g.ph, g.pw), y)
    rhs = _dot(x, kernels.conv2d_backward_input(y, W, g.x_shape, g.s, g.ph, g.pw))
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10)


@FAST
@given(g=conv_geometries(), seed=seeds)
def test_conv_backward_weight_is_the_adjoint_in_the_weight(g, seed):
    r"""The map ``W -> conv(x; W)`` is linear; its adjoint is the weight gradient:
    ``<conv(x; V), dy> = <V, conv2d_backward_weight(dy, x)>``."""
    x, V, _, dy = _data(seed, g, np.float64)
    lhs = _dot(kernels.conv2d_forward(x, V, np.zeros(g.F), g.s, g.ph, g.pw), dy)
    rhs = _dot(V, kernels.conv2d_backward_weight(dy, x, g.w_shape, g.s, g.ph, g.pw))
    assert lhs == pytest.approx(rhs, rel=1e-10, abs=1e-10)


@FAST
@given(g=pool_geometries(), seed=seeds)
def test_maxpool_backward_is_the_adjoint_of_gathering_at_argmax(g, seed):
    r"""For fixed argmax, ``<x[argmax], dy> = <x, maxpool2d_backward(dy)>``."""
    rng = rng_from(seed)
    x = tie_free(rng, g.x_shape)
    y, argmax = kernels.maxpool2d_forward(x, g.size, g.s)
    dy = rng.standard_normal(g.y_shape)
    rhs = _dot(x, kernels.maxpool2d_backward(dy, argmax, g.x_shape))
    assert _dot(y, dy) == pytest.approx(rhs, rel=1e-10, abs=1e-10)


# --------------------------------------------------------------------------- max-pool, literal


def _pool_all_tiers(x, size, s, dy):
    """(y, argmax, dx) from the naive oracle, the reference twin and the public wrapper."""
    results = []
    y, arg = naive.maxpool2d_forward(x, size, s)
    results.append((y, arg, naive.maxpool2d_backward(dy, arg, x.shape)))
    y, arg = np.empty(dy.shape), np.empty(dy.shape, dtype=np.int64)
    reference.maxpool2d_forward(x, size, s, y, arg)
    dx = np.empty(x.shape)
    reference.maxpool2d_backward(dy, arg, dx)
    results.append((y, arg, dx))
    y, arg = kernels.maxpool2d_forward(x, size, s)
    results.append((y, arg, kernels.maxpool2d_backward(dy, arg, x.shape)))
    return results


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_maxpool_tie_goes_to_first_maximum_in_row_major_order(dtype):
    # One 2x2 window with its maximum 3 at (0, 1) and again at (1, 0): (0, 1) wins.
    x = np.array([[[[1.0, 3.0], [3.0, 2.0]]]], dtype=dtype)
    dy = np.array([[[[5.0]]]], dtype=dtype)
    for y, arg, dx in _pool_all_tiers(x, 2, 2, dy):
        assert y.item() == 3.0
        assert arg.item() == 1  # flat h * W + w of (0, 1)
        np.testing.assert_array_equal(dx, [[[[0.0, 5.0], [0.0, 0.0]]]])


def test_maxpool_all_equal_window_routes_to_its_top_left():
    x = np.full((1, 1, 4, 4), 7.0)
    dy = np.arange(1.0, 5.0).reshape(1, 1, 2, 2)
    expected = np.zeros((1, 1, 4, 4))
    expected[0, 0, ::2, ::2] = [[1.0, 2.0], [3.0, 4.0]]
    for _, arg, dx in _pool_all_tiers(x, 2, 2, dy):
        np.testing.assert_array_equal(arg, [[[[0, 2], [8, 10]]]])
        np.testing.assert_array_equal(dx, expected)


def test_maxpool_overlapping_windows_add_their_contributions():
    # size 2, stride 1 on a 3x3 input: four windows share the centre.
    x = np.array([[[[1.0, 2.0, 3.0], [4.0, 9.0, 5.0], [6.0, 7.0, 10.0]]]])
    dy = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    # Windows TL, TR, BL hold 9 at the centre (flat 4); BR holds 10 at (2, 2) (flat 8).
    expected_dx = np.array([[[[0.0, 0.0, 0.0], [0.0, 1.0 + 2.0 + 3.0, 0.0], [0.0, 0.0, 4.0]]]])
    for y, arg, dx in _pool_all_tiers(x, 2, 1, dy):
        np.testing.assert_array_equal(y, [[[[9.0, 9.0], [9.0, 10.0]]]])
        np.testing.assert_array_equal(arg, [[[[4, 4], [4, 8]]]])
        np.testing.assert_array_equal(dx, expected_dx)


def test_maxpool_overlapping_windows_with_tie_across_windows():
    # size 3, stride 2 on 1x5: rows/cols 2 are shared by neighbouring windows.
    x = np.zeros((1, 1, 3, 5))
    x[0, 0, 1, 2] = 8.0  # in both windows (columns 0-2 and 2-4)
    x[0, 0, 0, 4] = 8.0  # ties with it inside the right window, but comes first there
    dy = np.array([[[[10.0, 100.0]]]])
    expected = np.zeros((1, 1, 3, 5))
    expected[0, 0, 1, 2] = 10.0  # left window
    expected[0, 0, 0, 4] = 100.0  # right window: (0, 4) precedes (1, 2) in row-major order
    for _, arg, dx in _pool_all_tiers(x, 3, 2, dy):
        np.testing.assert_array_equal(arg, [[[[7, 4]]]])
        np.testing.assert_array_equal(dx, expected)


# --------------------------------------------------------------------------- literal conv


def test_conv_literal_stride_and_padding():
    # 1x1x3x3 input, a 2x2 kernel of ones, stride 2, padding 1: each output sums the
    # visible part of its window.
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    W = np.ones((1, 1, 2, 2))
    y = kernels.conv2d_forward(x, W, np.array([0.5]), 2, 1, 1)
    np.testing.assert_array_equal(y, [[[[1.5, 5.5], [11.5, 28.5]]]])
    cols = kernels.im2col(x, 2, 2, 2, 1, 1)
    np.testing.assert_array_equal(
        cols[0], [[0, 0, 0, 5], [0, 0, 4, 6], [0, 2, 0, 8], [1, 3, 7, 9]]
    )


def test_backend_is_known():
    assert kernels.backend() in ("cython", "numpy")
    assert (kernels._impl is reference) == (kernels.backend() == "numpy")


@pytest.mark.parametrize("x_shape", [(0, 2, 5, 4), (1, 0, 5, 4)])
def test_empty_batch_or_channels_match_the_reference(x_shape):
    N, C, H, Wd = x_shape
    x = np.ones(x_shape)
    W, b = np.ones((3, C, 2, 3)), np.ones(3)
    y = kernels.conv2d_forward(x, W, b, 1, 1, 0)
    y_ref = _nan_out(y.shape, np.float64)
    reference.conv2d_forward(x, W, b, 1, 1, 0, y_ref)
    np.testing.assert_array_equal(y, y_ref)
    dW = kernels.conv2d_backward_weight(np.ones(y.shape), x, W.shape, 1, 1, 0)
    np.testing.assert_array_equal(dW, np.zeros(W.shape))  # an empty sum
    dx = kernels.conv2d_backward_input(np.ones(y.shape), W, x_shape, 1, 1, 0)
    assert dx.shape == x_shape
    pooled, argmax = kernels.maxpool2d_forward(x, 2, 2)
    assert pooled.shape == argmax.shape == (N, C, 2, 2)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize(("N", "C", "H", "W", "F"), [(150, 1, 8, 8, 16), (70, 2, 5, 3, 3)])
def test_direct_weight_grad_over_sample_blocks(N, C, H, W, F, dtype):
    """The direct weight gradient accumulates blocks of up to 64 padded samples per thread:
    several blocks, a short last one, both threads, rows shorter than a vector."""
    rng = rng_from(11)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    dy = rng.standard_normal((N, F, H, W)).astype(dtype)
    got, want = _nan_out((F, C, 3, 3), dtype), _nan_out((F, C, 3, 3), dtype)
    kernels._impl.conv2d_backward_weight_direct(dy, x, 1, 1, got)
    reference.conv2d_backward_weight(dy, x, 1, 1, 1, want)
    assert_close(got, want)
