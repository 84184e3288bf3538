"""Every layer's forward and backward against ``torch.nn.functional`` in float64 (to 1e-10).

Torch computes the reference through autograd: the loss ``sum(out * dy)`` is
back-propagated, so ``x.grad``, ``W.grad`` and ``b.grad`` are the input and parameter
gradients our ``backward(dy, cache)`` must return. ReLU inputs are kept away from 0 and
max-pool inputs are a random permutation (tie-free), where torch's tie rule is unspecified.
"""

import numpy as np
import pytest
from conftest import (
    ConvGeometry,
    PoolGeometry,
    away_from_zero,
    conv_geometries,
    pool_geometries,
    rng_from,
    seeds,
    tie_free,
)
from hypothesis import given, settings
from hypothesis import strategies as st

from refnet import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential

torch = pytest.importorskip("torch")
F = torch.nn.functional

TOL = 1e-10
FAST = settings(max_examples=25, deadline=None)


def leaf(a: np.ndarray):
    """A float64 torch leaf tensor that records its gradient."""
    return torch.tensor(a, dtype=torch.float64, requires_grad=True)


def assert_agree(ours: np.ndarray, theirs) -> None:
    theirs = theirs.detach().numpy()
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    scale = max(1.0, float(np.abs(theirs).max(initial=0.0)))
    np.testing.assert_allclose(ours, theirs, rtol=TOL, atol=TOL * scale)


def compare_layer(layer, x: np.ndarray, torch_fn, rng) -> None:
    """Forward, input gradient and parameter gradients of ``layer`` vs ``torch_fn``."""
    y, cache = layer.forward(x)
    dy = rng.standard_normal(y.shape)
    dx, grads = layer.backward(dy, cache)
    tx = leaf(x)
    tparams = {name: leaf(getattr(layer, name)) for name in layer.param_names}
    ty = torch_fn(tx, *tparams.values())  # (x, W, b) in param_names order
    (ty * torch.tensor(dy)).sum().backward()
    assert_agree(y, ty)
    assert_agree(dx, tx.grad)
    for name, t in tparams.items():
        assert_agree(grads[name], t.grad)


# --------------------------------------------------------------------------- Dense


@pytest.mark.parametrize("n, n_in, n_out", [(1, 1, 1), (4, 7, 3), (3, 64, 10)])
def test_dense_fixed(n, n_in, n_out):
    rng = rng_from(n * 100 + n_in)
    layer = Dense(rng.standard_normal((n_out, n_in)), rng.standard_normal(n_out))
    compare_layer(layer, rng.standard_normal((n, n_in)), F.linear, rng)


@FAST
@given(n=st.integers(1, 5), n_in=st.integers(1, 9), n_out=st.integers(1, 6), seed=seeds)
def test_dense_hypothesis(n, n_in, n_out, seed):
    rng = rng_from(seed)
    layer = Dense(rng.standard_normal((n_out, n_in)), rng.standard_normal(n_out))
    compare_layer(layer, rng.standard_normal((n, n_in)), F.linear, rng)


# --------------------------------------------------------------------------- Conv2D


def _compare_conv(g: ConvGeometry, seed: int) -> None:
    rng = rng_from(seed)
    layer = Conv2D(rng.standard_normal(g.w_shape), rng.standard_normal(g.F), g.s, (g.ph, g.pw))

    def torch_conv(x, W, b):
        return F.conv2d(x, W, b, stride=g.s, padding=(g.ph, g.pw))

    compare_layer(layer, rng.standard_normal(g.x_shape), torch_conv, rng)


FIXED_CONVS = [
    ConvGeometry(N=2, C=3, H=8, W=8, F=4, kh=3, kw=3, s=1, ph=1, pw=1),
    ConvGeometry(N=1, C=2, H=7, W=5, F=3, kh=3, kw=2, s=2, ph=1, pw=0),
    ConvGeometry(N=3, C=1, H=5, W=9, F=2, kh=5, kw=1, s=3, ph=2, pw=0),
    ConvGeometry(N=2, C=4, H=6, W=6, F=2, kh=2, kw=4, s=2, ph=0, pw=2),
    ConvGeometry(N=1, C=1, H=1, W=1, F=1, kh=1, kw=1, s=1, ph=0, pw=0),
]


@pytest.mark.parametrize("g", FIXED_CONVS, ids=str)
def test_conv2d_fixed(g):
    _compare_conv(g, seed=11)


@FAST
@given(g=conv_geometries(), seed=seeds)
def test_conv2d_hypothesis(g, seed):
    _compare_conv(g, seed)


# --------------------------------------------------------------------------- ReLU, Flatten


@pytest.mark.parametrize("shape", [(3, 5), (2, 3, 4, 4), (1, 1, 1, 1)])
def test_relu_fixed(shape):
    rng = rng_from(len(shape))
    compare_layer(ReLU(), away_from_zero(rng, shape), F.relu, rng)


@FAST
@given(shape=st.lists(st.integers(1, 5), min_size=2, max_size=4), seed=seeds)
def test_relu_hypothesis(shape, seed):
    rng = rng_from(seed)
    compare_layer(ReLU(), away_from_zero(rng, tuple(shape)), F.relu, rng)


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 7), (3, 1, 1, 1)])
def test_flatten_fixed(shape):
    rng = rng_from(sum(shape))
    compare_layer(Flatten(), rng.standard_normal(shape), lambda x: torch.flatten(x, 1), rng)


# --------------------------------------------------------------------------- MaxPool2D


def _compare_pool(g: PoolGeometry, seed: int) -> None:
    rng = rng_from(seed)

    def torch_pool(x):
        return F.max_pool2d(x, kernel_size=g.size, stride=g.s)

    compare_layer(MaxPool2D(g.size, g.s), tie_free(rng, g.x_shape), torch_pool, rng)


FIXED_POOLS = [
    PoolGeometry(N=2, C=3, H=8, W=8, size=2, s=2),
    PoolGeometry(N=1, C=2, H=7, W=5, size=3, s=2),  # overlapping windows
    PoolGeometry(N=2, C=1, H=6, W=9, size=2, s=1),  # overlapping windows
    PoolGeometry(N=1, C=1, H=5, W=5, size=2, s=3),  # gaps between windows
]


@pytest.mark.parametrize("g", FIXED_POOLS, ids=str)
def test_maxpool2d_fixed(g):
    _compare_pool(g, seed=12)


@FAST
@given(g=pool_geometries(), seed=seeds)
def test_maxpool2d_hypothesis(g, seed):
    _compare_pool(g, seed)


# --------------------------------------------------------------------------- a network


def test_network_matches_torch():
    rng = rng_from(13)
    conv1 = Conv2D(rng.standard_normal((3, 2, 3, 3)), rng.standard_normal(3), 1, 1)
    conv2 = Conv2D(rng.standard_normal((4, 3, 2, 2)), rng.standard_normal(4), 2, (1, 0))
    # (N, 2, 6, 6) -> conv1 (N, 3, 6, 6) -> pool (N, 3, 3, 3) -> conv2 (N, 4, 2, 1)
    dense = Dense(rng.standard_normal((5, 4 * 2 * 1)), rng.standard_normal(5))
    net = Sequential([conv1, ReLU(), MaxPool2D(2), conv2, ReLU(), Flatten(), dense])
    x = rng.standard_normal((2, 2, 6, 6))
    logits, caches = net.forward(x)
    dy = rng.standard_normal(logits.shape)
    dx, grads = net.backward(dy, caches)

    tx = leaf(x)
    tp = {i: {k: leaf(v) for k, v in net[i].params().items()} for i in net.kernel_layers()}
    h = F.relu(F.conv2d(tx, tp[0]["W"], tp[0]["b"], stride=1, padding=1))
    h = F.max_pool2d(h, 2)
    h = F.relu(F.conv2d(h, tp[3]["W"], tp[3]["b"], stride=2, padding=(1, 0)))
    t_logits = F.linear(torch.flatten(h, 1), tp[6]["W"], tp[6]["b"])
    (t_logits * torch.tensor(dy)).sum().backward()

    assert_agree(logits, t_logits)
    assert_agree(dx, tx.grad)
    for i, params in tp.items():
        for name, t in params.items():
            assert_agree(grads[i][name], t.grad)
