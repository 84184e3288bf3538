r"""Fit the patterns of every kernel layer of a network in one pass over the data.

Each batch is forwarded through the network once; every kernel layer (Dense, Conv2D) hands
its input ``x`` and its pre-activation ``z`` to its :class:`~refnet.patterns.stats.LayerStats`,
which adds the batch's sums (MATH.md section 3; for a conv the patches are extracted chunk
by chunk inside the kernel). Memory is bounded by the batch and the statistics
(``O(D K)`` per layer), never by the number of samples; ``data`` may be a memory-mapped
array or any iterable of batches, so data larger than memory streams through.

At the end every layer's patterns follow Kindermans et al. 2018, Eq. 8 (kind ``"relu"``),
Eq. 4 (kind ``"linear"``) or Eq. 8 with ``E_+[y]`` (kind ``"relu_masked_mean"``).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from ..kernels.threads import one_blas_thread
from ..layers import MaxPool2D, ReLU
from ..layers.base import check_input
from ..network import Sequential
from ..progress import progress_bar
from .patterns import FitReport, Patterns
from .stats import LayerStats, check_kind


def _batches(data: Any, batch_size: int) -> Iterator[np.ndarray]:
    """Batches of ``data``: slices of an array ``(N, ...)``, or the items of an iterable.

    An item that is a tuple or list (e.g. ``(x, labels)`` from a data loader) contributes
    its first element.
    """
    if isinstance(data, np.ndarray):
        if data.ndim < 2:
            raise ValueError(
                f"fit_patterns: data must have shape (N, ...) with a sample axis, got {data.shape}"
            )
        if len(data) == 0:
            raise ValueError(f"fit_patterns: data of shape {data.shape} holds no samples")
        for start in range(0, len(data), batch_size):
            yield np.asarray(data[start : start + batch_size])  # reads one slice of a memmap
        return
    if not isinstance(data, Iterable):
        raise TypeError(
            f"fit_patterns: data must be an array (N, ...) or an iterable of batches, "
            f"got {type(data).__name__}"
        )
    for item in data:
        if isinstance(item, (tuple, list)):
            item = item[0]
        yield np.asarray(item)


def _n_batches(data: Any, batch_size: int) -> int | None:
    if isinstance(data, np.ndarray):
        return -(-len(data) // batch_size)
    try:
        return len(data)
    except TypeError:
        return None


@one_blas_thread  # one thread pool for the whole pass (refnet.kernels.threads)
def fit_stats(
    net: Sequential,
    data: Any,
    kind: str = "relu",
    batch_size: int = 256,
    progress: bool = False,
    minus: bool = True,
    xx: bool = False,
) -> tuple[dict[int, LayerStats], int]:
    r"""One pass over ``data``: the statistics of every kernel layer, and the sample count.

    This is :func:`fit_patterns` without the last step; use it to collect ``X'^T X'``
    (``xx=True``) or to fit on several processes and :meth:`LayerStats.merge` the results.
    Parameters as in :func:`fit_patterns`.
    """
    check_kind(kind)
    if not isinstance(net, Sequential):
        raise TypeError(f"fit_patterns: net must be a Sequential, got {type(net).__name__}")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(
            f"fit_patterns: batch_size must be a positive integer, got {batch_size!r}"
        )
    kernel = net.kernel_layers()
    stats = {i: LayerStats(net.layers[i], kind, minus=minus, xx=xx) for i in kernel}
    batches = _batches(data, int(batch_size))
    total = _n_batches(data, int(batch_size))
    batches = progress_bar(batches, "fit_patterns", progress, total=total)
    samples = 0
    for j, x in enumerate(batches):
        if len(x) == 0:
            continue
        _accumulate(net, stats, x, j)
        samples += len(x)
    if samples == 0:
        raise ValueError("fit_patterns: data yielded no samples (an empty iterable or array)")
    return stats, samples


def _accumulate(net: Sequential, stats: dict[int, LayerStats], x: np.ndarray, j: int) -> None:
    """Forward batch ``j`` once, feeding each kernel layer's input and output to its stats.

    Fitting needs no backward caches, so the inference forward is leaner than
    ``Sequential.forward``: a ReLU rectifies in place an array this loop allocated (never
    the caller's data), and a ReLU followed by max-pooling runs as pooling then ReLU, which
    is exact because the rectifier is monotone, ``maxpool(relu(z)) = relu(maxpool(z))``, and
    touches a quarter of the data for 2x2 pooling.
    """
    check_input(f"fit_patterns: batch {j}", x, None, check_finite=True)
    layers = net.layers
    h, owned = x, False  # owned: h is an array this loop made, free to overwrite
    i = 0
    while i < len(layers):
        layer = layers[i]
        pool_next = i + 1 < len(layers) and isinstance(layers[i + 1], MaxPool2D)
        if isinstance(layer, ReLU) and pool_next:
            h, owned = _forward(layers[i + 1], i + 1, h, x, j)  # pool first, then rectify
            i += 1
        if isinstance(layer, ReLU):
            h = np.maximum(h, 0, out=h if owned else None)
            owned = True
        else:
            z, owned = _forward(layer, i, h, x, j)
            if i in stats:
                stats[i].update(h, z)
            h = z
        i += 1


def _forward(layer, i: int, h: np.ndarray, x: np.ndarray, j: int) -> tuple[np.ndarray, bool]:
    """Layer ``i``'s output on ``h`` and whether it is a new array (not a view of ``x``)."""
    try:
        z, _ = layer.forward(h, check_finite=False)
    except ValueError as exc:
        raise ValueError(
            f"fit_patterns: batch {j} of shape {x.shape} does not fit the network at "
            f"layer {i} ({type(layer).__name__}): {exc}"
        ) from exc
    return z, not np.may_share_memory(z, x)


def patterns_from_stats(stats: dict[int, LayerStats], samples: int) -> Patterns:
    """:class:`Patterns` and :class:`FitReport` from accumulated per-layer statistics.

    The statistics do not know the network's weights, so these patterns carry no
    fingerprint (shapes are checked only); ``.assume_fitted_on(net)`` adds ``net``'s.
    """
    fitted = {i: s.patterns() for i, s in stats.items()}
    kinds = {s.kind for s in stats.values()}
    if len(kinds) != 1:
        raise ValueError(f"patterns_from_stats: the layers were fitted with kinds {kinds}")
    has_minus = all(p.A_minus is not None for p in fitted.values())
    report = FitReport(
        samples=int(samples),
        rows={i: p.rows for i, p in fitted.items()},
        active={i: p.active for i, p in fitted.items()},
        degenerate={i: int(p.degenerate.sum()) for i, p in fitted.items()},
        degenerate_minus=(
            {i: int(p.degenerate_minus.sum()) for i, p in fitted.items()} if has_minus else None
        ),
    )
    return Patterns(
        kinds.pop(),
        {i: p.A for i, p in fitted.items()},
        {i: p.A_minus for i, p in fitted.items()} if has_minus else None,
        report,
    )


def fit_patterns(
    net: Sequential,
    data: Any,
    kind: str = "relu",
    batch_size: int = 256,
    progress: bool = False,
    minus: bool = True,
) -> Patterns:
    r"""Fit the patterns of every kernel layer of ``net`` on ``data``, in one pass.

    .. math::

        a_+ = \frac{E_+[x y] - E_+[x]\,E[y]}{w^\top E_+[x y] - w^\top E_+[x]\,E[y]}
        \quad \text{(Eq. 8; kind "linear": no mask, Eq. 4)}

    Parameters
    ----------
    net : Sequential
        The network; its kernel layers' inputs ``x`` and pre-activations ``z`` are used.
    data : ndarray (N, ...) or iterable of batches
        Network inputs. Arrays (also ``np.memmap`` / ``np.load(..., mmap_mode="r")``) are
        read ``batch_size`` samples at a time; an iterable yields batches (or tuples whose
        first element is the batch).
    kind : {"relu", "linear", "relu_masked_mean"}
        ``"relu"``: Eq. 8 with the mask ``z > 0`` of each layer's own pre-activation and
        the unmasked ``E[y]`` (the paper's and iNNvestigate's formula). ``"linear"``: all
        rows, ``a = cov[x, y] / var[y]``. ``"relu_masked_mean"``: Eq. 8 with ``E_+[y]``,
        i.e. the covariance within the mask; invariant to the mean of the distractor.
    batch_size : int
        Samples per forward pass (for array ``data``).
    progress : bool
        Show a tqdm progress bar (needs ``tqdm``).
    minus : bool
        For the relu kinds, also fit ``a_-`` (mask ``z <= 0``), exposed as
        ``Patterns.A_minus``; costs about half as much again in the statistics GEMMs.

    Returns
    -------
    Patterns
        ``A`` per kernel layer (float64, the layer's ``W`` shape), ``A_minus``, ``report``,
        and the fingerprint of ``net``'s weights (explaining another network with them
        raises a ``ValueError``; see :meth:`Patterns.assume_fitted_on`).

    Raises
    ------
    ValueError
        Unknown ``kind``; data that do not fit the network; NaN or infinity in the data;
        no samples at all.
    """
    stats, samples = fit_stats(net, data, kind, batch_size, progress, minus)
    return patterns_from_stats(stats, samples).assume_fitted_on(net)
