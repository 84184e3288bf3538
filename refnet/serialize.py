"""Saving and loading networks: one ``.npz`` file, no pickle.

A refnet file is an ordinary NumPy ``.npz`` archive whose arrays are

- ``refnet_kind``: a 0-d string naming what the file holds (``"Sequential"`` for a network),
- ``refnet_format``: a 0-d integer, the format version of that kind,
- ``refnet_meta``: a 0-d string holding JSON (for a network: the layer types and configs),
- the payload arrays (for a network: ``layers.<i>.<name>``, e.g. ``layers.0.W``).

Files are read with ``np.load(..., allow_pickle=False)``, so loading never runs code from
the file. Anything that is not a valid file of the expected kind and version — a text
file, a truncated archive, some other ``.npz``, a missing or misshapen weight — raises a
``ValueError`` that names the file and says what is wrong.

``write_npz`` / ``read_npz`` are the shared header-checking helpers; other file kinds
(e.g. fitted patterns) reuse them with their own ``kind`` and version.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np

from .layers import (
    AvgPool2D,
    ChannelAffine,
    Conv2D,
    Dense,
    Flatten,
    GlobalAvgPool2D,
    Layer,
    MaxPool2D,
    ReLU,
    ZeroPad2D,
)
from .network import Sequential

KIND_KEY = "refnet_kind"
VERSION_KEY = "refnet_format"
META_KEY = "refnet_meta"
HEADER_KEYS = (KIND_KEY, VERSION_KEY, META_KEY)
NPY_MAGIC = b"\x93NUMPY"

#: The kind and format version written by ``save``.
NETWORK_KIND = "Sequential"
NETWORK_VERSION = 1

PathLike = str | os.PathLike


def write_npz(
    path: PathLike,
    kind: str,
    version: int,
    arrays: Mapping[str, np.ndarray],
    meta: Mapping[str, Any] | None = None,
) -> None:
    """Write ``arrays`` and a refnet header to the ``.npz`` file at exactly ``path``.

    Parameters
    ----------
    path : str or PathLike
        Destination; written as given (no ``.npz`` is appended). The file is written to a
        temporary name next to it and then renamed, so a crash never leaves half a file.
    kind : str
        What the file holds (``"Sequential"``, ``"patterns"``, ...); checked by ``read_npz``.
    version : int
        Format version of that kind; checked by ``read_npz``.
    arrays : mapping of str to ndarray
        The payload. Names must not be one of the header keys. Object arrays are refused
        (they would need pickle).
    meta : mapping, optional
        JSON-serialisable metadata (configs, options), stored as a JSON string.
    """
    payload: dict[str, np.ndarray] = {}
    for name, a in arrays.items():
        if name in HEADER_KEYS:
            raise ValueError(f"write_npz: array name {name!r} is reserved for the header")
        a = np.asarray(a)
        if a.dtype.hasobject:
            raise TypeError(f"write_npz: array {name!r} has dtype object, which needs pickle")
        payload[name] = a
    payload[KIND_KEY] = np.array(str(kind))
    payload[VERSION_KEY] = np.array(int(version), dtype=np.int64)
    payload[META_KEY] = np.array(json.dumps(dict(meta or {})))
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **payload)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _scalar(path: str, data: Mapping[str, np.ndarray], key: str, kind: str) -> Any:
    """The 0-d header entry ``key`` of ``kind`` ``"U"`` (string) or ``"i"`` (integer)."""
    if key not in data:
        raise ValueError(f"{path}: not a refnet file (no {key!r} entry)")
    a = data[key]
    if a.shape != () or a.dtype.kind != kind:
        raise ValueError(
            f"{path}: malformed header entry {key!r} (dtype {a.dtype}, shape {a.shape})"
        )
    return a.item()


def read_npz(
    path: PathLike, kind: str, supported_versions: Iterable[int]
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by ``write_npz`` and check its header.

    Parameters
    ----------
    path : str or PathLike
        The file.
    kind : str
        The kind the caller expects.
    supported_versions : iterable of int
        Format versions the caller can read.

    Returns
    -------
    arrays : dict of str to ndarray
        The payload (header entries removed), fully read into memory.
    meta : dict
        The decoded JSON metadata.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a readable ``.npz`` archive, holds object arrays, lacks the
        header, is of another kind, or of an unsupported version; the message names
        ``path``.
    """
    path = os.fspath(path)
    supported = sorted(int(v) for v in supported_versions)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    with open(path, "rb") as f:
        magic = f.read(len(NPY_MAGIC))
    if magic == NPY_MAGIC:
        raise ValueError(f"{path}: a single .npy array, not a refnet .npz file")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path}: not a readable refnet .npz file (not a zip archive; empty, truncated "
            "or some other format)"
        )
    try:
        npz = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:
        raise ValueError(f"{path}: not a readable refnet .npz file ({exc})") from exc
    try:
        data = {name: npz[name] for name in npz.files}
    except (ValueError, OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error) as exc:
        raise ValueError(f"{path}: damaged or foreign .npz archive ({exc})") from exc
    finally:
        npz.close()
    not_arrays = sorted(name for name, a in data.items() if not isinstance(a, np.ndarray))
    if not_arrays:
        raise ValueError(f"{path}: archive members {not_arrays} are not .npy arrays")
    found_kind = _scalar(path, data, KIND_KEY, "U")
    if found_kind != kind:
        raise ValueError(f"{path}: holds a {found_kind!r} file, expected {kind!r}")
    version = _scalar(path, data, VERSION_KEY, "i")
    if version not in supported:
        raise ValueError(
            f"{path}: {kind} format version {version} is not supported "
            f"(this refnet reads versions {supported})"
        )
    try:
        meta = json.loads(_scalar(path, data, META_KEY, "U"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: metadata is not valid JSON ({exc})") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: metadata must be a JSON object, got {type(meta).__name__}")
    arrays = {k: v for k, v in data.items() if k not in HEADER_KEYS}
    return arrays, meta


# --- networks ---------------------------------------------------------------------------


def _weight(path: str, arrays: dict, i: int, layer: str, name: str, shape: tuple) -> np.ndarray:
    key = f"layers.{i}.{name}"
    if key not in arrays:
        raise ValueError(f"{path}: layer {i} ({layer}) has no weight {key!r}")
    a = arrays.pop(key)
    if a.dtype.type not in (np.float32, np.float64):
        raise ValueError(f"{path}: weight {key!r} has dtype {a.dtype}, expected float32/float64")
    if a.shape != shape:
        raise ValueError(
            f"{path}: weight {key!r} of layer {i} ({layer}) has shape {a.shape}, "
            f"expected {shape} from the layer's config"
        )
    return a


def _build_dense(path: str, arrays: dict, i: int, cfg: dict) -> Dense:
    n_in, n_out = int(cfg["n_in"]), int(cfg["n_out"])
    W = _weight(path, arrays, i, "Dense", "W", (n_out, n_in))
    b = _weight(path, arrays, i, "Dense", "b", (n_out,))
    return Dense(W, b)


def _build_conv2d(path: str, arrays: dict, i: int, cfg: dict) -> Conv2D:
    kh, kw = (int(k) for k in cfg["kernel_size"])
    F, C = int(cfg["out_channels"]), int(cfg["in_channels"])
    W = _weight(path, arrays, i, "Conv2D", "W", (F, C, kh, kw))
    b = _weight(path, arrays, i, "Conv2D", "b", (F,))
    padding = tuple(int(p) for p in cfg["padding"])
    return Conv2D(W, b, stride=int(cfg["stride"]), padding=padding)


def _build_maxpool2d(path: str, arrays: dict, i: int, cfg: dict) -> MaxPool2D:
    return MaxPool2D(int(cfg["size"]), int(cfg["stride"]))


def _build_avgpool2d(path: str, arrays: dict, i: int, cfg: dict) -> AvgPool2D:
    size, stride = (tuple(int(v) for v in cfg[k]) for k in ("size", "stride"))
    return AvgPool2D(size, stride)


def _build_channel_affine(path: str, arrays: dict, i: int, cfg: dict) -> ChannelAffine:
    C = int(cfg["channels"])
    scale = _weight(path, arrays, i, "ChannelAffine", "scale", (C,))
    shift = _weight(path, arrays, i, "ChannelAffine", "shift", (C,))
    return ChannelAffine(scale, shift)


def _build_globalavgpool2d(path: str, arrays: dict, i: int, cfg: dict) -> GlobalAvgPool2D:
    keepdims = cfg["keepdims"]
    if not isinstance(keepdims, bool):
        raise ValueError(f"keepdims must be true or false, got {keepdims!r}")
    return GlobalAvgPool2D(keepdims)


def _build_zeropad2d(path: str, arrays: dict, i: int, cfg: dict) -> ZeroPad2D:
    return ZeroPad2D(tuple(int(p) for p in cfg["padding"]))


#: How ``load`` rebuilds each layer type from its config and the file's arrays.
LAYER_BUILDERS: dict[str, Callable[[str, dict, int, dict], Layer]] = {
    "Dense": _build_dense,
    "Conv2D": _build_conv2d,
    "MaxPool2D": _build_maxpool2d,
    "ReLU": lambda path, arrays, i, cfg: ReLU(),
    "Flatten": lambda path, arrays, i, cfg: Flatten(),
    "AvgPool2D": _build_avgpool2d,
    "GlobalAvgPool2D": _build_globalavgpool2d,
    "ZeroPad2D": _build_zeropad2d,
    "ChannelAffine": _build_channel_affine,
}


def save(net: Sequential, path: PathLike) -> None:
    """Save ``net`` (architecture, weights, their dtypes) to one ``.npz`` file at ``path``.

    The architecture is stored as JSON (each layer's type and ``config()``), the weights as
    arrays ``layers.<i>.<name>`` in their own dtype, under the header
    ``refnet_kind = "Sequential"``, ``refnet_format = 1``. No pickle is involved.
    """
    if not isinstance(net, Sequential):
        raise TypeError(f"save: expected a Sequential, got {type(net).__name__}")
    layers, arrays = [], {}
    for i, layer in enumerate(net):
        name = type(layer).__name__
        if name not in LAYER_BUILDERS:
            raise TypeError(f"save: layer {i} has type {name}, which refnet cannot save")
        layers.append({"type": name, "config": layer.config()})
        for pname, value in layer.params().items():
            arrays[f"layers.{i}.{pname}"] = value
    write_npz(path, NETWORK_KIND, NETWORK_VERSION, arrays, {"layers": layers})


def load(path: PathLike) -> Sequential:
    """Load a network written by ``save``; the weights keep the dtype they were saved in.

    Raises
    ------
    ValueError
        If the file is not a refnet network file of a supported version, or its
        architecture and weights disagree (unknown layer, missing, extra or misshapen
        weight); the message names the file.
    """
    path = os.fspath(path)
    arrays, meta = read_npz(path, NETWORK_KIND, [NETWORK_VERSION])
    specs = meta.get("layers")
    if not isinstance(specs, list) or not specs:
        raise ValueError(f"{path}: the architecture lists no layers")
    layers = []
    for i, spec in enumerate(specs):
        if not isinstance(spec, dict) or not isinstance(spec.get("config", {}), dict):
            raise ValueError(f"{path}: layer {i} is malformed in the architecture: {spec!r}")
        kind = spec.get("type")
        if kind not in LAYER_BUILDERS:
            raise ValueError(f"{path}: layer {i} has unknown type {kind!r}")
        try:
            layers.append(LAYER_BUILDERS[kind](path, arrays, i, spec.get("config", {})))
        except ValueError as exc:
            if str(exc).startswith(path):
                raise
            raise ValueError(f"{path}: layer {i} ({kind}) cannot be built: {exc}") from exc
        except KeyError as exc:
            raise ValueError(f"{path}: layer {i} ({kind}) has no config entry {exc}") from exc
        except TypeError as exc:
            raise ValueError(
                f"{path}: layer {i} ({kind}) has a malformed config: {exc!r}"
            ) from exc
    if arrays:
        raise ValueError(f"{path}: unexpected arrays not used by any layer: {sorted(arrays)}")
    return Sequential(layers)
