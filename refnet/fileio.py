"""Writing a user's file without ever losing or half-writing it.

``atomic_write(path)`` opens a fresh temporary file in the folder of ``path`` (made by
``tempfile.mkstemp``: a random name, created exclusively, so a symlink planted at a
predictable name cannot redirect the write), hands it to the caller, then flushes it,
``fsync``s it and renames it onto ``path`` with ``os.replace``. Until that rename the old
file at ``path`` is untouched, so a full disk, a crash or an exception inside the ``with``
block leaves the old file as it was and no temporary behind. The rename replaces a
symlink at ``path`` itself (it never writes through it to the link's target).

Every file refnet writes for a user (``refnet.save``, ``Patterns.save``, the heatmaps of
``refnet explain``, the demo's figures and reports) goes through here.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from typing import BinaryIO

PathLike = str | os.PathLike


def _new_file_mode(path: str) -> int:
    """Permission bits for the written file: the old file's, else ``0o666`` minus the umask.

    ``mkstemp`` creates its file with mode ``0o600``; without this a saved file would be
    private even where the user's umask makes new files readable by the group.
    """
    try:
        return os.stat(path).st_mode & 0o777
    except OSError:
        pass
    # os.umask can only be read by setting it; 0o077 is the strict value, so a file some
    # other thread creates in between is, if anything, too private, never too open.
    umask = os.umask(0o077)
    os.umask(umask)
    return 0o666 & ~umask


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX); a no-op where folders cannot be opened."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: PathLike) -> Iterator[BinaryIO]:
    """A binary file object whose content replaces ``path`` only once it is complete.

    Parameters
    ----------
    path : str or PathLike
        The destination, written at exactly this name (no suffix is added). Its folder
        must exist.

    Yields
    ------
    file
        A new temporary file in the folder of ``path``, open for binary writing.

    Raises
    ------
    IsADirectoryError
        If ``path`` is an existing folder (checked before anything is written).
    OSError
        Whatever the operating system reports (missing folder, full disk, read-only
        file system); the old file at ``path`` is then unchanged and the temporary file
        is removed.

    Examples
    --------
    >>> with atomic_write("heat.npy") as f:  # doctest: +SKIP
    ...     np.save(f, heat)
    """
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"{path}: is a folder, not a file name")
    folder = os.path.dirname(os.path.abspath(path))
    mode = _new_file_mode(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            if hasattr(os, "fchmod"):  # POSIX
                os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise
    _fsync_folder(folder)


def write_text(path: PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, like :func:`atomic_write`."""
    with atomic_write(path) as f:
        f.write(text.encode("utf-8"))
