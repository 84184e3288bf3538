"""The LRP engine's divide and multiply kernels: compiled = NumPy twin = the equations.

``refnet.kernels.lrp`` wraps ``pyx/lrp.pyx`` and its twin ``refnet/kernels/reference/lrp.py``
(MATH.md section 4). Hypothesis builds the shapes ``(N, F, ...)``; exact zeros in the
denominators must give 0 (never NaN or infinity); outputs start filled with garbage.
"""

import numpy as np
import pytest
from conftest import assert_close, dtypes, rng_from, seeds
from hypothesis import given, settings
from hypothesis import strategies as st

from refnet.kernels import lrp, reference
from refnet.kernels.compiled import impl

FAST = settings(max_examples=40, deadline=None)
shapes = st.lists(st.integers(1, 7), min_size=2, max_size=4).map(tuple)
KERNELS = (reference, impl)


def _with_zeros(rng, shape, dtype):
    a = rng.standard_normal(shape)
    a[rng.random(shape) < 0.2] = 0.0
    return a.astype(dtype)


def _divide(R, d):
    """``R / d`` in float64, 0 where ``d == 0``."""
    R, d = R.astype(np.float64), d.astype(np.float64)
    return np.divide(R, d, out=np.zeros_like(R), where=d != 0)


@FAST
@given(shape=shapes, dtype=dtypes, seed=seeds, eps=st.sampled_from([0.0, 1e-6, 0.25]))
def test_lrp_ratio(shape, dtype, seed, eps):
    rng = rng_from(seed)
    R, z = rng.standard_normal(shape).astype(dtype), _with_zeros(rng, shape, dtype)
    e = np.float64(dtype(eps))
    want = _divide(R, z.astype(np.float64) + np.where(z >= 0, e, -e))
    for k in KERNELS:
        out = np.full(R.size, np.nan, dtype=dtype)
        k.lrp_ratio(R.reshape(-1), z.reshape(-1), eps, out)
        assert_close(out.reshape(shape), want)
    got = lrp.lrp_ratio(R, z, eps)
    assert got.dtype == dtype and np.isfinite(got).all()
    assert_close(got, want)
    in_place = R.copy()
    assert lrp.lrp_ratio(in_place, z, eps, out=in_place) is in_place
    assert_close(in_place, want)


@FAST
@given(shape=shapes, dtype=dtypes, seed=seeds, beta=st.sampled_from([0.0, 1.0, 2.5]))
def test_lrp_ratio_alpha_beta(shape, dtype, seed, beta):
    rng = rng_from(seed)
    N, F = shape[:2]
    R = rng.standard_normal(shape).astype(dtype)
    z_plus = np.abs(_with_zeros(rng, shape, dtype))
    offset = rng.standard_normal(F).astype(dtype)
    z_minus = -np.abs(_with_zeros(rng, shape, dtype))
    fshape = (1, F) + (1,) * (len(shape) - 2)
    z = (z_plus + z_minus + offset.reshape(fshape)).astype(dtype)
    zm = z - z_plus - offset.reshape(fshape)  # in the dtype, as the kernel forms it
    alpha = 1 + beta
    want = np.concatenate([alpha * _divide(R, z_plus), -beta * _divide(R, zm)], axis=1)
    for k in KERNELS:
        out = np.full((N, 2 * F, int(np.prod(shape[2:]))), np.nan, dtype=dtype)
        k.lrp_ratio_alpha_beta(
            R.reshape(N, F, -1),
            z.reshape(N, F, -1),
            z_plus.reshape(N, F, -1),
            offset,
            alpha,
            beta,
            out,
        )
        assert np.isfinite(out).all()
        assert_close(out.reshape(want.shape), want)
    assert_close(lrp.lrp_ratio_alpha_beta(R, z, z_plus, offset, alpha, beta), want)


@FAST
@given(shape=shapes, dtype=dtypes, seed=seeds, k=st.integers(1, 3))
def test_lrp_input_relevance(shape, dtype, seed, k):
    rng = rng_from(seed)
    N, C = shape[:2]
    X, c = (rng.standard_normal((N, k * C, *shape[2:])).astype(dtype) for _ in range(2))
    parts = (X.astype(np.float64) * c).reshape(N, k, C, *shape[2:])
    want = parts.sum(axis=1)  # (N, C, ...)
    for kern in KERNELS:
        out = np.full((N, C * int(np.prod(shape[2:]))), np.nan, dtype=dtype)
        kern.lrp_input_relevance(X.reshape(N, k, -1), c.reshape(N, k, -1), out)
        assert_close(out.reshape(want.shape), want)
    got = lrp.lrp_input_relevance(X, c.copy(), k)
    assert got.shape == want.shape and got.dtype == dtype
    assert_close(got, want)


def test_lrp_kernels_on_several_threads():
    rng = np.random.default_rng(0)
    R, z = rng.standard_normal((3, 2, 300, 300)), _with_zeros(rng, (3, 2, 300, 300), float)
    assert_close(lrp.lrp_ratio(R, z), _divide(R, z))
    zp = np.abs(z)
    want = np.concatenate([2 * _divide(R, zp), -_divide(R, z - zp)], axis=1)
    assert_close(lrp.lrp_ratio_alpha_beta(R, z, zp, np.zeros(2), 2.0, 1.0), want)
    assert_close(lrp.lrp_input_relevance(R, z.copy()), R * z)


def test_lrp_wrappers_reject_bad_input():
    a = np.ones((2, 3))
    with pytest.raises(ValueError, match="lrp_ratio"):
        lrp.lrp_ratio(a, np.ones((3, 2)))
    with pytest.raises(ValueError, match="dtype"):
        lrp.lrp_ratio(a, a.astype(np.float32))
    with pytest.raises(ValueError, match="offset"):
        lrp.lrp_ratio_alpha_beta(a, a, a, np.zeros(2), 2.0, 1.0)
    with pytest.raises(ValueError, match="parts"):
        lrp.lrp_input_relevance(a, a, 2)
