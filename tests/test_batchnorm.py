"""BatchNorm folding (refnet.importers.fold) against the unfolded network, no framework needed.

A BatchNorm at inference is ``s x + (beta - mu s)`` with ``s = gamma / sqrt(var + eps)``.
Folded into the Conv2D/Dense before it, the logits must not change, on every conv and
dense geometry hypothesis builds. The classic bugs are tested explicitly: epsilon left out
of ``s`` (a large epsilon makes it visible), and folding a BatchNorm *forward* into a
padded conv after it (not exact, so the builder keeps a ChannelAffine there).
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refnet
from refnet.importers.fold import NetBuilder, fold_batchnorm
from refnet.layers import ChannelAffine, Conv2D, Dense, Flatten, ReLU

FAST = settings(max_examples=20, deadline=None)


def _bn(rng, C, eps=None):
    gamma = rng.uniform(-2, 2, C)
    beta = rng.standard_normal(C)
    mean = rng.standard_normal(C)
    var = rng.uniform(0.1, 3, C)
    eps = float(rng.uniform(1e-5, 1.0)) if eps is None else eps
    return gamma, beta, mean, var, eps


def _bn_apply(x, gamma, beta, mean, var, eps):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    r = [a.reshape(shape) for a in (gamma, beta, mean, var)]
    return r[0] * (x - r[2]) / np.sqrt(r[3] + eps) + r[1]


@st.composite
def conv_case(draw):
    k = draw(st.integers(1, 3))
    pad = draw(st.integers(0, 2))
    stride = draw(st.integers(1, 2))
    C, F = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    H = k + draw(st.integers(0, 4))
    return C, F, k, pad, stride, H, draw(st.integers(0, 2**31))


@FAST
@given(conv_case())
def test_folding_into_a_conv_keeps_the_output(case):
    C, F, k, pad, stride, H, seed = case
    rng = np.random.default_rng(seed)
    conv = Conv2D(rng.standard_normal((F, C, k, k)), rng.standard_normal(F), stride, pad)
    bn = _bn(rng, F)
    x = rng.standard_normal((2, C, H, H))
    expected = _bn_apply(conv(x), *bn)
    np.testing.assert_allclose(fold_batchnorm(conv, *bn)(x), expected, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ChannelAffine.from_batchnorm(*bn)(conv(x)), expected, rtol=1e-10)


@FAST
@given(st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**31))
def test_folding_into_a_dense_keeps_the_output(n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    dense = Dense(rng.standard_normal((n_out, n_in)), rng.standard_normal(n_out))
    bn = _bn(rng, n_out)
    x = rng.standard_normal((3, n_in))
    np.testing.assert_allclose(
        fold_batchnorm(dense, *bn)(x), _bn_apply(dense(x), *bn), rtol=1e-10, atol=1e-10
    )


def test_epsilon_stays_inside_the_scale():
    rng = np.random.default_rng(0)
    dense = Dense(rng.standard_normal((3, 4)), rng.standard_normal(3))
    gamma, beta, mean, var, _ = _bn(rng, 3)
    x = rng.standard_normal((5, 4))
    folded = fold_batchnorm(dense, gamma, beta, mean, var, 0.5)
    np.testing.assert_allclose(folded(x), _bn_apply(dense(x), gamma, beta, mean, var, 0.5))
    without_eps = _bn_apply(dense(x), gamma, beta, mean, var, 0.0)
    assert np.abs(folded(x) - without_eps).max() > 1e-2


def test_builder_folds_after_kernel_layers_and_keeps_an_affine_elsewhere():
    rng = np.random.default_rng(1)
    builder = NetBuilder("test", (2, 5, 5))
    builder.batchnorm(*_bn(rng, 2), name="bn_in")  # at the input, before a padded conv
    builder.add(Conv2D(rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3), 1, 1), "c")
    builder.batchnorm(*_bn(rng, 3), name="bn_c")  # after the conv: folded
    builder.add(ReLU(), "r")
    builder.batchnorm(*_bn(rng, 3), name="bn_r")  # after a ReLU: not foldable
    builder.add(Flatten(), "f")
    builder.add(Dense(rng.standard_normal((4, 75)), None), "d")
    builder.batchnorm(*_bn(rng, 4), name="bn_d")  # BatchNorm1d after a Dense: folded
    net = builder.finish(np.dtype(np.float64))
    kinds = [type(layer).__name__ for layer in net]
    assert kinds == ["ChannelAffine", "Conv2D", "ReLU", "ChannelAffine", "Flatten", "Dense"]
    report = net.import_report
    assert [f.split(" ")[0] for f in report.folded] == ["bn_c", "bn_d"]
    assert [a.split(" ")[0] for a in report.affine] == ["bn_in", "bn_r"]


def test_folding_forward_into_a_padded_conv_would_be_wrong():
    """Why a BatchNorm before a padded conv stays a ChannelAffine: the border differs."""
    rng = np.random.default_rng(2)
    conv = Conv2D(rng.standard_normal((2, 2, 3, 3)), np.zeros(2), 1, 1)
    gamma, beta, mean, var, eps = _bn(rng, 2)
    affine = ChannelAffine.from_batchnorm(gamma, beta, mean, var, eps)
    x = rng.standard_normal((1, 2, 5, 5))
    exact = conv(affine(x))
    W = conv.W * affine.scale[None, :, None, None]  # the naive forward fold
    b = (conv.W * affine.shift[None, :, None, None]).sum(axis=(1, 2, 3))
    naive = Conv2D(W, b, 1, 1)(x)
    np.testing.assert_allclose(naive[..., 1:-1, 1:-1], exact[..., 1:-1, 1:-1], rtol=1e-10)
    assert np.abs(naive - exact).max() > 1e-3  # the padded border is wrong


def test_mismatched_batchnorm_is_a_clear_error():
    dense = Dense(np.ones((3, 2)))
    with pytest.raises(ValueError, match="BatchNorm over 4 channels cannot follow a Dense"):
        fold_batchnorm(dense, np.ones(4), np.zeros(4), np.zeros(4), np.ones(4), 1e-5)


def test_float32_folding_keeps_the_dtype():
    rng = np.random.default_rng(3)
    conv = Conv2D(rng.standard_normal((2, 1, 3, 3)).astype(np.float32))
    gamma, beta, mean, var, eps = (
        a.astype(np.float32) if isinstance(a, np.ndarray) else a for a in _bn(rng, 2)
    )
    folded = fold_batchnorm(conv, gamma, beta, mean, var, eps)
    assert folded.W.dtype == folded.b.dtype == np.float32
    assert ChannelAffine.from_batchnorm(gamma, beta, mean, var, eps).scale.dtype == np.float32
    assert isinstance(refnet.Sequential([folded]), refnet.Sequential)
