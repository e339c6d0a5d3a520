"""C2SP signed notes with Ed25519 signatures, and tlog checkpoint bodies.

A signed note (https://c2sp.org/signed-note) is a UTF-8 text ending in a
newline, a blank line, then signature lines ``— <key name> base64(key ID ||
signature)``. Only Ed25519 (signature type ``0x01``) is supported; its key ID
is ``SHA-256(key name || 0x0A || 0x01 || public key)[:4]``. Verifier keys use
the vkey text form ``<name>+<hex key ID>+base64(0x01 || public key)``.

A checkpoint (https://c2sp.org/tlog-checkpoint) is a note whose text is the
log origin, the decimal tree size, the base64 RFC 6962 root hash, and optional
non-empty extension lines, each ending in a newline.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from ..errors import LuminaError

__all__ = [
    "ED25519_TYPE",
    "MAX_SIGNATURES",
    "Checkpoint",
    "NoteError",
    "format_checkpoint",
    "key_id",
    "open_note",
    "parse_checkpoint",
    "parse_verifier_key",
    "sign_note",
    "verifier_key_string",
]

#: Signature type identifier byte of Ed25519 in the signed-note spec.
ED25519_TYPE = 0x01

#: Most signature lines :func:`open_note` reads (the spec demands at least 16).
MAX_SIGNATURES = 100

_SIG_PREFIX = "\u2014 "  # em dash, space
_SIZE_RE = re.compile(r"0|[1-9][0-9]*")
_HEX8_RE = re.compile(r"[0-9a-f]{8}")
_ROOT_SIZE = 32
_MAX_SIZE = 2**64 - 1


class NoteError(LuminaError):
    """A signed note or checkpoint was refused, or cannot be produced."""

    exit_code = 1


@dataclass(frozen=True)
class Checkpoint:
    """The parsed text of a tlog checkpoint."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()


def key_id(name: str, public_key: Ed25519PublicKey) -> bytes:
    """The 4-byte key ID ``SHA-256(name || 0x0A || 0x01 || public key)[:4]``."""
    _check_name(name)
    material = name.encode() + b"\n" + bytes([ED25519_TYPE]) + _raw(public_key)
    return hashlib.sha256(material).digest()[:4]


def verifier_key_string(name: str, public_key: Ed25519PublicKey) -> str:
    """The vkey ``name+hex(key ID)+base64(0x01 || public key)``."""
    key = base64.b64encode(bytes([ED25519_TYPE]) + _raw(public_key)).decode("ascii")
    return f"{name}+{key_id(name, public_key).hex()}+{key}"


def parse_verifier_key(vkey: str) -> tuple[str, Ed25519PublicKey]:
    """Parse a vkey string into its key name and Ed25519 public key."""
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise NoteError(f"verifier key {vkey!r} is not of the form name+keyid+key")
    name, id_hex, key64 = parts
    _check_name(name)
    if not _HEX8_RE.fullmatch(id_hex):
        raise NoteError(f"verifier key id {id_hex!r} is not 8 lowercase hex digits")
    material = _b64decode(key64, "verifier key material")
    if len(material) != 33 or material[0] != ED25519_TYPE:
        raise NoteError("verifier key material is not 0x01 followed by a 32-byte Ed25519 public key")
    public_key = Ed25519PublicKey.from_public_bytes(material[1:])
    if key_id(name, public_key).hex() != id_hex:
        raise NoteError(f"verifier key id {id_hex} does not match key name {name!r} and its key")
    return name, public_key


def format_checkpoint(origin: str, size: int, root_hash: bytes, extensions: Sequence[str] = ()) -> str:
    """The checkpoint note text for ``origin``, ``size`` and ``root_hash``."""
    if not origin or not _is_line(origin):
        raise NoteError(f"checkpoint origin {origin!r} must be a non-empty line without control characters")
    if isinstance(size, bool) or not isinstance(size, int) or not 0 <= size <= _MAX_SIZE:
        raise NoteError(f"checkpoint tree size {size!r} must be an integer in 0..2**64-1")
    if len(root_hash) != _ROOT_SIZE:
        raise NoteError(f"checkpoint root hash must be {_ROOT_SIZE} bytes, got {len(root_hash)}")
    for ext in extensions:
        if not ext or not _is_line(ext):
            raise NoteError(f"checkpoint extension {ext!r} must be a non-empty line without controls")
    lines = [origin, str(size), base64.b64encode(bytes(root_hash)).decode("ascii"), *extensions]
    return "".join(line + "\n" for line in lines)


def parse_checkpoint(body: str) -> Checkpoint:
    """Parse checkpoint note text (as returned by :func:`open_note`)."""
    _check_text(body)
    lines = body[:-1].split("\n")
    if len(lines) < 3:
        raise NoteError(f"checkpoint has {len(lines)} lines, needs origin, tree size and root hash")
    origin, size_text, root_text, *extensions = lines
    if not origin:
        raise NoteError("checkpoint origin line is empty")
    if not _SIZE_RE.fullmatch(size_text) or len(size_text) > 20 or int(size_text) > _MAX_SIZE:
        raise NoteError(f"checkpoint tree size {size_text!r} is not a plain decimal in 0..2**64-1")
    root_hash = _b64decode(root_text, "checkpoint root hash")
    if len(root_hash) != _ROOT_SIZE:
        raise NoteError(f"checkpoint root hash is {len(root_hash)} bytes, needs {_ROOT_SIZE}")
    if any(not ext for ext in extensions):
        raise NoteError("checkpoint extension lines must be non-empty")
    return Checkpoint(origin, int(size_text), root_hash, tuple(extensions))


def sign_note(body: str, key_name: str, private_key: Ed25519PrivateKey) -> str:
    """Sign note text ``body`` with ``private_key`` named ``key_name``; return the note."""
    _check_text(body)
    kid = key_id(key_name, private_key.public_key())
    signature = private_key.sign(body.encode("utf-8"))
    return f"{body}\n{_SIG_PREFIX}{key_name} {base64.b64encode(kid + signature).decode('ascii')}\n"


def open_note(text: str, verifiers: Mapping[str, Ed25519PublicKey]) -> tuple[str, list[str]]:
    """Verify a signed note; return its text and the names of the keys that verified it.

    Signatures whose key name and key ID do not both match a key of
    ``verifiers`` are ignored, as the spec demands. A signature from a known
    key that fails, a malformed note, or no verified signature at all raise
    :class:`NoteError`.
    """
    known = {name: (key_id(name, key), key) for name, key in verifiers.items()}
    _check_chars(text, "note")
    split = text.rfind("\n\n")
    if split < 0:
        raise NoteError("note has no blank line separating its text from its signatures")
    body, sig_block = text[: split + 1], text[split + 2 :]
    if not sig_block or not sig_block.endswith("\n"):
        raise NoteError("note signature block is empty or does not end in a newline")
    lines = sig_block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"note has {len(lines)} signature lines, more than {MAX_SIGNATURES}")
    message = body.encode("utf-8")
    verified: list[str] = []
    for number, line in enumerate(lines, start=1):
        if not line.startswith(_SIG_PREFIX):
            raise NoteError(f"note signature line {number} does not start with an em dash and a space")
        name, _, sig64 = line[len(_SIG_PREFIX) :].partition(" ")
        _check_name(name)
        blob = _b64decode(sig64, f"note signature line {number}")
        if len(blob) < 5:
            raise NoteError(f"note signature line {number} is shorter than a key ID and a signature")
        entry = known.get(name)
        if entry is None or entry[0] != blob[:4] or name in verified:
            continue  # unknown key (or a repeat): ignored by the spec
        try:
            entry[1].verify(blob[4:], message)
        except InvalidSignature:
            raise NoteError(f"note signature by key {name!r} ({blob[:4].hex()}) does not verify") from None
        verified.append(name)
    if not verified:
        raise NoteError("note carries no signature from a known key")
    return body, verified


def _raw(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _check_name(name: str) -> None:
    if not name or any(ch.isspace() or ch == "+" or ord(ch) < 0x20 for ch in name):
        raise NoteError(f"key name {name!r} must be non-empty, without spaces, plus signs or controls")


def _check_chars(text: str, what: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteError(f"{what} is not valid UTF-8") from None
    for i, ch in enumerate(text):
        if ord(ch) < 0x20 and ch != "\n":
            raise NoteError(f"{what} holds control character U+{ord(ch):04X} at offset {i}")


def _check_text(body: str) -> None:
    _check_chars(body, "note text")
    if not body.endswith("\n"):
        raise NoteError("note text must be non-empty and end in a newline")


def _is_line(value: str) -> bool:
    try:
        _check_chars(value, "line")
    except NoteError:
        return False
    return "\n" not in value


def _b64decode(value: str, what: str) -> bytes:
    """Strict standard base64: right alphabet, padding, and canonical trailing bits."""
    try:
        decoded = base64.b64decode(value.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error):
        raise NoteError(f"{what} is not valid base64") from None
    if base64.b64encode(decoded).decode("ascii") != value:
        raise NoteError(f"{what} is not canonical base64")
    return decoded
