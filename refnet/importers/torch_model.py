r"""Import a PyTorch ``nn.Sequential`` (nested allowed) as a refnet network.

PyTorch is NCHW with OIHW kernels and ``(out, in)`` linear weights, refnet's own layout,
so the weights are copied as they are (in their dtype). BatchNorm uses its running
statistics (eval behaviour) whatever mode the module is in, and is folded into a Conv2d or
Linear directly before it; Dropout and Identity are dropped; a trailing Softmax or
LogSoftmax is stripped (:mod:`refnet.importers.fold`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..layers import Dense, Flatten, GlobalAvgPool2D, MaxPool2D, ReLU, ZeroPad2D
from ..network import Sequential
from .errors import require, unsupported
from .fold import NetBuilder, same_pads

SUPPORTED = (
    "Sequential (nested)",
    "Conv2d (groups=1, dilation=1, zero padding: int, tuple, 'same', 'valid'; equal strides)",
    "Linear",
    "ReLU",
    "MaxPool2d (square, no padding, dilation=1, ceil_mode=False)",
    "AvgPool2d (ceil_mode=False; padding only with count_include_pad=True)",
    "AdaptiveAvgPool2d (output size 1, or dividing the input size)",
    "Flatten(start_dim=1, end_dim=-1)",
    "BatchNorm1d/BatchNorm2d (running statistics)",
    "ZeroPad2d",
    "Dropout/Dropout1d/Dropout2d/AlphaDropout/Identity (dropped)",
    "a trailing Softmax/LogSoftmax (stripped)",
)


def _leaves(nn: Any, module: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    """The modules of a (nested) Sequential in execution order, with their dotted names."""
    if isinstance(module, nn.Sequential):
        for name, child in module.named_children():
            yield from _leaves(nn, child, f"{prefix}.{name}" if prefix else name)
    else:
        yield prefix or type(module).__name__, module


def _array(t: Any) -> np.ndarray:
    return t.detach().cpu().numpy().copy()


def _pair(v: Any) -> tuple[int, int]:
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


class _TorchConverter:
    """Converts one module at a time into the builder (``convert`` dispatches by type)."""

    def __init__(self, torch: Any, input_shape: tuple[int, int, int] | tuple[int]) -> None:
        self.nn = torch.nn
        self.builder = NetBuilder("torch", input_shape)

    def fail(self, name: str, m: Any, why: str) -> Exception:
        return unsupported("torch", type(m).__name__, name, why, SUPPORTED)

    def emit(self, layer: Any, name: str) -> None:
        self.builder.add(layer, name)

    def convert(self, name: str, m: Any) -> None:
        nn, b = self.nn, self.builder
        if isinstance(m, nn.Conv2d):
            self.conv(name, m)
        elif isinstance(m, nn.Linear):
            W = _array(m.weight)
            bias = None if m.bias is None else _array(m.bias)
            self.emit(Dense(W, bias), name)
        elif isinstance(m, nn.ReLU):
            self.emit(ReLU(), name)
        elif isinstance(m, nn.MaxPool2d):
            self.maxpool(name, m)
        elif isinstance(m, nn.AvgPool2d):
            self.avgpool(name, m)
        elif isinstance(m, nn.AdaptiveAvgPool2d):
            self.adaptive_avgpool(name, m)
        elif isinstance(m, nn.Flatten):
            if m.start_dim != 1 or m.end_dim != -1:
                raise self.fail(name, m, f"start_dim={m.start_dim}, end_dim={m.end_dim}")
            self.emit(Flatten(), name)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            self.batchnorm(name, m)
        elif isinstance(m, nn.ZeroPad2d):
            left, right, top, bottom = (int(p) for p in m.padding)
            self.emit(ZeroPad2D((top, bottom, left, right)), name)
        elif isinstance(m, (nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.AlphaDropout)):
            b.drop(name, type(m).__name__)
        elif isinstance(m, nn.Identity):
            b.drop(name, "Identity")
        elif isinstance(m, (nn.Softmax, nn.LogSoftmax)):
            if m.dim not in (1, -1, None):
                raise self.fail(name, m, f"dim={m.dim} (the class axis is 1)")
            b.softmax(name, type(m).__name__)
        else:
            why = "this module type has no refnet equivalent"
            if not list(m.children()) and type(m).forward is not nn.Module.forward:
                why += " (a custom forward() cannot be converted)"
            raise self.fail(name, m, why)

    def conv(self, name: str, m: Any) -> None:
        if m.groups != 1 or _pair(m.dilation) != (1, 1):
            raise self.fail(name, m, f"groups={m.groups}, dilation={m.dilation}")
        if m.padding_mode != "zeros":
            raise self.fail(name, m, f"padding_mode={m.padding_mode!r} (only 'zeros')")
        sh, sw = _pair(m.stride)
        if sh != sw:
            raise self.fail(name, m, f"stride {m.stride} (refnet's Conv2D has one stride)")
        kh, kw = _pair(m.kernel_size)
        if m.padding == "valid":
            pads = (0, 0, 0, 0)
        elif m.padding == "same":
            H, W = self.builder.shape[2:]
            pads = same_pads(H, kh, 1) + same_pads(W, kw, 1)
        else:
            ph, pw = _pair(m.padding)
            pads = (ph, ph, pw, pw)
        bias = None if m.bias is None else _array(m.bias)
        self.builder.conv(_array(m.weight), bias, sh, pads, name)

    def maxpool(self, name: str, m: Any) -> None:
        k, s = _pair(m.kernel_size), _pair(m.stride if m.stride is not None else m.kernel_size)
        if m.ceil_mode or _pair(m.dilation) != (1, 1) or _pair(m.padding) != (0, 0):
            why = f"ceil_mode={m.ceil_mode}, dilation={m.dilation}, padding={m.padding}"
            raise self.fail(name, m, why)
        if k[0] != k[1] or s[0] != s[1]:
            raise self.fail(name, m, f"kernel {k} and stride {s} must be square")
        if m.return_indices:
            raise self.fail(name, m, "return_indices=True")
        self.emit(MaxPool2D(k[0], s[0]), name)

    def avgpool(self, name: str, m: Any) -> None:
        k, s = _pair(m.kernel_size), _pair(m.stride if m.stride else m.kernel_size)
        ph, pw = _pair(m.padding)
        if m.ceil_mode or m.divisor_override is not None:
            why = f"ceil_mode={m.ceil_mode}, divisor_override={m.divisor_override}"
            raise self.fail(name, m, why)
        if (ph or pw) and not m.count_include_pad:
            raise self.fail(name, m, "padding with count_include_pad=False")
        self.builder.avgpool(k, s, (ph, ph, pw, pw), name)

    def adaptive_avgpool(self, name: str, m: Any) -> None:
        """``AdaptiveAvgPool2d(1)`` is GlobalAvgPool2D; an output size that divides the
        input size is an AvgPool2D with window = stride = input / output (VGG's
        ``AdaptiveAvgPool2d(7)`` on a 7x7 map is the identity and is dropped)."""
        size = m.output_size if isinstance(m.output_size, tuple) else (m.output_size,) * 2
        if tuple(size) == (1, 1):
            self.emit(GlobalAvgPool2D(keepdims=True), name)
            return
        H, W = self.builder.shape[2:]
        oh, ow = (H if size[0] is None else size[0]), (W if size[1] is None else size[1])
        if H % oh or W % ow:
            why = f"output_size {m.output_size} does not divide the input size {(H, W)}"
            raise self.fail(name, m, why)
        if (oh, ow) == (H, W):
            self.builder.drop(name, f"AdaptiveAvgPool2d({m.output_size}) on a {H}x{W} input")
            return
        k = (H // oh, W // ow)
        self.builder.avgpool(k, k, (0, 0, 0, 0), name)

    def batchnorm(self, name: str, m: Any) -> None:
        if m.running_mean is None or m.running_var is None:
            raise self.fail(name, m, "track_running_stats=False (no eval statistics)")
        mean, var = _array(m.running_mean), _array(m.running_var)
        gamma = _array(m.weight) if m.affine else np.ones_like(mean)
        beta = _array(m.bias) if m.affine else np.zeros_like(mean)
        self.builder.batchnorm(gamma, beta, mean, var, float(m.eps), name)


def _dtype(module: Any) -> np.dtype:
    dtypes = {str(p.dtype) for p in module.parameters()} | {
        str(b.dtype) for b in module.buffers() if b.is_floating_point()
    }
    names = {d.replace("torch.", "") for d in dtypes}
    if not names:
        return np.dtype(np.float32)
    if len(names) != 1 or names - {"float32", "float64"}:
        raise unsupported(
            "torch",
            "dtype",
            ", ".join(sorted(names)),
            "parameters must all be float32 or all float64",
            ("float32", "float64"),
        )
    return np.dtype(names.pop())


def from_torch(module: Any, input_shape: tuple[int, ...]) -> Sequential:
    r"""Import a PyTorch ``nn.Sequential`` (nested allowed) as a :class:`refnet.Sequential`.

    Parameters
    ----------
    module : torch.nn.Module
        An ``nn.Sequential`` of supported modules (a single supported module works too).
        Its mode is left unchanged; a module in train mode is imported with eval behaviour
        (BatchNorm running statistics, Dropout dropped) and the report says so.
    input_shape : tuple of int
        One sample's shape without the batch axis: ``(C, H, W)`` for images, ``(D,)``
        for vectors. Needed to resolve ``padding="same"`` and to check the layers fit.

    Returns
    -------
    Sequential
        NCHW, in the module's dtype (float32 or float64). ``net.import_report`` (an
        :class:`~refnet.importers.ImportReport`) lists the BatchNorms folded
        (:math:`W' = s W`, :math:`b' = (b - \mu) s + \beta`,
        :math:`s = \gamma / \sqrt{\sigma^2 + \varepsilon}`) or kept as ChannelAffine,
        the layers dropped and the softmax stripped.

    Raises
    ------
    UnsupportedModelError
        A module refnet cannot convert exactly (grouped or dilated conv, LRN, recurrent
        layers, custom modules with their own ``forward``, MaxPool with ``ceil_mode`` or
        dilation, ...), named with its dotted path; or layers that do not fit ``input_shape``.
    ImportError
        If PyTorch is not installed (``pip install 'refnet[torch]'``).
    """
    torch = require("torch", "torch", "refnet.from_torch")
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"from_torch: expected a torch.nn.Module, got {type(module).__name__}")
    input_shape = tuple(int(v) for v in input_shape)
    if len(input_shape) not in (1, 3) or min(input_shape) < 1:
        raise ValueError(
            f"from_torch: input_shape must be (C, H, W) or (D,) without the batch axis, "
            f"got {input_shape}"
        )
    dtype = _dtype(module)
    converter = _TorchConverter(torch, input_shape)
    for name, m in _leaves(torch.nn, module, ""):
        converter.convert(name, m)
    builder = converter.builder
    if any(m.training for m in module.modules()):
        builder.report.notes.append(
            "the module was in train mode; it was imported with eval behaviour (BatchNorm "
            "running statistics, Dropout dropped); the module itself is unchanged"
        )
    return builder.finish(dtype)
