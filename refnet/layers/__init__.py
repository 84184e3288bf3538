"""The layer library: one file per layer, each with an explicit forward and backward."""

from .affine import ChannelAffine, ChannelAffineCache
from .avgpool2d import AvgPool2D, AvgPool2DCache
from .base import Layer
from .conv2d import Conv2D, Conv2DCache
from .dense import Dense, DenseCache
from .flatten import Flatten, FlattenCache
from .globalavgpool2d import GlobalAvgPool2D, GlobalAvgPool2DCache
from .maxpool2d import MaxPool2D, MaxPool2DCache
from .pad2d import ZeroPad2D, ZeroPad2DCache
from .relu import ReLU, ReLUCache

#: Layers with a weight ``W`` and an adjoint: the layers that get patterns.
KERNEL_LAYERS = (Dense, Conv2D)

#: Linear layers without a weight to swap (pooling, padding, per-channel affine): every
#: explanation method applies their adjoint, i.e. their own backward pass.
LINEAR_MAPS = (AvgPool2D, GlobalAvgPool2D, ZeroPad2D, ChannelAffine)

__all__ = [
    "KERNEL_LAYERS",
    "LINEAR_MAPS",
    "AvgPool2D",
    "AvgPool2DCache",
    "ChannelAffine",
    "ChannelAffineCache",
    "Conv2D",
    "Conv2DCache",
    "Dense",
    "DenseCache",
    "Flatten",
    "FlattenCache",
    "GlobalAvgPool2D",
    "GlobalAvgPool2DCache",
    "Layer",
    "MaxPool2D",
    "MaxPool2DCache",
    "ReLU",
    "ReLUCache",
    "ZeroPad2D",
    "ZeroPad2DCache",
]
