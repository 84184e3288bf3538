"""The pattern-statistics kernel: naive sums = NumPy twin = compiled kernel; estimators.

The compiled kernel (``refnet.kernels._stats``) is held equal to its twin
(:mod:`refnet.kernels.reference.stats`) on every geometry hypothesis builds, with outputs
prefilled with NaN so that an element left unwritten fails. Float32 input runs float32
GEMMs per chunk with float64 sums across chunks: tolerance 1e-5 relative.
"""

import importlib

import numpy as np
import pytest
from conftest import conv_geometries, dtypes, seeds
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import refnet
from refnet.kernels import reference
from refnet.kernels.stats import (
    _use_winograd_stats,
    n_columns,
    pattern_stats_conv,
    pattern_stats_dense,
)
from refnet.patterns import S_a, S_a_pm, S_r, S_w, S_x

FAST = settings(max_examples=30, deadline=None)
TOL = {np.dtype(np.float64): 1e-10, np.dtype(np.float32): 1e-5}
blocks = st.sampled_from([(True, False), (False, True), (True, True)])

try:
    _stats = importlib.import_module("refnet.kernels._stats")
except ImportError:  # not compiled: only the twin and the wrapper are tested
    _stats = None
try:
    _stats_winograd = importlib.import_module("refnet.kernels._stats_winograd")
except ImportError:
    _stats_winograd = None
compiled_only = pytest.mark.skipif(_stats is None, reason="refnet.kernels._stats not built")


def naive_sums(X, Z, b, x0, y0, masked, unmasked):
    """Row-by-row loops over the definitions (MATH.md section 3), in float64."""
    n, D = X.shape
    K = Z.shape[1]
    S = np.zeros((D, n_columns(K, masked, unmasked)))
    ysum = np.zeros((3, K))
    for r in range(n):
        x = X[r].astype(np.float64) - x0
        y = Z[r].astype(np.float64) - b - y0
        m = (Z[r] > 0).astype(np.float64)
        cols = ([m, m * y] if masked else []) + ([np.ones(1), y] if unmasked else [])
        S += np.outer(x, np.concatenate(cols))
        ysum += np.stack([m, m * y, y])
    return S, ysum


def assert_rel(actual, expected, dtype):
    scale = max(1e-300, float(np.abs(expected).max(initial=0.0)))
    err = float(np.abs(actual - expected).max(initial=0.0)) / scale
    assert err <= TOL[np.dtype(dtype)], err


def dense_case(seed, n, D, K, dtype):
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, D)) + 2.0).astype(dtype)
    Z = rng.normal(size=(n, K)).astype(dtype)
    b = rng.normal(size=K).astype(dtype)
    x0, y0 = rng.normal(size=D) + 2.0, rng.normal(size=K) * 0.1
    return X, Z, b, x0, y0


def run(fn, *args, D, K, masked, unmasked, xx=True):
    S = np.full((D, n_columns(K, masked, unmasked)), np.nan)
    ysum, XX = np.full((3, K), np.nan), (np.full((D, D), np.nan) if xx else None)
    fn(*args, masked, unmasked, S, ysum, XX)
    return S, ysum, XX


@FAST
@given(seeds, st.integers(0, 700), st.integers(1, 40), st.integers(1, 9), dtypes, blocks)
def test_dense_twin_equals_naive_and_wrapper(seed, n, D, K, dtype, mu):
    X, Z, b, x0, y0 = dense_case(seed, n, D, K, dtype)
    S, ysum, XX = run(reference.pattern_stats_dense, X, Z, b, x0, y0, D=D, K=K,
                      masked=mu[0], unmasked=mu[1])  # fmt: skip
    if n <= 60:
        S_naive, y_naive = naive_sums(X, Z, b, x0, y0, *mu)
        np.testing.assert_allclose(S, S_naive, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(ysum, y_naive, rtol=1e-12, atol=1e-12)
    Xs = X.astype(np.float64) - x0
    np.testing.assert_allclose(XX, Xs.T @ Xs, rtol=1e-12, atol=1e-12)
    out = pattern_stats_dense(X, Z, b, x0, y0, *mu, xx=True)  # active backend
    assert out.rows == n
    for got, want in ((out.S, S), (out.ysum, ysum), (out.XX, XX)):
        assert_rel(got, want, dtype)


@compiled_only
@FAST
@given(seeds, st.integers(0, 3000), st.integers(1, 70), st.integers(1, 12), dtypes, blocks,
       st.booleans())  # fmt: skip
def test_dense_kernel_equals_twin(seed, n, D, K, dtype, mu, xx):
    X, Z, b, x0, y0 = dense_case(seed, n, D, K, dtype)
    want = run(reference.pattern_stats_dense, X, Z, b, x0, y0, D=D, K=K, masked=mu[0],
               unmasked=mu[1], xx=xx)  # fmt: skip
    got = run(_stats.pattern_stats_dense, X, Z, b, x0, y0, D=D, K=K, masked=mu[0],
              unmasked=mu[1], xx=xx)  # fmt: skip
    for g, w in zip(got, want, strict=True):
        if w is not None:
            assert_rel(g, w, dtype)


@compiled_only
@FAST
@given(conv_geometries(max_n=5, max_c=4, max_hw=11), seeds, dtypes, blocks, st.booleans())
def test_conv_kernel_equals_twin(g, seed, dtype, mu, xx):
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=g.x_shape) + 1.0).astype(dtype)
    Z = rng.normal(size=g.y_shape).astype(dtype)
    b = rng.normal(size=g.F).astype(dtype)
    D = g.C * g.kh * g.kw
    x0, y0 = np.repeat(rng.normal(size=g.C) + 1.0, g.kh * g.kw), rng.normal(size=g.F)
    args = (x, Z, b, x0, y0, *g.geometry)
    want = run(reference.pattern_stats_conv, *args, D=D, K=g.F, masked=mu[0], unmasked=mu[1],
               xx=xx)  # fmt: skip
    got = run(_stats.pattern_stats_conv, *args, D=D, K=g.F, masked=mu[0], unmasked=mu[1],
              xx=xx)  # fmt: skip
    for gv, w in zip(got, want, strict=True):
        if w is not None:
            assert_rel(gv, w, dtype)
    out = pattern_stats_conv(x, Z, b, x0, y0, *g.geometry, *mu)
    assert out.rows == g.N * g.Ho * g.Wo
    assert_rel(out.S, want[0], dtype)


#: Winograd F(3x3, 4x4) statistics: the twin, and the compiled kernel when built.
WINOGRAD_KERNELS = [reference.pattern_stats_conv_winograd] + (
    [_stats_winograd.pattern_stats_conv_winograd] if _stats_winograd is not None else []
)


@FAST
@given(st.integers(1, 4), st.integers(1, 9), st.integers(1, 19), st.integers(1, 19),
       st.integers(1, 9), st.integers(0, 2), st.integers(0, 2), seeds, dtypes, blocks)  # fmt: skip
def test_conv_winograd_equals_patch_gemm(N, C, H, W, K, ph, pw, seed, dtype, mu):
    """Winograd F(3x3, 4x4) statistics of a stride-1 3x3 conv (twin and compiled kernel)
    equal the patch GEMM on sizes that are and are not whole tiles
    (partial edge tiles), paddings 0-2 and offset data (the per-channel shift is applied in
    the transformed domain)."""
    assume(H + 2 * ph >= 3 and W + 2 * pw >= 3)
    rng = np.random.default_rng(seed)
    Ho, Wo = H + 2 * ph - 2, W + 2 * pw - 2
    x = (rng.normal(size=(N, C, H, W)) + 3.0).astype(dtype)
    Z = rng.normal(size=(N, K, Ho, Wo)).astype(dtype)
    b = rng.normal(size=K).astype(dtype)
    x0, y0 = np.repeat(rng.normal(size=C) + 3.0, 9), rng.normal(size=K)
    want = run(reference.pattern_stats_conv, x, Z, b, x0, y0, 3, 3, 1, ph, pw, D=9 * C, K=K,
               masked=mu[0], unmasked=mu[1], xx=False)[:2]  # fmt: skip
    for kernel in WINOGRAD_KERNELS:

        def winograd(*args, kernel=kernel):
            kernel(*args[:-1])  # no XX argument

        S, ysum, _ = run(winograd, x, Z, b, x0, y0, ph, pw, D=9 * C, K=K, masked=mu[0],
                         unmasked=mu[1], xx=False)  # fmt: skip
        assert_rel(S, want[0], dtype)
        assert_rel(ysum, want[1], dtype)


@compiled_only
def test_conv_winograd_many_blocks_and_threads():
    """Images spanning several blocks of tiles per thread, float32."""
    rng = np.random.default_rng(1)
    x = rng.random((9, 8, 45, 38), dtype=np.float32)
    conv = refnet.Conv2D.create(8, 16, 3, padding=1, seed=0, dtype=np.float32)
    Z = conv(x)
    x0, y0 = np.repeat(np.full(8, 0.5), 9), np.zeros(16)
    want = run(reference.pattern_stats_conv, x, Z, conv.b, x0, y0, 3, 3, 1, 1, 1, D=72, K=16,
               masked=True, unmasked=True, xx=False)[:2]  # fmt: skip
    for kernel in WINOGRAD_KERNELS[1:]:
        S, ysum, _ = run(lambda *a, k=kernel: k(*a[:-1]), x, Z, conv.b, x0, y0, 1, 1, D=72,
                         K=16, masked=True, unmasked=True, xx=False)  # fmt: skip
        assert_rel(S, want[0], np.float32)
        assert_rel(ysum, want[1], np.float32)


def test_conv_winograd_dispatch():
    """The wrapper takes the Winograd route only where it applies, with equal results:
    stride-1 3x3, enough channels, one shift per channel, no ``X'^T X'``."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 8, 9, 10)) + 1.0
    conv = refnet.Conv2D.create(8, 8, 3, padding=1, seed=0)
    Z = conv(x)
    x0, y0 = np.repeat(rng.normal(size=8), 9), rng.normal(size=8)
    x0_taps = x0 + rng.normal(size=72)  # a shift per tap: the patch GEMM
    want = run(reference.pattern_stats_conv, x, Z, conv.b, x0, y0, 3, 3, 1, 1, 1, D=72, K=8,
               masked=True, unmasked=True, xx=True)  # fmt: skip
    compiled = refnet.kernels.backend() == "cython"
    assert _use_winograd_stats(3, 3, 1, 8, 9, 10, x0, False) == compiled
    assert not _use_winograd_stats(3, 3, 1, 8, 9, 10, x0_taps, False)
    assert not _use_winograd_stats(3, 3, 1, 8, 9, 10, x0, True)
    assert not _use_winograd_stats(3, 3, 2, 8, 9, 10, x0, False)
    assert _use_winograd_stats(3, 3, 1, 4, 9, 10, x0[:36], False) == compiled
    assert not _use_winograd_stats(3, 3, 1, 1, 9, 10, x0[:9], False)
    assert not _use_winograd_stats(3, 3, 1, 8, 4, 10, x0, False)  # under 8 pixels a side
    out = pattern_stats_conv(x, Z, conv.b, x0, y0, 3, 3, 1, 1, 1, True, True)
    assert_rel(out.S, want[0], np.float64)
    out = pattern_stats_conv(x, Z, conv.b, x0, y0, 3, 3, 1, 1, 1, True, True, xx=True)
    assert_rel(out.XX, want[2], np.float64)


@compiled_only
def test_kernel_many_chunks_and_threads():
    """Rows spanning several chunks per thread (chunk = 2 MiB of rows)."""
    X, Z, b, x0, y0 = dense_case(0, 30000, 64, 8, np.float64)
    want = run(reference.pattern_stats_dense, X, Z, b, x0, y0, D=64, K=8, masked=True,
               unmasked=True)  # fmt: skip
    got = run(_stats.pattern_stats_dense, X, Z, b, x0, y0, D=64, K=8, masked=True,
              unmasked=True)  # fmt: skip
    for g, w in zip(got, want, strict=True):
        assert_rel(g, w, np.float64)


def test_wrapper_validation():
    X, Z, b, x0, y0 = dense_case(0, 5, 3, 2, np.float64)
    with pytest.raises(ValueError, match="do not fit"):
        pattern_stats_dense(X, Z[:4], b, x0, y0)
    with pytest.raises(ValueError, match="do not fit"):
        pattern_stats_dense(X, Z.astype(np.float32), b, x0, y0)
    with pytest.raises(ValueError, match=r"shifts x0 \(2,\)"):
        pattern_stats_dense(X, Z, b, x0[:2], y0)
    with pytest.raises(ValueError, match="at least one"):
        pattern_stats_dense(X, Z, b, x0, y0, masked=False, unmasked=False)
    with pytest.raises(TypeError, match="float32 or float64"):
        pattern_stats_dense(X.astype(int), Z, b, x0, y0)
    x = np.zeros((2, 1, 4, 4))
    with pytest.raises(ValueError, match=r"expected Z \(2, K, 2, 2\)"):
        pattern_stats_conv(x, np.zeros((2, 3, 4, 4)), np.zeros(3), np.zeros(9), np.zeros(3), 3, 3)


# --------------------------------------------------------------------------- estimators


def test_estimators_against_definitions():
    rng = np.random.default_rng(0)
    n, D, K = 6, 5, 3
    X, W2 = rng.normal(size=(n, D)), rng.normal(size=(K, D))
    b, A_p, A_m, U = rng.normal(size=K), rng.normal(size=(K, D)), rng.normal(size=(K, D)), \
        rng.normal(size=(K, D))  # fmt: skip
    W2[2] = 0.0  # a zero filter: S_w and S_r give 0, not NaN
    for k in range(K):
        w, y = W2[k], X @ W2[k]
        np.testing.assert_array_equal(S_x(X, W2, neuron=k), X)
        sw = np.outer(y, w) / (w @ w) if w.any() else np.zeros((n, D))
        np.testing.assert_allclose(S_w(X, W2, neuron=k), sw)
        np.testing.assert_allclose(S_a(X, W2, A_p, neuron=k), np.outer(y, A_p[k]))
        a = np.where((y + b[k] > 0)[:, None], A_p[k], A_m[k])
        np.testing.assert_allclose(S_a_pm(X, W2, b, A_p, A_m, neuron=k), y[:, None] * a)
        sr = np.outer(y, U[k]) / (w @ U[k]) if w.any() else np.zeros((n, D))
        np.testing.assert_allclose(S_r(X, W2, U, neuron=k), sr)
    for f, args in ((S_x, ()), (S_w, ()), (S_a, (A_p,)), (S_a_pm, (b, A_p, A_m)), (S_r, (U,))):
        everything = f(X, W2, *args)  # (n, K, D)
        assert everything.shape == (n, K, D) and np.isfinite(everything).all()
        for k in range(K):
            np.testing.assert_allclose(everything[:, k], f(X, W2, *args, neuron=k))
    # patterns satisfy w^T S(x) = y, the defining property of a signal estimator
    denom = W2[0] @ A_p[0]
    if denom != 0:
        A_lin = A_p / denom  # row 0 normalised so that w_0^T a_0 = 1
        np.testing.assert_allclose(S_a(X, W2, A_lin, neuron=0) @ W2[0], X @ W2[0])


def test_estimators_accept_conv_shaped_patterns_and_check_shapes():
    rng = np.random.default_rng(1)
    conv = refnet.Conv2D.create(2, 3, (2, 2), seed=0)
    X = rng.normal(size=(7, 8))
    A = rng.normal(size=conv.W.shape)  # (F, C, kh, kw)
    np.testing.assert_allclose(S_a(X, conv.W, A), S_a(X, conv.weight_matrix(), A.reshape(3, 8)))
    with pytest.raises(ValueError, match=r"A2 has shape \(3, 7\)"):
        S_a(X, conv.weight_matrix(), np.zeros((3, 7)))
    with pytest.raises(ValueError, match=r"rows X \(7, 5\)"):
        S_w(X[:, :5], conv.weight_matrix())
