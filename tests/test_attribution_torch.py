r"""Gradient and integrated gradients against torch autograd, float64, to 1e-10.

The torch network is built from the refnet network's own weights (same conventions:
NCHW, cross-correlation, ``nn.Linear``'s ``(out, in)`` weight). Integrated gradients uses
the same trapezoid weights (MATH.md section 4) on torch's gradients at the path points.
"""

import numpy as np
import pytest
from attribution_helpers import relu_cnn
from conftest import assert_close

import refnet
from refnet import Conv2D, Dense, Flatten, MaxPool2D, ReLU

torch = pytest.importorskip("torch")


def to_torch(net: refnet.Sequential) -> "torch.nn.Sequential":
    modules = []
    for layer in net:
        if isinstance(layer, Conv2D):
            F, C, kh, kw = layer.W.shape
            m = torch.nn.Conv2d(C, F, (kh, kw), stride=layer.stride, padding=layer.padding)
            m.weight.data = torch.from_numpy(layer.W.copy())
            m.bias.data = torch.from_numpy(layer.b.copy())
        elif isinstance(layer, Dense):
            m = torch.nn.Linear(layer.n_in, layer.n_out)
            m.weight.data = torch.from_numpy(layer.W.copy())
            m.bias.data = torch.from_numpy(layer.b.copy())
        elif isinstance(layer, ReLU):
            m = torch.nn.ReLU()
        elif isinstance(layer, MaxPool2D):
            m = torch.nn.MaxPool2d(layer.size, layer.stride)
        elif isinstance(layer, Flatten):
            m = torch.nn.Flatten()
        else:
            raise TypeError(type(layer))
        modules.append(m)
    return torch.nn.Sequential(*modules).double()


def torch_gradient(model, x: np.ndarray, t: np.ndarray) -> np.ndarray:
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    out = model(xt)
    out[torch.arange(len(x)), torch.from_numpy(t)].sum().backward()
    return xt.grad.numpy()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_matches_torch(seed):
    net = relu_cnn(seed, bias=True)
    x = np.random.default_rng(seed).normal(size=(5, 2, 8, 8))
    model = to_torch(net)
    t = net(x).argmax(axis=1)
    assert_close(refnet.explain(net, x, "gradient"), torch_gradient(model, x, t))
    t_other = (t + 1) % 3
    assert_close(
        refnet.explain(net, x, "gradient", target=t_other), torch_gradient(model, x, t_other)
    )


def test_integrated_gradients_matches_torch():
    net = relu_cnn(3, bias=True)
    rng = np.random.default_rng(3)
    x, x0 = rng.normal(size=(3, 2, 8, 8)), rng.normal(size=(3, 2, 8, 8))
    model = to_torch(net)
    t = net(x).argmax(axis=1)
    m = 16
    weights = np.full(m, 1 / (m - 1))
    weights[[0, -1]] /= 2
    avg = sum(
        w * torch_gradient(model, x0 + a * (x - x0), t)
        for a, w in zip(np.linspace(0, 1, m), weights, strict=True)
    )
    h = refnet.explain(net, x, "integrated_gradients", baseline=x0, steps=m)
    assert_close(h, (x - x0) * avg)
