r"""Validating wrappers of the LRP engine's divide and multiply (MATH.md section 4).

.. math::

    s = \frac{R}{z + \epsilon\,\mathrm{sign}(z)}, \qquad
    s = \Big[\frac{\alpha R}{z^+};\ -\frac{\beta R}{z^-}\Big], \qquad
    R_{\mathrm{in}} = \sum_k x_k \odot c_k .

Arrays are ``(N, F, ...)``: a Dense layer's ``(N, K)`` or a Conv2D layer's
``(N, F, H', W')``; the stacked arrays (``[s^+; s^-]``, the inputs ``[x_1; ...; x_k]`` and
their adjoints) are stacked along axis 1, the channels. Each wrapper checks, makes the
inputs C-contiguous, allocates and calls ``pyx/lrp.pyx`` or its twin
:mod:`refnet.kernels.reference.lrp`.
"""

from __future__ import annotations

import numpy as np

from .compiled import impl as _impl


def _check(name: str, like: np.ndarray, **arrays: np.ndarray) -> None:
    """Every array is a NumPy array of ``like``'s dtype, with at least 2 dimensions."""
    for what, a in {"first array": like, **arrays}.items():
        if not isinstance(a, np.ndarray) or a.dtype.type not in (np.float32, np.float64):
            raise TypeError(f"{name}: {what} must be a float32 or float64 array")
        if a.dtype != like.dtype or a.ndim < 2:
            raise ValueError(
                f"{name}: {what} has dtype {a.dtype} and shape {a.shape}; expected "
                f"{like.dtype} and (N, F, ...)"
            )


def lrp_ratio(R: np.ndarray, z: np.ndarray, eps: float = 0.0, out: np.ndarray | None = None):
    r"""``s = R / (z + eps sign(z))`` (``sign(0) = +1``), 0 where the denominator is 0.

    ``out`` (optional, C-contiguous, of ``R``'s shape and dtype) may be ``R`` itself.
    """
    _check("lrp_ratio", R, z=z)
    if R.shape != z.shape or not np.isfinite(eps) or eps < 0:
        raise ValueError(f"lrp_ratio: R {R.shape} and z {z.shape} differ, or eps {eps} < 0")
    R, z = np.ascontiguousarray(R), np.ascontiguousarray(z)
    if out is None or out.shape != R.shape or not out.flags.c_contiguous:
        out = np.empty_like(R)
    _impl.lrp_ratio(R.reshape(-1), z.reshape(-1), float(eps), out.reshape(-1))
    return out


def lrp_ratio_alpha_beta(
    R: np.ndarray,
    z: np.ndarray,
    z_plus: np.ndarray,
    offset: np.ndarray,
    alpha: float,
    beta: float,
) -> np.ndarray:
    r"""``[alpha R / z^+; -beta R / z^-]`` stacked on axis 1, ``z^- = z - z^+ - offset``.

    R, z, z_plus ``(N, F, ...)``, offset ``(F,)`` (per output channel) -> ``(N, 2F, ...)``.
    """
    name = "lrp_ratio_alpha_beta"
    _check(name, R, z=z, z_plus=z_plus)
    if not (R.shape == z.shape == z_plus.shape) or offset.shape != (R.shape[1],):
        raise ValueError(
            f"{name}: R {R.shape}, z {z.shape}, z_plus {z_plus.shape} and offset "
            f"{offset.shape} do not fit"
        )
    N, F = R.shape[:2]
    shape3 = (N, F, -1)  # (N, F, P)
    out = np.empty((N, 2 * F, *R.shape[2:]), dtype=R.dtype)
    if out.size == 0:
        return out
    _impl.lrp_ratio_alpha_beta(
        np.ascontiguousarray(R).reshape(shape3),
        np.ascontiguousarray(z).reshape(shape3),
        np.ascontiguousarray(z_plus).reshape(shape3),
        np.ascontiguousarray(offset, dtype=R.dtype),
        float(alpha),
        float(beta),
        out.reshape(N, 2 * F, -1),
    )
    return out


def lrp_input_relevance(X: np.ndarray, c: np.ndarray, k: int = 1) -> np.ndarray:
    r"""``R_in = sum_k x_k * c_k`` for ``k`` inputs stacked on axis 1 of ``X`` and ``c``.

    ``X`` and ``c`` are ``(N, k C, ...)``; returns ``(N, C, ...)``. With ``k = 1`` the
    result is written into ``c`` when it is C-contiguous (the engine owns it).
    """
    name = "lrp_input_relevance"
    _check(name, X, c=c)
    if X.shape != c.shape or X.shape[1] % k:
        raise ValueError(f"{name}: X {X.shape} and c {c.shape} differ, or not {k} parts")
    N = X.shape[0]
    shape = (N, X.shape[1] // k, *X.shape[2:])
    X, c_in = np.ascontiguousarray(X), np.ascontiguousarray(c)
    out = c_in if k == 1 else np.empty(shape, dtype=X.dtype)
    if out.size == 0:
        return out.reshape(shape)
    _impl.lrp_input_relevance(X.reshape(N, k, -1), c_in.reshape(N, k, -1), out.reshape(N, -1))
    return out
