"""Max-pool ties: both backends give the same heatmaps (issue 15, item 1).

On flat image regions the conv outputs inside a pooling window are mathematically equal,
and MATH.md section 0 sends the tie to the first maximum. That holds only if every conv
ahead of the pool computes equal patches to bit-equal outputs. The explanation forward
(:func:`refnet.attribution.forward_steps`) therefore runs those convs on the kernels'
translation-exact route (``conv2d_forward(..., exact=True)``).

To compare the backends in one process, the ``reference_kernels`` fixture points every
kernel wrapper at the NumPy twins (:mod:`refnet.kernels.reference`), as
``REFNET_BACKEND=numpy`` does at import.
"""

import numpy as np
import pytest
from conftest import conv_geometries, dtypes, rng_from, seeds
from hypothesis import given, settings

import refnet
from refnet import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential, kernels
from refnet.attribution import forward_steps
from refnet.kernels import reference

compiled_only = pytest.mark.skipif(
    kernels.backend() != "cython",
    reason="compares the compiled kernels with the NumPy twins; only the twins are active",
)
FAST = settings(max_examples=60, deadline=None)
# the modules whose wrappers call the active implementation
_WRAPPERS = (
    "refnet.kernels",
    "refnet.kernels.dense",
    "refnet.kernels.lrp",
    "refnet.kernels.avgpool",
)


@pytest.fixture
def reference_kernels(monkeypatch):
    """Run every kernel wrapper on the NumPy twins for the duration of a test."""
    import importlib

    def use_reference():
        for name in _WRAPPERS:
            monkeypatch.setattr(importlib.import_module(name), "_impl", reference)

    return use_reference


def _conv_pool_net(C: int, F: int, dtype) -> Sequential:
    conv = Conv2D.create(C, F, 3, padding=1, seed=0, dtype=dtype)
    conv.b[...] = rng_from(1).standard_normal(F)  # a bias, as in the fuzzed case
    return Sequential([conv, ReLU(), MaxPool2D(2)])


def _argmax_of_pool(net: Sequential, x: np.ndarray) -> np.ndarray:
    _, steps = forward_steps(net, x)
    pool = next(step for step in steps if isinstance(step.layer, MaxPool2D))
    return pool.cache.argmax


# --------------------------------------------------------------------------- the kernel


@FAST
@given(g=conv_geometries(), dtype=dtypes, seed=seeds)
def test_exact_route_is_translation_exact_and_equals_the_convolution(g, dtype, seed):
    """A constant image: every output pixel whose patch lies inside the image is the same
    to the bit, per channel, on the active backend and on the twin; and the exact route is
    the convolution (to rounding)."""
    rng = rng_from(seed)
    x = np.full(g.x_shape, 0.05, dtype=dtype)
    W = rng.standard_normal(g.w_shape).astype(dtype)
    b = rng.standard_normal(g.F).astype(dtype)
    y = kernels.conv2d_forward(x, W, b, g.s, g.ph, g.pw, exact=True)  # (N, F, H', W')
    ref = np.empty(g.y_shape, dtype=dtype)
    reference.conv2d_forward(x, W, b, g.s, g.ph, g.pw, ref)
    np.testing.assert_allclose(y, ref, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-5)
    # output rows whose patch has no padding: r s - ph >= 0 and r s - ph + kh <= H
    rows = [r for r in range(g.Ho) if r * g.s >= g.ph and r * g.s - g.ph + g.kh <= g.H]
    cols = [c for c in range(g.Wo) if c * g.s >= g.pw and c * g.s - g.pw + g.kw <= g.W]
    if rows and cols:
        inner = y[:, :, rows][:, :, :, cols]  # (N, F, rows, cols)
        assert (inner == inner[:, :, :1, :1]).all()


@compiled_only
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("C, F", [(8, 8), (8, 16), (32, 64), (3, 32)])
def test_flat_image_ties_go_to_the_first_maximum_on_both_backends(C, F, dtype, reference_kernels):
    """The fuzzed case: a flat image through a 3x3 conv with bias, ReLU and a 2x2 pool gave
    21 of 256 different argmax positions between Winograd on and off."""
    net = _conv_pool_net(C, F, dtype)
    x = np.full((1, C, 8, 8), 0.05, dtype=dtype)
    compiled = _argmax_of_pool(net, x)
    reference_kernels()
    np.testing.assert_array_equal(_argmax_of_pool(net, x), compiled)


def test_only_convs_ahead_of_a_max_pool_take_the_exact_route(monkeypatch):
    net = Sequential(
        [
            Conv2D.create(1, 2, 3, padding=1, seed=0),
            ReLU(),
            Conv2D.create(2, 2, 3, padding=1, seed=1),
            MaxPool2D(2),
            Conv2D.create(2, 2, 3, padding=1, seed=2),
            Flatten(),
            Dense.create(8, 3, seed=3),
        ]
    )
    seen = []
    conv2d_forward = kernels.conv2d_forward

    def spy(*args, exact=False):
        seen.append(exact)
        return conv2d_forward(*args, exact=exact)

    monkeypatch.setattr(kernels, "conv2d_forward", spy)
    forward_steps(net, np.zeros((1, 1, 4, 4)))
    assert seen == [True, True, False]
    seen.clear()
    net(np.zeros((1, 1, 4, 4)))  # inference and training keep the fastest route
    assert seen == [False, False, False]


# --------------------------------------------------------------------------- the digits


def _digits_net(dtype) -> Sequential:
    return Sequential(
        [
            Conv2D.create(1, 8, 3, padding=1, seed=0, dtype=dtype),
            ReLU(),
            Conv2D.create(8, 16, 3, padding=1, seed=1, dtype=dtype),  # Winograd when compiled
            ReLU(),
            MaxPool2D(2),
            Flatten(),
            Dense.create(16 * 4 * 4, 10, seed=2, dtype=dtype),
        ]
    )


@compiled_only
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_digits_heatmaps_agree_between_the_backends(dtype, reference_kernels):
    """sklearn's digits (flat background, many exact ties): before the exact route the
    compiled and NumPy heatmaps differed by up to 17-21% of their maximum."""
    datasets = pytest.importorskip("sklearn.datasets")
    x = (datasets.load_digits().images[:200] / 16.0).astype(dtype)[:, None]  # (N, 1, 8, 8)
    net = _digits_net(dtype)
    patterns = refnet.fit_patterns(net, x)
    methods = ["gradient", "guided_backprop", "patternnet", "patternattribution"]

    def heatmaps():
        return {
            m: refnet.explain(net, x, m, patterns=patterns if m.startswith("pattern") else None)
            for m in methods
        }

    compiled = heatmaps()
    reference_kernels()
    numpy = heatmaps()
    rel = 1e-4 if dtype == np.float32 else 1e-10
    for m in methods:
        scale = np.abs(numpy[m]).max()
        np.testing.assert_allclose(compiled[m], numpy[m], rtol=0, atol=rel * scale, err_msg=m)
