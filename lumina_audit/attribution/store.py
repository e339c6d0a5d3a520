"""The signature store: one HDF5 file of signatures in one signature space.

Format ``lumina-signatures`` version 1. Root attributes, in this order:
``format``, ``version``, ``method``, ``signature_space`` (canonical JSON) and
``signature_space_sha256``. Datasets, all of length N: ``song_ids`` (UTF-8,
variable length), ``file_sha256`` and ``pcm_sha256`` (64-byte ASCII hex),
``chunks`` (int64), ``signatures_p``/``signatures_m`` (float32 [N, 216]) and
``raw_p``/``raw_m`` (float64 [N, 216]).

A store is never modified in place: an append writes the whole new file to a
temporary file beside it and renames it over the old one. The same inputs in
the same order give a byte-identical file, however they were batched.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np
import numpy.typing as npt

from .._internal.fileio import fsync_dir
from ..errors import ConfigError, StoreError
from ..signature.result import DIM, Signature
from ..signature.space import SignatureSpace

__all__ = [
    "FORMAT",
    "VERSION",
    "SignatureStore",
    "StoreIndex",
    "StoreInfo",
    "StoreSummary",
    "create_or_append",
    "iter_blocks",
    "open_info",
    "read_index",
    "read_store",
]

FORMAT = "lumina-signatures"
VERSION = 1

StrPath = str | os.PathLike[str]
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_LIBVER = ("v110", "v110")
_VECTORS: tuple[tuple[str, str, str], ...] = (  # dataset, Signature field, dtype
    ("signatures_p", "p", "<f4"),
    ("signatures_m", "m", "<f4"),
    ("raw_p", "raw_p", "<f8"),
    ("raw_m", "raw_m", "<f8"),
)
_META = ("song_ids", "file_sha256", "pcm_sha256", "chunks")
_MEMBERS = frozenset(_META) | {name for name, _, _ in _VECTORS}
#: Rows copied per read when an append carries old vectors into the new file.
_COPY_ROWS = 65536


@dataclass(frozen=True)
class StoreInfo:
    """The header of a store, read without reading its rows."""

    path: Path
    format: str
    version: int
    method: str
    space: SignatureSpace
    count: int


@dataclass(frozen=True)
class StoreSummary:
    """What :func:`create_or_append` did."""

    path: Path
    space_digest: str
    created: bool
    added: int
    total: int


@dataclass(frozen=True, eq=False)
class SignatureStore:
    """A whole store in memory; the arrays are read-only."""

    path: Path
    space: SignatureSpace
    song_ids: tuple[str, ...]
    file_sha256: tuple[str, ...]
    pcm_sha256: tuple[str, ...]
    chunks: tuple[int, ...]
    p: npt.NDArray[np.float32]
    m: npt.NDArray[np.float32]
    raw_p: npt.NDArray[np.float64]
    raw_m: npt.NDArray[np.float64]

    def __len__(self) -> int:
        return len(self.song_ids)

    def signature(self, i: int) -> Signature:
        """Row ``i`` as a :class:`Signature` (negative indices count from the end)."""
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"row {i} out of range for a store of {n} signatures")
        i %= n
        return Signature(
            song_id=self.song_ids[i], file_sha256=self.file_sha256[i], pcm_sha256=self.pcm_sha256[i],
            chunks=self.chunks[i], raw_p=self.raw_p[i], raw_m=self.raw_m[i], p=self.p[i], m=self.m[i],
        )


@contextlib.contextmanager
def _open(path: Path) -> Iterator[Any]:
    try:
        f = h5py.File(path, "r")
    except FileNotFoundError:
        raise StoreError(f"{path}: no such store file") from None
    except OSError as exc:
        raise StoreError(f"{path}: not a readable HDF5 file ({exc})") from None
    try:
        yield f
    except (OSError, KeyError, ValueError, TypeError) as exc:
        raise StoreError(f"{path}: unreadable store ({type(exc).__name__}: {exc})") from None
    finally:
        f.close()


def _text(value: object) -> str | None:
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return None
    return value if isinstance(value, str) else None


def _header(f: Any, path: Path) -> StoreInfo:
    """Check the attributes and the dataset shapes and dtypes (no row is read)."""
    attrs = f.attrs
    fmt = _text(attrs.get("format"))
    if fmt != FORMAT:
        raise StoreError(f"{path}: not a {FORMAT} store (format attribute is {attrs.get('format')!r})")
    version = attrs.get("version")
    is_int = isinstance(version, int | np.integer) and not isinstance(version, bool | np.bool_)
    if not is_int or version != VERSION:
        shown = int(version) if is_int else repr(version)
        raise StoreError(f"{path}: unknown {FORMAT} version {shown}; this reader knows {VERSION}")
    keys = ("signature_space", "signature_space_sha256", "method")
    text, digest, method = (_text(attrs.get(k)) for k in keys)
    if text is None or digest is None or method is None:
        raise StoreError(f"{path}: missing or malformed signature space attributes")
    try:
        space = SignatureSpace.from_canonical_json(text.encode("utf-8"))
    except ConfigError as exc:
        raise StoreError(f"{path}: invalid signature space: {exc}") from None
    if space.digest != digest:
        raise StoreError(f"{path}: signature space sha256 is {space.digest} but the store records {digest}")
    if space.as_dict().get("method") != method:
        raise StoreError(f"{path}: method attribute {method!r} disagrees with the signature space")
    members = set(f.keys())
    if members != _MEMBERS:
        raise StoreError(f"{path}: expected datasets {sorted(_MEMBERS)}, found {sorted(members)}")
    if any(not isinstance(f[name], h5py.Dataset) for name in _MEMBERS):
        raise StoreError(f"{path}: every member must be a dataset")
    n = f["song_ids"].shape[0] if f["song_ids"].ndim == 1 else -1
    expected: dict[str, tuple[tuple[int, ...], bool]] = {}
    for name, _, dtype in _VECTORS:
        expected[name] = ((n, DIM), f[name].dtype == np.dtype(dtype))
    sinfo = [h5py.check_string_dtype(f[name].dtype) for name in _META[:3]]
    expected["song_ids"] = ((n,), sinfo[0] is not None and sinfo[0] == ("utf-8", None))
    for name, info in zip(("file_sha256", "pcm_sha256"), sinfo[1:], strict=True):
        expected[name] = ((n,), info is not None and info.length == 64)
    expected["chunks"] = ((n,), f["chunks"].dtype == np.dtype("<i8"))
    for name, (shape, dtype_ok) in expected.items():
        if f[name].shape != shape or not dtype_ok:
            raise StoreError(
                f"{path}: dataset {name} has shape {f[name].shape} and dtype {f[name].dtype};"
                f" expected shape {shape} (inconsistent lengths or wrong layout)"
            )
    return StoreInfo(path=path, format=fmt, version=int(version), method=method, space=space, count=n)


def _read_meta(f: Any, path: Path, n: int) -> tuple[list[str], list[str], list[str], list[int]]:
    ids = [str(s) for s in f["song_ids"].asstr()[()]]
    hashes = [[bytes(h).decode("ascii", "replace") for h in f[k][()]] for k in ("file_sha256", "pcm_sha256")]
    chunks = [int(c) for c in f["chunks"][()]]
    for name, column in zip(("file_sha256", "pcm_sha256"), hashes, strict=True):
        if any(not _HEX64.match(h) for h in column):
            raise StoreError(f"{path}: dataset {name} holds a value that is not 64 lowercase hex digits")
    if any(c < 1 for c in chunks):
        raise StoreError(f"{path}: dataset chunks holds a count below 1")
    for name, column in (("song id", ids), ("PCM hash", hashes[1])):
        if len(set(column)) != n:
            raise StoreError(f"{path}: the store holds a duplicate {name}")
    return ids, hashes[0], hashes[1], chunks


def open_info(path: StrPath) -> StoreInfo:
    """Read and check the header of the store at ``path`` (cheap: no rows are read)."""
    target = Path(path)
    with _open(target) as f:
        return _header(f, target)


@dataclass(frozen=True)
class StoreIndex:
    """The header and the per-song metadata of a store, without its vectors."""

    info: StoreInfo
    song_ids: tuple[str, ...]
    file_sha256: tuple[str, ...]
    pcm_sha256: tuple[str, ...]
    chunks: tuple[int, ...]


def read_index(path: StrPath) -> StoreIndex:
    """Header, song ids, hashes and chunk counts (checked), no vectors: cheap for large catalogs."""
    target = Path(path)
    with _open(target) as f:
        info = _header(f, target)
        ids, files, pcms, chunks = _read_meta(f, target, info.count)
    return StoreIndex(info, tuple(ids), tuple(files), tuple(pcms), tuple(chunks))


def read_store(path: StrPath) -> SignatureStore:
    """Read and check the whole store at ``path``."""
    target = Path(path)
    with _open(target) as f:
        info = _header(f, target)
        ids, file_hashes, pcm_hashes, chunks = _read_meta(f, target, info.count)
        arrays: dict[str, Any] = {}
        for name, field, dtype in _VECTORS:
            array = np.ascontiguousarray(f[name][()], dtype=dtype)
            if not np.isfinite(array).all():
                raise StoreError(f"{target}: dataset {name} holds a non-finite value")
            array.flags.writeable = False
            arrays[field] = array
    return SignatureStore(
        path=target, space=info.space, song_ids=tuple(ids), file_sha256=tuple(file_hashes),
        pcm_sha256=tuple(pcm_hashes), chunks=tuple(chunks), **arrays,
    )


def iter_blocks(
    path: StrPath, channel: Literal["P", "M"], block_rows: int = 4096
) -> Iterator[tuple[int, npt.NDArray[np.float32]]]:
    """Yield ``(start_row, block)`` over channel ``P`` or ``M``, ``block_rows`` rows at a time.

    Reads the file block by block, so a store larger than memory can be scanned.
    The header is checked when this function is called, not at the first block.
    """
    if channel not in ("P", "M"):
        raise ValueError(f"channel must be 'P' or 'M', got {channel!r}")
    if isinstance(block_rows, bool) or not isinstance(block_rows, int) or block_rows < 1:
        raise ValueError(f"block_rows must be a positive integer, got {block_rows!r}")
    target = Path(path)
    open_info(target)
    return _blocks(target, f"signatures_{channel.lower()}", block_rows)


def _blocks(path: Path, name: str, block_rows: int) -> Iterator[tuple[int, npt.NDArray[np.float32]]]:
    with _open(path) as f:
        n = _header(f, path).count
        for start in range(0, n, block_rows):
            block = np.ascontiguousarray(f[name][start : start + block_rows], dtype=np.float32)
            if not np.isfinite(block).all():
                raise StoreError(f"{path}: dataset {name} holds a non-finite value near row {start}")
            yield start, block


def _check_batch(path: Path, signatures: Sequence[Signature]) -> None:
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
        for _, field, dtype in _VECTORS:
            v = getattr(sig, field)
            if not isinstance(v, np.ndarray) or v.shape != (DIM,) or v.dtype != np.dtype(dtype):
                got = (getattr(v, "shape", None), str(getattr(v, "dtype", type(v).__name__)))
                raise StoreError(f"{where}: {field} must be {dtype} of shape ({DIM},), got {got}")
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


def _write_vectors(dst: Any, src: Any, n_old: int, signatures: Sequence[Signature]) -> None:
    total = n_old + len(signatures)
    for name, field, dtype in _VECTORS:
        ds = dst.create_dataset(name, shape=(total, DIM), dtype=dtype, track_times=False)
        for start in range(0, n_old, _COPY_ROWS):
            stop = min(start + _COPY_ROWS, n_old)
            ds[start:stop] = np.asarray(src[name][start:stop], dtype=dtype)
        if signatures:
            ds[n_old:] = np.stack([getattr(sig, field) for sig in signatures]).astype(dtype, copy=False)


def _write_temp(
    target: Path, space: SignatureSpace, meta: tuple[list[str], list[str], list[str], list[int]],
    src: Any, n_old: int, signatures: Sequence[Signature],
) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        old_ids, old_files, old_pcms, old_chunks = meta
        ids = [*old_ids, *(s.song_id for s in signatures)]
        file_hashes = [*old_files, *(s.file_sha256 for s in signatures)]
        pcm_hashes = [*old_pcms, *(s.pcm_sha256 for s in signatures)]
        chunks = [*old_chunks, *(int(s.chunks) for s in signatures)]
        with h5py.File(tmp, "w", libver=_LIBVER, track_order=True) as f:
            f.attrs["format"] = FORMAT
            f.attrs["version"] = np.int64(VERSION)
            f.attrs["method"] = str(space.as_dict()["method"])
            f.attrs["signature_space"] = space.canonical_json.decode("utf-8")
            f.attrs["signature_space_sha256"] = space.digest
            f.create_dataset("song_ids", data=np.array(ids, dtype=object).reshape(-1),
                             dtype=h5py.string_dtype("utf-8"), track_times=False)
            for key, column in (("file_sha256", file_hashes), ("pcm_sha256", pcm_hashes)):
                data = np.array([h.encode("ascii") for h in column], dtype="S64").reshape(-1)
                f.create_dataset(key, data=data, track_times=False)
            f.create_dataset("chunks", data=np.array(chunks, dtype="<i8").reshape(-1), track_times=False)
            _write_vectors(f, src, n_old, signatures)
        mode = stat.S_IMODE(target.stat().st_mode) if target.exists() else 0o644
        os.chmod(tmp, mode)
        _fsync_path(tmp)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise StoreError(f"{target}: cannot write store ({exc})") from None
        raise
    return tmp


def create_or_append(path: StrPath, space: SignatureSpace, signatures: Sequence[Signature]) -> StoreSummary:
    """Create the store at ``path``, or append ``signatures`` to it, atomically.

    A refused or failed call leaves an existing store byte-for-byte unchanged.
    An empty batch creates an empty store, or leaves an existing one untouched.
    """
    target = Path(path)
    try:
        valid = SignatureSpace.from_canonical_json(space.canonical_json).digest == space.digest
    except ConfigError:
        valid = False
    if not valid:
        raise StoreError(f"{target}: the signature space to store is invalid (digest does not match JSON)")
    _check_batch(target, signatures)
    created = not target.exists()
    tmp: Path | None = None
    try:
        if created:
            _check_unique(target, "song id", [], [s.song_id for s in signatures])
            _check_unique(target, "PCM hash", [], [s.pcm_sha256 for s in signatures])
            tmp = _write_temp(target, space, ([], [], [], []), None, 0, signatures)
            total = len(signatures)
        else:
            with _open(target) as src:
                info = _header(src, target)
                if info.space.digest != space.digest:
                    raise StoreError(
                        f"{target}: signature space differs: store has {info.space.digest},"
                        f" batch has {space.digest}"
                    )
                meta = _read_meta(src, target, info.count)
                _check_unique(target, "song id", meta[0], [s.song_id for s in signatures])
                _check_unique(target, "PCM hash", meta[2], [s.pcm_sha256 for s in signatures])
                total = info.count + len(signatures)
                if not signatures:
                    return StoreSummary(target, space.digest, False, 0, total)
                tmp = _write_temp(target, space, meta, src, info.count, signatures)
        os.replace(tmp, target)
        tmp = None
        fsync_dir(target.parent)
    except OSError as exc:
        raise StoreError(f"{target}: cannot write store ({exc})") from None
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    return StoreSummary(target, space.digest, created, len(signatures), total)
