"""NumPy reference twins of the Cython kernels.

Each function here has exactly the signature of its compiled twin in ``pyx/``: it takes
validated, C-contiguous arrays of one floating dtype and fills a preallocated ``out``
(every element of ``out`` is overwritten). These are the kernels a reader reads; the
validation, casting and allocation live in :mod:`refnet.kernels`.
"""

from .activation import relu_backward, relu_forward
from .avgpool import avgpool2d_backward, avgpool2d_forward
from .conv import (
    conv2d_backward_input,
    conv2d_backward_input_direct,
    conv2d_backward_weight,
    conv2d_backward_weight_direct,
    conv2d_forward,
    conv2d_forward_direct,
)
from .dense import dense_backward_input, dense_backward_weight, dense_forward
from .im2col import col2im, im2col
from .lrp import lrp_input_relevance, lrp_ratio, lrp_ratio_alpha_beta
from .pool import maxpool2d_backward, maxpool2d_forward
from .stats import (
    pattern_stats_conv,
    pattern_stats_conv_winograd,
    pattern_stats_dense,
)
from .winograd import (
    conv2d_backward_input_winograd,
    conv2d_backward_weight_winograd,
    conv2d_forward_winograd,
)
from .winograd4 import (
    conv2d_backward_input_winograd4,
    conv2d_backward_weight_winograd4,
    conv2d_forward_winograd4,
)

__all__ = [
    "avgpool2d_backward",
    "avgpool2d_forward",
    "col2im",
    "conv2d_backward_input",
    "conv2d_backward_input_direct",
    "conv2d_backward_input_winograd",
    "conv2d_backward_input_winograd4",
    "conv2d_backward_weight",
    "conv2d_backward_weight_direct",
    "conv2d_backward_weight_winograd",
    "conv2d_backward_weight_winograd4",
    "conv2d_forward",
    "conv2d_forward_direct",
    "conv2d_forward_winograd",
    "conv2d_forward_winograd4",
    "dense_backward_input",
    "dense_backward_weight",
    "dense_forward",
    "im2col",
    "lrp_input_relevance",
    "lrp_ratio",
    "lrp_ratio_alpha_beta",
    "maxpool2d_backward",
    "maxpool2d_forward",
    "pattern_stats_conv",
    "pattern_stats_conv_winograd",
    "pattern_stats_dense",
    "relu_backward",
    "relu_forward",
]
