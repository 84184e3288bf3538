"""Training: the softmax cross-entropy loss, SGD and Adam, the loop, and the digits data.

``refnet.train.digits`` loads scikit-learn's bundled 8x8 digits (scikit-learn is imported
only when the data are asked for) and trains the small CNN used by the demo.
"""

from . import digits
from .loop import History, evaluate, fit
from .loss import softmax, softmax_cross_entropy
from .optim import SGD, Adam

__all__ = [
    "SGD",
    "Adam",
    "History",
    "digits",
    "evaluate",
    "fit",
    "softmax",
    "softmax_cross_entropy",
]
