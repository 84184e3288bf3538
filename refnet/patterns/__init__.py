r"""Patterns: learning each neuron's signal direction from data (Kindermans et al. 2018).

- :func:`fit_patterns` fits one pattern array per kernel layer in one pass over the data
  (MATH.md sections 2-3) and returns :class:`Patterns` (with ``A_minus`` and a
  :class:`FitReport`).
- :class:`LayerStats` is the per-layer streaming accumulator (``update``, ``merge``,
  ``patterns``); :func:`fit_stats` and :func:`patterns_from_stats` split the fit in two.
- :mod:`refnet.patterns.estimators` has the signal estimators ``S_x``, ``S_w``, ``S_a``,
  ``S_a_pm`` and ``S_r`` as functions of a layer's input rows.
"""

from .estimators import S_a, S_a_pm, S_r, S_w, S_x, layer_input_rows
from .fit import fit_patterns, fit_stats, patterns_from_stats
from .patterns import FORMAT_VERSION, FitReport, Patterns
from .stats import KINDS, LayerPatterns, LayerStats, check_kind

__all__ = [
    "FORMAT_VERSION",
    "KINDS",
    "FitReport",
    "LayerPatterns",
    "LayerStats",
    "Patterns",
    "S_a",
    "S_a_pm",
    "S_r",
    "S_w",
    "S_x",
    "check_kind",
    "fit_patterns",
    "fit_stats",
    "layer_input_rows",
    "patterns_from_stats",
]
