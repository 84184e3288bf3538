"""What an importer did to the source model: the :class:`ImportReport`.

Every imported network carries one as ``net.import_report``. It lists the BatchNorms that
were folded into the layer before them (and those kept as a per-channel affine layer), the
layers dropped because they are the identity at inference (Dropout, Identity), the trailing
softmax that was stripped (explanations are of the logits), and notes such as a torch model
that was in train mode.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class ImportReport:
    """The record of one import.

    Attributes
    ----------
    source : str
        ``"torch"``, ``"keras"`` or ``"onnx"``.
    folded : list of str
        BatchNorms folded into the preceding Conv2D/Dense (``"bn1 -> layer 0 (Conv2D)"``).
    affine : list of str
        BatchNorms kept as a :class:`~refnet.layers.ChannelAffine` layer (not foldable).
    dropped : list of str
        Layers or ops dropped because they are the identity at inference.
    stripped : list of str
        A trailing Softmax / LogSoftmax (or Keras ``activation="softmax"``) removed.
    notes : list of str
        Anything else the user should know (train mode, layout conversion, padding).
    """

    source: str
    folded: list[str] = field(default_factory=list)
    affine: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    stripped: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        lines = [f"imported from {self.source}"]
        for label in ("folded", "affine", "dropped", "stripped", "notes"):
            for item in getattr(self, label):
                lines.append(f"  {label}: {item}")
        return "\n".join(lines)
