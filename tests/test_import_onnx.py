"""refnet.from_onnx against onnx.reference.ReferenceEvaluator (no onnxruntime needed).

- a hand-built graph with every supported op, including an unfused BatchNormalization,
  asymmetric ``pads``, ``auto_pad``, Gemm with ``transB``/``alpha``/``beta``, MatMul + Add,
  and a trailing Softmax (stripped: log-softmaxes are compared);
- a torch model exported by ``torch.onnx.export`` (whose exporter folds BatchNorm);
- opsets outside 11 to 21 and every unsupported op raise a clear error.
"""

import io

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402
from onnx.reference import ReferenceEvaluator  # noqa: E402

import refnet  # noqa: E402
from refnet.attribution.methods import METHODS  # noqa: E402

#: Few points for the averaging methods: the tests check that they run, not their accuracy.
QUICK = {"integrated_gradients": {"steps": 4}, "smoothgrad": {"samples": 3, "seed": 0}}

RNG = np.random.default_rng(0)
pytestmark = [
    pytest.mark.filterwarnings("ignore:You are using the legacy TorchScript"),
    pytest.mark.filterwarnings("ignore:The feature will be removed"),
]


def _c(name, a):
    return numpy_helper.from_array(np.asarray(a, dtype=np.float32), name)


def _model(nodes, inits, in_shape, out_shape, opset=13, out="y"):
    graph = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, out_shape)],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def _w(*shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _everything(opset=13):
    n = helper.make_node
    nodes = [
        n("Conv", ["x", "W1", "b1"], ["c1"], pads=[1, 0, 2, 1], name="conv1"),  # asymmetric
        n("BatchNormalization", ["c1", "g1", "be1", "m1", "v1"], ["bn1"], epsilon=0.2),
        n("Relu", ["bn1"], ["r1"]),
        n("BatchNormalization", ["r1", "g2", "be2", "m2", "v2"], ["bn2"], name="bn2"),
        n("Conv", ["bn2", "W2"], ["c2"], auto_pad="SAME_UPPER", strides=[2, 2], name="conv2"),
        n("Add", ["c2", "b2"], ["c2b"]),  # a bias added separately
        n("Relu", ["c2b"], ["r2"]),
        n(
            "AveragePool",
            ["r2"],
            ["p2"],
            kernel_shape=[3, 3],
            strides=[1, 1],
            pads=[1, 1, 1, 1],
            count_include_pad=1,
        ),
        n("MaxPool", ["p2"], ["p3"], kernel_shape=[2, 2], strides=[2, 2]),
        n("Pad", ["p3", "pads"], ["p4"], mode="constant"),
        n("GlobalAveragePool", ["p4"], ["gap"]),
        n("Flatten", ["gap"], ["f"], axis=1),
        n("Constant", [], ["shape"], value=numpy_helper.from_array(np.array([0, -1]))),
        n("Reshape", ["f", "shape"], ["f2"]),
        n("Gemm", ["f2", "G1", "gc1"], ["d1"], transB=0, alpha=0.5, beta=2.0),
        n("Relu", ["d1"], ["r3"]),
        n("Dropout", ["r3"], ["dr"]),
        n("MatMul", ["dr", "M2"], ["mm"]),
        n("Add", ["mm", "mb"], ["logits"]),
        n("Identity", ["logits"], ["id"]),
        n("Softmax", ["id"], ["y"], axis=1),
    ]
    inits = [
        _c("W1", _w(4, 3, 3, 3)),
        _c("b1", _w(4)),
        _c("g1", _w(4)),
        _c("be1", _w(4)),
        _c("m1", _w(4)),
        _c("v1", RNG.uniform(0.5, 2, 4)),
        _c("g2", _w(4)),
        _c("be2", _w(4)),
        _c("m2", _w(4)),
        _c("v2", RNG.uniform(0.5, 2, 4)),
        _c("W2", _w(5, 4, 2, 2)),
        _c("b2", _w(1, 5, 1, 1)),
        numpy_helper.from_array(np.array([0, 0, 1, 0, 0, 0, 0, 1]), "pads"),
        _c("G1", _w(5, 6)),
        _c("gc1", _w(6)),
        _c("M2", _w(6, 3)),
        _c("mb", _w(3)),
    ]
    return _model(nodes, inits, [None, 3, 9, 9], [None, 3], opset)


def _log_softmax(z):
    z = z.astype(np.float64) - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def _close(actual, expected, rel=1e-5):
    scale = np.abs(expected).max()
    assert np.abs(actual - expected).max() <= rel * scale, np.abs(actual - expected).max()


def _x(shape, seed=1):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


@pytest.mark.parametrize("opset", [11, 13, 14, 21])
def test_hand_built_graph_with_unfused_batchnorm_matches_the_reference(opset):
    """The peer runs the graph at opset >= 14: for opsets 9 to 13 ReferenceEvaluator's
    BatchNormalization mixes in the batch statistics (it fills the default momentum),
    while inference uses the stored ones; the other ops mean the same at every opset."""
    model = _everything(opset)
    onnx.checker.check_model(model)
    net = refnet.from_onnx(model)
    x = _x((4, 3, 9, 9))
    peer = onnx.ModelProto()
    peer.CopyFrom(model)
    peer.opset_import[0].version = max(opset, 14)
    (expected,) = ReferenceEvaluator(peer).run(None, {"x": x})
    _close(_log_softmax(net(x)), np.log(expected.astype(np.float64)))
    report = net.import_report
    assert len(report.folded) == 1 and report.affine and "Softmax" in report.stripped[0]
    assert net.dtype == np.float32


def test_a_torch_export_with_folded_batchnorm_matches_torch(tmp_path):
    torch = pytest.importorskip("torch")
    nn = torch.nn
    torch.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 5, 3),
        nn.BatchNorm2d(5),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(5, 3),
    )
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
            m.weight.data.uniform_(0.5, 2)
    model.eval()
    buffer = io.BytesIO()
    torch.onnx.export(
        model,
        (torch.zeros(1, 3, 10, 10),),
        buffer,
        dynamo=False,
        opset_version=13,
        input_names=["x"],
        output_names=["y"],
    )
    path = tmp_path / "model.onnx"
    path.write_bytes(buffer.getvalue())
    exported = onnx.load(path)
    assert "BatchNormalization" not in [node.op_type for node in exported.graph.node]
    net = refnet.from_onnx(str(path))
    x = _x((3, 3, 10, 10))
    with torch.no_grad():
        _close(net(x), model(torch.from_numpy(x)).numpy())
    (expected,) = ReferenceEvaluator(exported).run(None, {"x": x})
    _close(net(x), expected)


def test_fit_patterns_and_every_method_run_on_an_imported_net():
    net = refnet.from_onnx(_everything())
    x = _x((16, 3, 9, 9))
    patterns = refnet.fit_patterns(net, x, batch_size=8)
    for method in METHODS:
        h = refnet.explain(net, x[:2], method, patterns=patterns, **QUICK.get(method, {}))
        assert h.shape == x[:2].shape and np.isfinite(h).all(), method


def _one_op(node, inits=(), in_shape=(None, 2, 6, 6)):
    tail = [
        helper.make_node("Flatten", [node.output[0]], ["f"]),
        helper.make_node("MatMul", ["f", "Wt"], ["y"]),
    ]
    return _model([node, *tail], [*inits, _c("Wt", np.ones((1, 2)))], list(in_shape), [None, 2])


@pytest.mark.parametrize(
    "node, inits, kind",
    [
        (helper.make_node("LRN", ["x"], ["h"], size=3, name="lrn"), [], "LRN 'lrn'"),
        (
            helper.make_node("Conv", ["x", "Wg"], ["h"], group=2, name="cg"),
            [_c("Wg", _w(2, 1, 3, 3))],
            "Conv 'cg'",
        ),
        (
            helper.make_node("Conv", ["x", "Wd"], ["h"], dilations=[2, 2], name="cd"),
            [_c("Wd", _w(2, 2, 3, 3))],
            "Conv 'cd'",
        ),
        (helper.make_node("Add", ["x", "x"], ["h"], name="res"), [], "Add 'res'"),
        (
            helper.make_node("MaxPool", ["x"], ["h"], kernel_shape=[2, 2], ceil_mode=1, name="mp"),
            [],
            "MaxPool 'mp'",
        ),
        (
            helper.make_node(
                "MaxPool", ["x"], ["h"], kernel_shape=[2, 2], dilations=[2, 2], name="md"
            ),
            [],
            "MaxPool 'md'",
        ),
        (
            helper.make_node(
                "AveragePool", ["x"], ["h"], kernel_shape=[2, 2], pads=[1, 1, 1, 1], name="ap"
            ),
            [],
            "AveragePool 'ap'",
        ),
        (helper.make_node("Sigmoid", ["x"], ["h"], name="sig"), [], "Sigmoid 'sig'"),
    ],
)
def test_unsupported_ops_raise_a_clear_error(node, inits, kind):
    with pytest.raises(refnet.UnsupportedModelError) as info:
        refnet.from_onnx(_one_op(node, inits))
    assert kind in str(info.value) and "Supported:" in str(info.value)


def test_recurrent_op_and_branching_graph_and_opset_raise_clear_errors():
    lstm = helper.make_node("LSTM", ["x", "Wl", "Rl"], ["h"], hidden_size=2, name="rnn")
    model = _model(
        [lstm], [_c("Wl", _w(1, 8, 3)), _c("Rl", _w(1, 8, 2))], [5, None, 3], [5, None, 2], out="h"
    )
    with pytest.raises(refnet.UnsupportedModelError, match="LSTM 'rnn' is not supported"):
        refnet.from_onnx(model)
    nodes = [
        helper.make_node("Relu", ["x"], ["a"]),
        helper.make_node("Relu", ["x"], ["b"]),
        helper.make_node("Flatten", ["b"], ["f"]),
        helper.make_node("MatMul", ["f", "Wt"], ["y"]),
    ]
    branching = _model(nodes, [_c("Wt", np.ones((72, 2)))], [None, 2, 6, 6], [None, 2])
    with pytest.raises(refnet.UnsupportedModelError, match="not the previous op's output"):
        refnet.from_onnx(branching)
    old = _everything()
    old.opset_import[0].version = 10
    with pytest.raises(refnet.UnsupportedModelError, match="opset 10 is not supported"):
        refnet.from_onnx(old)


def test_the_cli_takes_an_onnx_model(tmp_path, capsys):
    from refnet.cli import main

    model = _everything()
    onnx.save(model, tmp_path / "model.onnx")
    X = _x((20, 3, 9, 9))
    np.save(tmp_path / "X.npy", X)
    path = str(tmp_path / "model.onnx")
    fit = ["fit-patterns", "--model", path, "--data", str(tmp_path / "X.npy"), "--no-progress"]
    assert main([*fit, "--out", str(tmp_path / "p.npz")]) == 0
    explain = ["explain", "--model", path, "--input", str(tmp_path / "X.npy")]
    pattern_args = ["--patterns", str(tmp_path / "p.npz"), "--method", "patternattribution"]
    assert main([*explain, *pattern_args, "--out", str(tmp_path / "h.npy")]) == 0
    net = refnet.from_onnx(model)
    patterns = refnet.fit_patterns(net, X)
    expected = refnet.explain(net, X, "patternattribution", patterns=patterns)
    np.testing.assert_allclose(np.load(tmp_path / "h.npy"), expected, rtol=1e-4, atol=1e-6)
    (tmp_path / "bad.onnx").write_bytes(b"not onnx")
    bad = ["explain", "--model", str(tmp_path / "bad.onnx"), "--input", str(tmp_path / "X.npy")]
    assert main([*bad, "--method", "gradient", "--out", str(tmp_path / "g.npy")]) == 2
    assert "cannot import the model" in capsys.readouterr().err
