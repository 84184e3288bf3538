r"""Patterns recover the signal direction of linear generative models (MATH.md section 1).

Data ``x = a_s y + A_d eps`` with ``eps`` independent of ``y``; the exact filter ``w``
(``w^T a_s = 1``, ``w^T A_d = 0``) is a ``Dense(1)`` so that ``w^T x = y``.
"""

import warnings

import numpy as np
from conftest import seeds
from hypothesis import given, settings
from hypothesis import strategies as st

import refnet

N_ROWS = 20_000
#: Markov factor of the recovery bound: it fails with probability <= 1/K_MARKOV^2 = 1%
#: per example (much less in practice); examples are derandomized, so runs are repeatable.
K_MARKOV = 10.0
RECOVERY = settings(max_examples=25, deadline=None, derandomize=True)


def angle(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two vectors, in radians."""
    cos = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    return float(np.arccos(np.clip(cos, -1.0, 1.0)))


def well_conditioned(rng, D: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``a_s`` (D,), ``A_d`` (D, m) with singular values of ``[a_s, A_d]`` in [0.5, 2]; ``w``."""
    Q, _ = np.linalg.qr(rng.normal(size=(D, m + 1)))  # (D, m+1)
    V, _ = np.linalg.qr(rng.normal(size=(m + 1, m + 1)))  # (m+1, m+1)
    B = Q @ np.diag(rng.uniform(0.5, 2.0, m + 1)) @ V.T  # (D, m+1)
    w = np.linalg.pinv(B)[0]  # (D,): w^T B = e_1^T
    return B[:, 0], B[:, 1:], w


def draw(rng, family: str, mean: float, n: int, size=()) -> tuple[np.ndarray, float]:
    """Samples of one family with the given mean, and the population variance."""
    shape = (n, *size)
    if family == "gaussian":
        return rng.normal(mean, 1.0, shape), 1.0
    if family == "uniform":
        return rng.uniform(mean - 1.5, mean + 1.5, shape), 9.0 / 12.0
    return rng.exponential(1.0, shape) + (mean - 1.0), 1.0  # skewed: exponential


families = st.sampled_from(["gaussian", "uniform", "skewed"])


@st.composite
def generative_models(draw_, zero_mean_distractors: bool = False):
    D = draw_(st.integers(2, 30))
    m = draw_(st.integers(1, D - 1))
    rng = np.random.default_rng(draw_(seeds))
    a_s, A_d, w = well_conditioned(rng, D, m)
    y, _ = draw(rng, draw_(families), draw_(st.floats(0.5, 2.0)), N_ROWS)
    mu_eps = 0.0 if zero_mean_distractors else draw_(st.floats(-2.0, 2.0))
    eps, var_eps = draw(rng, draw_(families), mu_eps, N_ROWS, (m,))
    bias = draw_(st.sampled_from([0.0, 0.3]))
    X = np.outer(y, a_s) + eps @ A_d.T  # (n, D)
    return X, y, a_s, A_d, w, var_eps, bias


def recovery_bound(y, mask, y_ref, A_d, var_eps, a_s) -> float:
    r"""An angle bound on ``angle(a_hat, a_s)`` that shrinks as ``1/sqrt(n)`` (derived here).

    Every kind's estimate is ``a_hat = num / (w^T num)`` with
    ``num = E_M[x (y - c)]`` over the rows of the mask ``M`` (size ``n_M``), where
    ``c = E[y]`` (linear, relu) or ``E_M[y]`` (relu_masked_mean). With
    ``x = a_s y + A_d eps``, ``w^T a_s = 1`` and ``w^T A_d = 0``:

    .. math::

        \hat a = a_s + A_d N / \Delta, \quad
        N_j = E_M[\epsilon_j (y - c)], \quad \Delta = E_M[y (y - c)].

    Conditional on ``y`` (the mask depends on ``y`` only), the ``eps_j`` are independent of
    it, so ``E[N_j | y] = mu_j E_M[y - c]``, which is 0 for the linear and masked-mean kinds
    (``E_M[y - c] = 0``) and for relu when ``mu = 0``; and
    ``Var[N_j | y] = sigma_j^2 E_M[(y - c)^2] / n_M``, the ``N_j`` being uncorrelated. Hence

    .. math::

        E\|\hat a - a_s\|^2 = \frac{\sum_j \|A_{d,j}\|^2 \sigma_j^2\, E_M[(y - c)^2]}
        {n_M\, \Delta^2} =: V \propto 1/n,

    and by Markov's inequality ``||a_hat - a_s|| <= k sqrt(V)`` with probability at least
    ``1 - 1/k^2``. The perpendicular part of the error is at most its norm, so
    ``sin(angle) <= k sqrt(V) / ||a_s||``.
    """
    yM = y[mask]
    delta = np.mean(yM * (yM - y_ref))
    V = (np.sum(A_d**2, axis=0) * var_eps).sum() * np.mean((yM - y_ref) ** 2)
    V /= len(yM) * delta**2
    return float(np.arcsin(min(1.0, K_MARKOV * np.sqrt(V) / np.linalg.norm(a_s))))


def fit(X, w, bias, kind):
    net = refnet.Sequential([refnet.Dense(w[None, :], np.array([bias]))])
    return net, refnet.fit_patterns(net, X, kind=kind, batch_size=4096)


@RECOVERY
@given(generative_models(), st.sampled_from(["linear", "relu_masked_mean"]))
def test_signal_recovery_non_zero_mean(model, kind):
    """Kinds linear and relu_masked_mean recover ``a_s`` for distractors of any mean."""
    X, y, a_s, A_d, w, var_eps, bias = model
    net, P = fit(X, w, bias, kind)
    a = P[0][0]
    mask = np.ones(len(y), bool) if kind == "linear" else (X @ w + bias > 0)
    y_ref = y[mask].mean() if kind == "relu_masked_mean" else y.mean()
    assert angle(a, a_s) <= recovery_bound(y, mask, y_ref, A_d, var_eps, a_s)
    assert abs(w @ a - 1.0) < 1e-10  # w^T a = 1
    _check_gradient_is_filter(net, X, w, a_s, A_d)


@RECOVERY
@given(generative_models(zero_mean_distractors=True))
def test_signal_recovery_relu_zero_mean_distractors(model):
    """Kind relu (Eq. 8) recovers ``a_s`` when the distractors have mean 0."""
    X, y, a_s, A_d, w, var_eps, bias = model
    net, P = fit(X, w, bias, "relu")
    mask = X @ w + bias > 0
    assert angle(P[0][0], a_s) <= recovery_bound(y, mask, y.mean(), A_d, var_eps, a_s)
    assert abs(w @ P[0][0] - 1.0) < 1e-10


def _check_gradient_is_filter(net, X, w, a_s, A_d):
    """The gradient is ``w``; its angle to ``a_s`` is that of ``a_s`` to ``span(A_d)^perp``.

    ``w`` lies in ``span([a_s, A_d])`` and is orthogonal to ``A_d``, so
    ``sin angle(w, a_s) = ||P_{A_d} a_s|| / ||a_s||``: ``w`` is parallel to ``a_s`` exactly
    when ``A_d`` is orthogonal to ``a_s``.
    """
    logits, caches = net.forward(X[:5])
    grad, _ = net.backward(np.ones_like(logits), caches)
    np.testing.assert_allclose(grad, np.tile(w, (5, 1)), rtol=1e-12)
    Qd, _ = np.linalg.qr(A_d)  # (D, m): orthonormal basis of span(A_d)
    in_span = np.linalg.norm(Qd.T @ a_s) / np.linalg.norm(a_s)
    assert abs(np.sin(angle(w, a_s)) - in_span) < 1e-8
    if in_span > 1e-3:
        assert angle(w, a_s) > 1e-3  # not parallel


def test_gradient_parallel_to_signal_when_distractor_orthogonal():
    """With ``A_d`` orthogonal to ``a_s`` the filter is parallel to ``a_s``."""
    a_s, A_d = np.array([2.0, 0.0, 0.0]), np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 0.5]])
    B = np.column_stack([a_s, A_d])
    w = np.linalg.pinv(B)[0]
    assert angle(w, a_s) < 1e-12


def test_paper_two_dimensional_example():
    """MATH.md section 1: ``a_s = (1, 0)``, ``a_d = (1, 1)``: ``w = (1, -1)``, ``a = (1, 0)``."""
    rng = np.random.default_rng(0)
    y, eps = rng.normal(size=50_000), rng.normal(size=50_000)
    X = np.outer(y, [1.0, 0.0]) + np.outer(eps, [1.0, 1.0])  # (n, 2)
    w = np.array([1.0, -1.0])
    np.testing.assert_allclose(X @ w, y, atol=1e-12)  # the filter recovers y exactly
    net, P = fit(X, w, 0.0, "linear")
    np.testing.assert_allclose(P[0][0], [1.0, 0.0], atol=0.02)
    assert abs(P[0][0] @ w - 1.0) < 1e-12
    logits, caches = net.forward(X[:3])
    grad, _ = net.backward(np.ones_like(logits), caches)
    np.testing.assert_allclose(grad, [[1.0, -1.0]] * 3)  # the gradient is w, not a_s


def test_relu_equals_linear_when_all_active():
    """Every ``z > 0``: Eq. 8's ``E_+`` are plain means, so kind relu is kind linear."""
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3000, 6))
    net = refnet.Sequential([refnet.Dense(rng.normal(size=(4, 6)), np.full(4, 100.0))])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        P_relu = refnet.fit_patterns(net, X, kind="relu", batch_size=700)
    P_lin = refnet.fit_patterns(net, X, kind="linear", batch_size=700)
    assert (P_relu.report.active[0] == 3000).all()
    np.testing.assert_allclose(P_relu[0], P_lin[0], rtol=1e-10, atol=1e-12)
    assert P_relu.report.degenerate_minus[0] == 4  # a_-: no row with z <= 0
    assert not P_relu.A_minus[0].any()


def test_eq8_depends_on_distractor_mean():
    r"""40-D, Laplace distractors of mean 0.5: Eq. 8's ``E[y]`` biases ``a_+``.

    ``E_+[x (y - E[y])]`` picks up ``A_d mu E_+[y - E[y]] != 0``; with ``E_+[y]`` (kind
    relu_masked_mean) the term vanishes. Fixed seed; the issue quotes about 0.35, 27 and
    0.7 degrees for linear, relu and relu_masked_mean.
    """
    rng = np.random.default_rng(1)
    D, m, n = 40, 39, 100_000
    a_s, A_d, w = well_conditioned(rng, D, m)
    y = rng.normal(0.0, 5.0, n)
    eps = rng.laplace(0.5, 1.0, (n, m))
    X = np.outer(y, a_s) + eps @ A_d.T  # (n, D)
    deg = {k: np.degrees(angle(fit(X, w, 0.0, k)[1][0][0], a_s)) for k in refnet.patterns.KINDS}
    assert deg["linear"] < deg["relu_masked_mean"] < deg["relu"]
    assert deg["linear"] < 0.6
    assert deg["relu_masked_mean"] < 1.5
    assert 15.0 < deg["relu"] < 40.0
