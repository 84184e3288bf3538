"""The importers' errors, and the lazy import of the source framework.

Anything an importer cannot convert exactly raises :class:`UnsupportedModelError` (a
``ValueError``) naming the op or layer type, its node or layer name, why, and what is
supported; it is never a traceback from deep inside the converter.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable
from types import ModuleType


class UnsupportedModelError(ValueError):
    """A model (or one of its layers or ops) that refnet cannot import exactly."""


def unsupported(
    source: str, kind: str, name: str, why: str, supported: Iterable[str]
) -> UnsupportedModelError:
    """The error for layer/op ``kind`` called ``name`` in a ``source`` model."""
    listed = ", ".join(supported)
    return UnsupportedModelError(
        f"{source} import: {kind} {name!r} is not supported: {why}. Supported: {listed}. "
        "refnet imports feed-forward chains only (no residual or branching graphs)."
    )


def require(module: str, extra: str, purpose: str) -> ModuleType:
    """Import ``module`` for ``purpose``, or raise an ``ImportError`` naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise ImportError(
            f"{purpose} needs the optional package {module!r}; install it with "
            f"pip install 'refnet[{extra}]'"
        ) from exc
