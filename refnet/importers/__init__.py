"""Bring your own model: import PyTorch, Keras 3 and ONNX models as refnet networks.

- :func:`from_torch` — an ``nn.Sequential`` (nested allowed), with the input shape.
- :func:`from_keras` — a Keras 3 ``Sequential`` or linear functional model, or a ``.keras``
  file; NHWC/HWIO are converted to NCHW/OIHW once, here.
- :func:`from_onnx` — an ``onnx.ModelProto`` or a path, opsets 11 to 21.

Each returns a :class:`refnet.Sequential` in NCHW layout and the source's dtype, with an
:class:`ImportReport` as ``net.import_report``. BatchNorm is folded into the Conv2D/Dense
before it or kept as a :class:`~refnet.layers.ChannelAffine` layer
(:mod:`refnet.importers.fold`); a trailing softmax is stripped. Anything that cannot be
converted exactly raises :class:`UnsupportedModelError` (a ``ValueError``). The frameworks
are imported only when an importer is called; without them it raises an ``ImportError``
naming the extra to install (``refnet[torch]``, ``refnet[keras]``, ``refnet[onnx]``).
Residual connections and other branching graphs are not supported yet.
"""

from .errors import UnsupportedModelError
from .keras_model import from_keras
from .onnx_model import from_onnx
from .report import ImportReport
from .torch_model import from_torch

__all__ = ["ImportReport", "UnsupportedModelError", "from_keras", "from_onnx", "from_torch"]
