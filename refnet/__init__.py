"""refnet: a reference implementation of PatternNet and PatternAttribution.

Kindermans et al., "Learning how to explain neural networks: PatternNet and
PatternAttribution", ICLR 2018. Layers, kernels, pattern fitting and explanation methods
are explicit NumPy code; Cython kernels (``refnet.kernels``) speed up the hot loops.
"""

from . import kernels, train
from .attribution import Explainer, explain, normalize
from .layers import Conv2D, Dense, Flatten, Layer, MaxPool2D, ReLU
from .network import Sequential
from .patterns import Patterns, fit_patterns
from .serialize import load, save

__version__ = "0.1.0"

__all__ = [
    "Conv2D",
    "Dense",
    "Explainer",
    "Flatten",
    "Layer",
    "MaxPool2D",
    "Patterns",
    "ReLU",
    "Sequential",
    "explain",
    "fit_patterns",
    "kernels",
    "load",
    "normalize",
    "save",
    "train",
]
