"""refnet.from_keras: NHWC -> NCHW conversion, the flatten permutation, BatchNorm, errors.

Keras runs on the torch backend. Logits must match Keras's within 1e-5 relative to the
largest entry (float32); with a final softmax stripped, log-softmaxes are compared.
"""

import os

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
layers = keras.layers

import refnet  # noqa: E402
from refnet.attribution.methods import METHODS  # noqa: E402

#: Few points for the averaging methods: the tests check that they run, not their accuracy.
QUICK = {"integrated_gradients": {"steps": 4}, "smoothgrad": {"samples": 3, "seed": 0}}

# Keras's torch backend converts tensors with np.array(x), which NumPy 2 warns about.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def _nchw(x):
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))  # (N, H, W, C) -> (N, C, H, W)


def _x(shape, seed=0):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def _close(actual, expected, rel=1e-5):
    scale = np.abs(expected).max()
    assert np.abs(actual - expected).max() <= rel * scale, np.abs(actual - expected).max()


def _log_softmax(z):
    z = z.astype(np.float64) - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _randomize_batchnorms(model, seed=0):
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, layers.BatchNormalization):
            C = layer.gamma.shape[0]
            layer.set_weights(
                [
                    rng.standard_normal(C),
                    rng.standard_normal(C),
                    rng.standard_normal(C),
                    rng.uniform(0.2, 2, C),
                ]
            )
    return model


def _predict(model, x):
    return np.asarray(keras.ops.convert_to_numpy(model(x, training=False)))


def test_conv_flatten_dense_needs_the_flatten_permutation():
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((5, 4, 3)),
            layers.Conv2D(6, 3, activation="relu"),
            layers.Flatten(),
            layers.Dense(4),
        ]
    )
    net = refnet.from_keras(model)
    x = _x((3, 5, 4, 3))
    _close(net(_nchw(x)), _predict(model, x))
    assert any("NHWC flatten" in note for note in net.import_report.notes)


def test_nested_sequential_models_are_expanded():
    keras.utils.set_random_seed(3)
    block = keras.Sequential([layers.Conv2D(3, 3, padding="same"), layers.ReLU()])
    model = keras.Sequential(
        [keras.Input((6, 6, 2)), block, layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(2)]
    )
    net = refnet.from_keras(model)
    x = _x((2, 6, 6, 2))
    _close(net(_nchw(x)), _predict(model, x))
    assert [type(layer).__name__ for layer in net][:2] == ["Conv2D", "ReLU"]


def _everything():
    keras.utils.set_random_seed(1)
    inp = keras.Input((8, 8, 3))
    h = layers.Conv2D(4, 3, strides=2, padding="same", name="same_s2")(inp)  # asymmetric
    h = layers.BatchNormalization(epsilon=0.3)(h)  # folded
    h = layers.ReLU()(h)
    h = layers.ZeroPadding2D(((1, 0), (0, 1)))(h)
    h = layers.Conv2D(5, 2, padding="valid", activation="relu")(h)
    h = layers.BatchNormalization()(h)  # after a ReLU: ChannelAffine
    h = layers.AveragePooling2D(2)(h)
    h = layers.Conv2D(6, 1, activation="relu")(h)
    h = layers.Dropout(0.3)(h)
    h = layers.Flatten()(h)
    h = layers.BatchNormalization()(h)  # per feature, after a flatten: permuted
    h = layers.Dense(7, activation="relu")(h)
    out = layers.Dense(3, activation="softmax")(h)
    return _randomize_batchnorms(keras.Model(inp, out))


def test_functional_model_with_every_layer_matches_keras():
    model = _everything()
    net = refnet.from_keras(model)
    assert net.dtype == np.float32
    x = _x((4, 8, 8, 3))
    _close(_log_softmax(net(_nchw(x))), np.log(_predict(model, x).astype(np.float64)))
    report = net.import_report
    assert len(report.folded) == 1 and len(report.affine) == 2 and report.stripped
    kinds = [type(layer).__name__ for layer in net]
    assert kinds[:3] == ["ZeroPad2D", "Conv2D", "ReLU"]  # 'same' with stride 2: pad (0, 1)


def test_global_average_pooling_and_maxpool_and_keras_file(tmp_path):
    keras.utils.set_random_seed(2)
    model = keras.Sequential(
        [
            keras.Input((8, 8, 2)),
            layers.Conv2D(4, 3, padding="same"),
            layers.Activation("relu"),
            layers.MaxPooling2D(2),
            layers.GlobalAveragePooling2D(),
            layers.Dense(3),
            layers.Softmax(),
        ]
    )
    path = tmp_path / "model.keras"
    model.save(path)
    net = refnet.from_keras(str(path))
    x = _x((3, 8, 8, 2))
    _close(_log_softmax(net(_nchw(x))), np.log(_predict(model, x).astype(np.float64)))
    assert "Softmax" in net.import_report.stripped[0]
    from refnet.cli import main  # the command line takes the .keras file directly

    np.save(tmp_path / "x.npy", _nchw(x))
    argv = ["explain", "--model", str(path), "--input", str(tmp_path / "x.npy")]
    assert main([*argv, "--method", "gradient", "--out", str(tmp_path / "g.npy")]) == 0
    np.testing.assert_allclose(
        np.load(tmp_path / "g.npy"), refnet.explain(net, _nchw(x), "gradient")
    )


def test_fit_patterns_and_every_method_run_on_an_imported_net():
    net = refnet.from_keras(_everything())
    x = _nchw(_x((16, 8, 8, 3)))
    patterns = refnet.fit_patterns(net, x, batch_size=8)
    for method in METHODS:
        h = refnet.explain(net, x[:2], method, patterns=patterns, **QUICK.get(method, {}))
        assert h.shape == x[:2].shape and np.isfinite(h).all(), method


@pytest.mark.parametrize(
    "layer, kind",
    [
        (layers.Conv2D(2, 3, dilation_rate=2, name="bad"), "Conv2D"),
        (layers.Conv2D(2, 3, groups=2, name="bad"), "Conv2D"),
        (layers.Conv2D(2, 3, activation="tanh", name="bad"), "Conv2D"),
        (layers.MaxPooling2D(3, strides=2, padding="same", name="bad"), "MaxPooling2D"),
        (layers.LeakyReLU(name="bad"), "LeakyReLU"),
        (layers.Softmax(name="bad"), "Softmax"),
    ],
)
def test_unsupported_layers_raise_a_clear_error(layer, kind):
    model = keras.Sequential([keras.Input((6, 6, 2)), layer, layers.Flatten(), layers.Dense(2)])
    with pytest.raises(refnet.UnsupportedModelError) as info:
        refnet.from_keras(model)
    assert f"{kind} 'bad'" in str(info.value) and "Supported:" in str(info.value)


def test_residual_and_recurrent_models_raise_a_clear_error():
    inp = keras.Input((6, 6, 2))
    h = layers.Conv2D(2, 3, padding="same")(inp)
    out = layers.Dense(2)(layers.Flatten()(layers.Add(name="res")([inp, h])))
    with pytest.raises(refnet.UnsupportedModelError, match="Add 'res'"):
        refnet.from_keras(keras.Model(inp, out))
    model = keras.Sequential([keras.Input((5, 3)), layers.LSTM(4, name="rnn"), layers.Dense(2)])
    with pytest.raises(refnet.UnsupportedModelError, match="LSTM 'rnn'"):
        refnet.from_keras(model)
