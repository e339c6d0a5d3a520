"""The signature store: one HDF5 file of catalog signatures, each method in its own signature space.

Format ``lumina-signatures``; this module reads versions 1 and 2 (writing: :mod:`.store_writer`).

Version 2 (several methods). Root attributes, in this order: ``format``, ``version`` (2),
``methods`` (RFC 8785 JSON list of method names). Root datasets, all of length N:
``song_ids`` (UTF-8, variable length), ``file_sha256`` and ``pcm_sha256`` (64-byte ASCII
hex), ``chunks`` (int64). One group per method, named by the method, in the order of
``methods``, with attributes ``signature_space`` (canonical JSON) and
``signature_space_sha256`` and datasets ``signatures_p``/``signatures_m`` (float32
[N, dim]) and ``raw_p``/``raw_m`` (float64 [N, dim]).

Version 1 (one method, ``lumina-gradstats-v1``). Root attributes ``format``, ``version``
(1), ``method``, ``signature_space``, ``signature_space_sha256``; the four vector datasets
sit at the root beside the metadata.

Signatures are compared only inside one signature space: every reader of vectors names the
space it wants by digest (or the store must hold exactly one).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import h5py
import numpy as np
import numpy.typing as npt

from ..errors import ConfigError, StoreError
from ..signature.result import Signature
from ..signature.space import SignatureSpace

__all__ = [
    "FORMAT",
    "VERSION",
    "VERSIONS",
    "SignatureStore",
    "StoreIndex",
    "StoreInfo",
    "iter_blocks",
    "open_info",
    "read_index",
    "read_store",
]

FORMAT = "lumina-signatures"
#: The version this package writes for several methods; version 1 is still read (and written for v1 manifests).
VERSION = 2
VERSIONS = (1, 2)

StrPath = str | os.PathLike[str]
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
#: (dataset, Signature field, dtype) of each vector dataset.
VECTORS: tuple[tuple[str, str, str], ...] = (
    ("signatures_p", "p", "<f4"),
    ("signatures_m", "m", "<f4"),
    ("raw_p", "raw_p", "<f8"),
    ("raw_m", "raw_m", "<f8"),
)
META = ("song_ids", "file_sha256", "pcm_sha256", "chunks")


@dataclass(frozen=True)
class StoreInfo:
    """The header of a store, read without reading its rows. ``spaces``: method name -> space, in order."""

    path: Path
    format: str
    version: int
    spaces: Mapping[str, SignatureSpace]
    count: int

    @property
    def methods(self) -> tuple[str, ...]:
        return tuple(self.spaces)

    @property
    def space(self) -> SignatureSpace:
        """The store's one signature space; a store of several must be read by digest."""
        if len(self.spaces) != 1:
            raise StoreError(f"{self.path}: the store holds {self.describe_spaces()}; name one by its digest")
        return next(iter(self.spaces.values()))

    @property
    def method(self) -> str:
        return self.space.as_dict()["method"]  # type: ignore[no-any-return]

    def space_with(self, digest: str | None) -> SignatureSpace:
        """The space of digest ``digest`` (None: the only one), else a StoreError naming every digest."""
        if digest is None:
            return self.space
        for space in self.spaces.values():
            if space.digest == digest:
                return space
        raise StoreError(f"{self.path}: signature space differs: store has {self.describe_spaces()}, "
                         f"queries have {digest}")

    def describe_spaces(self) -> str:
        """The digest of each space, with its method when there are several."""
        if len(self.spaces) == 1:
            return next(iter(self.spaces.values())).digest
        return ", ".join(f"{s.digest} ({m})" for m, s in self.spaces.items())

    def group(self, digest: str | None) -> str:
        """The HDF5 path prefix of that space's vectors (``""`` in version 1)."""
        space = self.space_with(digest)
        if self.version == 1:
            return ""
        return next(m for m, s in self.spaces.items() if s is space) + "/"


@dataclass(frozen=True, eq=False)
class SignatureStore:
    """One signature space of a store, in memory; the arrays are read-only."""

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
def open_h5(path: Path) -> Iterator[Any]:
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


def _space(attrs: Any, path: Path, where: str) -> SignatureSpace:
    text, digest = (_text(attrs.get(k)) for k in ("signature_space", "signature_space_sha256"))
    if text is None or digest is None:
        raise StoreError(f"{path}: missing or malformed signature space attributes{where}")
    try:
        space = SignatureSpace.from_canonical_json(text.encode("utf-8"))
    except ConfigError as exc:
        raise StoreError(f"{path}: invalid signature space{where}: {exc}") from None
    if space.digest != digest:
        raise StoreError(f"{path}: signature space sha256 is {space.digest} but the store records {digest}{where}")
    return space


def _spaces_v2(f: Any, path: Path) -> dict[str, SignatureSpace]:
    text = _text(f.attrs.get("methods"))
    try:
        methods = json.loads(text) if text is not None else None
    except ValueError:
        methods = None
    if not (isinstance(methods, list) and methods and all(isinstance(m, str) and m for m in methods)
            and len(set(methods)) == len(methods)):
        raise StoreError(f"{path}: the methods attribute is not a JSON list of distinct method names")
    spaces = {}
    for method in methods:
        if not isinstance(f.get(method, getlink=True), h5py.HardLink) or not isinstance(f[method], h5py.Group):
            raise StoreError(f"{path}: no group for method {method!r}")
        space = _space(f[method].attrs, path, f" of method {method}")
        if space.as_dict().get("method") != method:
            raise StoreError(f"{path}: group {method!r} holds a signature space of another method")
        spaces[method] = space
    return spaces


def _check_datasets(f: Any, path: Path, prefixes: list[str]) -> int:
    """Shapes and dtypes of every dataset (no row is read); returns N."""
    members = set(f.keys())
    vectors = {name for name, _, _ in VECTORS}
    expected_members = set(META) | (vectors if prefixes == [""] else {p.rstrip("/") for p in prefixes})
    if members != expected_members:
        what = "datasets" if prefixes == [""] else "datasets and method groups"
        raise StoreError(f"{path}: expected {what} {sorted(expected_members)}, found {sorted(members)}")
    names = [*META, *(p + v for p in prefixes for v in sorted(vectors))]
    for prefix in prefixes:
        if prefix and set(f[prefix.rstrip("/")].keys()) != vectors:
            raise StoreError(f"{path}: group {prefix.rstrip('/')!r} must hold exactly {sorted(vectors)}")
    if any(not isinstance(f[name], h5py.Dataset) for name in names):
        raise StoreError(f"{path}: every member must be a dataset")
    n = f["song_ids"].shape[0] if f["song_ids"].ndim == 1 else -1
    expected: dict[str, tuple[tuple[int, ...], bool]] = {}
    for prefix in prefixes:
        for name, _, dtype in VECTORS:
            ds = f[prefix + name]
            expected[prefix + name] = ((n, ds.shape[1] if ds.ndim == 2 else -1), ds.dtype == np.dtype(dtype))
    sinfo = [h5py.check_string_dtype(f[name].dtype) for name in META[:3]]
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
    return int(n)


def header(f: Any, path: Path) -> StoreInfo:
    """Check the attributes and the dataset shapes and dtypes (no row is read)."""
    attrs = f.attrs
    fmt = _text(attrs.get("format"))
    if fmt != FORMAT:
        raise StoreError(f"{path}: not a {FORMAT} store (format attribute is {attrs.get('format')!r})")
    version = attrs.get("version")
    is_int = isinstance(version, int | np.integer) and not isinstance(version, bool | np.bool_)
    if not is_int or int(version) not in VERSIONS:
        shown = int(version) if is_int else repr(version)
        raise StoreError(f"{path}: unknown {FORMAT} version {shown}; this reader knows "
                         f"{' and '.join(map(str, VERSIONS))}")
    if int(version) == 1:
        space = _space(attrs, path, "")
        method = _text(attrs.get("method"))
        if method is None:
            raise StoreError(f"{path}: missing or malformed signature space attributes")
        if space.as_dict().get("method") != method:
            raise StoreError(f"{path}: method attribute {method!r} disagrees with the signature space")
        spaces, prefixes = {method: space}, [""]
    else:
        spaces = _spaces_v2(f, path)
        prefixes = [m + "/" for m in spaces]
    n = _check_datasets(f, path, prefixes)
    for method, space in spaces.items():
        dim = space.method.dim
        prefix = "" if int(version) == 1 else method + "/"
        if f[prefix + "signatures_p"].shape[1] != dim:
            raise StoreError(f"{path}: vectors of {method} have {f[prefix + 'signatures_p'].shape[1]} values, "
                             f"the method has {dim}")
    return StoreInfo(path=path, format=fmt, version=int(version), spaces=MappingProxyType(spaces), count=n)


def read_meta(f: Any, path: Path, n: int) -> tuple[list[str], list[str], list[str], list[int]]:
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
    with open_h5(target) as f:
        return header(f, target)


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
    with open_h5(target) as f:
        info = header(f, target)
        ids, files, pcms, chunks = read_meta(f, target, info.count)
    return StoreIndex(info, tuple(ids), tuple(files), tuple(pcms), tuple(chunks))


def read_store(path: StrPath, space_digest: str | None = None) -> SignatureStore:
    """Read and check one signature space of the store at ``path`` (None: the store's only one)."""
    target = Path(path)
    with open_h5(target) as f:
        info = header(f, target)
        space, prefix = info.space_with(space_digest), info.group(space_digest)
        ids, file_hashes, pcm_hashes, chunks = read_meta(f, target, info.count)
        arrays: dict[str, Any] = {}
        for name, field, dtype in VECTORS:
            array = np.ascontiguousarray(f[prefix + name][()], dtype=dtype)
            if not np.isfinite(array).all():
                raise StoreError(f"{target}: dataset {prefix + name} holds a non-finite value")
            array.flags.writeable = False
            arrays[field] = array
    return SignatureStore(
        path=target, space=space, song_ids=tuple(ids), file_sha256=tuple(file_hashes),
        pcm_sha256=tuple(pcm_hashes), chunks=tuple(chunks), **arrays,
    )


def iter_blocks(
    path: StrPath, channel: Literal["P", "M"], block_rows: int = 4096, space_digest: str | None = None,
) -> Iterator[tuple[int, npt.NDArray[np.float32]]]:
    """Yield ``(start_row, block)`` over channel ``P`` or ``M`` of one space, ``block_rows`` rows at a time.

    Reads the file block by block, so a store larger than memory can be scanned.
    The header (and the space) is checked when this function is called, not at the first block.
    """
    if channel not in ("P", "M"):
        raise ValueError(f"channel must be 'P' or 'M', got {channel!r}")
    if isinstance(block_rows, bool) or not isinstance(block_rows, int) or block_rows < 1:
        raise ValueError(f"block_rows must be a positive integer, got {block_rows!r}")
    target = Path(path)
    prefix = open_info(target).group(space_digest)
    return _blocks(target, f"{prefix}signatures_{channel.lower()}", block_rows)


def _blocks(path: Path, name: str, block_rows: int) -> Iterator[tuple[int, npt.NDArray[np.float32]]]:
    with open_h5(path) as f:
        n = header(f, path).count
        for start in range(0, n, block_rows):
            block = np.ascontiguousarray(f[name][start : start + block_rows], dtype=np.float32)
            if not np.isfinite(block).all():
                raise StoreError(f"{path}: dataset {name} holds a non-finite value near row {start}")
            yield start, block
