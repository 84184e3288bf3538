"""Saving and loading networks: one ``.npz`` file, no pickle.

A refnet file is an ordinary NumPy ``.npz`` archive whose arrays are

- ``refnet_kind``: a 0-d string naming what the file holds (``"Sequential"`` for a network),
- ``refnet_format``: a 0-d integer, the format version of that kind,
- ``refnet_meta``: a 0-d string holding JSON (for a network: the layer types and configs),
- the payload arrays (for a network: ``layers.<i>.<name>``, e.g. ``layers.0.W``).

Files may come from anyone. They are read member by member with
``np.lib.format.read_array(..., allow_pickle=False)``, so loading never runs code from the
file, and everything that can be checked without the array data is checked first: the
member names, each ``.npy`` header (dtype, shape, size), a bound on decompression
(``MAX_INFLATION``), the kind, version and JSON metadata and, for a network, every
weight's shape against the architecture. Anything that is not a valid file of the
expected kind and version — a text file, a truncated archive, some other ``.npz``, a
missing or misshapen weight, a zip bomb, a config stride of 2.7 — raises a ``ValueError``
that names the file and says what is wrong; a missing file raises ``FileNotFoundError``.
Files are written atomically (:mod:`refnet.fileio`).

``write_npz`` / ``read_npz`` are the shared header-checking helpers; other file kinds
(e.g. fitted patterns) reuse them with their own ``kind`` and version.
"""

from __future__ import annotations

import json
import math
import os
import zipfile
import zlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any, BinaryIO

import numpy as np

from .fileio import atomic_write
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

#: Longest accepted header strings, in characters: the kind, and the JSON metadata.
MAX_HEADER_CHARS = {KIND_KEY: 256, META_KEY: 1 << 22}
#: The arrays of an archive may declare at most this many times the file's size in bytes
#: (plus ``INFLATION_SLACK``): the bound on what a file can make ``read_npz`` allocate.
#: refnet writes uncompressed members (1x); real weights deflate less than 2x, while a
#: "zip bomb" of zeros deflates about 1000x.
MAX_INFLATION = 64
INFLATION_SLACK = 1 << 16
#: The zip compression methods accepted: none (what ``np.savez`` writes) and deflate.
ZIP_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)

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
        Destination; written as given (no ``.npz`` is appended). The archive is written to
        a fresh ``tempfile.mkstemp`` file next to it, fsync'ed and renamed onto ``path``
        (:func:`refnet.fileio.atomic_write`), so a crash or a full disk never leaves half
        a file or loses the old one, and a symlink planted in the folder cannot redirect
        the write.
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
    payload[META_KEY] = np.array(json.dumps(dict(meta or {}), allow_nan=False))
    with atomic_write(path) as f:
        np.savez(f, **payload)


def _check_header_entry(path: str, name: str, shape: tuple, dtype: np.dtype) -> None:
    """The header entries are 0-d strings (kind, meta) or a 0-d integer (version), bounded."""
    kind, limit = ("i", 8) if name == VERSION_KEY else ("U", MAX_HEADER_CHARS[name])
    if shape != () or dtype.kind != kind or dtype.itemsize > 4 * limit:
        raise ValueError(
            f"{path}: malformed header entry {name!r} (dtype {dtype}, shape {shape}; expected "
            f"a 0-d {'integer' if kind == 'i' else f'string of at most {limit} characters'})"
        )


def _npy_header(f: BinaryIO) -> tuple[tuple[int, ...], np.dtype] | None:
    """``(shape, dtype)`` from the ``.npy`` header at the start of ``f``, or None if none."""
    try:
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            return None
    except ValueError:
        return None
    return tuple(shape), dtype


def _check_sizes(path: str, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse encryption, exotic compression and members that inflate beyond the bound."""
    archive = os.path.getsize(path)
    for info in infos:
        if info.flag_bits & 0x1 or info.compress_type not in ZIP_METHODS:
            raise ValueError(
                f"{path}: archive member {info.filename!r} is encrypted or compressed with an "
                f"unsupported method ({info.compress_type})"
            )
        if info.compress_size > archive:
            raise ValueError(f"{path}: archive member {info.filename!r} is truncated")
    declared = sum(info.file_size for info in infos)
    allowed = MAX_INFLATION * archive + INFLATION_SLACK
    if declared > allowed:
        raise ValueError(
            f"{path}: the archive declares {declared} bytes of arrays in a file of {archive} "
            f"bytes; refnet accepts at most {MAX_INFLATION}x decompression"
        )


def _member_headers(path: str, zf: zipfile.ZipFile) -> dict[str, tuple[tuple, np.dtype]]:
    """Every member's declared ``(shape, dtype)``, from the zip directory and ``.npy`` headers.

    Refuses, before any array data is read: members that are not ``<key>.npy`` arrays or
    repeat a name, encrypted or exotically compressed members, more decompression than
    ``MAX_INFLATION``, dtypes other than bool, integer and float (string for the header
    entries), header entries that are not small 0-d arrays, and a declared shape that
    disagrees with the member's size in the zip directory.
    """
    infos = zf.infolist()
    _check_sizes(path, infos)
    headers: dict[str, tuple[tuple, np.dtype]] = {}
    offsets: dict[str, int] = {}
    not_arrays = []
    for info in infos:
        key = info.filename.removesuffix(".npy")
        if key in headers:
            raise ValueError(f"{path}: the archive holds array {key!r} twice")
        header = None
        if info.filename.endswith(".npy") and key:
            with zf.open(info) as f:
                header = _npy_header(f)
                offsets[key] = f.tell()
        if header is None:
            not_arrays.append(key)
            continue
        headers[key] = header
    if not_arrays:
        raise ValueError(f"{path}: archive members {sorted(not_arrays)} are not .npy arrays")
    for info in infos:
        key = info.filename.removesuffix(".npy")
        shape, dtype = headers[key]
        if dtype.hasobject or dtype.kind not in ("iU" if key in HEADER_KEYS else "biuf"):
            raise ValueError(
                f"{path}: array {key!r} has dtype {dtype}, which refnet never writes (object "
                "arrays would need pickle)"
            )
        if key in HEADER_KEYS:
            _check_header_entry(path, key, shape, dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        if offsets[key] + nbytes != info.file_size:
            raise ValueError(
                f"{path}: array {key!r} declares shape {shape} and dtype {dtype} "
                f"({nbytes} bytes), but its archive member holds {info.file_size - offsets[key]}"
            )
    return headers


def _read_member(zf: zipfile.ZipFile, key: str) -> np.ndarray:
    """One array, in native byte order (the compiled kernels need it)."""
    with zf.open(key + ".npy") as f:
        a = np.lib.format.read_array(f, allow_pickle=False)
    return a.astype(a.dtype.newbyteorder("="), copy=False)


def _decode_meta(path: str, text: str) -> dict[str, Any]:
    """The JSON metadata: an object, with no ``NaN`` or ``Infinity`` and bounded nesting."""

    def refuse(constant: str) -> None:
        raise ValueError(f"{path}: metadata holds the non-finite number {constant}")

    try:
        meta = json.loads(text, parse_constant=refuse)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: metadata is not valid JSON ({exc})") from exc
    except RecursionError as exc:
        raise ValueError(f"{path}: metadata is nested too deeply") from exc
    if not isinstance(meta, dict):
        raise ValueError(f"{path}: metadata must be a JSON object, got {type(meta).__name__}")
    return meta


#: ``check_declared(meta, declared)``: see :func:`read_npz`.
DeclaredCheck = Callable[[dict[str, Any], dict[str, tuple[tuple[int, ...], np.dtype]]], None]


def _read_checked(
    path: str,
    zf: zipfile.ZipFile,
    kind: str,
    supported: list[int],
    check_declared: DeclaredCheck | None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """``read_npz`` on an open archive: headers first, then the header entries, then data."""
    headers = _member_headers(path, zf)
    for key in HEADER_KEYS:
        if key not in headers:
            raise ValueError(f"{path}: not a refnet file (no {key!r} entry)")
    found_kind = _read_member(zf, KIND_KEY).item()
    if found_kind != kind:
        raise ValueError(f"{path}: holds a {found_kind!r} file, expected {kind!r}")
    version = int(_read_member(zf, VERSION_KEY))
    if version not in supported:
        raise ValueError(
            f"{path}: {kind} format version {version} is not supported "
            f"(this refnet reads versions {supported})"
        )
    meta = _decode_meta(path, _read_member(zf, META_KEY).item())
    declared = {k: v for k, v in headers.items() if k not in HEADER_KEYS}
    if check_declared is not None:
        check_declared(meta, declared)
    return {key: _read_member(zf, key) for key in declared}, meta


def read_npz(
    path: PathLike,
    kind: str,
    supported_versions: Iterable[int],
    check_declared: DeclaredCheck | None = None,
) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Read a file written by ``write_npz``, checking everything before reading the data.

    The checks run in this order, so a hostile file costs little memory or time: the zip
    directory and every member's ``.npy`` header (names, dtypes, declared sizes, at most
    ``MAX_INFLATION``-fold decompression), then the small header entries (kind, version,
    JSON metadata), then ``check_declared(meta, declared)``, and only then the payload's
    data. Pickled data is never loaded.

    Parameters
    ----------
    path : str or PathLike
        The file.
    kind : str
        The kind the caller expects.
    supported_versions : iterable of int
        Format versions the caller can read.
    check_declared : callable, optional
        ``check_declared(meta, declared)`` gets the decoded metadata and, per payload array
        name, its declared ``(shape, dtype)``; it raises a ``ValueError`` naming ``path``
        for anything the kind's format does not allow (missing, extra or misshapen
        arrays), so such a file is refused before its data is read.

    Returns
    -------
    arrays : dict of str to ndarray
        The payload (header entries removed), in native byte order.
    meta : dict
        The decoded JSON metadata.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        For anything else that is wrong with the file: a folder, not a readable ``.npz``
        archive, a member that is not a plain array, no or another header, an
        unsupported version, bad metadata, a shape the format does not allow, or data
        too large for memory; the message names ``path``.
    """
    path = os.fspath(path)
    supported = sorted(int(v) for v in supported_versions)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path}: no such file")
    if os.path.isdir(path):
        raise ValueError(f"{path}: is a folder, not a refnet .npz file")
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
        with zipfile.ZipFile(path) as zf:
            return _read_checked(path, zf, kind, supported, check_declared)
    except ValueError as exc:
        if str(exc).startswith(path):
            raise
        raise ValueError(f"{path}: damaged or foreign .npz archive ({exc})") from exc
    except MemoryError as exc:
        raise ValueError(f"{path}: its arrays do not fit in memory") from exc
    except (OSError, EOFError, KeyError, zipfile.BadZipFile, zlib.error, OverflowError,
            NotImplementedError, RuntimeError) as exc:  # fmt: skip
        raise ValueError(f"{path}: damaged or foreign .npz archive ({exc!r})") from exc


# --- networks ---------------------------------------------------------------------------


#: Per layer type, the config entries ``load`` requires: name -> (minimum, length), where
#: length 1 is one integer and 2 or 4 a list of that many; ``BOOL`` marks a true/false
#: entry. Each integer must be a JSON integer: 2.7, "2", true or 1e400 are refused.
BOOL = (0, 0)
CONFIG_FIELDS: dict[str, dict[str, tuple[int, int]]] = {
    "Dense": {"n_in": (1, 1), "n_out": (1, 1)},
    "Conv2D": {
        "in_channels": (1, 1),
        "out_channels": (1, 1),
        "kernel_size": (1, 2),
        "stride": (1, 1),
        "padding": (0, 2),
    },
    "MaxPool2D": {"size": (1, 1), "stride": (1, 1)},
    "ReLU": {},
    "Flatten": {},
    "AvgPool2D": {"size": (1, 2), "stride": (1, 2)},
    "GlobalAvgPool2D": {"keepdims": BOOL},
    "ZeroPad2D": {"padding": (0, 4)},
    "ChannelAffine": {"channels": (1, 1)},
}


def _is_int(v: Any, minimum: int) -> bool:
    return type(v) is int and v >= minimum  # bool and float are not int here


def _layer_config(path: str, i: int, spec: Any) -> tuple[str, dict[str, Any]]:
    """Layer ``i``'s type and its config, every entry checked to be a whole number."""
    if not isinstance(spec, dict) or not isinstance(spec.get("config", {}), dict):
        raise ValueError(f"{path}: layer {i} is malformed in the architecture: {spec!r}")
    kind = spec.get("type")
    if not isinstance(kind, str) or kind not in CONFIG_FIELDS:
        raise ValueError(f"{path}: layer {i} has unknown type {kind!r}")
    cfg = spec.get("config", {})
    config: dict[str, Any] = {}
    for name, (minimum, length) in CONFIG_FIELDS[kind].items():
        if name not in cfg:
            raise ValueError(f"{path}: layer {i} ({kind}) has no config entry {name!r}")
        v = cfg[name]
        if (minimum, length) == BOOL:
            ok, what = isinstance(v, bool), "true or false"
        elif length == 1:
            ok, what = _is_int(v, minimum), f"an integer >= {minimum}"
        else:
            ok = isinstance(v, list) and len(v) == length and all(_is_int(p, minimum) for p in v)
            what = f"a list of {length} integers >= {minimum}"
        if not ok:
            raise ValueError(
                f"{path}: layer {i} ({kind}) cannot be built: config entry {name!r} must be "
                f"{what}, got {v!r}"
            )
        config[name] = tuple(v) if isinstance(v, list) else v
    return kind, config


def _weight_shapes(kind: str, config: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The shape of each weight a layer of ``kind`` with ``config`` has."""
    if kind == "Dense":
        return {"W": (config["n_out"], config["n_in"]), "b": (config["n_out"],)}
    if kind == "Conv2D":
        F, C, (kh, kw) = config["out_channels"], config["in_channels"], config["kernel_size"]
        return {"W": (F, C, kh, kw), "b": (F,)}
    if kind == "ChannelAffine":
        return {"scale": (config["channels"],), "shift": (config["channels"],)}
    return {}


def _architecture(path: str, meta: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """Every layer's type and checked config, from the file's metadata."""
    specs = meta.get("layers")
    if not isinstance(specs, list) or not specs:
        raise ValueError(f"{path}: the architecture lists no layers")
    return [_layer_config(path, i, spec) for i, spec in enumerate(specs)]


def _check_weights(path: str, meta: dict, declared: dict[str, tuple[tuple, np.dtype]]) -> None:
    """Before any weight is read: each array the architecture needs, of its shape and dtype."""
    expected = set()
    for i, (kind, config) in enumerate(_architecture(path, meta)):
        for name, shape in _weight_shapes(kind, config).items():
            key = f"layers.{i}.{name}"
            expected.add(key)
            if key not in declared:
                raise ValueError(f"{path}: layer {i} ({kind}) has no weight {key!r}")
            found, dtype = declared[key]
            if dtype.type not in (np.float32, np.float64):
                raise ValueError(
                    f"{path}: weight {key!r} has dtype {dtype}, expected float32/float64"
                )
            if found != shape:
                raise ValueError(
                    f"{path}: weight {key!r} of layer {i} ({kind}) has shape {found}, "
                    f"expected {shape} from the layer's config"
                )
    if set(declared) - expected:
        raise ValueError(
            f"{path}: unexpected arrays not used by any layer: {sorted(set(declared) - expected)}"
        )


def _build(kind: str, config: dict[str, Any], weights: dict[str, np.ndarray]) -> Layer:
    """Layer ``kind`` from its checked config and weights."""
    if kind == "Dense":
        return Dense(weights["W"], weights["b"])
    if kind == "Conv2D":
        return Conv2D(
            weights["W"], weights["b"], stride=config["stride"], padding=config["padding"]
        )
    if kind == "ChannelAffine":
        return ChannelAffine(weights["scale"], weights["shift"])
    builders = {
        "MaxPool2D": lambda: MaxPool2D(config["size"], config["stride"]),
        "AvgPool2D": lambda: AvgPool2D(config["size"], config["stride"]),
        "GlobalAvgPool2D": lambda: GlobalAvgPool2D(config["keepdims"]),
        "ZeroPad2D": lambda: ZeroPad2D(config["padding"]),
        "ReLU": ReLU,
        "Flatten": Flatten,
    }
    return builders[kind]()


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
        if name not in CONFIG_FIELDS:
            raise TypeError(f"save: layer {i} has type {name}, which refnet cannot save")
        layers.append({"type": name, "config": layer.config()})
        for pname, value in layer.params().items():
            arrays[f"layers.{i}.{pname}"] = value
    write_npz(path, NETWORK_KIND, NETWORK_VERSION, arrays, {"layers": layers})


def load(path: PathLike) -> Sequential:
    """Load a network written by ``save``; the weights keep the dtype they were saved in.

    The file may come from anyone: it is checked against the format before its weights
    are read (:func:`read_npz` with the architecture's weight shapes), no code in it runs
    (no pickle), and nothing but the errors below comes out.

    Raises
    ------
    FileNotFoundError
        If there is no file at ``path``.
    ValueError
        If the file is not a refnet network file of a supported version, or its
        architecture and weights disagree (unknown layer, a config entry that is not a
        whole number, missing, extra or misshapen weight, NaN), or it is too large for
        memory; the message names the file.
    """
    path = os.fspath(path)

    def check(meta: dict, declared: dict) -> None:
        _check_weights(path, meta, declared)

    arrays, meta = read_npz(path, NETWORK_KIND, [NETWORK_VERSION], check)
    layers = []
    for i, (kind, config) in enumerate(_architecture(path, meta)):
        weights = {name: arrays[f"layers.{i}.{name}"] for name in _weight_shapes(kind, config)}
        try:
            layers.append(_build(kind, config, weights))
        except (ValueError, TypeError, MemoryError) as exc:
            raise ValueError(f"{path}: layer {i} ({kind}) cannot be built: {exc}") from exc
    return Sequential(layers)
