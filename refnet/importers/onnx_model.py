r"""Import an ONNX model (a chain of ops, opsets 11 to 21) as a refnet network.

The model is read with ``onnx``'s own protobuf API: initializers and ``Constant`` nodes
through ``onnx.numpy_helper.to_array``, attributes through
``onnx.helper.get_attribute_value``. ONNX is NCHW with OIHW kernels, refnet's layout.
The graph must be one chain: every op's data input is the previous op's output, every
other input is a constant. ``Gemm`` becomes a Dense with

.. math:: W = \alpha B \ (\text{transB} = 1) \text{ or } \alpha B^\top, \qquad
    b = \beta C ,

``MatMul`` followed by an ``Add`` of a constant becomes one Dense, and an ``Add`` of a
per-channel constant after a ``Conv`` joins its bias. Asymmetric ``pads`` and
``auto_pad`` become a :class:`~refnet.layers.ZeroPad2D` before the layer.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from ..layers import Conv2D, Dense, Flatten, GlobalAvgPool2D, MaxPool2D, ReLU, ZeroPad2D
from ..network import Sequential
from .errors import UnsupportedModelError, require, unsupported
from .fold import NetBuilder, same_pads

OPSETS = range(11, 22)
SUPPORTED = (
    "Conv (group=1, dilations=1, equal strides, any pads/auto_pad)",
    "Gemm (transA=0)",
    "MatMul (+ Add of a constant)",
    "Add of a bias constant after Conv/Gemm/MatMul",
    "Relu",
    "MaxPool (square, no padding, ceil_mode=0, dilations=1)",
    "AveragePool (ceil_mode=0; pads only with count_include_pad=1)",
    "GlobalAveragePool",
    "Flatten (axis=1)",
    "Reshape to (N, -1)",
    "BatchNormalization (inference)",
    "Pad (constant 0)",
    "Dropout/Identity (dropped)",
    "Constant",
    "a trailing Softmax/LogSoftmax (stripped)",
)


def _onnx() -> Any:
    return require("onnx", "onnx", "refnet.from_onnx")


def label(node: Any) -> str:
    """The node's name, or its first output's name for an unnamed node."""
    return node.name or node.output[0]


class _OnnxConverter:
    """Walks the nodes in order, keeping the current tensor's name and the constants."""

    def __init__(self, onnx: Any, graph: Any, input_name: str, shape: tuple[int, ...]) -> None:
        self.onnx = onnx
        self.builder = NetBuilder("onnx", shape)
        self.current = input_name
        self.producer = "input"  # the op type that computed the current tensor
        self.constants = {t.name: onnx.numpy_helper.to_array(t) for t in graph.initializer}

    def fail(self, node: Any, why: str) -> Exception:
        return unsupported("onnx", node.op_type, label(node), why, SUPPORTED)

    def attrs(self, node: Any) -> dict[str, Any]:
        get = self.onnx.helper.get_attribute_value
        out = {}
        for a in node.attribute:
            v = get(a)
            out[a.name] = v.decode() if isinstance(v, bytes) else v
        return out

    def const(self, node: Any, i: int, required: bool = True) -> np.ndarray | None:
        """The constant at input ``i`` of ``node`` (None if absent and not required)."""
        if i >= len(node.input) or node.input[i] == "":
            if required:
                raise self.fail(node, f"input {i} is missing")
            return None
        name = node.input[i]
        if name not in self.constants:
            raise self.fail(node, f"input {name!r} is not a constant (a branching graph)")
        return self.constants[name]

    def convert(self, node: Any, last: bool) -> None:
        op, attrs = node.op_type, self.attrs(node)
        if node.domain not in ("", "ai.onnx"):
            raise self.fail(node, f"domain {node.domain!r}")
        if op == "Constant":
            self.constant(node, attrs)
            return
        if not node.input or node.input[0] != self.current:
            raise self.fail(node, "its data input is not the previous op's output (branching)")
        if op == "Add" and len(node.input) == 2 and node.input[1] not in self.constants:
            raise self.fail(node, "an Add of two computed tensors (a residual connection)")
        handler = getattr(self, f"op_{op}", None)
        if handler is None:
            raise self.fail(node, "this op has no refnet equivalent")
        extra = [o for o in node.output[1:] if o]
        if extra and op not in ("Dropout", "BatchNormalization"):
            raise self.fail(node, f"extra outputs {extra}")
        handler(node, attrs, last)
        self.current, self.producer = node.output[0], op

    def constant(self, node: Any, attrs: dict) -> None:
        if len(attrs) != 1:
            raise self.fail(node, f"attributes {sorted(attrs)}")
        ((key, value),) = attrs.items()
        if key in ("value", "sparse_value"):
            value = self.onnx.numpy_helper.to_array(value)
        self.constants[node.output[0]] = np.asarray(value)

    def pads(self, node: Any, attrs: dict, k: tuple, s: tuple) -> tuple[int, int, int, int]:
        """``(top, bottom, left, right)`` from ``pads`` ``[t, l, b, r]`` or ``auto_pad``."""
        auto = attrs.get("auto_pad", "NOTSET")
        H, W = self.builder.shape[2:]
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            lower = auto == "SAME_LOWER"
            return same_pads(H, k[0], s[0], lower) + same_pads(W, k[1], s[1], lower)
        if auto == "VALID":
            return (0, 0, 0, 0)
        if auto != "NOTSET":
            raise self.fail(node, f"auto_pad={auto!r}")
        t, left, bottom, right = (int(p) for p in attrs.get("pads", (0, 0, 0, 0)))
        return (t, bottom, left, right)

    def window(self, node: Any, attrs: dict) -> tuple[tuple, tuple]:
        k = tuple(int(v) for v in attrs["kernel_shape"])
        s = tuple(int(v) for v in attrs.get("strides", (1, 1)))
        if len(k) != 2 or len(s) != 2:
            raise self.fail(node, f"kernel_shape {k}, strides {s} (only 2-D)")
        if any(int(d) != 1 for d in attrs.get("dilations", (1, 1))):
            raise self.fail(node, f"dilations {attrs['dilations']}")
        if attrs.get("ceil_mode", 0):
            raise self.fail(node, "ceil_mode=1")
        return k, s

    def op_Conv(self, node: Any, attrs: dict, last: bool) -> None:
        W = self.const(node, 1)  # (F, C, kh, kw)
        if W.ndim != 4 or attrs.get("group", 1) != 1:
            raise self.fail(node, f"weight of shape {W.shape}, group={attrs.get('group', 1)}")
        k, s = self.window(node, {**attrs, "kernel_shape": W.shape[2:]})
        if s[0] != s[1]:
            raise self.fail(node, f"strides {s} (refnet's Conv2D has one stride)")
        pads = self.pads(node, attrs, k, s)
        self.builder.conv(W, self.const(node, 2, required=False), s[0], pads, label(node))

    def op_Gemm(self, node: Any, attrs: dict, last: bool) -> None:
        if attrs.get("transA", 0):
            raise self.fail(node, "transA=1")
        B = self.const(node, 1).astype(np.float64)
        alpha, beta = float(attrs.get("alpha", 1.0)), float(attrs.get("beta", 1.0))
        W = alpha * (B if attrs.get("transB", 0) else B.T)  # (out, in)
        C = self.const(node, 2, required=False)
        b = None if C is None else beta * self.bias(node, C, W.shape[0])
        dtype = self.const(node, 1).dtype
        bias = None if b is None else b.astype(dtype)
        self.builder.add(Dense(W.astype(dtype), bias), label(node))

    def op_MatMul(self, node: Any, attrs: dict, last: bool) -> None:
        B = self.const(node, 1)
        if B.ndim != 2 or len(self.builder.shape) != 2:
            raise self.fail(node, f"weight {B.shape} on input {self.builder.shape} (only 2-D)")
        self.builder.add(Dense(np.ascontiguousarray(B.T)), label(node))  # W (out, in)

    def bias(self, node: Any, c: np.ndarray, n_out: int, spatial: bool = False) -> np.ndarray:
        """``c`` as a per-output bias ``(n_out,)``, if it broadcasts as one."""
        shape = c.shape
        squeezed = c.reshape(-1) if c.size == n_out else None  # (n_out,)
        fits = (
            squeezed is not None
            and (not spatial or shape in ((n_out, 1, 1), (1, n_out, 1, 1), (n_out,)))
            and (spatial or shape in ((n_out,), (1, n_out)))
        )
        if c.size == 1:
            return np.full(n_out, c.reshape(()).item(), dtype=np.float64)
        if not fits:
            raise self.fail(node, f"constant of shape {shape} is not a bias of {n_out} outputs")
        return squeezed.astype(np.float64)

    def op_Add(self, node: Any, attrs: dict, last: bool) -> None:
        layer = self.builder.layers[-1] if self.builder.layers else None
        c = self.const(node, 1)
        biased = self.producer in ("Conv", "Gemm", "MatMul")
        if not isinstance(layer, (Conv2D, Dense)) or not biased:
            raise self.fail(node, "an Add of a constant that is not the bias of Conv/MatMul/Gemm")
        b = self.bias(node, c, layer.W.shape[0], spatial=isinstance(layer, Conv2D))
        layer.b = (layer.b.astype(np.float64) + b).astype(layer.b.dtype)

    def op_Relu(self, node: Any, attrs: dict, last: bool) -> None:
        self.builder.add(ReLU(), label(node))

    def op_MaxPool(self, node: Any, attrs: dict, last: bool) -> None:
        k, s = self.window(node, attrs)
        if any(self.pads(node, attrs, k, s)) or attrs.get("storage_order", 0):
            raise self.fail(node, "padding or storage_order=1")
        if k[0] != k[1] or s[0] != s[1]:
            raise self.fail(node, f"kernel_shape {k} and strides {s} must be square")
        self.builder.add(MaxPool2D(k[0], s[0]), label(node))

    def op_AveragePool(self, node: Any, attrs: dict, last: bool) -> None:
        k, s = self.window(node, attrs)
        pads = self.pads(node, attrs, k, s)
        if any(pads) and not attrs.get("count_include_pad", 0):
            raise self.fail(node, f"pads {pads} with count_include_pad=0")
        self.builder.avgpool(k, s, pads, label(node))

    def op_GlobalAveragePool(self, node: Any, attrs: dict, last: bool) -> None:
        self.builder.add(GlobalAvgPool2D(keepdims=True), label(node))

    def op_Flatten(self, node: Any, attrs: dict, last: bool) -> None:
        if attrs.get("axis", 1) != 1:
            raise self.fail(node, f"axis={attrs['axis']} (only 1)")
        self.builder.add(Flatten(), label(node))

    def op_Reshape(self, node: Any, attrs: dict, last: bool) -> None:
        target = [int(v) for v in self.const(node, 1).reshape(-1)]  # the target shape
        D = int(np.prod(self.builder.shape[1:]))
        if len(target) != 2 or not (target[1] == D or (target[1] == -1 and target[0] != -1)):
            raise self.fail(node, f"target shape {target} (only (N, -1) on {self.builder.shape})")
        self.builder.add(Flatten(), label(node))

    def op_BatchNormalization(self, node: Any, attrs: dict, last: bool) -> None:
        if attrs.get("training_mode", 0) or any(o for o in node.output[1:]):
            raise self.fail(node, "training_mode=1 (only inference statistics)")
        gamma, beta, mean, var = (self.const(node, i) for i in range(1, 5))
        eps = float(attrs.get("epsilon", 1e-5))
        self.builder.batchnorm(gamma, beta, mean, var, eps, label(node))

    def op_Pad(self, node: Any, attrs: dict, last: bool) -> None:
        mode = attrs.get("mode", "constant")
        p = [int(v) for v in self.const(node, 1).reshape(-1)]  # (8,): begins, then ends
        value = self.const(node, 2, required=False)
        if mode != "constant" or (value is not None and float(value.reshape(-1)[0]) != 0.0):
            raise self.fail(node, f"mode={mode!r} or a nonzero pad value")
        if len(p) != 8 or any(p[i] for i in (0, 1, 4, 5)) or min(p) < 0:
            raise self.fail(node, f"pads {p} (only non-negative H and W padding of NCHW)")
        self.builder.add(ZeroPad2D((p[2], p[6], p[3], p[7])), label(node))

    def op_Dropout(self, node: Any, attrs: dict, last: bool) -> None:
        if len(node.output) > 1 and node.output[1]:
            raise self.fail(node, "its mask output is used")
        self.builder.drop(label(node), "Dropout")

    def op_Identity(self, node: Any, attrs: dict, last: bool) -> None:
        self.builder.drop(label(node), "Identity")

    def op_Softmax(self, node: Any, attrs: dict, last: bool) -> None:
        if not last or len(self.builder.shape) != 2 or attrs.get("axis", -1) not in (1, -1):
            raise self.fail(node, "a Softmax is supported only last, over the class axis")
        self.builder.softmax(label(node), node.op_type)

    op_LogSoftmax = op_Softmax


def _input(onnx: Any, graph: Any) -> tuple[str, tuple[int, ...], np.dtype]:
    """The one graph input that is not an initializer: its name, shape (no batch), dtype."""
    inits = {t.name for t in graph.initializer}
    inputs = [v for v in graph.input if v.name not in inits]
    if len(inputs) != 1:
        raise UnsupportedModelError(
            f"onnx import: the graph has {len(inputs)} data inputs "
            f"{[v.name for v in inputs]}; refnet needs exactly one"
        )
    tensor = inputs[0].type.tensor_type
    dtypes = {onnx.TensorProto.FLOAT: np.float32, onnx.TensorProto.DOUBLE: np.float64}
    if tensor.elem_type not in dtypes:
        raise UnsupportedModelError(
            f"onnx import: input {inputs[0].name!r} has element type "
            f"{onnx.TensorProto.DataType.Name(tensor.elem_type)}; only FLOAT or DOUBLE"
        )
    dims = [d.dim_value if d.HasField("dim_value") else None for d in tensor.shape.dim]
    if len(dims) not in (2, 4) or any(d is None or d < 1 for d in dims[1:]):
        raise UnsupportedModelError(
            f"onnx import: input {inputs[0].name!r} must be (N, C, H, W) or (N, D) with "
            f"fixed sizes after the batch axis, got {dims}"
        )
    return inputs[0].name, tuple(int(d) for d in dims[1:]), np.dtype(dtypes[tensor.elem_type])


def from_onnx(model_or_path: Any) -> Sequential:
    r"""Import an ONNX model (``onnx.ModelProto`` or a path) as a :class:`refnet.Sequential`.

    Parameters
    ----------
    model_or_path : onnx.ModelProto, str or PathLike
        A model of the default ONNX domain, opset 11 to 21, whose graph is one chain of
        supported ops (see the module docstring) with one input ``(N, C, H, W)`` or
        ``(N, D)`` of fixed sizes after the batch axis, and one output.

    Returns
    -------
    Sequential
        NCHW, in the input's dtype (FLOAT -> float32, DOUBLE -> float64).
        ``net.import_report`` lists the BatchNormalization nodes folded into the Conv or
        Gemm before them (or kept as ChannelAffine), the ops dropped and the softmax
        stripped.

    Raises
    ------
    UnsupportedModelError
        An op refnet cannot convert exactly (LRN, grouped or dilated Conv, a residual
        ``Add``, recurrent ops, MaxPool with ``ceil_mode`` or dilations, ...), named with
        its node name; an unsupported opset; a graph that is not a chain.
    ImportError
        If onnx is not installed (``pip install 'refnet[onnx]'``).
    """
    onnx = _onnx()
    model = model_or_path
    if isinstance(model_or_path, (str, os.PathLike)):
        path = os.fspath(model_or_path)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"from_onnx: {path}: no such file")
        try:
            model = onnx.load(path)
        except Exception as exc:  # noqa: BLE001 - protobuf raises DecodeError and others
            raise ValueError(f"from_onnx: {path}: not a readable ONNX model ({exc})") from exc
    if not isinstance(model, onnx.ModelProto):
        got = type(model).__name__
        raise TypeError(f"from_onnx: expected an onnx.ModelProto or a path, got {got}")
    opsets = {o.domain: o.version for o in model.opset_import}
    version = opsets.get("", opsets.get("ai.onnx"))
    if version not in OPSETS:
        raise UnsupportedModelError(
            f"onnx import: opset {version} is not supported (opsets {OPSETS[0]} to "
            f"{OPSETS[-1]}); convert it with onnx.version_converter.convert_version"
        )
    graph = model.graph
    for node in graph.node:  # name an unsupported op before any shape complaint
        if node.op_type != "Constant" and not hasattr(_OnnxConverter, f"op_{node.op_type}"):
            why = "this op has no refnet equivalent"
            raise unsupported("onnx", node.op_type, label(node), why, SUPPORTED)
    name, shape, dtype = _input(onnx, graph)
    converter = _OnnxConverter(onnx, graph, name, shape)
    nodes = list(graph.node)
    for i, node in enumerate(nodes):
        last = all(n.op_type in ("Dropout", "Identity") for n in nodes[i + 1 :])
        converter.convert(node, last)
    outputs = [o.name for o in graph.output]
    if outputs != [converter.current]:
        raise UnsupportedModelError(
            f"onnx import: the graph's outputs {outputs} are not the end of its chain "
            f"({converter.current!r}); refnet needs exactly one output"
        )
    return converter.builder.finish(dtype)
