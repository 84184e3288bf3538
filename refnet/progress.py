"""The one progress bar: a tqdm bar on stderr when asked for and tqdm is installed.

tqdm is optional (it comes with the ``demo`` extra). Without it, or with ``enabled``
false, ``progress_bar`` returns the iterable itself, so callers never need to care.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import Any, TypeVar

T = TypeVar("T")


def progress_bar(
    iterable: Iterable[T], desc: str, enabled: bool = True, **options: Any
) -> Iterable[T]:
    """``iterable``, wrapped in a tqdm bar on stderr if ``enabled`` and tqdm is installed.

    Parameters
    ----------
    iterable : iterable
        What to iterate over.
    desc : str
        The bar's label.
    enabled : bool
        False returns ``iterable`` unchanged.
    **options
        Passed on to ``tqdm`` (e.g. ``total``, ``unit``). The bar disappears when done
        (``leave=False``) unless ``leave=True`` is passed.
    """
    if not enabled:
        return iterable
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return iterable
    options = {"leave": False, "file": sys.stderr, "dynamic_ncols": True, **options}
    return tqdm(iterable, desc=desc, **options)
