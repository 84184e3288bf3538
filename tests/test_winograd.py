"""Winograd F(2x2, 3x3) against the direct (im2col) convolution.

The NumPy Winograd twins and the compiled Winograd kernels (when built) must equal the
NumPy im2col reference: forward and input gradient by F(2x2, 3x3), weight gradient by
F(3x3, 2x2); paddings 0 to 2 (symmetric and not), odd and even output sizes, float64
and float32.
"""

import numpy as np
import pytest

from refnet import kernels
from refnet.kernels import reference
from refnet.kernels.reference import winograd

TOL = {np.float64: 1e-10, np.float32: 1e-4}  # relative to the largest |entry|

try:
    from refnet.kernels import _conv as compiled
except ImportError:  # NumPy-only install
    compiled = None

IMPLS = [pytest.param(reference, id="numpy")]
IMPLS.append(
    pytest.param(
        compiled,
        id="cython",
        marks=pytest.mark.skipif(compiled is None, reason="compiled kernels not built"),
    )
)

# (N, C, F, H, W, ph, pw): odd/even sizes, asymmetric and zero padding, padding 2 (the
# adjoint then has padding 0), a 3x3 input with no padding (one output pixel), C = F = 1.
GEOMETRIES = [
    (2, 3, 4, 8, 8, 1, 1),
    (1, 5, 2, 7, 9, 1, 0),
    (3, 2, 3, 6, 5, 0, 2),
    (1, 1, 1, 3, 3, 0, 0),
    (2, 4, 6, 5, 4, 2, 2),
    (1, 16, 8, 11, 13, 1, 1),
    (4, 2, 2, 1, 1, 1, 1),
    (2, 3, 2, 4, 6, 2, 1),
]


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / max(1.0, np.abs(b).max()))


def _data(geom, dtype, seed=0):
    N, C, F, H, W, ph, pw = geom
    rng = np.random.default_rng(seed)
    Ho, Wo = H + 2 * ph - 2, W + 2 * pw - 2
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wt = rng.standard_normal((F, C, 3, 3)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    dy = rng.standard_normal((N, F, Ho, Wo)).astype(dtype)
    return x, Wt, b, dy


def test_transform_matrices_hand_worked():
    """F(2, 3) in 1-D: A^T[(G g) * (B^T d)] equals the two correlation outputs."""
    d = np.array([1.0, 2.0, -1.0, 3.0])
    g = np.array([0.5, -2.0, 1.0])
    y = winograd.A_T @ ((winograd.G @ g) * (winograd.B_T @ d))
    np.testing.assert_allclose(y, [0.5 - 4.0 - 1.0, 1.0 + 2.0 + 3.0], rtol=0, atol=1e-14)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("geom", GEOMETRIES)
def test_forward_matches_direct(impl, dtype, geom):
    x, Wt, b, _ = _data(geom, dtype)
    N, C, F, H, W, ph, pw = geom
    direct = np.empty((N, F, H + 2 * ph - 2, W + 2 * pw - 2), dtype=dtype)
    reference.conv2d_forward(x, Wt, b, 1, ph, pw, direct)
    out = np.full_like(direct, np.nan)
    impl.conv2d_forward_winograd(x, Wt, b, ph, pw, out)
    assert _rel_err(out, direct) < TOL[dtype]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("geom", GEOMETRIES)
def test_input_gradient_matches_direct(impl, dtype, geom):
    x, Wt, _, dy = _data(geom, dtype)
    direct = np.empty(x.shape, dtype=dtype)
    reference.conv2d_backward_input(dy, Wt, 1, geom[5], geom[6], direct)
    out = np.full_like(direct, np.nan)
    impl.conv2d_backward_input_winograd(dy, Wt, geom[5], geom[6], out)
    assert _rel_err(out, direct) < TOL[dtype]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("geom", GEOMETRIES)
def test_weight_gradient_matches_direct(impl, dtype, geom):
    x, _, _, dy = _data(geom, dtype)
    N, C, F, H, W, ph, pw = geom
    direct = np.empty((F, C, 3, 3), dtype=dtype)
    reference.conv2d_backward_weight(dy, x, 1, ph, pw, direct)
    out = np.full_like(direct, np.nan)
    impl.conv2d_backward_weight_winograd(dy, x, ph, pw, out)
    assert _rel_err(out, direct) < TOL[dtype]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_dispatch_uses_winograd_and_agrees(dtype):
    """The public wrappers pick Winograd for many channels; results equal the reference."""
    geom = (3, 16, 12, 9, 10, 1, 1)
    assert kernels._use_winograd(3, 3, 1, 16, 12) == (kernels.backend() == "cython")
    assert not kernels._use_winograd(3, 3, 2, 16, 12)
    x, Wt, b, dy = _data(geom, dtype, seed=1)
    y = kernels.conv2d_forward(x, Wt, b, 1, 1, 1)
    y_ref = np.empty_like(y)
    reference.conv2d_forward(x, Wt, b, 1, 1, 1, y_ref)
    assert _rel_err(y, y_ref) < TOL[dtype]
    dx = kernels.conv2d_backward_input(dy, Wt, x.shape, 1, 1, 1)
    dx_ref = np.empty_like(dx)
    reference.conv2d_backward_input(dy, Wt, 1, 1, 1, dx_ref)
    assert _rel_err(dx, dx_ref) < TOL[dtype]
    dW = kernels.conv2d_backward_weight(dy, x, Wt.shape, 1, 1, 1)
    dW_ref = np.empty_like(dW)
    reference.conv2d_backward_weight(dy, x, 1, 1, 1, dW_ref)
    assert _rel_err(dW, dW_ref) < TOL[dtype]


def test_adjoint_identity_float64():
    """<conv(x), dy> == <x, conv^T(dy)> for the Winograd pair (bias zero)."""
    geom = (2, 6, 5, 7, 8, 1, 2)
    x, Wt, _, dy = _data(geom, np.float64, seed=2)
    N, C, F, H, W, ph, pw = geom
    y = np.empty(dy.shape)
    winograd.conv2d_forward_winograd(x, Wt, np.zeros(F), ph, pw, y)
    dx = np.empty(x.shape)
    winograd.conv2d_backward_input_winograd(dy, Wt, ph, pw, dx)
    assert abs(np.vdot(y, dy) - np.vdot(x, dx)) < 1e-10 * max(1.0, abs(np.vdot(y, dy)))
