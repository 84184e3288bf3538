"""The layer library: one file per layer, each with an explicit forward and backward."""

from .base import Layer
from .conv2d import Conv2D, Conv2DCache
from .dense import Dense, DenseCache
from .flatten import Flatten, FlattenCache
from .maxpool2d import MaxPool2D, MaxPool2DCache
from .relu import ReLU, ReLUCache

#: Layers with a weight ``W`` and an adjoint: the layers that get patterns.
KERNEL_LAYERS = (Dense, Conv2D)

__all__ = [
    "KERNEL_LAYERS",
    "Conv2D",
    "Conv2DCache",
    "Dense",
    "DenseCache",
    "Flatten",
    "FlattenCache",
    "Layer",
    "MaxPool2D",
    "MaxPool2DCache",
    "ReLU",
    "ReLUCache",
]
