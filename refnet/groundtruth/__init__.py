"""``refnet groundtruth``: the suppressor benchmarks with known signal pixels.

:func:`run_groundtruth` trains three models per data set of :mod:`refnet.datasets`, explains
them with every refnet method and four model-free baselines, and scores the heatmaps with
the localisation metrics of :mod:`refnet.evaluate.localization`
(:mod:`refnet.groundtruth.run`). :mod:`.models` holds the classifiers, :mod:`.baselines`
the baselines, :mod:`.report` and :mod:`.figures` the written results, :mod:`.output` the
atomic, non-clobbering file writes. POT and matplotlib come with the optional extra
``pip install "refnet[groundtruth]"``; :func:`missing_dependencies` says which are absent.
"""

from .run import (
    ALL_METHODS,
    DATASETS,
    METRICS,
    GroundTruthSettings,
    missing_dependencies,
    run_groundtruth,
)

__all__ = [
    "ALL_METHODS",
    "DATASETS",
    "METRICS",
    "GroundTruthSettings",
    "missing_dependencies",
    "run_groundtruth",
]
