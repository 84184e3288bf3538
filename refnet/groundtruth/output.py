"""Writing the benchmark's files safely: atomically, and never over a user's own file.

Every file is written to a temporary file in the target folder, flushed to disk and then
renamed over the target (``os.replace``), so a reader never sees half a file and an
interrupted run leaves the previous file intact. ``results.json`` carries a marker
(:data:`GENERATOR`) and the list of files the run wrote; a later run overwrites a file only
if it does not exist yet or is listed in such a ``results.json``.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import BinaryIO

#: The value of ``results.json["generator"]`` that marks a folder written by this command.
GENERATOR = "refnet groundtruth"
RESULTS = "results.json"


def write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> None:
    """Write ``path`` by calling ``write(f)`` on a temporary file that then replaces it."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp)
        raise


def write_text_atomic(path: Path, text: str) -> None:
    """Write the UTF-8 ``text`` to ``path`` atomically."""
    write_atomic(path, lambda f: f.write(text.encode("utf-8")))


def previous_outputs(out: Path) -> set[str]:
    """The file names a previous run recorded in ``out/results.json`` (empty if none)."""
    try:
        previous = json.loads((out / RESULTS).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return set()
    if not isinstance(previous, dict) or previous.get("generator") != GENERATOR:
        return set()
    files = previous.get("files", [])
    return {RESULTS} | {f for f in files if isinstance(f, str)}


def check_output_folder(out: Path, names: Iterable[str]) -> None:
    """Raise a ``ValueError`` unless every file ``names`` in ``out`` may be (over)written.

    ``out`` may be missing (it is created) or a folder; each file in it must be missing or
    an output of a previous run (listed in its ``results.json``).
    """
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out '{out}' exists and is not a folder")
    if not out.exists():
        return
    ours = previous_outputs(out)
    for name in names:
        if (out / name).exists() and name not in ours:
            raise ValueError(
                f"refusing to overwrite '{out / name}', which is not an output of "
                f"{GENERATOR}; choose another --out folder"
            )
