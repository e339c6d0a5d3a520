"""Writing signature stores, atomically (format: :mod:`.store`).

A store is never modified in place: a write puts the whole new file in a temporary file
beside it, fsyncs it and renames it over the old one, then fsyncs the folder
(:func:`~.._internal.fileio.durable_file`; a store appended to keeps its mode, a new one is 0644). The same
inputs in the same order give a byte-identical file, however they were batched.

- :func:`create_or_append`: one signature space, format version 1 (what a
  ``lumina-audit/v1`` Extract manifest writes, so that it re-runs to the same bytes);
- :func:`create_or_append_multi`: several methods, each in its own space, format version 2;
- :func:`write_streamed`: a new store of either version whose vectors are read a block of
  songs at a time (an Extract run writes its store from its journal so), byte for byte the
  file the two above write for the same songs.

Both refuse duplicate song ids and duplicate PCM hashes, and an existing store of other
signature spaces; a refused or failed call leaves an existing store byte for byte unchanged.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import rfc8785

from .._internal.fileio import durable_file
from ..errors import ConfigError, StoreError
from ..signature.result import Signature
from ..signature.space import SignatureSpace
from .store import FORMAT, VECTORS, StoreInfo, StrPath, header, open_h5, read_meta

__all__ = ["STREAM_ROWS", "StoreRows", "StoreSummary", "create_or_append", "create_or_append_multi", "method_group",
           "write_head", "write_streamed"]

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_LIBVER = ("v110", "v110")
#: Rows copied per read when an append carries old vectors into the new file.
_COPY_ROWS = 65536
#: Songs per block of :func:`write_streamed`: 16 songs of two methods are 166 kB of vectors.
STREAM_ROWS = 16

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


def _write_file(target: Path, version: int, spaces: Sequence[SignatureSpace], meta: Meta, src: Any,
                src_info: StoreInfo | None, by_space: Sequence[Sequence[Signature]]) -> None:
    """The whole new store, old rows (from ``src``) then new ones, put at ``target`` by :func:`durable_file`."""
    first = by_space[0]
    n_old = src_info.count if src_info is not None else 0
    old_ids, old_files, old_pcms, old_chunks = meta
    ids = [*old_ids, *(s.song_id for s in first)]
    file_hashes = [*old_files, *(s.file_sha256 for s in first)]
    pcm_hashes = [*old_pcms, *(s.pcm_sha256 for s in first)]
    chunks = [*old_chunks, *(int(s.chunks) for s in first)]
    try:
        with durable_file(target, replace=True) as tmp, h5py.File(tmp, "w", libver=_LIBVER, track_order=True) as f:
            write_head(f, version, spaces, (ids, file_hashes, pcm_hashes, chunks))
            for space, sigs in zip(spaces, by_space, strict=True):
                prefix = src_info.group(space.digest) if src_info is not None else ""
                _write_vectors(method_group(f, version, space), src, n_old, sigs, space.method.dim, prefix)
    except OSError as exc:  # here, not in the reader of ``src`` that this runs inside, which would blame the old store
        raise StoreError(f"{target}: cannot write store ({exc})") from None


def write_head(f: Any, version: int, spaces: Sequence[SignatureSpace], meta: Meta) -> None:
    """The root attributes and the per-song datasets (ids, hashes, chunks) of a new store, in their order."""
    ids, file_hashes, pcm_hashes, chunks = meta
    methods = [str(s.as_dict()["method"]) for s in spaces]
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


def method_group(f: Any, version: int, space: SignatureSpace) -> Any:
    """Where a method's vectors go: the root (version 1) or a new group named by the method (version 2)."""
    if version == 1:
        return f
    group = f.create_group(str(space.as_dict()["method"]), track_order=True)
    group.attrs["signature_space"] = space.canonical_json.decode("utf-8")
    group.attrs["signature_space_sha256"] = space.digest
    return group


def _write(target: Path, version: int, spaces: Sequence[SignatureSpace],
           by_space: Sequence[Sequence[Signature]]) -> StoreSummary:
    first = by_space[0]
    created = not target.exists()
    try:
        if created:
            _check_unique(target, "song id", [], [s.song_id for s in first])
            _check_unique(target, "PCM hash", [], [s.pcm_sha256 for s in first])
            _write_file(target, version, spaces, ([], [], [], []), None, None, by_space)
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
                _write_file(target, version, spaces, meta, src, info, by_space)
    except OSError as exc:
        raise StoreError(f"{target}: cannot write store ({exc})") from None
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


@dataclass(frozen=True)
class StoreRows:
    """The per-song columns of a store to write, in store order: N ids, file and PCM SHA-256 (hex), chunk counts."""

    song_ids: Sequence[str]
    file_sha256: Sequence[str]
    pcm_sha256: Sequence[str]
    chunks: Sequence[int]


#: ``read_block(start, stop)``: songs ``start`` to ``stop - 1``, each its methods' signatures by method name.
BlockReader = Callable[[int, int], Sequence[Mapping[str, Signature]]]


def _block_columns(target: Path, methods: Sequence[str], spaces: Sequence[SignatureSpace], rows: StoreRows,
                   start: int, block: Sequence[Mapping[str, Signature]], stop: int) -> list[list[Signature]]:
    if len(block) != stop - start:
        raise StoreError(f"{target}: rows {start}-{stop - 1}: got {len(block)} songs")
    columns = []
    for method, space in zip(methods, spaces, strict=True):
        column = []
        for k, song in enumerate(block):
            if not isinstance(song, Mapping) or set(song) != set(methods):
                raise StoreError(f"{target}: song {start + k} must carry exactly the methods {list(methods)}")
            sig = song[method]
            want = (rows.song_ids[start + k], rows.file_sha256[start + k], rows.pcm_sha256[start + k],
                    int(rows.chunks[start + k]))
            if (getattr(sig, "song_id", None), getattr(sig, "file_sha256", None), getattr(sig, "pcm_sha256", None),
                    getattr(sig, "chunks", None)) != want:
                raise StoreError(f"{target}: song {start + k}: its {method} signature names another song than row "
                                 f"{start + k} ({want[0]!r})")
            column.append(sig)
        _check_batch(target, column, space.method.dim)
        columns.append(column)
    return columns


def write_streamed(path: StrPath, spaces: Sequence[SignatureSpace], rows: StoreRows, read_block: BlockReader, *,
                   version: int = 2, block_rows: int = STREAM_ROWS) -> StoreSummary:
    """Create a new store at ``path`` whose vectors are read ``block_rows`` songs at a time, atomically.

    The per-song columns (``rows``) are written whole, as :func:`create_or_append_multi` (version 2)
    or :func:`create_or_append` (version 1, one space) write them; then every vector dataset is
    created in the same order and given its first block, and the other blocks follow. HDF5
    allocates a contiguous dataset whole at its first write, so the file is byte for byte the one
    those functions write for the same songs (tested for every block size). Memory holds one
    block of vectors, whatever N is. An existing ``path`` is refused; so are duplicate ids or
    PCM hashes, and a block whose songs differ from their rows.
    """
    target = Path(path)
    methods = [_check_space(target, s) for s in spaces]
    if version not in (1, 2) or not methods or len(set(methods)) != len(methods) or (version == 1 and len(spaces) != 1):
        raise StoreError(f"{target}: version 1 holds one method, version 2 one or more, each once (got version "
                         f"{version}, {methods})")
    if isinstance(block_rows, bool) or not isinstance(block_rows, int) or block_rows < 1:
        raise StoreError(f"{target}: block_rows must be a positive integer, got {block_rows!r}")
    n = len(rows.song_ids)
    if not len(rows.file_sha256) == len(rows.pcm_sha256) == len(rows.chunks) == n:
        raise StoreError(f"{target}: the per-song columns have different lengths")
    _check_unique(target, "song id", [], rows.song_ids)
    _check_unique(target, "PCM hash", [], rows.pcm_sha256)
    meta = (list(rows.song_ids), list(rows.file_sha256), list(rows.pcm_sha256), [int(c) for c in rows.chunks])
    try:
        with durable_file(target) as tmp, h5py.File(tmp, "w", libver=_LIBVER, track_order=True) as f:
            write_head(f, version, spaces, meta)
            stop = min(block_rows, n)
            first = _block_columns(target, methods, spaces, rows, 0, read_block(0, stop), stop) if n else None
            datasets = []
            for k, space in enumerate(spaces):
                dst = method_group(f, version, space)
                for name_, field, dtype in VECTORS:
                    ds = dst.create_dataset(name_, shape=(n, space.method.dim), dtype=dtype, track_times=False)
                    if first is not None:
                        ds[0:stop] = np.stack([getattr(sig, field) for sig in first[k]]).astype(dtype, copy=False)
                    datasets.append((ds, k, field, dtype))
            del first
            for start in range(block_rows, n, block_rows):
                stop = min(start + block_rows, n)
                columns = _block_columns(target, methods, spaces, rows, start, read_block(start, stop), stop)
                for ds, k, field, dtype in datasets:
                    ds[start:stop] = np.stack([getattr(sig, field) for sig in columns[k]]).astype(dtype, copy=False)
    except FileExistsError:
        raise StoreError(f"{target}: already exists; a streamed store is always a new file") from None
    except OSError as exc:
        raise StoreError(f"{target}: cannot write store ({exc})") from None
    return StoreSummary(target, spaces[0].digest, True, n, n)
