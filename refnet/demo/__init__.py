"""``refnet demo``: the paper's experiments on scikit-learn's 8x8 digits, with figures.

:func:`run_demo` runs every step (:mod:`refnet.demo.run`); :mod:`refnet.demo.figures` draws
the figures with matplotlib; :mod:`refnet.demo.report` writes ``report.md`` and
``metrics.json``. matplotlib and scikit-learn come with the optional extra
``pip install "refnet[demo]"``; :func:`missing_dependencies` says which are absent. Nothing
here imports matplotlib until a figure is drawn.
"""

from .run import DEMO_METHODS, OUTPUT_FILES, DemoSettings, missing_dependencies, run_demo

__all__ = ["DEMO_METHODS", "OUTPUT_FILES", "DemoSettings", "missing_dependencies", "run_demo"]
