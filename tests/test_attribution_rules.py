r"""Each rule against a dense-matrix formula, and each Conv2D rule against the Dense rule.

Two tiers (STYLE.md, zennit's practice):

1. On a Dense layer, every rule equals its formula written with explicit products
   ``P[n, j, i] = x_i w_ji`` (MATH.md section 4; Bach et al. 2015; Montavon et al. 2017).
2. On a Conv2D layer, every rule equals the same rule on the Dense layer whose weight is the
   convolution's explicit ``(F*H'*W', C*H*W)`` matrix (im2col of the identity basis), on
   geometry built by hypothesis (stride 1-3, padding 0-2 per axis, non-square kernels).
"""

import numpy as np
import pytest
from attribution_helpers import apply_rule, conv_as_dense, conv_matrix
from conftest import assert_close, conv_geometries, seeds
from hypothesis import given, settings

from refnet import Conv2D, Dense
from refnet.attribution.rules_linear import Adjoint
from refnet.attribution.rules_lrp import AlphaBeta, Epsilon, WSquare, ZBox, ZPlus


def ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """``num / den`` with 0 where ``den == 0`` (the rules' convention)."""
    den_b = np.broadcast_to(den, num.shape)
    return np.divide(num, den_b, out=np.zeros_like(num), where=den_b != 0)


# --------------------------------------------------------------------------- dense oracles


def oracle_epsilon(x, W, b, R, eps):
    P = x[:, None, :] * W[None]  # (N, out, in)
    z = P.sum(axis=2) + b  # (N, out)
    z_eps = z + eps * np.where(z >= 0, 1.0, -1.0)
    return (ratio(P, z_eps[:, :, None]) * R[:, :, None]).sum(axis=1)


def oracle_alpha_beta(x, W, b, R, alpha, beta):
    P = x[:, None, :] * W[None]  # (N, out, in)
    P_plus, P_minus = np.maximum(P, 0), np.minimum(P, 0)
    z_plus = P_plus.sum(axis=2) + np.maximum(b, 0)  # (N, out)
    z_minus = P_minus.sum(axis=2) + np.minimum(b, 0)
    share = alpha * ratio(P_plus, z_plus[:, :, None]) - beta * ratio(P_minus, z_minus[:, :, None])
    return (share * R[:, :, None]).sum(axis=1)


def oracle_z_plus_nonnegative(x, W, R):
    """The familiar form after a ReLU: ``x_i w_ji^+ / sum_i x_i w_ji^+``."""
    Q = x[:, None, :] * np.maximum(W, 0)[None]  # (N, out, in)
    return (ratio(Q, Q.sum(axis=2)[:, :, None]) * R[:, :, None]).sum(axis=1)


def oracle_zbox(x, W, R, low, high):
    Q = x[:, None, :] * W - low * np.maximum(W, 0) - high * np.minimum(W, 0)  # (N, out, in)
    return (ratio(Q, Q.sum(axis=2)[:, :, None]) * R[:, :, None]).sum(axis=1)


def oracle_w2(W, R):
    W2 = W**2
    return R @ (W2 / W2.sum(axis=1, keepdims=True))


def dense_case(seed):
    rng = np.random.default_rng(seed)
    W, b = rng.normal(size=(4, 6)), rng.normal(size=4)
    x, R = rng.normal(size=(3, 6)), rng.normal(size=(3, 4))
    return rng, Dense(W, b), x, R


@pytest.mark.parametrize("seed", [0, 1])
def test_dense_lrp_rules_equal_their_formulas(seed):
    rng, layer, x, R = dense_case(seed)
    W, b = layer.W, layer.b
    assert_close(apply_rule(Epsilon(0.1), layer, x, R), oracle_epsilon(x, W, b, R, 0.1))
    assert_close(apply_rule(Epsilon(0.0), layer, x, R), oracle_epsilon(x, W, b, R, 0.0))
    for alpha, beta in [(2, 1), (1, 0), (3, 2)]:
        expected = oracle_alpha_beta(x, W, b, R, alpha, beta)
        assert_close(apply_rule(AlphaBeta(alpha, beta), layer, x, R), expected)
    no_bias = oracle_alpha_beta(x, W, 0 * b, R, 1, 0)
    assert_close(apply_rule(ZPlus(), layer, x, R), no_bias)
    x_pos = np.abs(x)
    assert_close(apply_rule(ZPlus(), layer, x_pos, R), oracle_z_plus_nonnegative(x_pos, W, R))
    low, high = -1.0 - rng.uniform(size=6), 1.0 + rng.uniform(size=6)
    x_box = rng.uniform(-1, 1, size=x.shape)
    assert_close(apply_rule(ZBox(low, high), layer, x_box, R), oracle_zbox(x_box, W, R, low, high))
    assert_close(apply_rule(WSquare(), layer, x, R), oracle_w2(W, R))


def test_dense_adjoint_rules_use_w_a_and_w_times_a():
    rng, layer, x, R = dense_case(2)
    A = rng.normal(size=layer.W.shape)
    assert_close(apply_rule(Adjoint("W"), layer, x, R), R @ layer.W)
    assert_close(apply_rule(Adjoint("A"), layer, x, R, A), R @ A)
    assert_close(apply_rule(Adjoint("W*A"), layer, x, R, A), R @ (layer.W * A))


def test_zero_denominators_contribute_zero_never_nan():
    """A neuron with zero weights and bias (z = 0), and one with only negative products."""
    W = np.array([[0.0, 0.0], [-1.0, -2.0], [1.0, 1.0]])
    layer = Dense(W, np.zeros(3))
    x = np.array([[1.0, 2.0]])
    R = np.array([[5.0, 7.0, 3.0]])
    for rule in (Epsilon(0.0), AlphaBeta(2, 1), ZPlus(), WSquare()):
        out = apply_rule(rule, layer, x, R)
        assert np.isfinite(out).all(), rule
    # z+: only neuron 2 has positive products; neurons 0 and 1 contribute 0
    assert_close(apply_rule(ZPlus(), layer, x, R), np.array([[1.0, 2.0]]))
    # epsilon 0: neuron 0 has z = 0 and contributes 0
    assert_close(
        apply_rule(Epsilon(0.0), layer, x, R), np.array([[7 / 5 * 1 + 1.0, 7 / 5 * 4 + 2]])
    )


# --------------------------------------------------------------------------- conv == dense


def conv_case(g, seed):
    rng = np.random.default_rng(seed)
    conv = Conv2D(rng.normal(size=g.w_shape), rng.normal(size=g.F), g.s, (g.ph, g.pw))
    dense = conv_as_dense(conv, g.x_shape[1:])
    x = rng.normal(size=g.x_shape)
    R = rng.normal(size=g.y_shape)
    return rng, conv, dense, x, R


def check_conv_equals_dense(rule, conv, dense, x, R, conv_pattern=None, dense_pattern=None):
    N = x.shape[0]
    out_conv = apply_rule(rule, conv, x, R, conv_pattern)
    out_dense = apply_rule(rule, dense, x.reshape(N, -1), R.reshape(N, -1), dense_pattern)
    assert out_conv.shape == x.shape
    assert_close(out_conv.reshape(N, -1), out_dense)


@settings(max_examples=25, deadline=None)
@given(g=conv_geometries(max_n=2, max_c=3, max_hw=7), seed=seeds)
def test_conv_lrp_rules_equal_dense_rules_on_explicit_matrix(g, seed):
    rng, conv, dense, x, R = conv_case(g, seed)
    for rule in (Epsilon(1e-3), Epsilon(0.0), AlphaBeta(2, 1), ZPlus(), WSquare()):
        check_conv_equals_dense(rule, conv, dense, x, R)
    check_conv_equals_dense(ZPlus(), conv, dense, np.abs(x), R)  # after a ReLU
    low = -1.0 - rng.uniform(size=g.x_shape[1:])  # per-pixel box (C, H, W)
    high = 1.0 + rng.uniform(size=g.x_shape[1:])
    x_box = rng.uniform(-1, 1, size=g.x_shape)
    N = g.N
    out_conv = apply_rule(ZBox(low, high), conv, x_box, R)
    out_dense = apply_rule(
        ZBox(low.ravel(), high.ravel()), dense, x_box.reshape(N, -1), R.reshape(N, -1)
    )
    assert_close(out_conv.reshape(N, -1), out_dense)


@settings(max_examples=25, deadline=None)
@given(g=conv_geometries(max_n=2, max_c=3, max_hw=7), seed=seeds)
def test_conv_adjoint_rules_equal_dense_rules_on_explicit_matrix(g, seed):
    rng, conv, dense, x, R = conv_case(g, seed)
    A = rng.normal(size=g.w_shape)
    A_dense = conv_matrix(conv, A, g.x_shape[1:])  # the pattern as an explicit matrix
    check_conv_equals_dense(Adjoint("W"), conv, dense, x, R)
    check_conv_equals_dense(Adjoint("A"), conv, dense, x, R, A, A_dense)
    WA_dense = conv_matrix(conv, conv.W * A, g.x_shape[1:])
    assert_close(dense.W * A_dense, WA_dense)  # (W*A) as a matrix is W-matrix * A-matrix
    check_conv_equals_dense(Adjoint("W*A"), conv, dense, x, R, A, A_dense)


def test_conv_matrix_reproduces_the_convolution():
    """The oracle itself: the explicit matrix times the flat input is the conv output."""
    rng = np.random.default_rng(3)
    conv = Conv2D(rng.normal(size=(3, 2, 2, 3)), rng.normal(size=3), stride=2, padding=(1, 2))
    x = rng.normal(size=(2, 2, 5, 4))
    dense = conv_as_dense(conv, (2, 5, 4))
    assert_close(dense(x.reshape(2, -1)), conv(x).reshape(2, -1))


def test_rule_parameters_are_validated():
    with pytest.raises(ValueError, match="alpha - beta = 1"):
        AlphaBeta(2, 2)
    with pytest.raises(ValueError, match="epsilon"):
        Epsilon(-1)
    with pytest.raises(ValueError, match="low <= high"):
        ZBox(1, 0)
    with pytest.raises(ValueError, match="weight"):
        Adjoint("V")
    layer = Dense(np.ones((1, 2)))
    with pytest.raises(ValueError, match="leaves the box"):
        apply_rule(ZBox(0, 1), layer, np.array([[2.0, 0.5]]), np.ones((1, 1)))
