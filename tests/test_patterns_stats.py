"""Pattern statistics: the formulas, batch-size and merge invariance, float32, offset data.

The oracle is a float64 two-pass computation of Eq. 8 (MATH.md section 2) straight from
the rows: means first, then centred moments.
"""

import numpy as np
import pytest
from conftest import seeds
from hypothesis import given, settings
from hypothesis import strategies as st

import refnet
from refnet.patterns import LayerStats, fit_stats, patterns_from_stats

FAST = settings(max_examples=20, deadline=None)


def two_pass(X, W2, b, kind="relu", minus=False):
    r"""Eq. 8 (or Eq. 4) in float64, two passes: ``E_M[x (y - c)] / (w^T E_M[x (y - c)])``.

    Uses the identity ``E_+[x y] - E_+[x] E[y] = E_+[x (y - E[y])]``; ``c`` is ``E[y]`` or,
    for relu_masked_mean, ``E_M[y]``. Degenerate neurons get 0.
    """
    X = np.asarray(X, np.float64)
    Y = X @ W2.T  # (n, K)
    M = (Y + b > 0) if kind != "linear" else np.ones(Y.shape, bool)
    if minus:
        M = ~M
    A = np.zeros(W2.shape)
    for k in range(len(W2)):
        if not M[:, k].any():
            continue
        xm, ym = X[M[:, k]], Y[M[:, k], k]
        c = ym.mean() if kind == "relu_masked_mean" else Y[:, k].mean()
        num = ((xm - xm.mean(0)) * (ym - c)[:, None]).mean(0) + xm.mean(0) * (ym - c).mean()
        A[k] = num / (W2[k] @ num)
    return A


def dense_net(rng, D=7, K=5, dtype=np.float64):
    W = rng.normal(size=(K, D))
    b = rng.normal(size=K) * 0.5
    return refnet.Sequential([refnet.Dense(W, b)]).astype(dtype)


def data(rng, n=1500, D=7, offset=0.0, scale=1.0):
    """Correlated rows with a non-zero mean."""
    L = rng.normal(size=(D, D)) / np.sqrt(D)
    return offset + scale * (rng.normal(size=(n, D)) @ L.T + rng.uniform(-1, 1, D))


@pytest.mark.parametrize("kind", refnet.patterns.KINDS)
def test_matches_two_pass_reference(kind):
    rng = np.random.default_rng(0)
    net = dense_net(rng)
    X = data(rng)
    P = refnet.fit_patterns(net, X, kind=kind, batch_size=256)
    W, b = net[0].W, net[0].b
    np.testing.assert_allclose(P[0], two_pass(X, W, b, kind), rtol=1e-10, atol=1e-12)
    if kind == "linear":
        assert P.A_minus is None
    else:
        A_m = two_pass(X, W, b, kind, minus=True)
        np.testing.assert_allclose(P.A_minus[0], A_m, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(np.einsum("kd,kd->k", W, P[0]), 1.0, rtol=1e-12)


@FAST
@given(seeds, st.integers(1, 400), st.sampled_from(refnet.patterns.KINDS))
def test_batch_size_invariance(seed, batch_size, kind):
    rng = np.random.default_rng(seed)
    net = dense_net(rng)
    X = data(rng, n=800)
    P1 = refnet.fit_patterns(net, X, kind=kind, batch_size=batch_size)
    P2 = refnet.fit_patterns(net, X, kind=kind, batch_size=800)
    np.testing.assert_allclose(P1[0], P2[0], rtol=1e-11, atol=1e-12)


def assert_patterns_close(A_test: np.ndarray, A_ref: np.ndarray, W2: np.ndarray) -> None:
    r"""Per neuron ``k``: ``max|A_test - A_ref| <= 1e-10 cond_k max|A_ref|``.

    A pattern is ``a = num / (w^T num)``, so a relative error ``delta`` in the sums ``num``
    becomes about ``delta * cond`` in ``a``, with ``cond = ||w|| ||a|| >= |w^T a| = 1``
    (Cauchy-Schwarz): a mask with few rows, or a masked covariance that nearly cancels, has a
    small ``w^T num`` and a large ``cond``. Sums that agree to 1e-12 therefore give patterns
    within about ``1e-12 cond`` (measured: 5e-12 cond at cond 2.5e3); 1e-10 leaves margin.
    """
    K = len(W2)
    test, ref = A_test.reshape(K, -1), A_ref.reshape(K, -1)  # (K, D)
    cond = np.maximum(1.0, np.linalg.norm(W2, axis=1) * np.linalg.norm(ref, axis=1))  # (K,)
    err = np.abs(test - ref).max(axis=1)  # (K,)
    bound = 1e-10 * cond * np.abs(ref).max(axis=1) + 1e-12 * np.abs(ref).max()
    assert np.all(err <= bound), f"errors {err} exceed {bound} (cond {cond})"


@FAST
@given(seeds, st.integers(1, 799), st.sampled_from(refnet.patterns.KINDS), st.booleans())
def test_split_and_merge_equals_union(seed, split, kind, xx):
    """Accumulators of disjoint data (different shifts) merge into the union's, to 1e-12."""
    rng = np.random.default_rng(seed)
    net = dense_net(rng)
    X = data(rng, n=800, offset=3.0)
    layer = net[0]

    def acc(rows):
        s = LayerStats(layer, kind, minus=True, xx=xx)
        for chunk in np.array_split(rows, 3):
            s.update(chunk)
        return s

    union, a, b = acc(X), acc(X[:split]), acc(X[split:])
    merged = a.merge(b)
    assert merged.rows == union.rows == 800
    # the accumulators agree to 1e-12 once expressed in the same shift ...
    S, ysum, XX = merged._shifted_sums(union.x0, union.y0)
    np.testing.assert_allclose(S, union.S, rtol=1e-12, atol=1e-12 * np.abs(union.S).max())
    np.testing.assert_allclose(ysum, union.ysum, rtol=1e-12, atol=1e-12 * np.abs(ysum).max())
    # ... and so do the patterns, up to each neuron's conditioning
    pu, pm = union.patterns(), merged.patterns()
    W2 = layer.weight_matrix()
    assert_patterns_close(pm.A, pu.A, W2)
    if pu.A_minus is not None:
        assert_patterns_close(pm.A_minus, pu.A_minus, W2)
    np.testing.assert_array_equal(pm.active, pu.active)
    if xx:
        np.testing.assert_allclose(merged.covariance(), np.cov(X.T, bias=True), rtol=1e-10)


def test_merge_refuses_other_layer_or_kind():
    rng = np.random.default_rng(0)
    a = LayerStats(dense_net(rng)[0], "relu")
    with pytest.raises(ValueError, match="cannot merge"):
        a.merge(LayerStats(dense_net(rng, K=3)[0], "relu"))
    with pytest.raises(ValueError, match="cannot merge"):
        a.merge(LayerStats(dense_net(rng)[0], "linear"))
    with pytest.raises(TypeError, match="LayerStats"):
        a.merge("not stats")


def test_merge_into_empty_and_of_empty():
    rng = np.random.default_rng(2)
    layer = dense_net(rng)[0]
    X = data(rng, n=300)
    full = LayerStats(layer).update(X)
    empty = LayerStats(layer)
    np.testing.assert_array_equal(empty.merge(full).patterns().A, full.patterns().A)
    np.testing.assert_array_equal(full.merge(LayerStats(layer)).patterns().A, empty.patterns().A)


@pytest.mark.parametrize("kind", refnet.patterns.KINDS)
def test_float32_matches_float64_reference(kind):
    """Float32 input and weights: patterns within 1e-5 relative of the float64 reference."""
    rng = np.random.default_rng(3)
    net64 = dense_net(rng, D=20, K=8)
    X = data(rng, n=20000, D=20)
    X32 = X.astype(np.float32)
    net32 = refnet.Sequential([refnet.Dense(net64[0].W, net64[0].b)]).astype(np.float32)
    P32 = refnet.fit_patterns(net32, X32, kind=kind, batch_size=4096)
    # reference: the float64 two-pass formula on the same (float32-rounded) numbers
    W, b = net32[0].W.astype(np.float64), net32[0].b.astype(np.float64)
    ref = two_pass(X32, W, b, kind)
    err = np.abs(P32[0] - ref).max() / np.abs(ref).max()
    assert err < 1e-5, err


@pytest.mark.parametrize("kind", refnet.patterns.KINDS)
def test_offset_data_against_two_pass(kind):
    """Mean 1e4, standard deviation 1: within 1e-6 relative of a float64 two-pass reference."""
    rng = np.random.default_rng(4)
    net = dense_net(rng, D=10, K=6)
    X = data(rng, n=5000, D=10, offset=1e4)
    P = refnet.fit_patterns(net, X, kind=kind, batch_size=512)
    ref = two_pass(X, net[0].W, net[0].b + net[0].W @ np.zeros(10), kind)
    err = np.abs(P[0] - ref).max() / np.abs(ref).max()
    assert err < 1e-6, err


def test_offset_data_float32():
    """Float32 rows with mean 1e4 (shifted before the float32 GEMMs) stay accurate."""
    rng = np.random.default_rng(5)
    D = 10
    X32 = data(rng, n=8000, D=D, offset=1e4).astype(np.float32)
    W = rng.normal(size=(6, D))
    b = -(W @ np.full(D, 1e4))  # centre z so that both masks are populated
    net = refnet.Sequential([refnet.Dense(W, b)]).astype(np.float32)
    P = refnet.fit_patterns(net, X32, kind="relu", batch_size=1000)
    # reference: float64 on the same float32 data, with y = z - b from the float32 z
    z = net(X32).astype(np.float64)
    ref = _two_pass_from_z(X32.astype(np.float64), z, net[0].b.astype(np.float64), net[0].W)
    err = np.abs(P[0] - ref).max() / np.abs(ref).max()
    assert err < 1e-4, err


def _two_pass_from_z(X, z, b, W2):
    """Eq. 8 from given pre-activations ``z`` (as the float32 forward computed them)."""
    Y = z - b
    A = np.zeros(W2.shape)
    for k in range(len(W2)):
        m = z[:, k] > 0
        xm, ym = X[m], Y[m, k]
        num = ((xm - xm.mean(0)) * (ym - Y[:, k].mean())[:, None]).mean(0)
        num += xm.mean(0) * (ym - Y[:, k].mean()).mean()
        A[k] = num / (W2[k].astype(np.float64) @ num)
    return A


def test_fit_stats_then_patterns_and_xx():
    rng = np.random.default_rng(6)
    net = dense_net(rng)
    X = data(rng, n=600)
    stats, n = fit_stats(net, X, kind="relu", batch_size=128, xx=True)
    assert n == 600
    P = patterns_from_stats(stats, n)
    np.testing.assert_allclose(P[0], two_pass(X, net[0].W, net[0].b), rtol=1e-10)
    np.testing.assert_allclose(stats[0].covariance(), np.cov(X.T, bias=True), rtol=1e-10)
    np.testing.assert_allclose(stats[0].mean(), X.mean(0), rtol=1e-12)


def test_iterables_memmap_and_progress(tmp_path):
    rng = np.random.default_rng(7)
    net = dense_net(rng)
    X = data(rng, n=500)
    path = tmp_path / "x.npy"
    np.save(path, X)
    ref = refnet.fit_patterns(net, X)
    mm = refnet.fit_patterns(net, np.load(path, mmap_mode="r"), batch_size=64)
    gen = refnet.fit_patterns(net, ((X[i : i + 50], None) for i in range(0, 500, 50)))
    bar = refnet.fit_patterns(net, X, batch_size=100, progress=True)
    for P in (mm, gen, bar):
        np.testing.assert_allclose(P[0], ref[0], rtol=1e-11)
        assert P.report.samples == 500


def test_save_load_roundtrip_and_compatibility(tmp_path):
    rng = np.random.default_rng(8)
    net = refnet.Sequential(
        [
            refnet.Conv2D.create(2, 3, (3, 2), padding=1, seed=1),
            refnet.ReLU(),
            refnet.Flatten(),
            refnet.Dense.create(3 * 6 * 7, 4, seed=2),
        ]
    )
    P = refnet.fit_patterns(net, rng.normal(size=(40, 2, 6, 6)), batch_size=16)
    path = P.save(tmp_path / "patterns")
    assert path.suffix == ".npz"
    Q = refnet.Patterns.load(path)
    assert (Q.kind, Q.layer_indices) == (P.kind, P.layer_indices) == ("relu", (0, 3))
    for i in P:
        np.testing.assert_array_equal(Q[i], P[i])
        np.testing.assert_array_equal(Q.A_minus[i], P.A_minus[i])
        np.testing.assert_array_equal(Q.report.active[i], P.report.active[i])
    assert Q.report.rows == P.report.rows == {0: 40 * 6 * 7, 3: 40}
    assert Q.report.degenerate == P.report.degenerate
    assert str(Q.report) == str(P.report)
    Q.check_compatible(net)
    other = refnet.Sequential([refnet.Flatten(), refnet.Dense.create(72, 4)])
    with pytest.raises(ValueError, match=r"kernel layers \[0, 3\].*\[1\]"):
        Q.check_compatible(other)
    wider = refnet.Sequential(
        [
            refnet.Conv2D.create(2, 5, (3, 2), padding=1),
            refnet.ReLU(),
            refnet.Flatten(),
            refnet.Dense.create(5 * 6 * 7, 4),
        ]
    )
    with pytest.raises(ValueError, match=r"layer 0 \(Conv2D\) has shape \(3, 2, 3, 2\)"):
        Q.check_compatible(wider)
    with pytest.raises(KeyError, match="no pattern for layer 1"):
        Q[1]


def test_load_refuses_other_files(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, a=np.zeros(3))
    with pytest.raises(ValueError, match="not a refnet file"):
        refnet.Patterns.load(bad)
    net_file = tmp_path / "net.npz"
    refnet.save(refnet.Sequential([refnet.Dense.create(3, 2)]), net_file)
    with pytest.raises(ValueError, match="expected 'patterns'"):
        refnet.Patterns.load(net_file)
