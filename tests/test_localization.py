"""Localisation metrics (refnet.evaluate.localization) and the suppressor of Wilming 2022."""

import sys

import numpy as np
import pytest
from scipy.optimize import linprog

from refnet import explain, fit_patterns
from refnet.datasets import tl_mask, wilming2022, wilming_patterns
from refnet.evaluate import emd_accuracy, mass_accuracy, precision
from refnet.groundtruth.models import train
from refnet.groundtruth.run import stratified_split


def _pot():
    return pytest.importorskip("ot")


def _tl(N):
    return np.broadcast_to(tl_mask(), (N, 1, 8, 8))


def test_a_perfect_map_scores_one():
    _pot()
    rng = np.random.default_rng(0)
    masks = _tl(5)
    exact = masks.astype(np.float64)
    inside = exact * rng.uniform(0.5, 2.0, size=exact.shape)  # any positive values in the mask
    for h in (exact, -inside, inside.astype(np.float32)):
        for metric in (precision, mass_accuracy):
            np.testing.assert_allclose(metric(h, masks), 1.0, rtol=0, atol=1e-12)
    np.testing.assert_allclose(emd_accuracy(exact, masks), 1.0, rtol=0, atol=1e-12)


def test_a_uniform_random_map_scores_chance():
    _pot()
    N = 3000
    h = np.random.default_rng(1).uniform(-1, 1, size=(N, 1, 8, 8))
    masks = _tl(N)
    assert precision(h, masks).mean() == pytest.approx(8 / 64, abs=0.01)
    assert mass_accuracy(h, masks).mean() == pytest.approx(8 / 64, abs=0.005)
    emd = emd_accuracy(h[:600], masks[:600])
    assert emd.mean() == pytest.approx(0.83, abs=0.01)
    assert ((emd >= 0) & (emd <= 1)).all()


def _linprog_emd(p, q, cost):
    """min <T, cost> over T >= 0 with row sums p and column sums q, by scipy's HiGHS."""
    n, m = cost.shape
    rows = np.kron(np.eye(n), np.ones((1, m)))  # sum_j T_ij = p_i
    cols = np.kron(np.ones((1, n)), np.eye(m))  # sum_i T_ij = q_j
    res = linprog(
        cost.ravel(), A_eq=np.vstack([rows, cols]), b_eq=np.concatenate([p, q]), method="highs"
    )
    assert res.status == 0
    return res.fun


@pytest.mark.parametrize("seed", range(6))
def test_emd_equals_the_linear_program(seed):
    _pot()
    rng = np.random.default_rng(seed)
    C, H, W = int(rng.integers(1, 3)), int(rng.integers(2, 5)), int(rng.integers(2, 5))
    h = rng.normal(size=(1, C, H, W)) * (rng.random((1, C, H, W)) < 0.8)
    mask = rng.random((1, 1, H, W)) < 0.4
    mask[0, 0, rng.integers(H), rng.integers(W)] = True
    s = np.abs(h).sum(axis=1).ravel()
    r, c = np.indices((H, W))
    centres = np.stack([r.ravel(), c.ravel()], axis=1)
    cost = np.linalg.norm(centres[:, None] - centres[None], axis=2)
    expected = 1 - _linprog_emd(s / s.sum(), mask.ravel() / mask.sum(), cost) / np.hypot(H, W)
    assert emd_accuracy(h, mask)[0] == pytest.approx(expected, rel=1e-9, abs=1e-9)


def test_emd_of_a_point_moved_by_one_pixel():
    _pot()
    h = np.zeros((1, 1, 8, 8))
    h[0, 0, 2, 3] = 5.0
    mask = np.zeros((1, 1, 8, 8), dtype=bool)
    mask[0, 0, 2, 4] = True
    assert emd_accuracy(h, mask)[0] == pytest.approx(1 - 1 / np.sqrt(128), abs=1e-12)


def test_mass_worked_out_by_hand():
    # |s| summed over the two channels: [[1+1, 2+0], [0+3, 1+1]] = [[2, 2], [3, 2]]; mask
    # on the diagonal: (2 + 2) / 9
    h = np.array([[[[1.0, -2.0], [0.0, 1.0]], [[-1.0, 0.0], [3.0, 1.0]]]])
    mask = np.array([[[[True, False], [False, True]]]])
    assert mass_accuracy(h, mask)[0] == pytest.approx(4 / 9, abs=1e-15)
    # a two-channel mask is the union of its channels
    mask2 = np.array([[[[True, False], [False, False]], [[False, False], [False, True]]]])
    assert mass_accuracy(h, mask2)[0] == pytest.approx(4 / 9, abs=1e-15)


def test_precision_worked_out_by_hand_with_ties():
    # n = 2 mask pixels; the two largest |s| are 5 (in the mask) and 3 (not): precision 1/2
    h = np.array([[[[5.0, 3.0], [1.0, 0.5]]]])
    mask = np.array([[[[True, False], [False, True]]]])
    assert precision(h, mask)[0] == 0.5
    # the 2nd place is shared by three tied pixels, one of them in the mask: 1 + 1/3 of 2
    h = np.array([[[[5.0, 1.0], [1.0, 1.0]]]])
    assert precision(h, mask)[0] == pytest.approx((1 + 1 / 3) / 2, abs=1e-15)


def test_a_zero_map_scores_like_the_uniform_map():
    _pot()
    masks = _tl(2)
    zero, ones = np.zeros((2, 1, 8, 8)), np.ones((2, 1, 8, 8))
    for metric in (precision, mass_accuracy, emd_accuracy):
        np.testing.assert_allclose(metric(zero, masks), metric(ones, masks), atol=1e-12)
    np.testing.assert_allclose(precision(zero, masks), 8 / 64, atol=1e-15)
    assert np.isfinite(emd_accuracy(zero, masks)).all()


@pytest.mark.parametrize("metric", [precision, mass_accuracy])
def test_bad_input_is_refused(metric):
    h = np.ones((2, 1, 8, 8))
    with pytest.raises(ValueError, match="masks must have shape"):
        metric(h, np.ones((2, 8, 8), dtype=bool))
    with pytest.raises(ValueError, match="channels"):
        metric(np.ones((2, 2, 8, 8)), np.ones((2, 3, 8, 8), dtype=bool))
    with pytest.raises(ValueError, match="empty"):
        metric(h, np.zeros((2, 1, 8, 8), dtype=bool))
    with pytest.raises(ValueError, match="NaN"):
        metric(np.full((2, 1, 8, 8), np.nan), _tl(2))
    with pytest.raises(TypeError, match="bool"):
        metric(h, np.full((2, 1, 8, 8), 0.5))


def test_emd_without_pot_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ot", None)  # `import ot` now raises ImportError
    with pytest.raises(ImportError, match=r"refnet\[groundtruth\]"):
        emd_accuracy(np.ones((1, 1, 8, 8)), _tl(1))


def test_wilming2022_linear_pattern_avoids_the_suppressor_and_the_gradient_does_not():
    """A linear model must weight the suppressor blob to cancel the distractor (its gradient
    is the weight vector w); the pattern a = cov[x, y] / var[y] recovers the signal, which is
    zero there. Strong signal (l1 = 0.2) so that the trained model cancels the distractor."""
    n = 2000
    data = wilming2022(0.2, n=n, seed=0)
    X = data.X.astype(np.float64) / np.abs(data.X).max()
    tr, te = stratified_split(data.y, seed=0)
    model = train("llr", X[tr], data.y[tr], X[te], data.y[te], epochs=40, lr=1e-2, seed=0)
    assert model.test_accuracy > 0.95
    a, d = wilming_patterns()
    suppressor = np.broadcast_to((d != 0) & (a == 0), (len(te), 1, 8, 8))  # top-right blob
    patterns = fit_patterns(model.net, X[tr], kind="linear")
    mass = {
        m: mass_accuracy(explain(model.net, X[te], m, data.y[te], patterns), suppressor).mean()
        for m in ("gradient", "patternnet", "patternattribution")
    }
    share = suppressor[0].sum() / 64  # what a uniform map would put there: 12 / 64
    assert mass["patternnet"] < 0.08 and mass["patternattribution"] < 0.08, mass
    assert mass["gradient"] > share and mass["gradient"] > 3 * mass["patternnet"], mass
