"""The journal of an Extract run: every finished song, durable, so that a killed run resumes (issue 13).

A folder beside the store, ``.<store name>.journal/`` in the store's folder, holding RFC 8785
canonical JSON files, each written whole (temporary file, fsync, rename, fsync of the folder):

- ``journal.json``: ``{"format": "lumina-extract-journal", "version": 1, "manifest_sha256",
  "store", "methods", "signature_spaces": {method: digest}}``;
- ``workers/<id>.json``: ``{"format": "lumina-extract-journal-worker", "version": 1,
  "manifest_sha256", "worker": {"id", "engine", "host", "pid", "device", "environment"}}``, the
  process that computed songs (its :func:`~lumina_audit.signature.environment.describe`);
- ``songs/<index, 8 digits>.json``: ``{"format": "lumina-extract-journal-song", "version": 1,
  "manifest_sha256", "index", "song_id", "path", "file_size", "file_sha256", "pcm_sha256",
  "chunks", "worker", "signatures": {method: {"signature_space_sha256", "p", "m", "raw_p",
  "raw_m"}}, "entry_sha256"}``: one song, its vectors as base64 of little-endian float32 (``p``,
  ``m``, [dim]) and float64 (``raw_p``, ``raw_m``, [dim]) bytes, and the SHA-256 of the
  canonical JSON of the rest.

The journal is not an output: nothing reads it but the next run of the same manifest, which
refuses a journal of another manifest digest or signature space, or of an unknown format or
version, by name. It is removed once the store is written and recorded.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import rfc8785

from .._internal.fileio import fsync_dir, write_file
from ..signature.result import Signature
from .base import RunError

__all__ = ["ENTRY_FORMAT", "FORMAT", "VERSION", "WORKER_FORMAT", "Journal", "JournalError", "SongEntry",
           "journal_path"]

FORMAT, ENTRY_FORMAT, WORKER_FORMAT = "lumina-extract-journal", "lumina-extract-journal-song", \
    "lumina-extract-journal-worker"
VERSION = 1
_HEX64 = re.compile(r"[0-9a-f]{64}")
_SONG = re.compile(r"([0-9]{8})\.json")
_WORKER = re.compile(r"([0-9a-z-]{1,64})\.json")
_VECTORS = (("p", "<f4"), ("m", "<f4"), ("raw_p", "<f8"), ("raw_m", "<f8"))
_HINT = "it is not this run's journal; finish the run it belongs to, or remove it (rm -r {path}) to start afresh"


class JournalError(RunError):
    """A journal (or one of its files) that this run cannot use; nothing was written."""


def journal_path(store: Path) -> Path:
    """Where the journal of the store ``store`` lives: ``.<name>.journal`` in the store's folder."""
    return store.parent / f".{store.name}.journal"


@dataclass(frozen=True)
class SongEntry:
    """One journaled song without its vectors: what the store's rows and the ledger record need."""

    index: int
    song_id: str
    path: str
    file_size: int
    file_sha256: str
    pcm_sha256: str
    chunks: int
    worker: str


def _canonical(doc: Mapping[str, Any]) -> bytes:
    return rfc8785.dumps(dict(doc)) + b"\n"


def _load(path: Path) -> dict[str, Any]:
    try:
        doc = json.loads(path.read_bytes())
    except (OSError, ValueError) as exc:
        raise JournalError(f"{path}: unreadable journal file ({exc})",
                           hint=f"remove it ({path}) and run the manifest again; that song is computed again"
                           ) from None
    if not isinstance(doc, dict):
        raise JournalError(f"{path}: a journal file must hold a JSON object")
    return doc


def _format(path: Path, doc: Mapping[str, Any], name: str, journal: Path) -> None:
    if doc.get("format") != name or doc.get("version") != VERSION:
        raise JournalError(f"{path}: not a {name} version {VERSION} file (format {doc.get('format')!r}, version "
                           f"{doc.get('version')!r}); this reader knows version {VERSION}",
                           hint=_HINT.format(path=journal))


def _vector(path: Path, text: Any, dtype: str, dim: int) -> np.ndarray[Any, Any]:
    try:
        data = base64.b64decode(text, validate=True) if isinstance(text, str) else b""
    except (binascii.Error, ValueError):
        data = b""
    if len(data) != dim * np.dtype(dtype).itemsize:
        raise JournalError(f"{path}: a vector is not {dim} {dtype} values")
    v = np.frombuffer(data, dtype=dtype).copy()
    if not np.isfinite(v).all():
        raise JournalError(f"{path}: a vector holds a non-finite value")
    return v


class Journal:
    """The journal folder of one Extract run (``path``), checked against the run it serves.

    Nothing is written until :meth:`put` or :meth:`add_worker` first needs the folder.
    """

    def __init__(self, path: Path, header: dict[str, Any], dims: Mapping[str, int]) -> None:
        self.path, self.header, self.dims = path, header, dict(dims)

    @classmethod
    def open(cls, path: Path, manifest_digest: str, spaces: Mapping[str, str], dims: Mapping[str, int],
             store_name: str) -> Journal:
        """The journal at ``path`` for a run of manifest ``manifest_digest`` computing ``spaces`` (method -> digest).

        An existing journal of another format, version, manifest or signature space is refused.
        """
        header = {"format": FORMAT, "version": VERSION, "manifest_sha256": manifest_digest, "store": store_name,
                  "methods": list(spaces), "signature_spaces": dict(spaces)}
        head = path / "journal.json"
        if head.exists():
            doc = _load(head)
            _format(head, doc, FORMAT, path)
            if doc.get("manifest_sha256") != manifest_digest:
                raise JournalError(f"{path}: journal of manifest {doc.get('manifest_sha256')}, this run's manifest "
                                   f"is {manifest_digest}", hint=_HINT.format(path=path))
            if doc.get("signature_spaces") != dict(spaces) or doc.get("methods") != list(spaces):
                theirs = doc.get("signature_spaces")
                raise JournalError(f"{path}: journal of signature spaces {theirs}, this run computes {dict(spaces)}",
                                   hint=_HINT.format(path=path))
            if doc != header:
                raise JournalError(f"{path}: journal.json differs from this run's ({doc} vs {header})",
                                   hint=_HINT.format(path=path))
        elif path.exists() and any(path.iterdir()) and not (path / "songs").is_dir():
            raise JournalError(f"{path}: exists but holds no journal.json", hint=_HINT.format(path=path))
        return cls(path, header, dims)

    @property
    def manifest_digest(self) -> str:
        return str(self.header["manifest_sha256"])

    def _ensure(self) -> None:
        if (self.path / "journal.json").exists():
            return
        for folder in (self.path, self.path / "songs", self.path / "workers"):
            folder.mkdir(parents=True, exist_ok=True)
        fsync_dir(self.path.parent)
        fsync_dir(self.path)
        write_file(self.path / "journal.json", _canonical(self.header), replace=True)

    def indexes(self) -> list[int]:
        """The indexes of the journaled songs, ascending (temporary files of a crashed write are removed)."""
        folder = self.path / "songs"
        if not folder.is_dir():
            return []
        out = []
        for f in folder.iterdir():
            if f.name.startswith(".") and f.name.endswith(".tmp"):
                f.unlink(missing_ok=True)
            elif (found := _SONG.fullmatch(f.name)) is not None:
                out.append(int(found.group(1)))
            else:
                raise JournalError(f"{f}: not a journal file", hint=_HINT.format(path=self.path))
        return sorted(out)

    def _song_path(self, index: int) -> Path:
        return self.path / "songs" / f"{index:08d}.json"

    def read(self, index: int) -> tuple[SongEntry, dict[str, Signature]]:
        """One journaled song and its signatures by method, every field checked (a corrupt file is refused)."""
        path = self._song_path(index)
        doc = _load(path)
        _format(path, doc, ENTRY_FORMAT, self.path)
        claimed = doc.pop("entry_sha256", None)
        if claimed != hashlib.sha256(_canonical(doc)).hexdigest():
            raise JournalError(f"{path}: entry_sha256 does not match the entry (a corrupt journal file)",
                               hint=f"remove it ({path}) and run the manifest again; that song is computed again")
        if doc.get("manifest_sha256") != self.manifest_digest or doc.get("index") != index:
            raise JournalError(f"{path}: entry of manifest {doc.get('manifest_sha256')} and song {doc.get('index')}, "
                               f"expected {self.manifest_digest} and {index}", hint=_HINT.format(path=self.path))
        try:
            entry = SongEntry(index, doc["song_id"], doc["path"], doc["file_size"], doc["file_sha256"],
                              doc["pcm_sha256"], doc["chunks"], doc["worker"])
            sigs_doc = doc["signatures"]
        except KeyError as exc:
            raise JournalError(f"{path}: missing key {exc}") from None
        ok = (isinstance(entry.song_id, str) and isinstance(entry.path, str) and isinstance(entry.worker, str)
              and all(isinstance(h, str) and _HEX64.fullmatch(h) for h in (entry.file_sha256, entry.pcm_sha256))
              and all(type(v) is int and v >= 1 for v in (entry.file_size, entry.chunks))
              and isinstance(sigs_doc, dict) and set(sigs_doc) == set(self.header["signature_spaces"]))
        if not ok:
            raise JournalError(f"{path}: malformed entry")
        sigs = {}
        for method, digest in self.header["signature_spaces"].items():
            one = sigs_doc[method]
            if not isinstance(one, dict) or one.get("signature_space_sha256") != digest:
                raise JournalError(f"{path}: the {method} signature is not of space {digest}")
            v = {name: _vector(path, one.get(name), dtype, self.dims[method]) for name, dtype in _VECTORS}
            sigs[method] = Signature(entry.song_id, entry.file_sha256, entry.pcm_sha256, entry.chunks,
                                     raw_p=v["raw_p"], raw_m=v["raw_m"], p=v["p"], m=v["m"])
        return entry, sigs

    def put(self, entry: SongEntry, sigs: Mapping[str, Signature]) -> None:
        """Journal one song, durably and whole (a song journaled again replaces its file)."""
        self._ensure()
        doc: dict[str, Any] = {
            "format": ENTRY_FORMAT, "version": VERSION, "manifest_sha256": self.manifest_digest,
            "index": entry.index, "song_id": entry.song_id, "path": entry.path, "file_size": entry.file_size,
            "file_sha256": entry.file_sha256, "pcm_sha256": entry.pcm_sha256, "chunks": entry.chunks,
            "worker": entry.worker,
            "signatures": {method: {"signature_space_sha256": digest,
                                    **{name: base64.b64encode(np.ascontiguousarray(getattr(sigs[method], name),
                                                                                   dtype=dtype).tobytes()).decode()
                                       for name, dtype in _VECTORS}}
                           for method, digest in self.header["signature_spaces"].items()},
        }
        doc["entry_sha256"] = hashlib.sha256(_canonical(doc)).hexdigest()
        write_file(self._song_path(entry.index), _canonical(doc), replace=True)

    def drop(self, index: int) -> None:
        """Forget one song (its input changed since it was journaled): it is computed again."""
        self._song_path(index).unlink(missing_ok=True)
        fsync_dir(self._song_path(index).parent)

    def workers(self) -> dict[str, dict[str, Any]]:
        """Every worker that journaled songs, by id: ``{"id", "engine", "host", "pid", "device", "environment"}``."""
        folder = self.path / "workers"
        out: dict[str, dict[str, Any]] = {}
        if not folder.is_dir():
            return out
        for f in sorted(folder.iterdir()):
            if f.name.startswith(".") and f.name.endswith(".tmp"):
                f.unlink(missing_ok=True)
                continue
            found = _WORKER.fullmatch(f.name)
            doc = _load(f)
            _format(f, doc, WORKER_FORMAT, self.path)
            info = doc.get("worker")
            if (found is None or doc.get("manifest_sha256") != self.manifest_digest or not isinstance(info, dict)
                    or info.get("id") != found.group(1) or not isinstance(info.get("environment"), dict)):
                raise JournalError(f"{f}: malformed worker file", hint=_HINT.format(path=self.path))
            out[found.group(1)] = info
        return out

    def add_worker(self, info: Mapping[str, Any]) -> None:
        """Record a worker before its first song (``info["id"]``: lowercase letters, digits and ``-``)."""
        if not isinstance(info.get("id"), str) or not _WORKER.fullmatch(f"{info['id']}.json"):
            raise JournalError(f"worker id {info.get('id')!r} is not 1-64 of a-z 0-9 -")
        self._ensure()
        doc = {"format": WORKER_FORMAT, "version": VERSION, "manifest_sha256": self.manifest_digest,
               "worker": dict(info)}
        write_file(self.path / "workers" / f"{info['id']}.json", _canonical(doc), replace=True)

    def remove(self) -> None:
        """Delete the journal (after the store is written and recorded)."""
        if self.path.exists():
            shutil.rmtree(self.path)
            fsync_dir(self.path.parent)
