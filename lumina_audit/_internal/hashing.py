"""SHA-256 of files and open streams, read in 1 MiB blocks."""

from __future__ import annotations

import hashlib
import os
from typing import BinaryIO

__all__ = ["sha256_path", "sha256_stream"]


def sha256_stream(f: BinaryIO) -> str:
    """Hex SHA-256 of the rest of an open binary file."""
    h = hashlib.sha256()
    for block in iter(lambda: f.read(1 << 20), b""):
        h.update(block)
    return h.hexdigest()


def sha256_path(path: str | os.PathLike[str]) -> str:
    with open(path, "rb") as f:
        return sha256_stream(f)
