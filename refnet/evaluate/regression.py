r"""The regression behind :math:`\rho`: the ``v`` that best predicts a target from ``d``.

:math:`\rho` (paper, Eq. 1) needs :math:`\max_v \operatorname{corr}(t, v^\top d)`, whose
maximiser is the least-squares regression (with intercept) of ``t`` on ``d``. It is fitted
on one split and the correlation is measured on another (MATH.md section 5), so what
matters is a ``v`` that *generalises*. When the number of rows ``n`` is not much larger
than the dimension ``D`` (the digits CNN's Dense layer has ``D = 512`` inputs and a few
hundred images per split) plain least squares fits noise and under-states the
correlation on held-out data. refnet therefore fits ridge regression,

.. math::

    v_\lambda = \arg\min_v \lVert t_c - d_c v \rVert^2 + \lambda \lVert v \rVert^2
              = (d_c^\top d_c + \lambda I)^{-1} d_c^\top t_c ,

with ``d_c``, ``t_c`` centred (the intercept), and chooses :math:`\lambda` by generalised
cross-validation on the fit split (Golub, Heath & Wahba 1979),

.. math::

    \mathrm{GCV}(\lambda) = \frac{\lVert t_c - d_c v_\lambda \rVert^2}
                                 {(n - 1 - \mathrm{df}_\lambda)^2}, \qquad
    \mathrm{df}_\lambda = \sum_i \frac{e_i}{e_i + \lambda},

over a grid that includes :math:`\lambda = 0` (plain least squares, the minimum-norm
solution when ``d`` is rank deficient), so plain least squares is used whenever it
generalises best. Everything comes from one eigendecomposition: of ``d_c^T d_c`` (D x D)
when ``n >= D``, of ``d_c d_c^T`` (n x n) otherwise; ``e_i`` are its eigenvalues.
"""

from __future__ import annotations

import numpy as np

#: Eigenvalues below this fraction of the largest are the null space of ``d`` (dropped).
RCOND = 1e-10

#: The ridge grid, relative to the mean retained eigenvalue (0 = plain least squares).
RELATIVE_LAMBDAS = np.concatenate([[0.0], np.logspace(-6, 1, 15)])


def ridge_gcv(d: np.ndarray, T: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Ridge regressions with intercept of each column of ``T`` on ``d``, GCV-chosen.

    Parameters
    ----------
    d : (n, D) regressors (the distractor estimates ``x - S(x)``).
    T : (n, m) targets, one regression per column.

    Returns
    -------
    V : (D, m) the coefficients ``v`` (the intercept is not needed: correlations ignore it).
    lambdas : (m,) the chosen :math:`\lambda` per target.

    .. math:: v = \sum_i \frac{\sqrt{e_i}}{e_i + \lambda}\, (u_i^\top t_c)\, v_i
    """
    n, D = d.shape
    dc = d - d.mean(axis=0)  # (n, D)
    Tc = T - T.mean(axis=0)  # (n, m)
    m = T.shape[1]
    if n >= D:
        e, Vd = np.linalg.eigh(dc.T @ dc)  # (D,), (D, D): right singular vectors
    else:
        e, U = np.linalg.eigh(dc @ dc.T)  # (n,), (n, n): left singular vectors
    keep = e > RCOND * max(e.max(initial=0.0), 0.0)
    V = np.zeros((D, m))
    lambdas = np.zeros(m)
    if not keep.any():
        return V, lambdas
    e = e[keep]  # (r,)
    s = np.sqrt(e)
    if n >= D:
        Vd = Vd[:, keep]  # (D, r)
        H = (Vd.T @ (dc.T @ Tc)) / s[:, None]  # (r, m): u_i^T t_c = v_i^T d_c^T t_c / s_i
    else:
        U = U[:, keep]  # (n, r)
        H = U.T @ Tc  # (r, m)
        Vd = (dc.T @ U) / s  # (D, r): v_i = d_c^T u_i / s_i
    grid = RELATIVE_LAMBDAS * e.mean()  # (g,)
    f = e[None, :] / (e[None, :] + grid[:, None])  # (g, r) shrinkage factors
    tt = np.einsum("nm,nm->m", Tc, Tc)  # (m,)
    hh = np.einsum("rm,rm->m", H, H)  # (m,)
    rss = tt[None, :] - hh[None, :] + ((1 - f) ** 2) @ (H**2)  # (g, m)
    dof = (n - 1) - f.sum(axis=1)  # (g,)
    with np.errstate(divide="ignore", invalid="ignore"):
        gcv = np.where(dof[:, None] > 0.5, rss / np.maximum(dof, 0.5)[:, None] ** 2, np.inf)
    best = np.argmin(gcv, axis=0)  # (m,)
    for j in range(m):
        lam = grid[best[j]]
        V[:, j] = Vd @ (s / (e + lam) * H[:, j])  # (D,)
        lambdas[j] = lam
    return V, lambdas
