"""ReLU kernels: the NumPy twin = the active backend = the definition, on any shape and layout.

``refnet.kernels.relu_forward(x) -> (y, active)`` and ``relu_backward(dy, active, out=None)``
are checked against ``max(x, 0)``, ``x > 0`` and ``dy * active`` written out in NumPy, with
exact zeros (the derivative at 0 is 0) and infinities in the input, and NaN where the
layout helper allows it (NaN stays NaN). When the compiled
backend is active, ``refnet.kernels._impl`` is also held equal to the reference directly,
each filling outputs prefilled with garbage (so an element left unwritten fails the test).
"""

import numpy as np
import pytest
from conftest import as_layout, dtypes, layouts, rng_from, seeds
from hypothesis import given, settings
from hypothesis import strategies as st

from refnet import ReLU, kernels
from refnet.kernels import reference

# inf * 0 (an infinite upstream value at an inactive unit) is NaN, as in NumPy: the inputs
# include infinities on purpose, so that warning is expected here.
pytestmark = pytest.mark.filterwarnings("ignore:invalid value encountered in multiply")

FAST = settings(max_examples=60, deadline=None)
shapes = st.lists(st.integers(1, 9), min_size=2, max_size=4).map(tuple)


def _relu_input(seed, shape, dtype, nan=True):
    """Random signs with exact zeros, and +-inf and (``nan``) NaN in a few places."""
    rng = rng_from(seed)
    x = rng.standard_normal(shape)
    x[rng.random(shape) < 0.2] = 0.0
    specials = rng.random(shape)
    x[specials < 0.03] = np.inf
    x[(specials >= 0.03) & (specials < 0.06)] = -np.inf
    if nan:
        x[(specials >= 0.06) & (specials < 0.08)] = np.nan
    return x.astype(dtype)


@FAST
@given(shape=shapes, dtype=dtypes, layout=layouts, seed=seeds)
def test_relu_forward_twins_equal_the_definition(shape, dtype, layout, seed):
    x = _relu_input(seed, shape, dtype, nan=False)  # conftest.as_layout compares without NaN
    expected_y, expected_active = np.maximum(x, 0), x > 0
    y_ref = np.full(x.size, 7, dtype=dtype)
    active_ref = np.full(x.size, 7, dtype=np.uint8)
    reference.relu_forward(x.reshape(-1), y_ref, active_ref)
    y, active = kernels.relu_forward(as_layout(x, layout))
    assert y.dtype == dtype and y.shape == x.shape
    assert active.dtype == bool and active.shape == x.shape
    np.testing.assert_array_equal(y, expected_y)
    np.testing.assert_array_equal(active, expected_active)
    np.testing.assert_array_equal(y_ref, expected_y.reshape(-1))
    np.testing.assert_array_equal(active_ref, expected_active.reshape(-1))


@FAST
@given(shape=shapes, dtype=dtypes, layout=layouts, seed=seeds, in_place=st.booleans())
def test_relu_backward_twins_equal_the_definition(shape, dtype, layout, seed, in_place):
    rng = rng_from(seed)
    active = rng.random(shape) < 0.5
    dy = _relu_input(seed + 1, shape, dtype, nan=False)
    expected = dy * active  # inf * 0 is NaN here, and in both kernels
    out_ref = np.full(dy.size, 7, dtype=dtype)
    reference.relu_backward(dy.reshape(-1), active.reshape(-1).view(np.uint8), out_ref)
    np.testing.assert_array_equal(out_ref, expected.reshape(-1))
    dy_in = as_layout(dy, layout)
    if in_place:
        dx = kernels.relu_backward(dy_in, as_layout(active, layout), out=dy_in)
        assert dx is dy_in
    else:
        dx = kernels.relu_backward(dy_in, as_layout(active, layout))
    assert dx.dtype == dtype and dx.shape == dy.shape
    np.testing.assert_array_equal(dx, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_kernels_on_more_elements_than_one_thread_takes(dtype):
    """Several OpenMP chunks (more than ``MIN_PER_THREAD`` elements per thread, odd size)."""
    x = _relu_input(0, (3, 5, 101, 97), dtype)
    y, active = kernels.relu_forward(x)
    np.testing.assert_array_equal(y, np.maximum(x, 0))
    np.testing.assert_array_equal(active, x > 0)
    dy = _relu_input(1, x.shape, dtype)
    np.testing.assert_array_equal(kernels.relu_backward(dy, active), dy * active)


@pytest.mark.skipif(kernels.backend() != "cython", reason="compiled kernels not active")
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_compiled_relu_kernels_equal_reference(dtype):
    x = _relu_input(2, (4, 3, 17, 19), dtype).reshape(-1)
    y, y_ref = np.full_like(x, 7), np.full_like(x, 9)
    a, a_ref = np.full(x.size, 7, np.uint8), np.full(x.size, 9, np.uint8)
    kernels._impl.relu_forward(x, y, a)
    reference.relu_forward(x, y_ref, a_ref)
    np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(a, a_ref)
    dx, dx_ref = np.full_like(x, 7), np.full_like(x, 9)
    kernels._impl.relu_backward(x, a, dx)
    reference.relu_backward(x, a_ref, dx_ref)
    np.testing.assert_array_equal(dx, dx_ref)


def test_relu_layer_derivative_at_zero_is_zero_and_mask_is_boolean():
    x = np.array([[-1.0, 0.0, 2.0], [0.0, -0.0, 3.0]])
    y, cache = ReLU().forward(x)
    np.testing.assert_array_equal(y, [[0.0, 0.0, 2.0], [0.0, 0.0, 3.0]])
    assert cache.active.dtype == bool and cache.active.shape == x.shape
    dx, _ = ReLU().backward(np.full(x.shape, 5.0), cache)
    np.testing.assert_array_equal(dx, [[0.0, 0.0, 5.0], [0.0, 0.0, 5.0]])


@pytest.mark.parametrize(
    "active, out, match",
    [
        (np.ones((2, 3)), None, "boolean"),
        (np.ones((3, 2), dtype=bool), None, "boolean"),
        (np.ones((2, 3), dtype=bool), np.empty((2, 3), dtype=np.float32), "out"),
    ],
)
def test_relu_backward_rejects_bad_mask_or_out(active, out, match):
    with pytest.raises(ValueError, match=match):
        kernels.relu_backward(np.ones((2, 3)), active, out=out)


def test_relu_forward_rejects_integers():
    with pytest.raises(TypeError, match="relu_forward"):
        kernels.relu_forward(np.ones((2, 3), dtype=np.int64))
