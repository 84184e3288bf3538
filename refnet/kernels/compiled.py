"""The compiled modules: loading them once, and the implementation every wrapper calls.

The backend is chosen once, at import: ``"cython"`` when every extension module built by
``setup.py`` from ``pyx/`` imports, ``"numpy"`` otherwise, or when the environment variable
``REFNET_BACKEND=numpy`` forces the reference path. Nothing is printed either way.
:data:`impl` is then the namespace every kernel wrapper calls: the compiled kernels under
their NumPy twins' names, or :mod:`refnet.kernels.reference` itself.
"""

from __future__ import annotations

import importlib
import os
from types import ModuleType

from . import reference

#: The extension modules built from ``pyx/`` (``pyx/<stem>.pyx`` -> ``refnet.kernels._<stem>``).
#: All of them must import for the ``"cython"`` backend; otherwise the NumPy twins run.
COMPILED_MODULES = (
    "_activation",
    "_avgpool",
    "_conv",
    "_dense",
    "_lrp",
    "_pool",
    "_stats",
    "_stats_winograd",
    "_winograd4",
)


def load_compiled() -> ModuleType | None:
    if os.environ.get("REFNET_BACKEND", "").strip().lower() == "numpy":
        return None
    try:
        modules = [importlib.import_module(f"refnet.kernels.{m}") for m in COMPILED_MODULES]
        return _CompiledKernels(*modules)
    except ImportError:
        return None


class _CompiledKernels(ModuleType):
    """Namespace gathering the compiled kernels under the reference twins' names."""

    def __init__(self, *modules: ModuleType) -> None:
        super().__init__("refnet.kernels.compiled")
        for name in reference.__all__:
            for mod in modules:
                if hasattr(mod, name):
                    setattr(self, name, getattr(mod, name))
                    break
            else:
                raise ImportError(f"the compiled kernels lack {name}")


_compiled = load_compiled()
#: The active kernels: the compiled namespace, or the NumPy twins.
impl: ModuleType = _compiled if _compiled is not None else reference


def backend() -> str:
    """Return the active kernel backend: ``"cython"`` or ``"numpy"``."""
    return "cython" if impl is not reference else "numpy"
