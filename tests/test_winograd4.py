"""Winograd F(4x4, 3x3) (and F(3x3, 4x4) for the weight gradient) against the direct
(im2col) convolution.

Three tiers on geometry hypothesis builds (3x3 kernel, stride 1, padding 0-2 per axis,
H and W 1-13, odd and even output sizes, edge tiles cut by the image border): the
compiled kernels in ``refnet.kernels._winograd4`` equal the NumPy twins in
:mod:`refnet.kernels.reference.winograd4`, which equal the direct reference convolution.
Plus the transform matrices by hand, the adjoint identity, and fixed geometries where a
work item starts in the middle of a tile row or an image and tile rows longer than the
kernel's segment (32 tiles).

Tolerances relative to the largest entry: float64 1e-12; float32 5e-5. F(4x4, 3x3) is less
accurate in float32 than F(2x2, 3x3) (its transforms have entries up to 8 and 1/24):
measured against the float64 direct conv on N(0, 1) inputs with He-scaled weights on the
benchmark shapes (``python benchmarks/accuracy.py``), its error is 2e-6 to 1.1e-5
(F(2x2, 3x3): 2e-7 to 5e-7), so 5e-5 leaves a margin of about 4.5.
"""

import numpy as np
import pytest
from conftest import rng_from, seeds
from hypothesis import given, settings
from hypothesis import strategies as st

from refnet import kernels
from refnet.kernels import reference
from refnet.kernels.reference import winograd4

TOL = {np.dtype(np.float64): 1e-12, np.dtype(np.float32): 5e-5}  # relative to max |entry|

FAST = settings(max_examples=60, deadline=None)
compiled_only = pytest.mark.skipif(
    kernels.backend() != "cython", reason="compiled kernels not active"
)


def _compiled():
    from refnet.kernels import _winograd4

    return _winograd4


def _rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max(initial=0.0) / max(1.0, np.abs(b).max(initial=0.0)))


@st.composite
def geometries(draw):
    """(N, C, F, H, W, ph, pw): ``H >= 3 - 2 ph`` so the 3x3 kernel fits the padded input."""
    ph, pw = draw(st.integers(0, 2)), draw(st.integers(0, 2))
    return (
        draw(st.integers(1, 3)),
        draw(st.integers(1, 6)),
        draw(st.integers(1, 6)),
        draw(st.integers(max(1, 3 - 2 * ph), 13)),
        draw(st.integers(max(1, 3 - 2 * pw), 13)),
        ph,
        pw,
    )


def _data(geom, dtype, seed):
    N, C, F, H, W, ph, pw = geom
    rng = rng_from(seed)
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wt = rng.standard_normal((F, C, 3, 3)).astype(dtype)
    b = rng.standard_normal(F).astype(dtype)
    dy = rng.standard_normal((N, F, H + 2 * ph - 2, W + 2 * pw - 2)).astype(dtype)
    return x, Wt, b, dy


def _forward(impl, x, Wt, b, ph, pw):
    N, F = x.shape[0], Wt.shape[0]
    out = np.full((N, F, x.shape[2] + 2 * ph - 2, x.shape[3] + 2 * pw - 2), np.nan, x.dtype)
    impl(x, Wt, b, ph, pw, out)
    return out


def _input_gradient(impl, dy, Wt, x_shape, ph, pw):
    out = np.full(x_shape, np.nan, dy.dtype)
    impl(dy, Wt, ph, pw, out)
    return out


def _direct_forward(x, Wt, b, ph, pw):
    out = np.empty((x.shape[0], Wt.shape[0], x.shape[2] + 2 * ph - 2, x.shape[3] + 2 * pw - 2))
    reference.conv2d_forward(x, Wt, b, 1, ph, pw, out)
    return out


def _direct_input_gradient(dy, Wt, x_shape, ph, pw):
    out = np.empty(x_shape)
    reference.conv2d_backward_input(dy, Wt, 1, ph, pw, out)
    return out


def _f64(*arrays):
    return [a.astype(np.float64) for a in arrays]


def test_transform_matrices_hand_worked():
    """F(4, 3) in 1-D: A^T[(G g) * (B^T d)] equals the four correlation outputs."""
    d = np.array([1.0, 2.0, -1.0, 3.0, 0.5, -2.0])
    g = np.array([0.5, -2.0, 1.0])
    y = winograd4.A_T @ ((winograd4.G @ g) * (winograd4.B_T @ d))
    expected = [
        0.5 * 1.0 - 2.0 * 2.0 + 1.0 * -1.0,  # -4.5
        0.5 * 2.0 - 2.0 * -1.0 + 1.0 * 3.0,  # 6.0
        0.5 * -1.0 - 2.0 * 3.0 + 1.0 * 0.5,  # -6.0
        0.5 * 3.0 - 2.0 * 0.5 + 1.0 * -2.0,  # -1.5
    ]
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-14)


def test_transform_matrices_every_tap():
    """Bilinearity: for each filter tap i and input d_j alone, output k is [j == k + i]."""
    for i in range(3):
        for j in range(6):
            y = winograd4.A_T @ (winograd4.G[:, i] * winograd4.B_T[:, j])
            expected = [1.0 if j == k + i else 0.0 for k in range(4)]
            np.testing.assert_allclose(y, expected, rtol=0, atol=1e-15)


@FAST
@given(geom=geometries(), dtype=st.sampled_from([np.float32, np.float64]), seed=seeds)
def test_forward_twin_matches_direct(geom, dtype, seed):
    x, Wt, b, _ = _data(geom, dtype, seed)
    ph, pw = geom[5], geom[6]
    out = _forward(winograd4.conv2d_forward_winograd4, x, Wt, b, ph, pw)
    assert out.dtype == dtype
    assert _rel_err(out, _direct_forward(*_f64(x, Wt, b), ph, pw)) < TOL[np.dtype(dtype)]


@FAST
@given(geom=geometries(), dtype=st.sampled_from([np.float32, np.float64]), seed=seeds)
def test_input_gradient_twin_matches_direct(geom, dtype, seed):
    x, Wt, _, dy = _data(geom, dtype, seed)
    ph, pw = geom[5], geom[6]
    out = _input_gradient(winograd4.conv2d_backward_input_winograd4, dy, Wt, x.shape, ph, pw)
    assert out.dtype == dtype
    expected = _direct_input_gradient(*_f64(dy, Wt), x.shape, ph, pw)
    assert _rel_err(out, expected) < TOL[np.dtype(dtype)]


@compiled_only
@FAST
@given(geom=geometries(), dtype=st.sampled_from([np.float32, np.float64]), seed=seeds)
def test_forward_compiled_matches_twin_and_direct(geom, dtype, seed):
    x, Wt, b, _ = _data(geom, dtype, seed)
    ph, pw = geom[5], geom[6]
    out = _forward(_compiled().conv2d_forward_winograd4, x, Wt, b, ph, pw)
    twin = _forward(winograd4.conv2d_forward_winograd4, x, Wt, b, ph, pw)
    assert _rel_err(out, twin) < TOL[np.dtype(dtype)]
    assert _rel_err(out, _direct_forward(*_f64(x, Wt, b), ph, pw)) < TOL[np.dtype(dtype)]


@compiled_only
@FAST
@given(geom=geometries(), dtype=st.sampled_from([np.float32, np.float64]), seed=seeds)
def test_input_gradient_compiled_matches_twin_and_direct(geom, dtype, seed):
    x, Wt, _, dy = _data(geom, dtype, seed)
    ph, pw = geom[5], geom[6]
    compiled = _compiled().conv2d_backward_input_winograd4
    out = _input_gradient(compiled, dy, Wt, x.shape, ph, pw)
    twin = _input_gradient(winograd4.conv2d_backward_input_winograd4, dy, Wt, x.shape, ph, pw)
    assert _rel_err(out, twin) < TOL[np.dtype(dtype)]
    expected = _direct_input_gradient(*_f64(dy, Wt), x.shape, ph, pw)
    assert _rel_err(out, expected) < TOL[np.dtype(dtype)]


# (N, C, F, H, W, ph, pw): work items (512 tiles for C = F = 1) that start mid-row and
# mid-image; tile rows of 35 and 33 tiles (longer than a 32-tile segment) with edge tiles;
# padding 3 (the adjoint's padding -1 crops dy); one output pixel.
LARGE = [
    (3, 1, 1, 70, 71, 1, 1),
    (2, 1, 2, 7, 138, 1, 0),
    (1, 2, 1, 9, 131, 0, 2),
    (2, 2, 3, 5, 6, 3, 3),
    (1, 1, 1, 1, 1, 1, 1),
]


@compiled_only
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("geom", LARGE)
def test_compiled_large_and_unusual_geometry(geom, dtype):
    x, Wt, b, dy = _data(geom, dtype, seed=7)
    ph, pw = geom[5], geom[6]
    tol = TOL[np.dtype(dtype)]
    y = _forward(_compiled().conv2d_forward_winograd4, x, Wt, b, ph, pw)
    assert _rel_err(y, _direct_forward(*_f64(x, Wt, b), ph, pw)) < tol
    compiled = _compiled().conv2d_backward_input_winograd4
    dx = _input_gradient(compiled, dy, Wt, x.shape, ph, pw)
    assert _rel_err(dx, _direct_input_gradient(*_f64(dy, Wt), x.shape, ph, pw)) < tol


def _adjoint_gap(forward, backward, seed):
    geom = (2, 5, 4, 9, 11, 1, 2)
    x, Wt, _, dy = _data(geom, np.float64, seed)
    ph, pw = geom[5], geom[6]
    y = _forward(forward, x, Wt, np.zeros(Wt.shape[0]), ph, pw)
    dx = _input_gradient(backward, dy, Wt, x.shape, ph, pw)
    lhs = np.vdot(y, dy)
    return abs(lhs - np.vdot(x, dx)) / max(1.0, abs(lhs))


def test_adjoint_identity_twin_float64():
    """<conv(x), dy> == <x, conv^T(dy)> for the F(4x4) twins (bias zero)."""
    fwd, bwd = winograd4.conv2d_forward_winograd4, winograd4.conv2d_backward_input_winograd4
    assert _adjoint_gap(fwd, bwd, seed=2) < 1e-12


@compiled_only
def test_adjoint_identity_compiled_float64():
    """<conv(x), dy> == <x, conv^T(dy)> for the compiled F(4x4) kernels (bias zero)."""
    mod = _compiled()
    gap = _adjoint_gap(mod.conv2d_forward_winograd4, mod.conv2d_backward_input_winograd4, 3)
    assert gap < 1e-12


def _weight_gradient(impl, dy, x, F, ph, pw):
    out = np.full((F, x.shape[1], 3, 3), np.nan, x.dtype)
    impl(dy, x, ph, pw, out)
    return out


def _direct_weight_gradient(dy, x, F, ph, pw):
    out = np.empty((F, x.shape[1], 3, 3))
    reference.conv2d_backward_weight(dy, x, 1, ph, pw, out)
    return out


@FAST
@given(geom=geometries(), dtype=st.sampled_from([np.float32, np.float64]), seed=seeds)
def test_weight_gradient_twin_and_compiled_match_direct(geom, dtype, seed):
    """F(3x3, 4x4) weight gradient (the transpose of the forward pass): the twin, and the
    compiled kernel (the statistics kernel with dy as its right-hand side), equal the
    direct weight gradient on every geometry, edge tiles included."""
    x, _, _, dy = _data(geom, dtype, seed)
    F, ph, pw = geom[2], geom[5], geom[6]
    expected = _direct_weight_gradient(*_f64(dy, x), F, ph, pw)
    twin = _weight_gradient(winograd4.conv2d_backward_weight_winograd4, dy, x, F, ph, pw)
    assert twin.dtype == dtype
    assert _rel_err(twin, expected) < TOL[np.dtype(dtype)]
    if kernels.backend() == "cython":
        compiled = kernels._impl.conv2d_backward_weight_winograd4
        out = _weight_gradient(compiled, dy, x, F, ph, pw)
        assert out.dtype == dtype
        assert _rel_err(out, expected) < TOL[np.dtype(dtype)]
        dispatched = kernels.conv2d_backward_weight(dy, x, (F, x.shape[1], 3, 3), 1, ph, pw)
        assert _rel_err(dispatched, expected) < TOL[np.dtype(dtype)]
