"""The thread runtime: BLAS is pinned to one thread for a whole public call, then restored.

(:mod:`refnet.kernels.threads`.) On the NumPy backend nothing is pinned: NumPy's BLAS is
then the only pool.
"""

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import refnet
from refnet import Dense, ReLU, Sequential
from refnet.attribution import LayerBackward, Method
from refnet.attribution.methods import gradient
from refnet.kernels.compiled import backend
from refnet.kernels.threads import BlasOneThread, blas_threads, one_blas_thread
from refnet.layers import Layer

pytestmark = pytest.mark.skipif(backend() != "cython", reason="the pin acts on compiled kernels")


class Probe(Layer):
    """An identity layer that records the BLAS thread count during forward and backward."""

    def __init__(self) -> None:
        self.seen: list[int | None] = []

    def forward(self, x, check_finite=True):
        self.seen.append(blas_threads())
        return x, None

    def backward(self, dy, cache):
        self.seen.append(blas_threads())
        return dy, {}

    def output_shape(self, input_shape):
        return input_shape


def test_nested_pins_restore_the_previous_limit():
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        with BlasOneThread():
            with BlasOneThread():
                assert blas_threads() == 1
            assert blas_threads() == 1  # the inner exit keeps the outer pin
        assert blas_threads() == before


def test_decorator_pins_and_restores_even_on_error():
    @one_blas_thread
    def fails():
        assert blas_threads() == 1
        raise RuntimeError("inside")

    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        with pytest.raises(RuntimeError, match="inside"):
            fails()
        assert blas_threads() == before


def test_public_calls_run_with_one_blas_thread():
    probe = Probe()
    net = Sequential([Dense.create(6, 5, seed=0), ReLU(), probe, Dense.create(5, 3, seed=1)])
    x = np.random.default_rng(0).standard_normal((4, 6))
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        net(x)
        net.predict(x)
        rules = {**gradient().rules, Probe: LayerBackward()}
        refnet.Explainer(net, Method("probe", rules, "one"))(x)
        _, caches = net.forward(x)
        net.backward(np.ones((4, 3)), caches)
        assert blas_threads() == before
    assert probe.seen and set(probe.seen) == {1}
