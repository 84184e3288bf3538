"""NumPy reference twins of the Cython kernels.

Each function here has exactly the signature of its compiled twin in ``pyx/``: it takes
validated, C-contiguous arrays of one floating dtype and fills a preallocated ``out``
(every element of ``out`` is overwritten). These are the kernels a reader reads; the
validation, casting and allocation live in :mod:`refnet.kernels`.
"""

from .conv import conv2d_backward_input, conv2d_backward_weight, conv2d_forward
from .im2col import col2im, im2col
from .pool import maxpool2d_backward, maxpool2d_forward

__all__ = [
    "col2im",
    "conv2d_backward_input",
    "conv2d_backward_weight",
    "conv2d_forward",
    "im2col",
    "maxpool2d_backward",
    "maxpool2d_forward",
]
