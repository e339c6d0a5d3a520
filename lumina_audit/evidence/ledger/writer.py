"""Appending to a ledger, under its writer lock, and repairing a crashed writer's torn tail.

Every append writes the record (one ``os.write`` to an ``O_APPEND`` fd, then fsync) and then a
checkpoint over all records, signed by the same key with the principal as key name. An append
holds the exclusive lock, re-reads both files and refuses a torn tail, a corrupt frame or a
broken chain (seq, prev, time, the latest checkpoint's root); it does not check trust, which is
:func:`~.verification.verify`'s job.

:func:`repair` removes only torn tails, with ``ftruncate`` + fsync under the exclusive lock: a
truncation to a frame boundary is one metadata operation (old or new length after a crash), and
no writer can interleave. It refuses corrupt frames and torn records inside the checkpointed
range: it never drops a complete record or checkpoint.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..._internal.fileio import append_file, fsync_dir, truncate_file, write_file
from .. import merkle, note
from ..dsse import pae
from ..keys import key_id as public_key_id
from .format import (
    CHECKPOINTS,
    FORMAT,
    HEADER,
    HINT_REPAIR,
    LEDGER_PAYLOAD_TYPE,
    LOCK,
    PRINCIPAL,
    RECORD_FORMAT,
    RECORDS,
    VERSION,
    ZERO_HASH,
    Frames,
    LedgerError,
    Record,
    checkpoint_body,
    checkpoint_size,
    decode_frames,
    decode_record,
    encode_frame,
    format_time,
    key_event_error,
    read_file,
    read_header,
)
from .tree import prefix_roots

__all__ = ["Appended", "Ledger", "RepairReport", "lock", "repair"]


@contextlib.contextmanager
def lock(path: Path, exclusive: bool, required: bool = True) -> Iterator[None]:
    """The ledger's ``flock``: exclusive for a writer, shared for a reader (``required=False``: go on without it)."""
    fd = None
    try:
        fd = os.open(path / LOCK, os.O_RDONLY)
    except OSError as exc:
        if required:
            raise LedgerError(f"{path / LOCK}: cannot open the lock ({exc.strerror})") from None
    try:
        if fd is not None:
            fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        if fd is not None:
            os.close(fd)


def _append_durably(path: Path, data: bytes) -> None:
    """One ``os.write`` of ``data`` to an O_APPEND fd, then fsync (:func:`append_file`); any failure is a
    LedgerError."""
    try:
        written = append_file(path, data)
    except FileNotFoundError as exc:
        raise LedgerError(f"{path}: cannot open for append ({exc.strerror})") from None
    except OSError as exc:
        raise LedgerError(f"{path}: write or fsync failed ({exc.strerror})", hint=HINT_REPAIR) from None
    if written != len(data):
        raise LedgerError(f"{path}: short write ({written} of {len(data)} bytes)", hint=HINT_REPAIR)


def _structure(origin: str, recs: Frames, cps: Frames, *, allow_torn: bool,
               full: bool = True) -> tuple[list[Record], list[str]]:
    """Records and checkpoint texts of a ledger that is whole apart from (optionally) torn tails.

    Checks framing, records, seq, prev, time order, checkpoint origin, size and root; with
    ``full=False`` neither the records' canonical form nor checkpoints other than the latest.
    Never signatures or trust (that is verification's). Raises :class:`LedgerError`.
    """
    for name, frames in ((RECORDS, recs), (CHECKPOINTS, cps)):
        if frames.tail and not (allow_torn and frames.torn):
            what = "a torn tail" if frames.torn else "a corrupt frame"
            raise LedgerError(f"{name} has {what} at offset {frames.end} ({len(frames.tail)} bytes)",
                              hint=HINT_REPAIR)
    records: list[Record] = []
    for i, payload in enumerate(recs.payloads):
        try:
            rec = decode_record(payload, canonical=full)
        except LedgerError as exc:
            raise LedgerError(f"record {i}: {exc.message}", hint=HINT_REPAIR) from None
        prev = hashlib.sha256(recs.payloads[i - 1]).hexdigest() if i else ZERO_HASH
        if rec.seq != i or rec.prev != prev or (records and rec.time < records[-1].time):
            raise LedgerError(f"record {i}: seq, prev or time breaks the chain", hint=HINT_REPAIR)
        records.append(rec)
    roots = prefix_roots([r.leaf_hash for r in records])
    texts = [p.decode("utf-8", "replace") for p in cps.payloads]
    for j, text in enumerate(texts):
        if not full and j < len(texts) - 1:
            continue
        cp = checkpoint_body(text)
        if cp.origin != origin or cp.size > len(records) or cp.root_hash != roots[cp.size]:
            raise LedgerError(f"checkpoint {j} (size {cp.size}) does not match the records", hint=HINT_REPAIR)
    return records, texts


@dataclass(frozen=True)
class Appended:
    seq: int
    record: bytes
    leaf_hash: bytes
    checkpoint: str


class Ledger:
    """An open ledger directory. Every method re-reads the files; nothing is cached but the header."""

    def __init__(self, path: Path, origin: str, created: datetime) -> None:
        self.path, self.origin, self.created = path, origin, created

    @classmethod
    def create(cls, path: Path, origin: str | None = None) -> Ledger:
        path = Path(path)
        origin = origin if origin is not None else "lumina-audit/ledger/" + secrets.token_hex(16)
        try:
            note.format_checkpoint(origin, 0, merkle.EMPTY_ROOT)
        except note.NoteError as exc:
            raise LedgerError(exc.message) from None
        created = datetime.now(UTC)
        header: dict[str, Any] = {"format": FORMAT, "version": VERSION, "origin": origin,
                                  "created": format_time(created)}
        try:
            path.mkdir(parents=True, exist_ok=True)
            if any((path / name).exists() for name in (HEADER, RECORDS, CHECKPOINTS, LOCK)):
                raise LedgerError(f"{path}: already holds ledger files; refusing to overwrite them")
            for name, data in ((RECORDS, b""), (CHECKPOINTS, b""), (LOCK, b""),
                               (HEADER, rfc8785.dumps(header) + b"\n")):
                write_file(path / name, data)
            fsync_dir(path.resolve().parent)
        except OSError as exc:
            raise LedgerError(f"{path}: cannot create the ledger ({exc.strerror})") from None
        return cls(path, origin, created)

    @classmethod
    def open(cls, path: Path) -> Ledger:
        path = Path(path)
        return cls(path, *read_header(path))

    def _load(self, *, allow_torn: bool, full: bool = True) -> tuple[list[Record], list[str]]:
        recs, cps = decode_frames(read_file(self.path / RECORDS)), decode_frames(read_file(self.path / CHECKPOINTS))
        return _structure(self.origin, recs, cps, allow_torn=allow_torn, full=full)

    def contents(self) -> tuple[tuple[Record, ...], tuple[str, ...]]:
        """The records and the checkpoint texts, read together under the shared lock (torn tails allowed)."""
        with lock(self.path, exclusive=False):
            records, texts = self._load(allow_torn=True)
        return tuple(records), tuple(texts)

    def records(self) -> tuple[Record, ...]:
        with lock(self.path, exclusive=False):
            return tuple(self._load(allow_torn=True)[0])

    def checkpoints(self) -> tuple[str, ...]:
        with lock(self.path, exclusive=False):
            return tuple(self._load(allow_torn=True)[1])

    def latest_checkpoint(self) -> str | None:
        cps = self.checkpoints()
        return cps[-1] if cps else None

    def append(self, kind: str, body: dict[str, Any] | Callable[[int], dict[str, Any]],
               signer_key: Ed25519PrivateKey, principal: str, now: datetime | None = None) -> Appended:
        """Append one record and a checkpoint, under the writer lock.

        ``body`` may be a function of the record's sequence number, called under the
        lock: a run whose outputs must name their own ledger position writes them there.
        If it raises, nothing is appended.
        """
        if not isinstance(kind, str) or not kind or not (isinstance(body, dict) or callable(body)):
            raise LedgerError("a record needs a non-empty kind and an object body")
        if not PRINCIPAL.fullmatch(principal):
            raise LedgerError(f"principal {principal!r} must match [A-Za-z0-9._@-]{{1,128}}")
        if isinstance(body, dict) and (problem := key_event_error(kind, body)) is not None:
            raise LedgerError(problem)
        if now is not None and now.tzinfo is None:
            raise LedgerError("the record time must carry a time zone")
        with lock(self.path, exclusive=True):
            records, _ = self._load(allow_torn=False, full=False)
            if callable(body):
                body = body(len(records))
                if not isinstance(body, dict) or (problem := key_event_error(kind, body)) is not None:
                    raise LedgerError(problem or "the body function must return an object")
            when = datetime.now(UTC) if now is None else now.astimezone(UTC)
            if records and when < records[-1].time:
                raise LedgerError(f"time {format_time(when)} is before the last record's; the clock went back")
            prev = hashlib.sha256(records[-1].payload).hexdigest() if records else ZERO_HASH
            doc: dict[str, Any] = {
                "format": RECORD_FORMAT, "version": 1, "seq": len(records), "time": format_time(when),
                "prev": prev, "kind": kind, "body": body,
                "signer": {"key_id": public_key_id(signer_key.public_key()), "principal": principal},
            }
            try:
                signature = signer_key.sign(pae(LEDGER_PAYLOAD_TYPE, rfc8785.dumps(doc)))
                payload = rfc8785.dumps({**doc, "signature": base64.b64encode(signature).decode()})
                decode_record(payload)
            except (rfc8785.CanonicalizationError, LedgerError) as exc:
                raise LedgerError(f"the record cannot be written as canonical JSON: {exc}") from None
            _append_durably(self.path / RECORDS, encode_frame(payload))
            leaves = [r.leaf_hash for r in records] + [merkle.leaf_hash(payload)]
            body_text = note.format_checkpoint(self.origin, len(leaves), merkle.root_from_leaf_hashes(leaves))
            checkpoint = note.sign_note(body_text, principal, signer_key)
            _append_durably(self.path / CHECKPOINTS, encode_frame(checkpoint.encode()))
        return Appended(len(records), payload, leaves[-1], checkpoint)


@dataclass(frozen=True)
class RepairReport:
    path: Path
    records_bytes_removed: int
    checkpoints_bytes_removed: int
    checkpoint_added: str | None
    records: int
    checkpoints: int

    @property
    def changed(self) -> bool:
        return bool(self.records_bytes_removed or self.checkpoints_bytes_removed or self.checkpoint_added)


def repair(path: Path, *, signer_key: Ed25519PrivateKey | None = None, principal: str | None = None) -> RepairReport:
    """Remove torn tails (only); with ``signer_key`` and ``principal``, checkpoint uncovered records."""
    ledger = Ledger.open(Path(path))
    if signer_key is not None and (principal is None or not PRINCIPAL.fullmatch(principal)):
        raise LedgerError("repair with a signing key needs a valid principal")
    with lock(ledger.path, exclusive=True):
        recs = decode_frames(read_file(ledger.path / RECORDS))
        cps = decode_frames(read_file(ledger.path / CHECKPOINTS))
        claimed = max((checkpoint_size(p) for p in cps.payloads), default=0)
        if recs.tail and recs.torn and len(recs.payloads) < claimed:
            raise LedgerError(f"torn record inside the checkpointed range at offset {recs.end}; repair refuses "
                              "to drop checkpointed records", hint="restore the ledger from a copy")
        records, texts = _structure(ledger.origin, recs, cps, allow_torn=True)
        for name, frames in ((RECORDS, recs), (CHECKPOINTS, cps)):
            if frames.tail:
                try:
                    truncate_file(ledger.path / name, frames.end)
                except OSError as exc:
                    raise LedgerError(f"{ledger.path / name}: cannot truncate ({exc.strerror})") from None
        added = None
        covered = max((checkpoint_body(t).size for t in texts), default=0)
        if signer_key is not None and principal is not None and len(records) > covered:
            root = merkle.root_from_leaf_hashes([r.leaf_hash for r in records])
            added = note.sign_note(note.format_checkpoint(ledger.origin, len(records), root), principal, signer_key)
            _append_durably(ledger.path / CHECKPOINTS, encode_frame(added.encode()))
    return RepairReport(ledger.path, len(recs.tail), len(cps.tail), added, len(records),
                        len(texts) + (added is not None))
