"""Evaluation measures: the quality rho of signal estimators, image degradation, the toy.

- :mod:`refnet.evaluate.quality` — rho (paper, Eq. 1; MATH.md section 5) per layer and
  estimator, for the pre-activation ``y`` and for ``relu(z)``.
- :mod:`refnet.evaluate.regression` — the held-out regression behind rho (ridge, GCV).
- :mod:`refnet.evaluate.degradation` — patch replacement curves and AOPC (paper, Fig. 4;
  MATH.md section 6).
- :mod:`refnet.evaluate.localization` — precision, EMD and mass accuracy of a heatmap
  against ground-truth masks (the XAI-TRIS metrics; data in :mod:`refnet.datasets`).
- :mod:`refnet.evaluate.toy` — the 2-D linear example of the paper's Fig. 2 (MATH.md
  section 1).
"""

from .degradation import (
    DegradationCurve,
    aopc,
    degradation_curve,
    degrade_by_attribution,
    degrade_randomly,
    patch_means,
    patch_order,
    patch_scores,
    random_order,
)
from .localization import emd_accuracy, mass_accuracy, precision
from .quality import (
    ESTIMATORS,
    TARGETS,
    RhoResult,
    distractor,
    layer_rho,
    layer_rows,
    neuron_rho,
    quality,
)
from .regression import ridge_gcv
from .toy import A_D, A_S, W_TOY, ToyResult, line_angle, linear_toy

__all__ = [
    "A_D",
    "A_S",
    "ESTIMATORS",
    "TARGETS",
    "W_TOY",
    "DegradationCurve",
    "RhoResult",
    "ToyResult",
    "aopc",
    "degradation_curve",
    "degrade_by_attribution",
    "degrade_randomly",
    "distractor",
    "emd_accuracy",
    "layer_rho",
    "layer_rows",
    "line_angle",
    "linear_toy",
    "mass_accuracy",
    "neuron_rho",
    "patch_means",
    "patch_order",
    "patch_scores",
    "precision",
    "quality",
    "random_order",
    "ridge_gcv",
]
