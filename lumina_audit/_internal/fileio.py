"""Durable file writes: the one implementation every writer of the project uses, and the file-mode policy.

A whole file is written by :func:`durable_file` (or :func:`write_file`, its form for bytes): the data
goes to a temporary file beside the target (``.NAME.RANDOM.tmp``), which is fsynced and then
published under the target's name, and the folder is fsynced. Publishing is whole or nothing:

- a new file (``replace=False``, the default) is published with ``os.link``, which fails with
  ``FileExistsError`` when the name exists: such a write never overwrites, even against a racing
  writer. (On a file system without hard links the data is copied into the name, created with
  ``O_EXCL``: still never an overwrite, but a crash then may leave that file short.)
- a replaced file (``replace=True``) is published with ``os.replace``: a crash leaves the old file or
  the new one.

On any failure the temporary file is removed and the target is as it was. A crash may leave a
temporary file, which a reader recognises by its name.

Mode policy (whatever the umask): a file the project creates is :data:`FILE_MODE` (0644: reports,
calibrations, stores, ledger files, journals, certificates, manifest signatures, public keys,
derived audio); a secret is :data:`SECRET_MODE` (0600: private keys, the demo PKI's signer key and
PKCS#12). A replaced file keeps the mode it had (a store appended to keeps the mode its owner
gave it). A folder written whole and then published (:func:`publish_folder`) is :data:`FOLDER_MODE` (0755).

Ledger files grow in place: :func:`append_file` (one ``write`` to an ``O_APPEND`` descriptor, then
fsync) and :func:`truncate_file` (``ftruncate``, then fsync). A folder written whole is published by
:func:`publish_folder`.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Iterator
from pathlib import Path

__all__ = ["FILE_MODE", "FOLDER_MODE", "SECRET_MODE", "append_file", "durable_file", "fsync_dir", "publish_folder",
           "truncate_file", "write_file"]

#: The mode of every file the project creates, but secrets.
FILE_MODE = 0o644
#: The mode of a secret: a private key, a PKCS#12 bundle.
SECRET_MODE = 0o600
#: The mode of a folder published whole (:func:`publish_folder`), which a temporary folder would not have.
FOLDER_MODE = 0o755

#: ``os.link`` errors that mean "this file system has no hard links" (the copy fallback applies).
_NO_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK})


def fsync_dir(path: Path) -> None:
    """fsync a folder, so that a file created, renamed or removed in it survives a crash."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _copy_new(tmp: Path, path: Path, mode: int) -> None:
    """Copy ``tmp`` into ``path``, created exclusively (the fallback of a file system without hard links)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)
        _write_all(fd, tmp.read_bytes())
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)


@contextlib.contextmanager
def durable_file(path: Path, *, replace: bool = False, mode: int = FILE_MODE) -> Iterator[Path]:
    """A temporary file beside ``path`` to fill (by name); on a clean exit it is published as ``path``.

    ``replace=False``: ``path`` must not exist (``FileExistsError``, also when it appears meanwhile);
    ``replace=True``: it is replaced whole, keeping its mode. A new file gets ``mode``. The file and
    the folder are fsynced. On any error the temporary file is removed and ``path`` is untouched.
    """
    path = Path(path)
    if not replace and os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode))
    try:
        yield tmp
        if replace:
            with contextlib.suppress(FileNotFoundError):
                mode = stat.S_IMODE(path.stat().st_mode)
        os.chmod(tmp, mode)
        _fsync_file(tmp)
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
            except OSError as exc:
                if exc.errno not in _NO_LINKS:
                    raise
                _copy_new(tmp, path, mode)
        fsync_dir(path.parent)
    finally:
        tmp.unlink(missing_ok=True)


def write_file(path: Path, data: bytes, *, replace: bool = False, mode: int = FILE_MODE) -> None:
    """Write ``data`` as the whole file ``path`` with :func:`durable_file` (never overwriting unless ``replace``).

    Raises ``FileExistsError`` when ``path`` exists and may not be replaced, ``OSError`` otherwise.
    """
    with durable_file(path, replace=replace, mode=mode) as tmp:
        fd = os.open(tmp, os.O_WRONLY)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)


def append_file(path: Path, data: bytes) -> int:
    """Append ``data`` to the existing file ``path`` with one ``write`` to an ``O_APPEND`` descriptor, then fsync.

    Returns the bytes written (fewer than ``len(data)`` on a short write); raises ``OSError``.
    """
    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    try:
        written = os.write(fd, data)
        os.fsync(fd)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    return written


def truncate_file(path: Path, size: int) -> None:
    """Cut the existing file ``path`` to ``size`` bytes and fsync it (one metadata operation)."""
    fd = os.open(path, os.O_WRONLY)
    try:
        os.ftruncate(fd, size)
        os.fsync(fd)
    finally:
        os.close(fd)


def publish_folder(tmp: Path, path: Path) -> None:
    """Rename the finished folder ``tmp`` to ``path`` (mode :data:`FOLDER_MODE`), which must not exist, and fsync
    the parent folder."""
    if os.path.lexists(path):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))
    os.chmod(tmp, FOLDER_MODE)
    os.rename(tmp, path)
    fsync_dir(Path(path).parent)
