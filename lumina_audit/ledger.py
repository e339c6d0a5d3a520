"""The run ledger: append-only, hash-chained, signed and Merkle-logged (in the style of CT and Rekor).

A ledger is a directory holding four files:

``ledger.json``
    ``{"format": "lumina-ledger", "version": 1, "origin": ..., "created": ...}`` as RFC 8785
    JSON, written once and fsynced (file, directory, parent). Readers refuse other formats.
``records``
    One frame per record. A frame is the line ``<decimal length> <sha256 hex> <payload>\\n``;
    it is complete only when length, hash and newline all check out.
``checkpoints``
    One frame per C2SP signed note whose text is a tlog checkpoint (origin, size, root).
``lock``
    Taken with ``flock``: exclusive by writers (append, repair), shared by readers.

A record is RFC 8785 JSON with exactly the members ``format`` (``lumina-ledger-record``),
``version`` (1), ``seq`` (0-based), ``time`` (``YYYY-MM-DDTHH:MM:SS.ffffffZ``), ``prev`` (SHA-256 hex
of the previous record's payload, 64 zeros for seq 0), ``kind``, ``body`` (an object), ``signer``
(``{"key_id", "principal"}``) and ``signature``: base64 Ed25519 over the DSSE PAE of
:data:`PAYLOAD_TYPE` and the canonical record without ``signature``. Merkle leaves (RFC 9162) are
the record payloads. Every append writes the record (one ``os.write`` to an ``O_APPEND`` fd, then
fsync) and then a checkpoint over all records, signed by the same key with the principal as
key name. An append holds the exclusive lock, re-reads both files and refuses a torn tail, a
corrupt frame or a broken chain (seq, prev, time, the latest checkpoint's root); it does not
check trust, which is :func:`verify`'s job. Tests only: ``LUMINA_AUDIT_TEST_TORN_WRITE=1`` makes
append write half the record frame, fsync and sleep 60 s (to be killed).

:func:`prove` gives a JSON inclusion proof of a record against the latest checkpoint;
:func:`verify_proof` checks it offline (record signature and checkpoint key trusted at the
record's time, RFC 9162 inclusion); revocations recorded in the ledger are not visible there.

Rules :func:`verify` checks (each finding names the record it concerns):

1. header format and version; 2. every frame complete: an incomplete last frame that is a
prefix of one frame is a *torn tail* (a crash mid-write) or, when checkpoints cover the records
it cut off, a torn record inside the checkpointed range; anything else is a corrupt frame;
3. each record is canonical with exactly the members above; 4. seq equals position, ``prev``
chains, time never goes backwards; 5. the signer key is trusted for ``lumina-audit/ledger``
at the record's own time, under the trust-file principal, and the signature verifies;
6. a ``key-revocation`` record (body ``{"key_id", "reason"}``) or a ``key-rotation`` record
(body ``{"old_key_id", "new_key_id"}``, signed by the old key, the new key trusted) retires a
key: later records, and checkpoints covering later records, signed by it are invalid; any
trusted ledger key may revoke any key (itself included); 7. every checkpoint is signed by a
key trusted at the time of the last record it covers, has the ledger's origin, covers no more
records than exist, has the Merkle root of the records it covers, and is consistent (RFC 9162
proof) with the previous one; 8. coverage: a complete record that no valid checkpoint covers
makes the ledger invalid. A record is evidence only once the log commits to it; such a record
comes from a crash between the record and its checkpoint, and ``repair`` with a key (or the
next append) commits it; 9. an external checkpoint kept elsewhere must verify and match the
ledger's prefix of its size (this catches truncation and rewriting by the key holder);
10. outputs: a body ``"outputs": [{"path", "size", "sha256"}]`` names files that must exist
with that size and hash; relative paths are resolved against ``outputs_root`` (default: the
directory holding the ledger directory); when several records list the same path, only the
latest record's entry is checked (a re-run legitimately replaces a file).

:func:`repair` removes only torn tails, with ``ftruncate`` + fsync under the exclusive lock: a
truncation to a frame boundary is one metadata operation (old or new length after a crash), and
no writer can interleave. It refuses corrupt frames and torn records inside the checkpointed
range: it never drops a complete record or checkpoint.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import fcntl
import hashlib
import json
import os
import re
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ._internal import merkle, note
from ._internal.fileio import fsync_dir
from .dsse import pae
from .errors import LuminaError
from .keys import key_id as public_key_id
from .trust import TrustError, TrustStore

__all__ = [
    "NAMESPACE", "PAYLOAD_TYPE", "Appended", "Finding", "Frames", "Ledger", "LedgerError", "LedgerReport",
    "ProofReport", "Record", "RepairReport", "decode_frames", "encode_frame", "prove", "repair",
    "verify", "verify_proof",
]

FORMAT, VERSION, RECORD_FORMAT, PROOF_FORMAT = "lumina-ledger", 1, "lumina-ledger-record", "lumina-inclusion-proof"
NAMESPACE = "lumina-audit/ledger"
PAYLOAD_TYPE = "application/vnd.lumina-audit.ledger-record.v1+json"
TORN_WRITE_ENV = "LUMINA_AUDIT_TEST_TORN_WRITE"
HEADER, RECORDS, CHECKPOINTS, LOCK = "ledger.json", "records", "checkpoints", "lock"
ZERO_HASH = "0" * 64
Status = Literal["valid", "invalid", "could-not-check"]

_HEX64 = re.compile(r"[0-9a-f]{64}")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")
_PRINCIPAL = re.compile(r"[A-Za-z0-9._@-]{1,128}")
_HEAD = re.compile(rb"(0|[1-9][0-9]{0,15}) ([0-9a-f]{64}) ")
_HEAD_PREFIX = re.compile(rb"(?:0|[1-9][0-9]{0,15})(?: [0-9a-f]{0,64})?")
_MEMBERS = frozenset({"format", "version", "seq", "time", "prev", "kind", "body", "signer", "signature"})
_HINT_REPAIR = "run `lumina-audit ledger verify`, then `lumina-audit ledger repair` if it reports a torn tail"


class LedgerError(LuminaError):
    """A ledger was refused, could not be written, or a proof did not verify."""

    exit_code = 1


class _Unreadable(LedgerError):
    """The ledger cannot be read at all (missing, permissions, unknown format): could not check."""


# --------------------------------------------------------------------------- frames


def encode_frame(payload: bytes) -> bytes:
    return b"%d %s %s\n" % (len(payload), hashlib.sha256(payload).hexdigest().encode(), payload)


@dataclass(frozen=True)
class Frames:
    """The complete frames of a file, and what follows the last of them."""

    payloads: tuple[bytes, ...]
    end: int
    tail: bytes

    @property
    def torn(self) -> bool:
        """The tail is one frame cut short (a crash mid-write), not a corruption."""
        return _is_torn(self.tail)


def _frame_at(data: bytes, pos: int) -> tuple[bytes, int] | None:
    m = _HEAD.match(data, pos)
    if m is None:
        return None
    start, end = m.end(), m.end() + int(m.group(1))
    if data[end : end + 1] != b"\n" or hashlib.sha256(data[start:end]).hexdigest().encode() != m.group(2):
        return None
    return data[start:end], end + 1


def decode_frames(data: bytes) -> Frames:
    payloads, pos = [], 0
    while (found := _frame_at(data, pos)) is not None:
        payloads.append(found[0])
        pos = found[1]
    return Frames(tuple(payloads), pos, data[pos:])


def _is_torn(tail: bytes) -> bool:
    m = _HEAD.match(tail)
    if m is None:
        return bool(tail) and _HEAD_PREFIX.fullmatch(tail) is not None
    if len(tail) >= m.end() + int(m.group(1)) + 1:
        return False  # the whole frame is there: a bad hash or newline is corruption
    if tail.endswith(b"\n") and hashlib.sha256(tail[m.end() : -1]).hexdigest().encode() == m.group(2):
        return False  # a complete last frame whose length digits were altered
    # A complete frame after a newline inside the tail: an earlier frame's length was altered.
    return not any(tail[i] == 0x0A and _frame_at(tail, i + 1) for i in range(len(tail) - 1))


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class Record:
    seq: int
    time: datetime
    prev: str
    kind: str
    body: dict[str, Any]
    key_id: str
    principal: str
    signature: bytes
    payload: bytes  #: the framed bytes (the Merkle leaf data)

    @property
    def leaf_hash(self) -> bytes:
        return merkle.leaf_hash(self.payload)

    def signed_bytes(self) -> bytes:
        """What the signature covers: PAE of the canonical record without ``signature``."""
        doc = json.loads(self.payload)
        del doc["signature"]
        return pae(PAYLOAD_TYPE, rfc8785.dumps(doc))


def _format_time(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: Any) -> datetime:
    if not isinstance(text, str) or not _TIME.fullmatch(text):
        raise LedgerError(f"time {text!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
    try:
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    except ValueError:
        raise LedgerError(f"time {text!r} is not a valid date and time") from None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _decode_record(payload: bytes, *, canonical: bool = True) -> Record:
    """Parse a record payload; raise :class:`LedgerError` when it is not exactly a canonical record.

    ``canonical=False`` skips the (slow, pure Python) RFC 8785 comparison: appends use it for the
    records already in the ledger, whose canonical form :func:`verify` checks.
    """
    try:
        doc = json.loads(payload)
        if canonical and rfc8785.dumps(doc) != payload:
            raise LedgerError("is not RFC 8785 canonical JSON")
    except (ValueError, RecursionError):
        raise LedgerError("is not JSON that RFC 8785 can canonicalise") from None
    if not isinstance(doc, dict) or set(doc) != _MEMBERS:
        raise LedgerError(f"must have exactly the members {', '.join(sorted(_MEMBERS))}")
    signer = doc["signer"]
    if doc["format"] != RECORD_FORMAT or doc["version"] != 1 or not _is_int(doc["version"]):
        raise LedgerError(f"format/version is {doc['format']!r}/{doc['version']!r}, not {RECORD_FORMAT!r}/1")
    if not _is_int(doc["seq"]) or doc["seq"] < 0:
        raise LedgerError(f"seq {doc['seq']!r} is not a non-negative integer")
    if not isinstance(doc["prev"], str) or not _HEX64.fullmatch(doc["prev"]):
        raise LedgerError("prev is not 64 lowercase hex digits")
    if not isinstance(doc["kind"], str) or not doc["kind"] or not isinstance(doc["body"], dict):
        raise LedgerError("kind must be a non-empty string and body an object")
    if not isinstance(signer, dict) or set(signer) != {"key_id", "principal"} or not isinstance(
            signer["key_id"], str) or not _HEX64.fullmatch(signer["key_id"]) or not isinstance(
            signer["principal"], str):
        raise LedgerError("signer must be {key_id: 64 hex digits, principal: string}")
    try:
        signature = base64.b64decode(str(doc["signature"]).encode(), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        signature = b""
    if len(signature) != 64 or base64.b64encode(signature).decode() != doc["signature"]:
        raise LedgerError("signature is not canonical base64 of 64 bytes")
    return Record(doc["seq"], _parse_time(doc["time"]), doc["prev"], doc["kind"], doc["body"],
                  signer["key_id"], signer["principal"], signature, payload)


def _check_signature(rec: Record, trust: TrustStore) -> None:
    try:
        entry = trust.authorise(rec.key_id, NAMESPACE, rec.time)
    except TrustError as exc:
        raise LedgerError(exc.message) from None
    if entry.principal != rec.principal:
        raise LedgerError(f"principal {rec.principal!r} is not the trust-file principal {entry.principal!r}")
    try:
        entry.public_key.verify(rec.signature, rec.signed_bytes())
    except InvalidSignature:
        raise LedgerError(f"signature by {rec.principal} ({rec.key_id[:16]}...) does not verify") from None


def _key_event_error(kind: str, body: dict[str, Any]) -> str | None:
    """What is wrong with the body of a key-revocation or key-rotation record (None: nothing)."""
    want = {"key-revocation": {"key_id": "hex", "reason": "str"},
            "key-rotation": {"old_key_id": "hex", "new_key_id": "hex"}}.get(kind)
    if want is None:
        return None
    if set(body) != set(want) or any(
            not isinstance(body[k], str) or (t == "hex" and not _HEX64.fullmatch(body[k])) for k, t in want.items()):
        return f"{kind} body must be exactly {{{', '.join(want)}}} (key ids as 64 hex digits)"
    if kind == "key-rotation" and body["old_key_id"] == body["new_key_id"]:
        return "key-rotation from a key to itself"
    return None


# --------------------------------------------------------------------------- checkpoints


def _checkpoint_body(text: str) -> note.Checkpoint:
    """Parse a checkpoint note's text without checking its signatures."""
    split = text.rfind("\n\n")
    if split < 0:
        raise LedgerError("is not a signed note")
    try:
        return note.parse_checkpoint(text[: split + 1])
    except note.NoteError as exc:
        raise LedgerError(exc.message) from None


def _open_checkpoint(text: str, trust: TrustStore, at_for: Callable[[int], datetime]) -> tuple[note.Checkpoint, str]:
    """Steps: (1) parse; (2) a signature by a ledger key verifies; (3) that key is trusted when the
    last covered record was written. Returns the checkpoint and the key id that signed it."""
    cp = _checkpoint_body(text)
    refused: list[str] = []
    for entry in trust.keys_for(NAMESPACE):
        try:
            note.open_note(text, {entry.principal: entry.public_key})
        except note.NoteError as exc:
            if exc.message.startswith("note carries no signature"):
                continue
            raise LedgerError(exc.message) from None
        try:
            trust.authorise(entry.key_id, NAMESPACE, at_for(cp.size))
        except TrustError as exc:
            refused.append(exc.message)
            continue
        return cp, entry.key_id
    raise LedgerError("; ".join(refused) or f"no signature by a key trusted for {NAMESPACE}")


def _prefix_roots(leaf_hashes: Sequence[bytes]) -> list[bytes]:
    """``roots[k]``: the RFC 9162 root of the first ``k`` leaves, for every k (O(n log n))."""
    roots: list[bytes] = [merkle.EMPTY_ROOT]
    stack: list[tuple[bytes, int]] = []
    for h in leaf_hashes:
        node, height = h, 0
        while stack and stack[-1][1] == height:
            node, height = merkle.node_hash(stack.pop()[0], node), height + 1
        stack.append((node, height))
        r = node
        for left, _ in reversed(stack[:-1]):
            r = merkle.node_hash(left, r)
        roots.append(r)
    return roots


def _consistent(leaves: Sequence[bytes], old: note.Checkpoint, new: note.Checkpoint) -> str | None:
    if new.size < old.size:
        return f"size {new.size} is smaller than the previous checkpoint's {old.size}"
    try:
        proof = merkle.consistency_proof(leaves, old.size, new.size)
        merkle.verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)
    except merkle.ProofError as exc:
        return f"not consistent with the checkpoint of size {old.size}: {exc.message}"
    return None


# --------------------------------------------------------------------------- files


def _read_header(path: Path) -> tuple[str, datetime]:
    try:
        raw = (path / HEADER).read_bytes()
    except OSError as exc:
        raise _Unreadable(f"{path / HEADER}: cannot read the ledger header ({exc.strerror})") from None
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        raise LedgerError(f"{path / HEADER}: the header is not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION or isinstance(
            doc.get("version"), bool):
        got = (doc.get("format"), doc.get("version")) if isinstance(doc, dict) else type(doc).__name__
        raise _Unreadable(f"{path}: unknown ledger format/version {got}; this reads {FORMAT} version {VERSION}")
    origin = doc.get("origin")
    try:
        if not isinstance(origin, str):
            raise note.NoteError("not a string")
        note.format_checkpoint(origin, 0, merkle.EMPTY_ROOT)
    except note.NoteError:
        raise LedgerError(f"{path / HEADER}: origin {origin!r} is not a checkpoint origin line") from None
    return origin, _parse_time(doc.get("created"))


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LedgerError(f"{path}: cannot read ({exc.strerror})") from None


@contextlib.contextmanager
def _lock(path: Path, exclusive: bool, required: bool = True) -> Iterator[None]:
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
    """One ``os.write`` of ``data`` to an O_APPEND fd, then fsync; any failure is a LedgerError."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND)
    except OSError as exc:
        raise LedgerError(f"{path}: cannot open for append ({exc.strerror})") from None
    try:
        if os.environ.get(TORN_WRITE_ENV) == "1" and path.name == RECORDS:  # test hook: crash mid-record
            os.write(fd, data[: len(data) // 2])
            os.fsync(fd)
            time.sleep(60)
            raise LedgerError("test hook: torn write simulated")
        written = os.write(fd, data)
        os.fsync(fd)
    except OSError as exc:
        raise LedgerError(f"{path}: write or fsync failed ({exc.strerror})", hint=_HINT_REPAIR) from None
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)
    if written != len(data):
        raise LedgerError(f"{path}: short write ({written} of {len(data)} bytes)", hint=_HINT_REPAIR)


def _structure(origin: str, recs: Frames, cps: Frames, *, allow_torn: bool,
               full: bool = True) -> tuple[list[Record], list[str]]:
    """Records and checkpoint texts of a ledger that is whole apart from (optionally) torn tails.

    Checks framing, records, seq, prev, time order, checkpoint origin, size and root; with
    ``full=False`` neither the records' canonical form nor checkpoints other than the latest.
    Never signatures or trust (that is :func:`verify`). Raises :class:`LedgerError`.
    """
    for name, frames in ((RECORDS, recs), (CHECKPOINTS, cps)):
        if frames.tail and not (allow_torn and frames.torn):
            what = "a torn tail" if frames.torn else "a corrupt frame"
            raise LedgerError(f"{name} has {what} at offset {frames.end} ({len(frames.tail)} bytes)",
                              hint=_HINT_REPAIR)
    records: list[Record] = []
    for i, payload in enumerate(recs.payloads):
        try:
            rec = _decode_record(payload, canonical=full)
        except LedgerError as exc:
            raise LedgerError(f"record {i}: {exc.message}", hint=_HINT_REPAIR) from None
        prev = hashlib.sha256(recs.payloads[i - 1]).hexdigest() if i else ZERO_HASH
        if rec.seq != i or rec.prev != prev or (records and rec.time < records[-1].time):
            raise LedgerError(f"record {i}: seq, prev or time breaks the chain", hint=_HINT_REPAIR)
        records.append(rec)
    roots = _prefix_roots([r.leaf_hash for r in records])
    texts = [p.decode("utf-8", "replace") for p in cps.payloads]
    for j, text in enumerate(texts):
        if not full and j < len(texts) - 1:
            continue
        cp = _checkpoint_body(text)
        if cp.origin != origin or cp.size > len(records) or cp.root_hash != roots[cp.size]:
            raise LedgerError(f"checkpoint {j} (size {cp.size}) does not match the records", hint=_HINT_REPAIR)
    return records, texts


# --------------------------------------------------------------------------- the ledger


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
                                  "created": _format_time(created)}
        try:
            path.mkdir(parents=True, exist_ok=True)
            if any((path / name).exists() for name in (HEADER, RECORDS, CHECKPOINTS, LOCK)):
                raise LedgerError(f"{path}: already holds ledger files; refusing to overwrite them")
            for name, data in ((RECORDS, b""), (CHECKPOINTS, b""), (LOCK, b""),
                               (HEADER, rfc8785.dumps(header) + b"\n")):
                fd = os.open(path / name, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
                try:
                    os.write(fd, data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
            fsync_dir(path)
            fsync_dir(path.resolve().parent)
        except OSError as exc:
            raise LedgerError(f"{path}: cannot create the ledger ({exc.strerror})") from None
        return cls(path, origin, created)

    @classmethod
    def open(cls, path: Path) -> Ledger:
        path = Path(path)
        return cls(path, *_read_header(path))

    def _load(self, *, allow_torn: bool, full: bool = True) -> tuple[list[Record], list[str]]:
        recs, cps = decode_frames(_read(self.path / RECORDS)), decode_frames(_read(self.path / CHECKPOINTS))
        return _structure(self.origin, recs, cps, allow_torn=allow_torn, full=full)

    def records(self) -> tuple[Record, ...]:
        with _lock(self.path, exclusive=False):
            return tuple(self._load(allow_torn=True)[0])

    def checkpoints(self) -> tuple[str, ...]:
        with _lock(self.path, exclusive=False):
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
        if not _PRINCIPAL.fullmatch(principal):
            raise LedgerError(f"principal {principal!r} must match [A-Za-z0-9._@-]{{1,128}}")
        if isinstance(body, dict) and (problem := _key_event_error(kind, body)) is not None:
            raise LedgerError(problem)
        if now is not None and now.tzinfo is None:
            raise LedgerError("the record time must carry a time zone")
        with _lock(self.path, exclusive=True):
            records, _ = self._load(allow_torn=False, full=False)
            if callable(body):
                body = body(len(records))
                if not isinstance(body, dict) or (problem := _key_event_error(kind, body)) is not None:
                    raise LedgerError(problem or "the body function must return an object")
            when = datetime.now(UTC) if now is None else now.astimezone(UTC)
            if records and when < records[-1].time:
                raise LedgerError(f"time {_format_time(when)} is before the last record's; the clock went back")
            prev = hashlib.sha256(records[-1].payload).hexdigest() if records else ZERO_HASH
            doc: dict[str, Any] = {
                "format": RECORD_FORMAT, "version": 1, "seq": len(records), "time": _format_time(when),
                "prev": prev, "kind": kind, "body": body,
                "signer": {"key_id": public_key_id(signer_key.public_key()), "principal": principal},
            }
            try:
                signature = signer_key.sign(pae(PAYLOAD_TYPE, rfc8785.dumps(doc)))
                payload = rfc8785.dumps({**doc, "signature": base64.b64encode(signature).decode()})
                _decode_record(payload)
            except (rfc8785.CanonicalizationError, LedgerError) as exc:
                raise LedgerError(f"the record cannot be written as canonical JSON: {exc}") from None
            _append_durably(self.path / RECORDS, encode_frame(payload))
            leaves = [r.leaf_hash for r in records] + [merkle.leaf_hash(payload)]
            body_text = note.format_checkpoint(self.origin, len(leaves), merkle.root_from_leaf_hashes(leaves))
            checkpoint = note.sign_note(body_text, principal, signer_key)
            _append_durably(self.path / CHECKPOINTS, encode_frame(checkpoint.encode()))
        return Appended(len(records), payload, leaves[-1], checkpoint)


# --------------------------------------------------------------------------- proofs


@dataclass(frozen=True)
class ProofReport:
    """An inclusion proof that verified (failures raise, so :attr:`bottom_line` is always true)."""

    origin: str
    seq: int
    tree_size: int
    root: str
    record: bytes
    kind: str
    record_signer: str
    checkpoint_key_id: str

    @property
    def bottom_line(self) -> bool:
        return True


def prove(path: Path, seq: int) -> dict[str, Any]:
    """An offline inclusion proof of record ``seq`` against the latest checkpoint."""
    ledger = Ledger.open(Path(path))
    with _lock(ledger.path, exclusive=False):
        records, checkpoints = ledger._load(allow_torn=True)
    if not checkpoints:
        raise LedgerError(f"{path}: the ledger has no checkpoint yet")
    cp = _checkpoint_body(checkpoints[-1])
    if not 0 <= seq < cp.size:
        raise LedgerError(f"record {seq} is not covered by the latest checkpoint (size {cp.size})")
    proof = merkle.inclusion_proof([r.leaf_hash for r in records], seq, cp.size)
    return {"format": PROOF_FORMAT, "version": 1, "origin": ledger.origin, "record": records[seq].payload.decode(),
            "leaf_index": seq, "tree_size": cp.size, "proof": [p.hex() for p in proof],
            "checkpoint": checkpoints[-1]}


def verify_proof(doc: dict[str, Any], trust: TrustStore, *, expected_record: bytes | None = None) -> ProofReport:
    """Verify an inclusion proof offline, in numbered steps that raise :class:`LedgerError`.

    Key revocations are not visible offline: only the trust file's windows apply.
    """
    def fail(step: int, message: str) -> LedgerError:
        return LedgerError(f"proof step {step}: {message}")

    # Step 1: the document's shape.
    fields = {"format": str, "version": int, "origin": str, "record": str, "leaf_index": int, "tree_size": int,
              "proof": list, "checkpoint": str}
    if not isinstance(doc, dict) or any(
            not isinstance(doc.get(k), t) or isinstance(doc.get(k), bool) for k, t in fields.items()):
        raise fail(1, "not an inclusion proof document (" + ", ".join(fields) + ")")
    if doc["format"] != PROOF_FORMAT or doc["version"] != 1:
        raise fail(1, f"unknown proof format/version {doc['format']!r}/{doc['version']!r}")
    if not all(isinstance(p, str) and _HEX64.fullmatch(p) for p in doc["proof"]):
        raise fail(1, "proof elements must be 64 lowercase hex digits")
    # Step 2: the record is a canonical ledger record at the claimed index.
    try:
        record = doc["record"].encode()
        rec = _decode_record(record)
    except (LedgerError, UnicodeEncodeError) as exc:
        raise fail(2, f"record {exc}") from None
    if rec.seq != doc["leaf_index"]:
        raise fail(2, f"record has seq {rec.seq}, the proof claims leaf index {doc['leaf_index']}")
    # Step 3: the record's own signature, by a key trusted at the record's time.
    try:
        _check_signature(rec, trust)
    except LedgerError as exc:
        raise fail(3, f"record {rec.seq}: {exc.message}") from None
    # Step 4: the checkpoint, signed by a key trusted for the ledger (at the record's time at least).
    try:
        cp, cp_key = _open_checkpoint(doc["checkpoint"], trust, lambda _size: rec.time)
    except LedgerError as exc:
        raise fail(4, f"checkpoint: {exc.message}") from None
    if cp.origin != doc["origin"] or cp.size != doc["tree_size"]:
        raise fail(4, f"checkpoint is for {cp.origin!r} size {cp.size}, the proof claims {doc['origin']!r} "
                      f"size {doc['tree_size']}")
    # Step 5: the Merkle inclusion proof against the checkpoint's root.
    try:
        merkle.verify_inclusion(rec.leaf_hash, doc["leaf_index"], cp.size,
                                [bytes.fromhex(p) for p in doc["proof"]], cp.root_hash)
    except merkle.ProofError as exc:
        raise fail(5, exc.message) from None
    # Step 6: the record is the one the caller expects.
    if expected_record is not None and bytes(expected_record) != record:
        raise fail(6, "the proven record differs from the expected record")
    return ProofReport(cp.origin, rec.seq, cp.size, cp.root_hash.hex(), record, rec.kind, rec.principal, cp_key)


# --------------------------------------------------------------------------- verification


@dataclass(frozen=True)
class Finding:
    seq: int | None  #: the record concerned (None: the ledger as a whole)
    step: str
    message: str
    severity: Literal["invalid", "could-not-check"] = "invalid"


@dataclass(frozen=True)
class LedgerReport:
    path: Path
    status: Status
    records: int
    checkpoints: int
    findings: tuple[Finding, ...]

    @property
    def bottom_line(self) -> bool:
        return self.status == "valid"


def verify(path: Path, trust: TrustStore, *, check_outputs: bool = True, external_checkpoint: str | None = None,
           outputs_root: Path | None = None) -> LedgerReport:
    """Check everything the module docstring lists; never raises for a problem of the ledger."""
    path = Path(path)
    found: list[Finding] = []
    n_rec, n_cp = _verify(path, trust, check_outputs, external_checkpoint,
                          Path(outputs_root) if outputs_root is not None else path.resolve().parent, found)
    status: Status = "valid"
    if any(f.severity == "invalid" for f in found):
        status = "invalid"
    elif found:
        status = "could-not-check"
    return LedgerReport(path, status, n_rec, n_cp, tuple(found))


def _verify(path: Path, trust: TrustStore, check_outputs: bool, external: str | None, outputs_root: Path,
            found: list[Finding]) -> tuple[int, int]:
    def add(seq: int | None, step: str, message: str, cnc: bool = False) -> None:
        found.append(Finding(seq, step, message, "could-not-check" if cnc else "invalid"))

    # Step 1: header.
    try:
        origin, created = _read_header(path)
    except LedgerError as exc:
        add(None, "1 header", exc.message, isinstance(exc, _Unreadable))
        return 0, 0
    # Step 2: frames (read under a shared lock, so that no append is half-seen).
    try:
        with _lock(path, exclusive=False, required=False):
            rec_data, cp_data = (path / RECORDS).read_bytes(), (path / CHECKPOINTS).read_bytes()
    except FileNotFoundError as exc:
        add(None, "2 frames", f"{exc.filename} is missing")
        return 0, 0
    except OSError as exc:
        add(None, "2 frames", f"{exc.filename}: cannot read ({exc.strerror})", cnc=True)
        return 0, 0
    recs, cps = decode_frames(rec_data), decode_frames(cp_data)
    n = len(recs.payloads)
    leaves = [merkle.leaf_hash(p) for p in recs.payloads]
    roots = _prefix_roots(leaves)
    # Steps 3 to 6: each record.
    records: list[Record | None] = []
    last_time: datetime | None = None
    retired: dict[str, tuple[int, str]] = {}  # key id -> (record that retired it, how)
    for i, payload in enumerate(recs.payloads):
        try:
            rec = _decode_record(payload)
        except LedgerError as exc:
            add(i, "3 record", f"record {i}: {exc.message}")
            records.append(None)
            continue
        records.append(rec)
        prev = hashlib.sha256(recs.payloads[i - 1]).hexdigest() if i else ZERO_HASH
        if rec.seq != i:
            add(i, "4 chain", f"record {i}: seq is {rec.seq}, expected {i}")
        if rec.prev != prev:
            add(i, "4 chain", f"record {i}: prev is not the hash of record {i - 1}" if i else
                "record 0: prev is not 64 zeros")
        if last_time is not None and rec.time < last_time:
            add(i, "4 chain", f"record {i}: time {_format_time(rec.time)} goes backwards")
        last_time = rec.time if last_time is None else max(last_time, rec.time)
        try:
            _check_signature(rec, trust)
        except LedgerError as exc:
            add(i, "5 signature", f"record {i}: {exc.message}")
            continue
        if rec.key_id in retired:
            add(i, "6 keys", f"record {i}: signed by key {rec.key_id[:16]}... {retired[rec.key_id][1]}")
            continue
        if (problem := _key_event_error(rec.kind, rec.body)) is not None:
            add(i, "6 keys", f"record {i}: {problem}")
        elif rec.kind == "key-revocation":
            retired.setdefault(rec.body["key_id"], (i, f"revoked by record {i}"))
        elif rec.kind == "key-rotation":
            if rec.key_id != rec.body["old_key_id"]:
                add(i, "6 keys", f"record {i}: a key-rotation must be signed by the old key")
                continue
            try:
                trust.authorise(rec.body["new_key_id"], NAMESPACE, rec.time)
            except TrustError as exc:
                add(i, "6 keys", f"record {i}: rotation to an untrusted key: {exc.message}")
            retired.setdefault(rec.key_id, (i, f"rotated out by record {i}"))

    # The time a checkpoint of each size was made at the earliest: its last readable record's.
    times = [created]
    for r in records:
        times.append(r.time if r is not None else times[-1])

    def at_for(size: int) -> datetime:
        return times[min(size, n)]

    # Step 7: checkpoints.
    max_size, latest = 0, None
    for j, raw in enumerate(cps.payloads):
        try:
            cp, kid = _open_checkpoint(raw.decode("utf-8"), trust, at_for)
        except (LedgerError, UnicodeDecodeError) as exc:
            size = _safe_size(raw)
            add(size - 1 if 0 < size <= n else None, "7 checkpoints", f"checkpoint {j}: {exc}")
            continue
        about = cp.size - 1 if 0 < cp.size <= n else None
        problem = None
        if cp.origin != origin:
            problem = f"origin {cp.origin!r} is not the ledger's {origin!r}"
        elif cp.size > n:
            problem = f"covers {cp.size} records, the ledger has {n}"
        elif cp.root_hash != roots[cp.size]:
            problem = f"root differs from the Merkle root of records 0..{cp.size - 1}"
        elif kid in retired and cp.size > retired[kid][0] + 1:
            problem = f"signed by key {kid[:16]}... {retired[kid][1]}"
        elif latest is not None:
            problem = _consistent(leaves, latest, cp)
        if problem is not None:
            add(about, "7 checkpoints", f"checkpoint {j}: {problem}")
            continue
        latest, max_size = cp, max(max_size, cp.size)
    # Step 2 (continued), now that the checkpointed range is known.
    claimed = max((_safe_size(p) for p in cps.payloads), default=0)
    if recs.tail:
        where = f"{len(recs.tail)} bytes at offset {recs.end}"
        if recs.torn and n >= claimed:
            add(n, "2 frames", f"torn tail after the last checkpoint: {where}")
        elif recs.torn:
            add(n, "2 frames", f"torn record inside the checkpointed range: {where}")
        else:
            add(n, "2 frames", f"corrupt record frame: {where} cannot be read")
    if cps.tail:
        what = "torn checkpoint tail" if cps.torn else "corrupt checkpoint frame"
        add(None, "2 frames", f"{what}: {len(cps.tail)} bytes at offset {cps.end}")
    # Step 8: coverage.
    for i in range(max_size, n):
        add(i, "8 coverage", f"record {i} is not covered by a signed checkpoint")
    # Step 9: the external checkpoint.
    if external is not None:
        _check_external(external, trust, origin, n, leaves, roots, latest, retired, at_for, add)
    # Step 10: outputs.
    if check_outputs:
        _check_outputs(records, outputs_root, add)
    return n, len(cps.payloads)


def _safe_size(raw: bytes) -> int:
    try:
        return _checkpoint_body(raw.decode("utf-8")).size
    except (LedgerError, UnicodeDecodeError):
        return 0


def _check_external(text: str, trust: TrustStore, origin: str, n: int, leaves: list[bytes], roots: list[bytes],
                    latest: note.Checkpoint | None, retired: dict[str, tuple[int, str]],
                    at_for: Callable[[int], datetime], add: Callable[[int | None, str, str], None]) -> None:
    step = "9 external checkpoint"
    try:
        cp, kid = _open_checkpoint(text, trust, at_for)
    except LedgerError as exc:
        add(None, step, f"external checkpoint: {exc.message}")
        return
    if cp.origin != origin:
        add(None, step, f"external checkpoint is for origin {cp.origin!r}, the ledger's is {origin!r}")
    elif cp.size > n:
        add(n - 1 if n else None, step, f"truncated: external checkpoint covers {cp.size} records, ledger has {n}")
    elif cp.root_hash != roots[cp.size]:
        add(cp.size - 1 if cp.size else None, step,
            f"external checkpoint root differs from the root of records 0..{cp.size - 1}: history was rewritten")
    elif kid in retired and cp.size > retired[kid][0] + 1:
        add(cp.size - 1, step, f"external checkpoint signed by key {kid[:16]}... {retired[kid][1]}")
    elif latest is not None and latest.size >= cp.size and (problem := _consistent(leaves, cp, latest)):
        add(None, step, f"latest checkpoint {problem}")


def _check_outputs(records: list[Record | None], root: Path,
                   add: Callable[[int | None, str, str, bool], None]) -> None:
    step = "10 outputs"
    latest: dict[Path, tuple[int, dict[str, Any]]] = {}
    for rec in records:
        if rec is None or "outputs" not in rec.body:
            continue
        outputs = rec.body["outputs"]
        if not isinstance(outputs, list) or not all(
                isinstance(o, dict) and isinstance(o.get("path"), str) and _is_int(o.get("size"))
                and isinstance(o.get("sha256"), str) and _HEX64.fullmatch(o["sha256"]) for o in outputs):
            add(rec.seq, step, f"record {rec.seq}: outputs must be [{{path, size, sha256}}, ...]", False)
            continue
        for o in outputs:
            latest[root / o["path"]] = (rec.seq, o)  # an absolute path replaces root
    for file, (seq, o) in latest.items():
        where = f"record {seq}: output {o['path']}"
        try:
            digest, size = hashlib.sha256(), 0
            with open(file, "rb") as fh:
                while chunk := fh.read(1 << 20):
                    digest.update(chunk)
                    size += len(chunk)
        except (FileNotFoundError, ValueError):  # ValueError: a NUL in the path
            add(seq, step, f"{where} is missing", False)
            continue
        except OSError as exc:
            add(seq, step, f"{where} cannot be read ({exc.strerror})", True)
            continue
        if size != o["size"] or digest.hexdigest() != o["sha256"]:
            add(seq, step, f"{where} has changed: {size} bytes, sha256 {digest.hexdigest()[:16]}...", False)


# --------------------------------------------------------------------------- repair


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
    if signer_key is not None and (principal is None or not _PRINCIPAL.fullmatch(principal)):
        raise LedgerError("repair with a signing key needs a valid principal")
    with _lock(ledger.path, exclusive=True):
        recs = decode_frames(_read(ledger.path / RECORDS))
        cps = decode_frames(_read(ledger.path / CHECKPOINTS))
        claimed = max((_safe_size(p) for p in cps.payloads), default=0)
        if recs.tail and recs.torn and len(recs.payloads) < claimed:
            raise LedgerError(f"torn record inside the checkpointed range at offset {recs.end}; repair refuses "
                              "to drop checkpointed records", hint="restore the ledger from a copy")
        records, texts = _structure(ledger.origin, recs, cps, allow_torn=True)
        for name, frames in ((RECORDS, recs), (CHECKPOINTS, cps)):
            if frames.tail:
                try:
                    fd = os.open(ledger.path / name, os.O_WRONLY)
                    try:
                        os.ftruncate(fd, frames.end)
                        os.fsync(fd)
                    finally:
                        os.close(fd)
                except OSError as exc:
                    raise LedgerError(f"{ledger.path / name}: cannot truncate ({exc.strerror})") from None
        added = None
        covered = max((_checkpoint_body(t).size for t in texts), default=0)
        if signer_key is not None and principal is not None and len(records) > covered:
            root = merkle.root_from_leaf_hashes([r.leaf_hash for r in records])
            added = note.sign_note(note.format_checkpoint(ledger.origin, len(records), root), principal, signer_key)
            _append_durably(ledger.path / CHECKPOINTS, encode_frame(added.encode()))
    return RepairReport(ledger.path, len(recs.tail), len(cps.tail), added, len(records),
                        len(texts) + (added is not None))
