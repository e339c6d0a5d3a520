"""Durable file writes shared by every writer of the project."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

__all__ = ["fsync_dir", "write_atomic", "write_new"]


def fsync_dir(path: Path) -> None:
    """fsync a folder, so that a file created or renamed in it survives a crash."""
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_new(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Create ``path`` (never overwriting), write all of ``data`` with ``mode``, fsync it and its folder.

    Raises ``FileExistsError`` when ``path`` exists and ``OSError`` otherwise; a file this
    call created is removed again when writing it fails.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        os.fchmod(fd, mode)
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        path.unlink(missing_ok=True)
        raise
    os.close(fd)
    fsync_dir(path.parent)


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Put ``data`` at ``path`` whole or not at all: a temporary file beside it (``.NAME.RANDOM.tmp``), written
    and fsynced, renamed over ``path``, then the folder fsynced. A crash leaves the old file or the new one,
    and at worst a temporary file that a reader can recognise by its name and remove.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    write_new(tmp, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)
