"""The ground-truth recipes (refnet.datasets): balance, masks, normalisation, seeds, formulas."""

import numpy as np
import pytest
from scipy.linalg import expm
from scipy.ndimage import gaussian_filter

from refnet.datasets import (
    BACKGROUNDS,
    DEFAULT_ALPHA,
    SCENARIOS,
    frobenius_normalised,
    tl_mask,
    wilming2022,
    wilming_patterns,
    xai_tris,
)

ALL = [(s, b) for s in SCENARIOS for b in BACKGROUNDS]

T = np.array([[1, 0], [1, 1], [1, 0]], dtype=float)
L = np.array([[1, 0], [1, 0], [1, 1]], dtype=float)


def _image(shape, r, c):
    out = np.zeros((8, 8))
    out[r : r + shape.shape[0], c : c + shape.shape[1]] = shape
    return out


T_IMG, L_IMG = _image(T, 1, 1), _image(L, 4, 5)


def _fro(M):
    return M / np.sqrt((M**2).sum())


@pytest.mark.parametrize(("scenario", "background"), ALL)
def test_xai_tris_shapes_balance_and_scale(scenario, background):
    d = xai_tris(scenario, background, n=200, seed=1)
    assert d.X.shape == (200, 1, 8, 8) and d.X.dtype == np.float32
    assert d.y.dtype == np.int64 and d.masks.dtype == bool and d.masks.shape == (200, 1, 8, 8)
    assert (d.y[:100] == 0).all() and (d.y[100:] == 1).all()
    assert np.abs(d.X).max() == pytest.approx(1.0)  # one global max
    assert d.params["alpha"] == DEFAULT_ALPHA[scenario, background]


@pytest.mark.parametrize(("scenario", "background"), ALL)
def test_xai_tris_is_deterministic_in_the_seed(scenario, background):
    a, b = xai_tris(scenario, background, n=40, seed=5), xai_tris(scenario, background, 40, seed=5)
    c = xai_tris(scenario, background, n=40, seed=6)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.masks, b.masks)
    assert not np.array_equal(a.X, c.X)


def test_default_alphas_are_the_published_ones():
    assert DEFAULT_ALPHA == {
        ("linear", "white"): 0.18,
        ("linear", "correlated"): 0.0125,
        ("multiplicative", "white"): 0.7,
        ("multiplicative", "correlated"): 0.1,
        ("translations_rotations", "white"): 0.65,
        ("translations_rotations", "correlated"): 0.2,
        ("xor", "white"): 0.35,
        ("xor", "correlated"): 0.15,
    }


def test_tl_mask_is_the_two_placed_shapes():
    expected = np.zeros((8, 8), dtype=bool)
    expected[1:4, 1] = True
    expected[2, 2] = True
    expected[4:7, 5] = True
    expected[6, 6] = True
    assert np.array_equal(tl_mask(), expected) and tl_mask().sum() == 8
    for scenario in ("linear", "multiplicative", "xor"):
        d = xai_tris(scenario, "white", n=8)
        assert (d.masks[:, 0] == expected).all()


def test_translations_rotations_masks_are_each_samples_own_shape():
    d = xai_tris("translations_rotations", "white", n=400, seed=2)
    rotations = set()
    for mask, y in zip(d.masks[:, 0], d.y, strict=True):
        rows, cols = np.nonzero(mask)
        box = mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].astype(float)
        shape = T if y == 0 else L
        k = [k for k in range(4) if np.rot90(shape, k).shape == box.shape]
        k = [k for k in k if np.array_equal(np.rot90(shape, k), box)]
        assert mask.sum() == 4 and k, (y, box)
        rotations.add(k[0])
    assert rotations == {0, 1, 2, 3}


def test_linear_white_formula_written_out():
    n, alpha, seed = 4, 0.18, 3
    rng = np.random.default_rng(seed)
    B = rng.normal(0.0, 0.5, size=(n, 8, 8)).reshape(n, 64)
    P = np.stack([T_IMG, T_IMG, L_IMG, L_IMG]).reshape(n, 64)
    x = alpha * _fro(P) + (1 - alpha) * _fro(B)
    x /= np.abs(x).max()
    d = xai_tris("linear", "white", n=n, seed=seed)
    np.testing.assert_allclose(d.X.reshape(n, 64), x, rtol=1e-6, atol=1e-7)


def test_multiplicative_correlated_formula_written_out():
    n, alpha, seed = 4, 0.1, 7
    rng = np.random.default_rng(seed)
    B = rng.normal(0.0, 0.5, size=(n, 8, 8))
    B = np.stack([gaussian_filter(b, 3) for b in B]).reshape(n, 64)  # per sample
    P = np.stack([T_IMG, T_IMG, L_IMG, L_IMG]).reshape(n, 64)
    x = _fro(1 - alpha * P) * _fro(B)
    x /= np.abs(x).max()
    d = xai_tris("multiplicative", "correlated", n=n, seed=seed)
    np.testing.assert_allclose(d.X.reshape(n, 64), x, rtol=1e-6, atol=1e-7)


def test_xor_formula_written_out():
    n, alpha, seed = 8, 0.35, 0
    rng = np.random.default_rng(seed)
    B = rng.normal(0.0, 0.5, size=(n, 8, 8)).reshape(n, 64)
    signs = [(1, 1)] * 2 + [(-1, -1)] * 2 + [(1, -1)] * 2 + [(-1, 1)] * 2
    P = np.stack([s * T_IMG + t * L_IMG for s, t in signs]).reshape(n, 64)
    x = alpha * _fro(P) + (1 - alpha) * _fro(B)
    x /= np.abs(x).max()
    d = xai_tris("xor", "white", n=n, seed=seed)
    np.testing.assert_allclose(d.X.reshape(n, 64), x, rtol=1e-6, atol=1e-7)
    assert (d.y == [0, 0, 0, 0, 1, 1, 1, 1]).all()


def test_correlated_background_is_the_smoothed_white_one():
    # alpha = 0: only the background is left, so the two differ only by the smoothing
    white = xai_tris("linear", "white", n=6, alpha=0.0, seed=4).X[:, 0].astype(float)
    corr = xai_tris("linear", "correlated", n=6, alpha=0.0, seed=4).X[:, 0].astype(float)
    smoothed = np.stack([gaussian_filter(w, 3) for w in white])
    np.testing.assert_allclose(corr, smoothed / np.abs(smoothed).max(), rtol=1e-5, atol=1e-6)


def test_wilming2022_formula_written_out():
    n, l1, seed = 4, 0.3, 11
    rng = np.random.default_rng(seed)
    zeta = rng.standard_normal(n)
    A = np.triu(2 * np.pi * rng.random((64, 64)) - np.pi)
    U = expm(A - A.T)
    ev = rng.random(64)
    ev = ev + 0.01 * ev.max()
    eta = rng.standard_normal((n, 64)) * np.sqrt(ev) @ U.T
    a, d = wilming_patterns()
    z = np.array([-1.0, -1.0, 1.0, 1.0])
    S, D = np.outer(z, a.ravel()), np.outer(zeta, d.ravel())
    l2 = (1 - l1) / 2
    x = l1 * _fro(S) + l2 * _fro(D) + l2 * _fro(eta)
    data = wilming2022(l1, n=n, seed=seed)
    np.testing.assert_allclose(data.X.reshape(n, 64), x, rtol=1e-6, atol=1e-8)
    assert (data.masks[:, 0] == (a != 0)).all() and data.masks[0].sum() == 24


def test_wilming2022_patterns_and_noise_covariance():
    a, d = wilming_patterns()
    pb = np.array([[0, 0.5, 0.5, 0], [0.5, 1, 1, 0.5], [0.5, 1, 1, 0.5], [0, 0.5, 0.5, 0]])
    assert np.array_equal(a[:4, :4], pb) and np.array_equal(a[4:, :4], -pb)
    assert np.array_equal(d[:4, :4], pb) and np.array_equal(d[:4, 4:], -pb)
    assert not a[:, 4:].any() and not d[4:].any()
    data = wilming2022(0.08, n=1000, seed=0)
    assert (data.y[:500] == 0).all() and (data.y[500:] == 1).all()
    assert data.X.dtype == np.float32 and data.X.shape == (1000, 1, 8, 8)
    assert np.array_equal(data.X, wilming2022(0.08, n=1000, seed=0).X)


def test_frobenius_normalisation():
    M = np.arange(12.0).reshape(3, 4)
    assert np.linalg.norm(frobenius_normalised(M)) == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(frobenius_normalised(M), M / np.sqrt((M**2).sum()), rtol=1e-12)
    assert np.array_equal(frobenius_normalised(np.zeros((2, 2))), np.zeros((2, 2)))


@pytest.mark.parametrize(
    ("call", "fragment"),
    [
        (lambda: xai_tris("spiral", "white"), "unknown scenario"),
        (lambda: xai_tris("linear", "pink"), "unknown background"),
        (lambda: xai_tris("linear", "white", n=7), "multiple of 2"),
        (lambda: xai_tris("xor", "white", n=10), "multiple of 4"),
        (lambda: xai_tris("linear", "white", alpha=1.5), "alpha"),
        (lambda: wilming2022(-0.1), "l1"),
        (lambda: wilming2022(0.1, n=0), "n must be"),
    ],
)
def test_bad_arguments_are_refused(call, fragment):
    with pytest.raises(ValueError, match=fragment):
        call()
