"""Saving and loading networks: exact round trips, no pickle, and clear errors for bad files.

A saved network must give bitwise identical logits after loading, in float32 and float64,
and keep its layer geometry (strides, paddings, pool sizes). Every way a file can be wrong
— not an archive, truncated, someone else's ``.npz``, another kind or version, weights
missing, extra or misshapen — must raise a ``ValueError`` naming the file.
"""

import io
import json
import os
import pickle
import tempfile
import tracemalloc
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import refnet
from refnet import Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential
from refnet.serialize import NETWORK_KIND, NETWORK_VERSION, load, read_npz, save, write_npz


def small_net(dtype) -> Sequential:
    """A network that uses every layer type and non-default geometry."""
    return Sequential(
        [
            Conv2D.create(2, 4, (3, 2), stride=2, padding=(1, 0), seed=0, dtype=dtype),
            ReLU(),
            MaxPool2D(2, stride=1),
            Conv2D.create(4, 3, 2, padding=1, seed=1, dtype=dtype),
            ReLU(),
            Flatten(),
            Dense.create(3 * 5 * 3, 6, seed=2, dtype=dtype),
            ReLU(),
            Dense.create(6, 3, seed=3, dtype=dtype),
        ]
    )


def with_random_biases(net: Sequential) -> Sequential:
    rng = np.random.default_rng(9)
    for layer in net:
        if "b" in layer.params():
            layer.b = rng.normal(size=layer.b.shape).astype(layer.W.dtype)
    return net


@pytest.fixture
def saved(tmp_path):
    """A float64 network saved to ``net.npz``; returns the path."""
    path = tmp_path / "net.npz"
    save(with_random_biases(small_net(np.float64)), path)
    return path


def arrays_of(path) -> dict:
    with np.load(path, allow_pickle=False) as npz:
        return {k: npz[k] for k in npz.files}


def rewrite(path, arrays: dict) -> None:
    with open(path, "wb") as f:
        np.savez(f, **arrays)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_roundtrip_gives_identical_logits(tmp_path, dtype):
    net = with_random_biases(small_net(dtype))
    path = tmp_path / f"net_{np.dtype(dtype).name}.npz"
    save(net, path)
    loaded = load(path)
    x = np.random.default_rng(0).normal(size=(5, 2, 9, 7)).astype(dtype)
    assert net.output_shape(x.shape) == (5, 3)
    np.testing.assert_array_equal(loaded(x), net(x))
    assert loaded(x).dtype == dtype
    assert [type(layer) for layer in loaded] == [type(layer) for layer in net]
    for a, b in zip(loaded, net, strict=True):
        assert a.config() == b.config()
        for name, value in b.params().items():
            assert a.params()[name].dtype == value.dtype
            np.testing.assert_array_equal(a.params()[name], value)


def test_roundtrip_of_the_digits_cnn(tmp_path):
    net = refnet.train.digits.digits_cnn(seed=3, dtype=np.float32)
    refnet.save(net, tmp_path / "digits.npz")
    x = np.random.default_rng(1).random((4, 1, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(refnet.load(tmp_path / "digits.npz")(x), net(x))


def test_file_layout_has_header_and_no_pickle(saved, monkeypatch):
    data = arrays_of(saved)  # readable with allow_pickle=False
    assert str(data["refnet_kind"]) == "Sequential" and int(data["refnet_format"]) == 1
    meta = json.loads(str(data["refnet_meta"]))
    assert [spec["type"] for spec in meta["layers"]][:3] == ["Conv2D", "ReLU", "MaxPool2D"]
    assert {"layers.0.W", "layers.0.b", "layers.8.W", "layers.8.b"} <= set(data)
    assert not any(a.dtype.hasobject for a in data.values())

    def no_pickle(*args, **kwargs):
        raise AssertionError("pickle must not be used")

    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "loads", no_pickle)
    load(saved)


def test_save_writes_exactly_the_given_path(tmp_path):
    path = tmp_path / "model.weights"
    save(small_net(np.float64), str(path))
    assert path.exists() and not (tmp_path / "model.weights.npz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.weights"]  # no temp file left
    assert isinstance(load(path), Sequential)


def test_save_rejects_what_it_cannot_save(tmp_path):
    with pytest.raises(TypeError, match="Sequential"):
        save([Dense.create(2, 2)], tmp_path / "x.npz")

    class Odd(ReLU):
        pass

    with pytest.raises(TypeError, match="layer 1 has type Odd"):
        save(Sequential([Dense.create(2, 2), Odd()]), tmp_path / "x.npz")


# --- bad files: each one raises a ValueError naming the file ----------------------------


def corrupt_text(path, data):
    path.write_text("this is not a network\n")


def corrupt_empty(path, data):
    path.write_bytes(b"")


def corrupt_truncated(path, data):
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])


def corrupt_foreign_npz(path, data):
    rewrite(path, {"x": np.arange(3.0), "y": np.ones((2, 2))})


def corrupt_plain_zip(path, data):
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("refnet_kind.npy", "Sequential")
        zf.writestr("readme.txt", "hello")


def corrupt_npy(path, data):
    with open(path, "wb") as f:
        np.save(f, np.arange(3.0))


def corrupt_object_array(path, data):
    rewrite(path, {**data, "extra": np.array([{"a": 1}], dtype=object)})


def corrupt_wrong_version(path, data):
    rewrite(path, {**data, "refnet_format": np.array(99)})


def corrupt_wrong_kind(path, data):
    rewrite(path, {**data, "refnet_kind": np.array("patterns")})


def corrupt_header_type(path, data):
    rewrite(path, {**data, "refnet_format": np.array("one")})


def corrupt_meta_json(path, data):
    rewrite(path, {**data, "refnet_meta": np.array("{not json")})


def corrupt_meta_no_layers(path, data):
    rewrite(path, {**data, "refnet_meta": np.array(json.dumps({"layers": []}))})


def corrupt_unknown_layer(path, data):
    meta = json.loads(str(data["refnet_meta"]))
    meta["layers"][1]["type"] = "Softmax"
    rewrite(path, {**data, "refnet_meta": np.array(json.dumps(meta))})


def corrupt_bad_config(path, data):
    meta = json.loads(str(data["refnet_meta"]))
    del meta["layers"][0]["config"]["stride"]
    rewrite(path, {**data, "refnet_meta": np.array(json.dumps(meta))})


def corrupt_bad_stride(path, data):
    meta = json.loads(str(data["refnet_meta"]))
    meta["layers"][2]["config"]["size"] = 0
    rewrite(path, {**data, "refnet_meta": np.array(json.dumps(meta))})


def corrupt_missing_weight(path, data):
    del data["layers.3.b"]
    rewrite(path, data)


def corrupt_wrong_shape(path, data):
    rewrite(path, {**data, "layers.6.W": np.zeros((6, 44))})


def corrupt_int_weight(path, data):
    rewrite(path, {**data, "layers.8.b": np.zeros(3, dtype=np.int64)})


def corrupt_nan_weight(path, data):
    W = data["layers.0.W"].copy()
    W[0, 0, 0, 0] = np.nan
    rewrite(path, {**data, "layers.0.W": W})


def corrupt_extra_array(path, data):
    rewrite(path, {**data, "layers.1.W": np.zeros(2)})


def corrupt_damaged_member(path, data):
    # Flip bytes inside a stored weight: the zip's CRC check must catch it.
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo("layers.6.W.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra) + 200
    raw[start : start + 16] = bytes(16)
    path.write_bytes(bytes(raw))


BAD_FILES = [
    (corrupt_text, "not a readable refnet .npz file \\(not a zip archive"),
    (corrupt_empty, "not a readable"),
    (corrupt_truncated, "not a readable|damaged"),
    (corrupt_foreign_npz, "not a refnet file .*'refnet_kind'"),
    (corrupt_npy, "single .npy array"),
    (corrupt_plain_zip, r"members \['readme.txt', 'refnet_kind'\] are not .npy arrays"),
    (corrupt_object_array, "array .extra. has dtype object.*pickle"),
    (corrupt_wrong_version, "version 99 is not supported"),
    (corrupt_wrong_kind, "holds a 'patterns' file, expected 'Sequential'"),
    (corrupt_header_type, "malformed header entry 'refnet_format'"),
    (corrupt_meta_json, "not valid JSON"),
    (corrupt_meta_no_layers, "no layers"),
    (corrupt_unknown_layer, "layer 1 has unknown type 'Softmax'"),
    (corrupt_bad_config, "layer 0 \\(Conv2D\\) has no config entry 'stride'"),
    (corrupt_bad_stride, "layer 2 \\(MaxPool2D\\) cannot be built"),
    (corrupt_missing_weight, "layer 3 \\(Conv2D\\) has no weight 'layers.3.b'"),
    (corrupt_wrong_shape, r"'layers.6.W'.*shape \(6, 44\), expected \(6, 45\)"),
    (corrupt_int_weight, "'layers.8.b' has dtype int64"),
    (corrupt_nan_weight, "layer 0 \\(Conv2D\\) cannot be built.*NaN"),
    (corrupt_extra_array, r"unexpected arrays.*\['layers.1.W'\]"),
    (corrupt_damaged_member, "damaged or foreign"),
]


@pytest.mark.parametrize(("corrupt", "message"), BAD_FILES, ids=[c.__name__ for c, _ in BAD_FILES])
def test_bad_file_raises_value_error_naming_it(saved, corrupt, message):
    corrupt(saved, arrays_of(saved))
    with pytest.raises(ValueError, match=message) as info:
        load(saved)
    assert str(info.value).startswith(str(saved))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.npz"):
        load(tmp_path / "nowhere.npz")


# --- the shared helpers -----------------------------------------------------------------


def test_write_and_read_npz_roundtrip(tmp_path):
    path = tmp_path / "p.npz"
    arrays = {"A": np.arange(6, dtype=np.float32).reshape(2, 3), "n": np.array(7)}
    write_npz(path, "patterns", 2, arrays, {"method": "a_plus", "layers": [0, 3]})
    got, meta = read_npz(path, "patterns", [1, 2])
    assert meta == {"method": "a_plus", "layers": [0, 3]}
    assert set(got) == {"A", "n"} and got["A"].dtype == np.float32
    np.testing.assert_array_equal(got["A"], arrays["A"])
    with pytest.raises(ValueError, match="version 2 is not supported .*\\[1\\]"):
        read_npz(path, "patterns", [1])
    with pytest.raises(ValueError, match="holds a 'patterns' file, expected 'Sequential'"):
        load(path)


def test_write_npz_refuses_reserved_names_and_objects(tmp_path):
    with pytest.raises(ValueError, match="reserved"):
        write_npz(tmp_path / "a.npz", "x", 1, {"refnet_kind": np.zeros(1)})
    with pytest.raises(TypeError, match="object"):
        write_npz(tmp_path / "a.npz", "x", 1, {"a": np.array([None, 1], dtype=object)})
    assert not any(tmp_path.iterdir())


def test_network_format_constants():
    assert (NETWORK_KIND, NETWORK_VERSION) == ("Sequential", 1)


# --- writing: atomic, durable, not redirectable (issue 15, item 3) ------------------------


def test_a_planted_symlink_cannot_redirect_a_save(tmp_path):
    """Another user plants a symlink at the temporary name the old code used: no effect."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    path = tmp_path / "net.npz"
    for name in (f"net.npz.tmp{os.getpid()}", "net.npz.tmp", "net.npz.partial"):
        (tmp_path / name).symlink_to(victim)
    save(small_net(np.float64), path)
    assert victim.read_text() == "precious"
    assert not path.is_symlink() and isinstance(load(path), Sequential)


def test_save_replaces_a_symlink_at_the_target_instead_of_writing_through_it(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    (tmp_path / "net.npz").symlink_to(victim)
    save(small_net(np.float64), tmp_path / "net.npz")
    assert victim.read_text() == "precious" and not (tmp_path / "net.npz").is_symlink()


def test_save_is_fsynced_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (events.append("fsync"), real_fsync(fd))[1])
    monkeypatch.setattr(
        os, "replace", lambda a, b: (events.append("replace"), real_replace(a, b))[1]
    )
    save(small_net(np.float64), tmp_path / "net.npz")
    assert events[:2] == ["fsync", "replace"]


def test_a_failed_save_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "net.npz"
    save(small_net(np.float64), path)
    before = path.read_bytes()

    def full_disk(f, **arrays):
        f.write(b"half an archive")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", full_disk)
    with pytest.raises(OSError, match="No space"):
        save(small_net(np.float32), path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.npz"]


def test_saved_file_has_the_permissions_of_an_ordinary_file(tmp_path):
    old = os.umask(0o022)
    try:
        save(small_net(np.float64), tmp_path / "new.npz")
    finally:
        os.umask(old)
    assert (tmp_path / "new.npz").stat().st_mode & 0o777 == 0o644
    (tmp_path / "new.npz").chmod(0o640)
    save(small_net(np.float64), tmp_path / "new.npz")  # overwriting keeps the old mode
    assert (tmp_path / "new.npz").stat().st_mode & 0o777 == 0o640


# --- reading untrusted files (issue 15, item 6) -------------------------------------------


def _zip_with_extra_member(path, name: str, nbytes: int, shape: tuple) -> None:
    """Append a deflated member of ``nbytes`` zero bytes, declared as float64 ``shape``."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f8", "fortran_order": False, "shape": shape}
    )
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open(name, "w", force_zip64=True) as f:
            f.write(header.getvalue())
            chunk = bytes(1 << 20)
            for _ in range(nbytes >> 20):
                f.write(chunk)


def _peak_allocation(fn) -> int:
    tracemalloc.start()
    try:
        fn()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


def test_a_zip_bomb_is_refused_before_it_is_inflated(saved):
    """256 MiB of deflated zeros in a file of a few hundred KiB: refused, little allocated."""
    _zip_with_extra_member(saved, "junk.npy", 256 << 20, (32 << 20,))
    assert saved.stat().st_size < 2 << 20

    def attempt():
        with pytest.raises(ValueError, match="decompression") as info:
            load(saved)
        assert str(info.value).startswith(str(saved))

    assert _peak_allocation(attempt) < 16 << 20


def test_a_zip_bomb_of_the_right_shape_is_refused_too(tmp_path):
    """A weight the architecture allows (128 MiB of zeros) but the file cannot hold."""
    path = tmp_path / "big.npz"
    save(Sequential([Dense.create(2, 2)]), path)
    data = arrays_of(path)
    meta = json.loads(str(data["refnet_meta"]))
    meta["layers"][0]["config"] = {"n_in": 4096, "n_out": 4096}
    with zipfile.ZipFile(path, "w") as zf:
        for key in ("refnet_kind", "refnet_format"):
            with zf.open(f"{key}.npy", "w") as f:
                np.lib.format.write_array(f, data[key])
        with zf.open("refnet_meta.npy", "w") as f:
            np.lib.format.write_array(f, np.array(json.dumps(meta)))
        with zf.open("layers.0.b.npy", "w") as f:
            np.lib.format.write_array(f, np.zeros(4096))
    _zip_with_extra_member(path, "layers.0.W.npy", 128 << 20, (4096, 4096))
    assert _peak_allocation(lambda: pytest.raises(ValueError, load, path)) < 16 << 20


def test_a_declared_shape_larger_than_the_member_is_refused(saved):
    _zip_with_extra_member(saved, "layers.0.W2.npy", 0, (10**6, 10**6))
    with pytest.raises(ValueError, match=r"declares shape \(1000000, 1000000\)"):
        load(saved)


def _with_meta(path, text: str) -> None:
    rewrite(path, {**arrays_of(path), "refnet_meta": np.array(text)})


def test_non_finite_numbers_in_the_metadata_are_refused(saved):
    text = str(arrays_of(saved)["refnet_meta"]).replace('"stride": 2', '"stride": Infinity', 1)
    assert "Infinity" in text
    _with_meta(saved, text)
    with pytest.raises(ValueError, match="non-finite number Infinity"):
        load(saved)


def test_deeply_nested_metadata_is_refused(saved):
    _with_meta(saved, '{"layers": ' + "[" * 100_000 + "]" * 100_000 + "}")
    with pytest.raises(ValueError, match="nested too deeply"):
        load(saved)


def test_a_folder_is_refused_with_a_value_error(tmp_path):
    (tmp_path / "net.npz").mkdir()
    with pytest.raises(ValueError, match="is a folder"):
        load(tmp_path / "net.npz")


def test_memory_error_while_reading_becomes_a_value_error(saved, monkeypatch):
    def no_memory(*args, **kwargs):
        raise MemoryError

    monkeypatch.setattr(np.lib.format, "read_array", no_memory)
    with pytest.raises(ValueError, match="do not fit in memory"):
        load(saved)


@pytest.mark.parametrize("value", [2.7, 2.0, "2", True, [2], None])
def test_a_config_entry_must_be_a_whole_number(saved, value):
    meta = json.loads(str(arrays_of(saved)["refnet_meta"]))
    meta["layers"][0]["config"]["stride"] = value
    _with_meta(saved, json.dumps(meta))
    with pytest.raises(ValueError, match=r"layer 0 \(Conv2D\).*'stride' must be an integer"):
        load(saved)


def test_big_endian_weights_are_loaded_in_native_byte_order(saved):
    data = arrays_of(saved)
    rewrite(saved, {k: v.astype(v.dtype.newbyteorder(">")) if v.dtype.kind == "f" else v
                    for k, v in data.items()})  # fmt: skip
    net = load(saved)
    assert all(p.dtype.isnative for layer in net for p in layer.params().values())
    x = np.random.default_rng(0).normal(size=(2, 2, 9, 7))
    np.testing.assert_array_equal(net(x), load_reference(data)(x))


def load_reference(data) -> Sequential:
    path = os.path.join(tempfile.mkdtemp(), "ref.npz")
    rewrite(path, data)
    return load(path)


@settings(max_examples=60, deadline=None)
@given(cuts=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1,
                     max_size=8), truncate=st.integers(0, 10**6) | st.none())  # fmt: skip
def test_load_of_a_mangled_file_raises_only_value_error(tmp_path_factory, cuts, truncate):
    """Overwrite bytes of a valid file at random and maybe cut it: load returns or refuses."""
    path = tmp_path_factory.mktemp("fuzz") / "net.npz"
    save(small_net(np.float32), path)
    raw = bytearray(path.read_bytes())
    for at, value in cuts:
        raw[at % len(raw)] = value
    if truncate is not None:
        raw = raw[: truncate % len(raw)]
    path.write_bytes(bytes(raw))
    try:
        assert isinstance(load(path), Sequential)
    except ValueError as exc:
        assert str(exc).startswith(str(path))


def test_a_recompressed_file_still_loads(saved):
    data = arrays_of(saved)
    with open(saved, "wb") as f:
        np.savez_compressed(f, **data)
    x = np.random.default_rng(0).normal(size=(2, 2, 9, 7))
    np.testing.assert_array_equal(load(saved)(x), load_reference(data)(x))


def test_an_array_stored_twice_is_refused(saved):
    with pytest.warns(UserWarning, match="Duplicate name"), zipfile.ZipFile(saved, "a") as zf:
        with zf.open("layers.0.b.npy", "w") as f:
            np.lib.format.write_array(f, np.zeros(4))
    with pytest.raises(ValueError, match="twice"):
        load(saved)
