"""Writing signature stores, atomically (format: :mod:`.store`).

A store is never modified in place: a write puts the whole new file in a temporary file
beside it, fsyncs it and renames it over the old one, then fsyncs the folder. The same
inputs in the same order give a byte-identical file, however they were batched.

- :func:`create_or_append`: one signature space, format version 1 (what a
  ``lumina-audit/v1`` Extract manifest writes, so that it re-runs to the same bytes);
- :func:`create_or_append_multi`: several methods, each in its own space, format version 2.

Both refuse duplicate song ids and duplicate PCM hashes, and an existing store of other
signature spaces; a refused or failed call leaves an existing store byte for byte unchanged.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import rfc8785

from .._internal.fileio import fsync_dir
from ..errors import ConfigError, StoreError
from ..signature.result import Signature
from ..signature.space import SignatureSpace
from .store import FORMAT, VECTORS, StoreInfo, StrPath, header, open_h5, read_meta

__all__ = ["StoreSummary", "create_or_append", "create_or_append_multi"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_LIBVER = ("v110", "v110")
#: Rows copied per read when an append carries old vectors into the new file.
_COPY_ROWS = 65536

Meta = tuple[list[str], list[str], list[str], list[int]]


@dataclass(frozen=True)
class StoreSummary:
    """What a write did. ``space_digest``: the first (primary) space's digest."""

    path: Path
    space_digest: str
    created: bool
    added: int
    total: int


def _check_space(target: Path, space: SignatureSpace) -> str:
    try:
        valid = SignatureSpace.from_canonical_json(space.canonical_json).digest == space.digest
    except ConfigError:
        valid = False
    if not valid:
        raise StoreError(f"{target}: the signature space to store is invalid (digest does not match JSON)")
    return str(space.as_dict()["method"])


def _check_batch(path: Path, signatures: Sequence[Signature], dim: int) -> None:
    for k, sig in enumerate(signatures):
        where = f"{path}: signature {k} ({getattr(sig, 'song_id', '?')!r})"
        if not isinstance(sig, Signature):
            raise StoreError(f"{path}: item {k} is a {type(sig).__name__}, not a Signature")
        if not isinstance(sig.song_id, str) or not sig.song_id:
            raise StoreError(f"{where}: song id must be a non-empty string")
        if "\x00" in sig.song_id:
            raise StoreError(f"{where}: song id must not contain a NUL character")
        try:
            sig.song_id.encode("utf-8")
        except UnicodeEncodeError:
            raise StoreError(f"{where}: song id is not encodable as UTF-8") from None
        for name in ("file_sha256", "pcm_sha256"):
            value = getattr(sig, name)
            if not isinstance(value, str) or not _HEX64.match(value):
                raise StoreError(f"{where}: {name} must be 64 lowercase hex digits")
        if isinstance(sig.chunks, bool) or not isinstance(sig.chunks, int | np.integer) or sig.chunks < 1:
            raise StoreError(f"{where}: chunks must be a positive integer, got {sig.chunks!r}")
        for _, field, dtype in VECTORS:
            v = getattr(sig, field)
            if not isinstance(v, np.ndarray) or v.shape != (dim,) or v.dtype != np.dtype(dtype):
                got = (getattr(v, "shape", None), str(getattr(v, "dtype", type(v).__name__)))
                raise StoreError(f"{where}: {field} must be {dtype} of shape ({dim},), got {got}")
            if not np.isfinite(v).all():
                raise StoreError(f"{where}: {field} holds a non-finite value")


def _check_unique(path: Path, label: str, old: Sequence[str], new: Sequence[str]) -> None:
    seen = set(old)
    for value in new:
        if value in seen:
            raise StoreError(f"{path}: duplicate {label} {value!r} (already in the store or the batch)")
        seen.add(value)


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_vectors(dst: Any, src: Any, n_old: int, signatures: Sequence[Signature], dim: int,
                   src_prefix: str = "") -> None:
    total = n_old + len(signatures)
    for name, field, dtype in VECTORS:
        ds = dst.create_dataset(name, shape=(total, dim), dtype=dtype, track_times=False)
        for start in range(0, n_old, _COPY_ROWS):
            stop = min(start + _COPY_ROWS, n_old)
            ds[start:stop] = np.asarray(src[src_prefix + name][start:stop], dtype=dtype)
        if signatures:
            ds[n_old:] = np.stack([getattr(sig, field) for sig in signatures]).astype(dtype, copy=False)


def _write_temp(target: Path, version: int, spaces: Sequence[SignatureSpace], meta: Meta, src: Any,
                src_info: StoreInfo | None, by_space: Sequence[Sequence[Signature]]) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    first = by_space[0]
    n_old = src_info.count if src_info is not None else 0
    try:
        old_ids, old_files, old_pcms, old_chunks = meta
        ids = [*old_ids, *(s.song_id for s in first)]
        file_hashes = [*old_files, *(s.file_sha256 for s in first)]
        pcm_hashes = [*old_pcms, *(s.pcm_sha256 for s in first)]
        chunks = [*old_chunks, *(int(s.chunks) for s in first)]
        methods = [str(s.as_dict()["method"]) for s in spaces]
        with h5py.File(tmp, "w", libver=_LIBVER, track_order=True) as f:
            f.attrs["format"] = FORMAT
            f.attrs["version"] = np.int64(version)
            if version == 1:
                f.attrs["method"] = methods[0]
                f.attrs["signature_space"] = spaces[0].canonical_json.decode("utf-8")
                f.attrs["signature_space_sha256"] = spaces[0].digest
            else:
                f.attrs["methods"] = rfc8785.dumps(methods).decode("utf-8")
            f.create_dataset("song_ids", data=np.array(ids, dtype=object).reshape(-1),
                             dtype=h5py.string_dtype("utf-8"), track_times=False)
            for key, column in (("file_sha256", file_hashes), ("pcm_sha256", pcm_hashes)):
                data = np.array([h.encode("ascii") for h in column], dtype="S64").reshape(-1)
                f.create_dataset(key, data=data, track_times=False)
            f.create_dataset("chunks", data=np.array(chunks, dtype="<i8").reshape(-1), track_times=False)
            for method, space, sigs in zip(methods, spaces, by_space, strict=True):
                prefix = src_info.group(space.digest) if src_info is not None else ""
                dst = f
                if version != 1:
                    dst = f.create_group(method, track_order=True)
                    dst.attrs["signature_space"] = space.canonical_json.decode("utf-8")
                    dst.attrs["signature_space_sha256"] = space.digest
                _write_vectors(dst, src, n_old, sigs, space.method.dim, prefix)
        mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o644
        os.chmod(tmp, mode)
        _fsync_path(tmp)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise StoreError(f"{target}: cannot write store ({exc})") from None
        raise
    return tmp


def _write(target: Path, version: int, spaces: Sequence[SignatureSpace],
           by_space: Sequence[Sequence[Signature]]) -> StoreSummary:
    first = by_space[0]
    created = not target.exists()
    tmp: Path | None = None
    try:
        if created:
            _check_unique(target, "song id", [], [s.song_id for s in first])
            _check_unique(target, "PCM hash", [], [s.pcm_sha256 for s in first])
            tmp = _write_temp(target, version, spaces, ([], [], [], []), None, None, by_space)
            total = len(first)
        else:
            with open_h5(target) as src:
                info = header(src, target)
                same = info.version == version and [s.digest for s in info.spaces.values()] == [
                    s.digest for s in spaces]
                if not same:
                    ours = ", ".join(f"{s.digest} ({s.as_dict()['method']})" for s in spaces)
                    raise StoreError(f"{target}: signature space differs: store has {info.describe_spaces()} "
                                     f"(version {info.version}), batch has {ours} (version {version})")
                meta = read_meta(src, target, info.count)
                _check_unique(target, "song id", meta[0], [s.song_id for s in first])
                _check_unique(target, "PCM hash", meta[2], [s.pcm_sha256 for s in first])
                total = info.count + len(first)
                if not first:
                    return StoreSummary(target, spaces[0].digest, False, 0, total)
                tmp = _write_temp(target, version, spaces, meta, src, info, by_space)
        os.replace(tmp, target)
        tmp = None
        fsync_dir(target.parent)
    except OSError as exc:
        raise StoreError(f"{target}: cannot write store ({exc})") from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return StoreSummary(target, spaces[0].digest, created, len(first), total)


def create_or_append(path: StrPath, space: SignatureSpace, signatures: Sequence[Signature]) -> StoreSummary:
    """Create the version 1 store at ``path``, or append ``signatures`` to it, atomically.

    A refused or failed call leaves an existing store byte-for-byte unchanged.
    An empty batch creates an empty store, or leaves an existing one untouched.
    """
    target = Path(path)
    _check_space(target, space)
    _check_batch(target, signatures, space.method.dim)
    return _write(target, 1, [space], [signatures])


def create_or_append_multi(path: StrPath, spaces: Sequence[SignatureSpace],
                           songs: Sequence[Mapping[str, Signature]]) -> StoreSummary:
    """Create the version 2 store at ``path`` (or append to one of the same spaces), atomically.

    ``spaces``: one per method, in the order the store keeps them; ``songs``: per song, each
    method's :class:`Signature` by method name, all of one song (same id, hashes and chunks).
    """
    target = Path(path)
    methods = [_check_space(target, s) for s in spaces]
    if not methods or len(set(methods)) != len(methods):
        raise StoreError(f"{target}: a store holds one or more methods, each once (got {methods})")
    by_space: list[list[Signature]] = []
    for method, space in zip(methods, spaces, strict=True):
        column = []
        for k, song in enumerate(songs):
            if not isinstance(song, Mapping) or set(song) != set(methods):
                raise StoreError(f"{target}: song {k} must carry exactly the methods {methods}")
            column.append(song[method])
        _check_batch(target, column, space.method.dim)
        by_space.append(column)
    for k, song in enumerate(songs):
        ids = {(s.song_id, s.file_sha256, s.pcm_sha256, int(s.chunks)) for s in song.values()}
        if len(ids) != 1:
            raise StoreError(f"{target}: song {k}: its methods' signatures name different songs")
    return _write(target, 2, list(spaces), by_space)
