"""refnet.from_torch: logits, gradients, BatchNorm cases, train mode and unsupported modules.

Tolerances (issue 11): float32 logits within 1e-5 of torch's relative to the largest
entry; float64 logits and gradients within 1e-10. With a softmax stripped, the
log-softmax of refnet's logits is compared with torch's log-softmax.
"""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
nn = torch.nn

import refnet  # noqa: E402
from refnet.attribution.methods import METHODS  # noqa: E402

#: Few points for the averaging methods: the tests check that they run, not their accuracy.
QUICK = {"integrated_gradients": {"steps": 4}, "smoothgrad": {"samples": 3, "seed": 0}}

pytestmark = pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")


def _randomize_batchnorms(model, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            C = m.num_features
            m.running_mean.copy_(torch.randn(C, generator=g))
            m.running_var.copy_(torch.rand(C, generator=g) * 2 + 0.2)
            if m.affine:
                m.weight.data.copy_(torch.randn(C, generator=g))
                m.bias.data.copy_(torch.randn(C, generator=g))
    return model


def _everything():
    """A model with every supported module (nested Sequential, several paddings)."""
    torch.manual_seed(0)
    features = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(inplace=True),
        nn.Conv2d(4, 4, (3, 2), padding="same"),  # even kernel: asymmetric same padding
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.BatchNorm2d(4, eps=0.3),  # before a padded conv: kept as ChannelAffine
        nn.Conv2d(4, 6, 3, stride=2, padding=(1, 2)),
        nn.ReLU(),
        nn.AvgPool2d(3, stride=1, padding=1),  # count_include_pad=True: ZeroPad2D + pool
        nn.Dropout2d(0.5),
        nn.ZeroPad2d((1, 0, 0, 1)),
        nn.Conv2d(6, 5, 2, padding="valid"),
        nn.ReLU(),
    )
    head = nn.Sequential(
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(5, 7),
        nn.BatchNorm1d(7),  # after a Dense: folded
        nn.ReLU(),
        nn.Identity(),
        nn.Linear(7, 3),
        nn.LogSoftmax(dim=1),
    )
    return _randomize_batchnorms(nn.Sequential(features, head)).eval()


def _x(dtype, shape=(5, 3, 12, 12), seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def _log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _close(actual, expected, rel):
    scale = np.abs(expected).max()
    assert np.abs(actual - expected).max() <= rel * scale, np.abs(actual - expected).max()


@pytest.mark.parametrize("dtype, rel", [(np.float32, 1e-5), (np.float64, 1e-10)])
def test_logits_match_torch(dtype, rel):
    model = _everything().to(getattr(torch, np.dtype(dtype).name))
    net = refnet.from_torch(model, (3, 12, 12))
    assert net.dtype == dtype
    x = _x(dtype)
    with torch.no_grad():
        expected = model(torch.from_numpy(x)).numpy()  # a log-softmax
    _close(_log_softmax(net(x).astype(np.float64)), expected, rel)
    report = net.import_report
    assert len(report.folded) == 2 and len(report.affine) == 1
    assert report.stripped and "LogSoftmax" in report.stripped[0]
    assert any("Dropout2d" in d for d in report.dropped)


def test_gradient_equals_torch_autograd():
    model = _everything().double()
    net = refnet.from_torch(model, (3, 12, 12))
    x = _x(np.float64)
    xt = torch.from_numpy(x).requires_grad_(True)
    logits = nn.Sequential(model[0], model[1][:-1])(xt)  # the LogSoftmax left out
    target = logits.argmax(1)
    logits.gather(1, target[:, None]).sum().backward()
    h = refnet.explain(net, x, method="gradient", target=target.numpy())
    _close(h, xt.grad.numpy(), 1e-10)


def _check(model, shape, dtype=np.float64, rel=1e-10):
    model = _randomize_batchnorms(model).eval().to(getattr(torch, np.dtype(dtype).name))
    net = refnet.from_torch(model, shape[1:])
    x = _x(dtype, shape)
    with torch.no_grad():
        _close(net(x), model(torch.from_numpy(x)).numpy(), rel)
    return net


def test_batchnorm_before_a_padded_conv():
    model = nn.Sequential(
        nn.BatchNorm2d(2), nn.Conv2d(2, 3, 3, padding=1), nn.Flatten(), nn.Linear(3 * 16, 2)
    )
    net = _check(model, (4, 2, 4, 4))
    assert type(net[0]).__name__ == "ChannelAffine"


def test_batchnorm_epsilon_is_not_omitted():
    model = nn.Sequential(
        nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2, eps=0.7), nn.Flatten(), nn.Linear(2 * 9, 2)
    )
    net = _check(model, (3, 1, 5, 5))
    assert net.import_report.folded


def test_batchnorm1d_after_a_dense():
    model = nn.Sequential(nn.Linear(6, 5), nn.BatchNorm1d(5), nn.ReLU(), nn.Linear(5, 2))
    net = _check(model, (7, 6))
    assert [type(layer).__name__ for layer in net] == ["Dense", "ReLU", "Dense"]


def test_conv_after_a_batchnorm():
    model = nn.Sequential(
        nn.Conv2d(2, 3, 3),
        nn.ReLU(),
        nn.BatchNorm2d(3),
        nn.Conv2d(3, 2, 2),
        nn.Flatten(),
        nn.Linear(2 * 4 * 4, 2),
    )
    net = _check(model, (3, 2, 7, 7))
    assert [type(layer).__name__ for layer in net][:4] == [
        "Conv2D",
        "ReLU",
        "ChannelAffine",
        "Conv2D",
    ]


@pytest.mark.parametrize(
    "size, layers", [((3, 2), "AvgPool2D"), (6, None), ((None, 3), "AvgPool2D")]
)
def test_adaptive_average_pooling_that_divides_the_input(size, layers):
    model = nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.AdaptiveAvgPool2d(size), nn.Flatten())
    shape = (2, 6, 6)
    with torch.no_grad():
        n_out = model(torch.zeros(1, *shape)).shape[1]
    model.append(nn.Linear(n_out, 2))
    net = _check(model, (3, *shape))
    kinds = [type(layer).__name__ for layer in net]
    assert (
        (layers in kinds) if layers else ("AvgPool2D" not in kinds and net.import_report.dropped)
    )


def test_train_mode_uses_running_statistics_and_says_so():
    model = _everything().train()
    net = refnet.from_torch(model, (3, 12, 12))
    assert model.training  # the module is left as it was
    assert any("train mode" in note for note in net.import_report.notes)
    model.eval()
    x = _x(np.float32)
    with torch.no_grad():
        _close(_log_softmax(net(x).astype(np.float64)), model(torch.from_numpy(x)).numpy(), 1e-5)


def test_fit_patterns_and_every_method_run_on_an_imported_net(tmp_path):
    net = refnet.from_torch(_everything(), (3, 12, 12))
    x = _x(np.float32, (24, 3, 12, 12))
    patterns = refnet.fit_patterns(net, x, batch_size=12)
    for method in METHODS:
        h = refnet.explain(net, x[:2], method, patterns=patterns, **QUICK.get(method, {}))
        assert h.shape == (2, 3, 12, 12) and np.isfinite(h).all(), method
    refnet.save(net, tmp_path / "net.npz")
    np.testing.assert_array_equal(refnet.load(tmp_path / "net.npz")(x), net(x))


class _Residual(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 2, 3, padding=1)

    def forward(self, x):
        return x + self.conv(x)


@pytest.mark.parametrize(
    "module, kind",
    [
        (nn.LocalResponseNorm(2), "LocalResponseNorm"),
        (nn.Conv2d(2, 2, 3, groups=2), "Conv2d"),
        (nn.Conv2d(2, 2, 3, dilation=2), "Conv2d"),
        (nn.Conv2d(2, 2, 3, padding=1, padding_mode="reflect"), "Conv2d"),
        (nn.MaxPool2d(2, ceil_mode=True), "MaxPool2d"),
        (nn.MaxPool2d(2, dilation=2), "MaxPool2d"),
        (nn.MaxPool2d(3, 2, padding=1), "MaxPool2d"),
        (nn.AvgPool2d(2, padding=1, count_include_pad=False), "AvgPool2d"),
        (nn.AdaptiveAvgPool2d(4), "AdaptiveAvgPool2d"),
        (nn.LSTM(4, 4), "LSTM"),
        (nn.Tanh(), "Tanh"),
        (_Residual(), "_Residual"),
    ],
)
def test_unsupported_modules_raise_a_clear_error(module, kind):
    model = nn.Sequential(nn.Identity(), nn.Sequential(module), nn.Flatten(), nn.Linear(2, 2))
    with pytest.raises(refnet.UnsupportedModelError) as info:
        refnet.from_torch(model, (2, 6, 6))
    message = str(info.value)
    assert f"{kind} '1.0'" in message and "Supported:" in message
    assert isinstance(info.value, ValueError)


def test_softmax_in_the_middle_and_shape_mismatch_are_clear_errors():
    model = nn.Sequential(nn.Linear(3, 3), nn.Softmax(dim=1), nn.Linear(3, 2))
    with pytest.raises(refnet.UnsupportedModelError, match="supported only as the last layer"):
        refnet.from_torch(model, (3,))
    with pytest.raises(refnet.UnsupportedModelError, match="do not fit an input of shape"):
        refnet.from_torch(nn.Sequential(nn.Linear(4, 2)), (3,))
    with pytest.raises(TypeError, match="expected a torch.nn.Module"):
        refnet.from_torch("model", (3,))
