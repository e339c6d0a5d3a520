"""DSSE envelopes (Dead Simple Signing Envelope, v1) signed with Ed25519.

An envelope carries a payload, its type and one or more signatures over the
pre-authentication encoding :func:`pae` of both. The JSON form is the standard
one, read strictly: ``{"payload": b64, "payloadType": str, "signatures":
[{"keyid": hex, "sig": b64}]}`` with canonical padded base64, no other member,
no duplicate member or key id. A key id is :func:`lumina_audit.evidence.keys.key_id`.

:func:`verify` runs numbered steps and raises :class:`SignatureVerificationError`
with ``step N: ...`` at the first one that fails; it never returns a partial answer.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, NamedTuple

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..errors import LuminaError
from .keys import key_id
from .trust import TrustEntry, TrustError, TrustStore

__all__ = ["DsseSignature", "Envelope", "EnvelopeError", "SignatureVerificationError", "pae", "sign", "verify"]

_KEYID = re.compile(r"^[0-9a-f]{64}$")
_B64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


class SignatureVerificationError(LuminaError):
    """A signature, or what it signs, does not verify."""

    exit_code = 1


class EnvelopeError(SignatureVerificationError):
    """An envelope is malformed, or a signature cannot be added to it."""


class DsseSignature(NamedTuple):
    keyid: str
    sig: bytes


def pae(payload_type: str, payload: bytes) -> bytes:
    """``DSSEv1 SP LEN(type) SP type SP LEN(payload) SP payload``, lengths in bytes, ASCII decimal."""
    t = payload_type.encode("utf-8")
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


@dataclass(frozen=True)
class Envelope:
    payload: bytes
    payload_type: str
    signatures: tuple[DsseSignature, ...] = ()

    def __post_init__(self) -> None:
        if not isinstance(self.payload, bytes):
            raise EnvelopeError("envelope payload must be bytes")
        if not isinstance(self.payload_type, str) or not self.payload_type:
            raise EnvelopeError("envelope payloadType must be a non-empty string")
        try:
            self.payload_type.encode("utf-8")
        except UnicodeEncodeError:
            raise EnvelopeError("envelope payloadType is not valid Unicode") from None
        try:
            sigs = tuple(DsseSignature(*s) for s in self.signatures)
        except TypeError:
            raise EnvelopeError("envelope signatures must be (keyid, sig) pairs") from None
        for s in sigs:
            if not isinstance(s.keyid, str) or not _KEYID.match(s.keyid):
                raise EnvelopeError(f"signature keyid {s.keyid!r} is not 64 lowercase hex digits")
            if not isinstance(s.sig, bytes) or not s.sig:
                raise EnvelopeError(f"signature by {s.keyid[:16]}... is empty")
        ids = [s.keyid for s in sigs]
        if len(set(ids)) != len(ids):
            raise EnvelopeError("envelope has two signatures with the same keyid")
        object.__setattr__(self, "signatures", sigs)

    def to_json(self) -> str:
        doc = {
            "payload": _b64(self.payload),
            "payloadType": self.payload_type,
            "signatures": [{"keyid": s.keyid, "sig": _b64(s.sig)} for s in self.signatures],
        }
        return json.dumps(doc, indent=2)

    @classmethod
    def from_json(cls, text: str | bytes) -> Envelope:
        try:
            doc = json.loads(text.decode("utf-8") if isinstance(text, bytes) else text,
                             object_pairs_hook=_unique_members, parse_constant=_no_constant)
        except (ValueError, RecursionError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise EnvelopeError(f"envelope is not valid JSON ({exc})") from None
        _members(doc, {"payload", "payloadType", "signatures"}, "envelope")
        if not isinstance(doc["payloadType"], str):
            raise EnvelopeError("envelope payloadType must be a string")
        if not isinstance(doc["signatures"], list):
            raise EnvelopeError("envelope signatures must be a list")
        sigs = []
        for i, s in enumerate(doc["signatures"], 1):
            _members(s, {"keyid", "sig"}, f"signature {i}")
            if not isinstance(s["keyid"], str):
                raise EnvelopeError(f"signature {i}: keyid must be a string")
            sigs.append(DsseSignature(s["keyid"], _unb64(s["sig"], f"signature {i}: sig")))
        return cls(_unb64(doc["payload"], "payload"), doc["payloadType"], tuple(sigs))


def _unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc: dict[str, Any] = {}
    for k, v in pairs:
        if k in doc:
            raise ValueError(f"duplicate member {k!r}")
        doc[k] = v
    return doc


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _members(doc: Any, names: set[str], what: str) -> None:
    if not isinstance(doc, dict):
        raise EnvelopeError(f"{what} must be a JSON object")
    if set(doc) != names:
        missing, unknown = sorted(names - set(doc)), sorted(set(doc) - names)
        raise EnvelopeError(f"{what}: " + "; ".join(
            ([f"missing member(s) {', '.join(missing)}"] if missing else [])
            + ([f"unknown member(s) {', '.join(unknown)}"] if unknown else [])))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any, what: str) -> bytes:
    """Standard base64 with padding, in its one canonical spelling."""
    if not isinstance(text, str) or len(text) % 4 or not _B64.match(text):
        raise EnvelopeError(f"{what} is not strict base64")
    try:
        data = base64.b64decode(text, validate=True)
    except binascii.Error:
        raise EnvelopeError(f"{what} is not strict base64") from None
    if _b64(data) != text:
        raise EnvelopeError(f"{what} is not canonical base64")
    return data


def sign(envelope: Envelope, private_key: Ed25519PrivateKey) -> Envelope:
    """The envelope with one more signature; a key signs an envelope at most once."""
    kid = key_id(private_key.public_key())
    if any(s.keyid == kid for s in envelope.signatures):
        raise EnvelopeError(f"key {kid[:16]}... has already signed this envelope")
    sig = private_key.sign(pae(envelope.payload_type, envelope.payload))
    return replace(envelope, signatures=(*envelope.signatures, DsseSignature(kid, sig)))


def verify(envelope: Envelope, trust: TrustStore, namespace: str, at: datetime,
           expected_type: str) -> tuple[TrustEntry, ...]:
    """Every signature must verify and come from a key trusted for ``namespace`` at ``at``.

    Steps: (1) the payload type is ``expected_type``; (2) there is at least one
    signature; (3) for every signature, the trust file authorises its key for
    ``namespace`` at ``at`` and the Ed25519 signature over the PAE verifies.
    Returns the trust entries of the signers, in signature order.
    """
    if at.tzinfo is None:
        raise ValueError("verify needs a timezone-aware time")
    if envelope.payload_type != expected_type:
        raise SignatureVerificationError(
            f"step 1: payload type {envelope.payload_type!r} is not the expected {expected_type!r}")
    if not envelope.signatures:
        raise SignatureVerificationError("step 2: the envelope has no signature")
    message = pae(envelope.payload_type, envelope.payload)
    n = len(envelope.signatures)
    signers = []
    for i, s in enumerate(envelope.signatures, 1):
        try:
            entry = trust.authorise(s.keyid, namespace, at)
        except TrustError as exc:
            raise SignatureVerificationError(f"step 3: signature {i} of {n}: {exc.message}") from None
        try:
            entry.public_key.verify(s.sig, message)
        except InvalidSignature:
            raise SignatureVerificationError(
                f"step 3: signature {i} of {n} by {entry.principal} (key {s.keyid[:16]}...) does not verify"
            ) from None
        signers.append(entry)
    return tuple(signers)
