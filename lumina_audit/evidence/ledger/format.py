"""Ledger format: the header, framed records and checkpoints, and what makes a record well formed.

The run ledger is append-only, hash-chained, signed and Merkle-logged (in the style of CT and Rekor).

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
:data:`LEDGER_PAYLOAD_TYPE` and the canonical record without ``signature``. Merkle leaves (RFC 9162) are
the record payloads.

This module reads and writes those shapes and checks them, without keys or trust: record and
checkpoint signatures are :mod:`.signatures`, the Merkle tree over the records :mod:`.tree`,
appending and repair :mod:`.writer`, verification :mod:`.verification`, proofs :mod:`.proofs`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import rfc8785

from ...errors import LuminaError
from .. import merkle, note
from ..dsse import pae

__all__ = [
    "CHECKPOINTS", "FORMAT", "HEADER", "HEX64", "HINT_REPAIR", "LEDGER_NAMESPACE", "LEDGER_PAYLOAD_TYPE", "LOCK",
    "PRINCIPAL", "RECORDS", "RECORD_FORMAT", "VERSION", "ZERO_HASH", "Frames", "LedgerError", "LedgerUnreadable",
    "Record", "checkpoint_body", "checkpoint_size", "decode_frames", "decode_record", "encode_frame", "format_time",
    "is_int", "key_event_error", "read_file", "read_header",
]

FORMAT, VERSION, RECORD_FORMAT = "lumina-ledger", 1, "lumina-ledger-record"

LEDGER_NAMESPACE = "lumina-audit/ledger"

LEDGER_PAYLOAD_TYPE = "application/vnd.lumina-audit.ledger-record.v1+json"

HEADER, RECORDS, CHECKPOINTS, LOCK = "ledger.json", "records", "checkpoints", "lock"

ZERO_HASH = "0" * 64

#: A SHA-256 or key id: 64 lowercase hex digits (``fullmatch``).
HEX64 = re.compile(r"[0-9a-f]{64}")

_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")

#: A signer's principal (``fullmatch``).
PRINCIPAL = re.compile(r"[A-Za-z0-9._@-]{1,128}")

_HEAD = re.compile(rb"(0|[1-9][0-9]{0,15}) ([0-9a-f]{64}) ")

_HEAD_PREFIX = re.compile(rb"(?:0|[1-9][0-9]{0,15})(?: [0-9a-f]{0,64})?")

_MEMBERS = frozenset({"format", "version", "seq", "time", "prev", "kind", "body", "signer", "signature"})

#: The hint of an error that a torn tail may explain.
HINT_REPAIR = "run `lumina-audit ledger verify`, then `lumina-audit ledger repair` if it reports a torn tail"


class LedgerError(LuminaError):
    """A ledger was refused, could not be written, or a proof did not verify."""

    exit_code = 1


class LedgerUnreadable(LedgerError):
    """The ledger cannot be read at all (missing, permissions, unknown format): could not check."""


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
        return pae(LEDGER_PAYLOAD_TYPE, rfc8785.dumps(doc))


def format_time(when: datetime) -> str:
    """A record's ``time``: UTC, ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _parse_time(text: Any) -> datetime:
    if not isinstance(text, str) or not _TIME.fullmatch(text):
        raise LedgerError(f"time {text!r} is not YYYY-MM-DDTHH:MM:SS.ffffffZ")
    try:
        return datetime.fromisoformat(text[:-1]).replace(tzinfo=UTC)
    except ValueError:
        raise LedgerError(f"time {text!r} is not a valid date and time") from None


def is_int(value: Any) -> bool:
    """A JSON integer (not a bool)."""
    return isinstance(value, int) and not isinstance(value, bool)


def decode_record(payload: bytes, *, canonical: bool = True) -> Record:
    """Parse a record payload; raise :class:`LedgerError` when it is not exactly a canonical record.

    ``canonical=False`` skips the (slow, pure Python) RFC 8785 comparison: appends use it for the
    records already in the ledger, whose canonical form verification checks.
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
    if doc["format"] != RECORD_FORMAT or doc["version"] != 1 or not is_int(doc["version"]):
        raise LedgerError(f"format/version is {doc['format']!r}/{doc['version']!r}, not {RECORD_FORMAT!r}/1")
    if not is_int(doc["seq"]) or doc["seq"] < 0:
        raise LedgerError(f"seq {doc['seq']!r} is not a non-negative integer")
    if not isinstance(doc["prev"], str) or not HEX64.fullmatch(doc["prev"]):
        raise LedgerError("prev is not 64 lowercase hex digits")
    if not isinstance(doc["kind"], str) or not doc["kind"] or not isinstance(doc["body"], dict):
        raise LedgerError("kind must be a non-empty string and body an object")
    if not isinstance(signer, dict) or set(signer) != {"key_id", "principal"} or not isinstance(
            signer["key_id"], str) or not HEX64.fullmatch(signer["key_id"]) or not isinstance(
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


def key_event_error(kind: str, body: dict[str, Any]) -> str | None:
    """What is wrong with the body of a key-revocation or key-rotation record (None: nothing)."""
    want = {"key-revocation": {"key_id": "hex", "reason": "str"},
            "key-rotation": {"old_key_id": "hex", "new_key_id": "hex"}}.get(kind)
    if want is None:
        return None
    if set(body) != set(want) or any(
            not isinstance(body[k], str) or (t == "hex" and not HEX64.fullmatch(body[k])) for k, t in want.items()):
        return f"{kind} body must be exactly {{{', '.join(want)}}} (key ids as 64 hex digits)"
    if kind == "key-rotation" and body["old_key_id"] == body["new_key_id"]:
        return "key-rotation from a key to itself"
    return None


def checkpoint_body(text: str) -> note.Checkpoint:
    """Parse a checkpoint note's text without checking its signatures."""
    split = text.rfind("\n\n")
    if split < 0:
        raise LedgerError("is not a signed note")
    try:
        return note.parse_checkpoint(text[: split + 1])
    except note.NoteError as exc:
        raise LedgerError(exc.message) from None


def read_header(path: Path) -> tuple[str, datetime]:
    """The origin and creation time of the ledger at ``path``; :class:`LedgerUnreadable` when it is no ledger."""
    try:
        raw = (path / HEADER).read_bytes()
    except OSError as exc:
        raise LedgerUnreadable(f"{path / HEADER}: cannot read the ledger header ({exc.strerror})") from None
    try:
        doc = json.loads(raw)
    except (ValueError, RecursionError):
        raise LedgerError(f"{path / HEADER}: the header is not JSON") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION or isinstance(
            doc.get("version"), bool):
        got = (doc.get("format"), doc.get("version")) if isinstance(doc, dict) else type(doc).__name__
        raise LedgerUnreadable(f"{path}: unknown ledger format/version {got}; this reads {FORMAT} version {VERSION}")
    origin = doc.get("origin")
    try:
        if not isinstance(origin, str):
            raise note.NoteError("not a string")
        note.format_checkpoint(origin, 0, merkle.EMPTY_ROOT)
    except note.NoteError:
        raise LedgerError(f"{path / HEADER}: origin {origin!r} is not a checkpoint origin line") from None
    return origin, _parse_time(doc.get("created"))


def read_file(path: Path) -> bytes:
    """The bytes of one of the ledger's files; :class:`LedgerError` when it cannot be read."""
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LedgerError(f"{path}: cannot read ({exc.strerror})") from None


def checkpoint_size(raw: bytes) -> int:
    """The size a framed checkpoint claims, unchecked (0 when it cannot be parsed)."""
    try:
        return checkpoint_body(raw.decode("utf-8")).size
    except (LedgerError, UnicodeDecodeError):
        return 0
