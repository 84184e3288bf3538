"""Dense-layer GEMM kernels: the compiled kernel = the NumPy twin = the definition.

``refnet.kernels.dense`` wraps ``pyx/dense.pyx`` (rows or columns split over OpenMP threads,
single-threaded BLAS per block) and its twin ``refnet/kernels/reference/dense.py``. Shapes
are built by hypothesis, including sizes that leave a short last block and empty axes; the
outputs start filled with garbage, so an element left unwritten fails.
"""

import numpy as np
import pytest
from conftest import LAYOUTS, as_layout, assert_close, dtypes, rng_from, seeds
from hypothesis import given, settings
from hypothesis import strategies as st

from refnet.kernels import dense, reference
from refnet.kernels.compiled import impl

FAST = settings(max_examples=40, deadline=None)
sizes = st.integers(0, 70)


def _arrays(seed, dtype, *shapes):
    rng = rng_from(seed)
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


@FAST
@given(N=sizes, D=sizes, K=sizes, dtype=dtypes, seed=seeds)
def test_dense_kernels_equal_the_definition(N, D, K, dtype, seed):
    x, W, b, r = _arrays(seed, dtype, (N, D), (K, D), (K,), (N, K))
    x64, W64, r64 = (a.astype(np.float64) for a in (x, W, r))
    expected = {
        "dense_forward": (x64 @ W64.T + b, (x, W, b), (N, K)),
        "dense_backward_input": (r64 @ W64, (r, W), (N, D)),
        "dense_backward_weight": (r64.T @ x64, (r, x), (K, D)),
    }
    for name, (want, args, shape) in expected.items():
        for kernel in (getattr(reference, name), getattr(impl, name)):
            out = np.full(shape, np.nan, dtype=dtype)
            kernel(*args, out)
            assert_close(out, want)
        got = getattr(dense, name)(*args)
        assert got.dtype == dtype and got.shape == shape
        assert_close(got, want)


@pytest.mark.parametrize("layout", LAYOUTS)
def test_dense_wrappers_accept_any_layout(layout):
    x, W, b = _arrays(1, np.float64, (33, 17), (5, 17), (5,))
    got = dense.dense_forward(as_layout(x, layout), as_layout(W, layout), b)
    assert_close(got, x @ W.T + b)


def test_dense_wrappers_reject_bad_input():
    x, W, b = _arrays(2, np.float64, (4, 3), (2, 3), (2,))
    with pytest.raises(ValueError, match="dense_forward"):
        dense.dense_forward(x, W.T, b)
    with pytest.raises(TypeError, match="dtypes differ"):
        dense.dense_backward_input(x.astype(np.float32), W.T.copy())
    with pytest.raises(TypeError, match="float32 or float64"):
        dense.dense_backward_weight(x.astype(int), x)
    with pytest.raises(ValueError, match="batch sizes"):
        dense.dense_backward_weight(x, x[:2])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("N, D, K", [(301, 700, 40), (37, 1500, 170), (64, 16384, 10)])
def test_dense_kernels_on_several_threads(N, D, K, dtype):
    """Enough work for more than one thread (rows split, then columns), short last blocks."""
    x, W, b, r = _arrays(3, dtype, (N, D), (K, D), (K,), (N, K))
    x64, W64, r64 = (a.astype(np.float64) for a in (x, W, r))
    assert_close(dense.dense_forward(x, W, b), x64 @ W64.T + b)
    assert_close(dense.dense_backward_input(r, W), r64 @ W64)
    assert_close(dense.dense_backward_weight(r, x), r64.T @ x64)
