"""Bad input to the explanation API: each case raises a clear ValueError or TypeError."""

import numpy as np
import pytest
from attribution_helpers import kernel_weights, relu_cnn

import refnet
from refnet import Dense, Sequential


@pytest.fixture
def net():
    return relu_cnn(0)


@pytest.fixture
def x():
    return np.random.default_rng(0).normal(size=(3, 2, 8, 8))


@pytest.mark.parametrize("method", ["patternnet", "patternattribution"])
def test_pattern_methods_need_patterns(net, x, method):
    with pytest.raises(ValueError, match=f"{method}: needs patterns"):
        refnet.explain(net, x, method)


def test_patterns_from_another_network(net, x):
    other = relu_cnn(1)
    other.layers[3] = refnet.Conv2D.create(4, 6, 3, padding=1, seed=0)  # 6 filters, not 5
    with pytest.raises(ValueError, match=r"layer 3 \(Conv2D\) has shape \(6, 4, 3, 3\)"):
        refnet.explain(net, x, "patternnet", patterns=kernel_weights(other))
    small = Sequential([Dense.create(4, 2, seed=0)])
    with pytest.raises(ValueError, match="2 pattern arrays for 4 kernel layers"):
        refnet.explain(net, x, "patternnet", patterns=[np.ones((2, 4))] * 2)
    with pytest.raises(ValueError, match="another network"):
        refnet.explain(net, x, "patternnet", patterns={0: small.layers[0].W})
    bad = kernel_weights(net)
    bad[1] = bad[1] * np.nan
    with pytest.raises(ValueError, match="NaN"):
        refnet.explain(net, x, "patternattribution", patterns=bad)
    with pytest.raises(TypeError, match="patterns must be"):
        refnet.explain(net, x, "patternattribution", patterns="A")


class FakePatterns:
    """The interface of refnet's fitted patterns object (issue 3)."""

    def __init__(self, net):
        self.layer_indices = net.kernel_layers()
        self.A = {i: net.layers[i].W.copy() for i in self.layer_indices}
        self.shapes = [net.layers[i].W.shape for i in self.layer_indices]

    def __getitem__(self, i):
        return self.A[i]

    def check_compatible(self, net):
        if [net.layers[i].W.shape for i in net.kernel_layers()] != self.shapes:
            raise ValueError("FakePatterns: fitted for another network")


def test_patterns_object_interface_is_used(net, x):
    p = FakePatterns(net)
    h = refnet.explain(net, x, "patternnet", patterns=p)
    np.testing.assert_array_equal(h, refnet.explain(net, x, "patternnet", patterns=p.A))
    other = relu_cnn(1)
    other.layers[0] = refnet.Conv2D.create(2, 6, 3, padding=1, seed=0)
    with pytest.raises(ValueError, match="another network"):
        refnet.explain(other, x, "patternnet", patterns=p)


def test_target_out_of_range_or_malformed(net, x):
    with pytest.raises(ValueError, match=r"target \[3\] out of range .* 3 classes"):
        refnet.explain(net, x, "gradient", target=3)
    with pytest.raises(ValueError, match="out of range"):
        refnet.explain(net, x, "gradient", target=np.array([0, -1, 2]))
    with pytest.raises(ValueError, match=r"target has shape \(2,\), expected \(3,\)"):
        refnet.explain(net, x, "gradient", target=np.array([0, 1]))
    with pytest.raises(TypeError, match="target must be"):
        refnet.explain(net, x, "gradient", target=1.5)
    with pytest.raises(TypeError, match="target must be"):
        refnet.explain(net, x, "gradient", target=True)


def test_nan_or_bad_input(net, x):
    x = x.copy()
    x[1, 0, 2, 3] = np.nan
    with pytest.raises(ValueError, match=r"explain: input x of shape \(3, 2, 8, 8\) contains NaN"):
        refnet.explain(net, x, "gradient")
    with pytest.raises(TypeError, match="float32 or float64"):
        refnet.explain(net, np.ones((3, 2, 8, 8), dtype=int), "gradient")
    with pytest.raises(ValueError, match="Conv2D"):
        refnet.explain(net, np.ones((3, 1, 8, 8)), "gradient")


def test_unknown_method_lists_the_valid_ones(net, x):
    with pytest.raises(ValueError, match="unknown explanation method 'lrp'") as info:
        refnet.explain(net, x, "lrp")
    for name in ("gradient", "lrp.epsilon", "patternnet", "patternattribution", "smoothgrad"):
        assert name in str(info.value)


def test_bad_options(net, x):
    with pytest.raises(TypeError, match=r"does not take option\(s\) \['eps'\]; valid .*epsilon"):
        refnet.explain(net, x, "lrp.epsilon", eps=0.1)
    with pytest.raises(ValueError, match="needs both low and high"):
        refnet.explain(net, x, "lrp.z_plus", first_layer="zb")
    with pytest.raises(ValueError, match="first_layer"):
        refnet.explain(net, x, "lrp.z_plus", first_layer="zz")
    with pytest.raises(ValueError, match="leaves the box"):
        refnet.explain(net, x, "lrp.z_plus", first_layer="zb", low=0, high=1)
    with pytest.raises(ValueError, match="steps"):
        refnet.explain(net, x, "integrated_gradients", steps=1)
    with pytest.raises(ValueError, match="baseline"):
        refnet.explain(net, x, "integrated_gradients", baseline=np.zeros(5))
    with pytest.raises(ValueError, match="samples"):
        refnet.explain(net, x, "smoothgrad", samples=0)
    with pytest.raises(ValueError, match="alpha - beta = 1"):
        refnet.explain(net, x, "lrp.alpha_beta", alpha=1, beta=1)
    with pytest.raises(TypeError, match="Sequential"):
        refnet.explain([net], x, "gradient")


def test_unsupported_layer_type_is_named(x):
    class Odd(refnet.Layer):
        pass

    net = Sequential([Odd(), Dense.create(4, 2, seed=0)])
    with pytest.raises(TypeError, match="no rule for a Odd layer"):
        refnet.Explainer(net, "gradient")
