r"""Accept patterns ``A`` in any of their forms and check that they fit the network.

PatternNet and PatternAttribution need one pattern array per kernel layer, of that layer's
``W`` shape (Kindermans et al. 2018, section 4; MATH.md sections 2 and 4). Three forms are
accepted:

- a fitted patterns object (``refnet.fit_patterns``): anything with ``layer_indices``,
  ``__getitem__(layer_index)`` and ``check_compatible(net)``;
- a dict ``{layer_index: A}`` with one entry per kernel layer;
- a list or tuple with one ``A`` per kernel layer, in the network's order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..network import Sequential


def resolve_patterns(net: Sequential, patterns: Any, method: str) -> dict[int, np.ndarray]:
    """``{layer_index: A}`` for every kernel layer of ``net``, checked against its ``W``.

    Raises
    ------
    ValueError
        No patterns, a missing or extra layer, a shape that differs from the layer's ``W``,
        or a non-finite entry.
    TypeError
        Patterns of an unsupported type or a non-numeric dtype.
    """
    kernel = net.kernel_layers()
    if patterns is None:
        raise ValueError(
            f"{method}: needs patterns; fit them with refnet.fit_patterns(net, data), or pass "
            f"{{layer_index: A}} or a list with one A per kernel layer {kernel}"
        )
    if hasattr(patterns, "check_compatible"):
        patterns.check_compatible(net)
        A = {int(i): patterns[i] for i in patterns.layer_indices}
    elif isinstance(patterns, Mapping):
        A = dict(patterns.items())
    elif isinstance(patterns, (list, tuple)):
        if len(patterns) != len(kernel):
            raise ValueError(
                f"{method}: got {len(patterns)} pattern arrays for {len(kernel)} kernel layers "
                f"(layers {kernel})"
            )
        A = dict(zip(kernel, patterns, strict=True))
    else:
        raise TypeError(
            f"{method}: patterns must be a fitted patterns object, a dict {{layer_index: A}} "
            f"or a list of arrays, got {type(patterns).__name__}"
        )
    missing = [i for i in kernel if i not in A]
    extra = [i for i in A if i not in kernel]
    if missing or extra:
        raise ValueError(
            f"{method}: patterns are for layers {sorted(A, key=str)}, but the network's kernel "
            f"layers are {kernel} (missing {missing}, not kernel layers {extra}); were they "
            f"fitted for another network?"
        )
    return {i: _check_pattern(net, i, A[i], method) for i in kernel}


def _check_pattern(net: Sequential, i: int, a: Any, method: str) -> np.ndarray:
    layer = net.layers[i]
    where = f"{method}: the pattern for layer {i} ({type(layer).__name__})"
    a = np.asarray(a)
    if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
        raise TypeError(f"{where} has dtype {a.dtype}, expected a float array")
    if a.shape != layer.W.shape:
        raise ValueError(
            f"{where} has shape {a.shape}, but the layer's W has shape {layer.W.shape}; "
            f"were the patterns fitted for another network?"
        )
    if not np.isfinite(a).all():
        raise ValueError(f"{where} of shape {a.shape} contains NaN or infinity")
    return a
