"""refnet: a reference implementation of PatternNet and PatternAttribution.

Kindermans et al., "Learning how to explain neural networks: PatternNet and
PatternAttribution", ICLR 2018. Layers, kernels, pattern fitting and explanation methods
are explicit NumPy code; Cython kernels (``refnet.kernels``) speed up the hot loops.
"""

from . import kernels, train
from .attribution import Explainer, explain, normalize
from .importers import UnsupportedModelError, from_keras, from_onnx, from_torch
from .layers import (
    AvgPool2D,
    ChannelAffine,
    Conv2D,
    Dense,
    Flatten,
    GlobalAvgPool2D,
    Layer,
    MaxPool2D,
    ReLU,
    ZeroPad2D,
)
from .network import Sequential
from .patterns import Patterns, fit_patterns
from .serialize import load, save

__version__ = "0.1.0"

__all__ = [
    "AvgPool2D",
    "ChannelAffine",
    "Conv2D",
    "Dense",
    "Explainer",
    "Flatten",
    "GlobalAvgPool2D",
    "Layer",
    "MaxPool2D",
    "Patterns",
    "ReLU",
    "Sequential",
    "UnsupportedModelError",
    "ZeroPad2D",
    "explain",
    "fit_patterns",
    "from_keras",
    "from_onnx",
    "from_torch",
    "kernels",
    "load",
    "normalize",
    "save",
    "train",
]
