"""Signing and verifying manifests: detached DSSE envelopes in ``<manifest>.sig``.

The envelope's payload is the manifest's canonical JSON; operator and reviewer may each
add a signature. Verification runs in numbered steps that raise; the last checks the signers
against the trust file's signing policy (two distinct principals when it states none).
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from ..._internal.fileio import write_file
from .. import dsse
from ..trust import PolicyCheck, PolicyError, TrustEntry, TrustStore
from .loading import LoadedManifest, load_manifest
from .reader import MAX_MANIFEST_BYTES, ManifestError

__all__ = ["MANIFEST_NAMESPACE", "MANIFEST_PAYLOAD_TYPE", "VerifiedManifest", "sig_path", "sign_manifest",
           "verify_manifest"]

MANIFEST_PAYLOAD_TYPE = "application/vnd.lumina-audit.manifest.v1+json"

MANIFEST_NAMESPACE = "lumina-audit/manifest"


@dataclass(frozen=True)
class VerifiedManifest:
    """A manifest whose signatures verified; ``policy``: the signing policy its signers met."""

    loaded: LoadedManifest
    signers: tuple[TrustEntry, ...]
    envelope: dsse.Envelope
    policy: PolicyCheck


def sig_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".sig")


def _changed_keys(signed: bytes, current: bytes) -> list[str]:
    try:
        old = json.loads(signed)
    except ValueError:
        return ["(signed payload is not JSON)"]
    new = json.loads(current)
    if not isinstance(old, dict):
        return ["(signed payload is not a JSON object)"]
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k)) or ["(signed payload not canonical)"]


def _read_envelope(sig: Path) -> dsse.Envelope:
    try:
        raw = sig.read_bytes()[:MAX_MANIFEST_BYTES * 4]
    except OSError as exc:
        raise dsse.EnvelopeError(f"{sig}: cannot read ({exc.strerror})") from None
    return dsse.Envelope.from_json(raw)


def sign_manifest(path: str | os.PathLike[str], private_key: Ed25519PrivateKey) -> Path:
    """Create ``<manifest>.sig``, or add a signature to it if it signs the manifest as it is now."""
    loaded = load_manifest(path)
    sig = sig_path(path)
    if sig.exists():
        envelope = _read_envelope(sig)
        if envelope.payload_type != MANIFEST_PAYLOAD_TYPE:
            raise ManifestError(f"{sig}: payload type {envelope.payload_type!r} is not a manifest's")
        if envelope.payload != loaded.canonical_json:
            changed = ", ".join(_changed_keys(envelope.payload, loaded.canonical_json))
            raise ManifestError(f"{path}: manifest changed since the existing signatures were made "
                                f"(differs in: {changed}); refusing to add a signature",
                                hint=f"restore the signed manifest, or remove {sig} and collect all signatures again")
    else:
        envelope = dsse.Envelope(loaded.canonical_json, MANIFEST_PAYLOAD_TYPE)
    write_file(sig, (dsse.sign(envelope, private_key).to_json() + "\n").encode(), replace=True)
    return sig


def verify_manifest(path: str | os.PathLike[str], trust: TrustStore, at: datetime | None = None) -> VerifiedManifest:
    """Steps: (1) the manifest loads and validates; (2) ``<manifest>.sig`` exists; (3) the envelope parses;
    (4) its payload is the manifest's canonical JSON as it is now; (5) DSSE verification with the trust
    file in namespace ``lumina-audit/manifest`` at ``at`` (now, UTC, by default); (6) the signers meet
    the trust file's signing policy for the manifest's kind (:meth:`TrustStore.check_policy`).
    """
    fail = dsse.SignatureVerificationError
    try:
        loaded = load_manifest(path)
    except ManifestError as exc:
        raise fail(f"step 1: {exc.message}") from None
    sig = sig_path(path)
    if not sig.is_file():
        raise fail(f"step 2: unsigned manifest: {sig} not found",
                   hint="have the manifest signed first; each signer adds a signature to the .sig file")
    try:
        envelope = _read_envelope(sig)
    except dsse.EnvelopeError as exc:
        raise fail(f"step 3: {sig}: {exc.message}") from None
    if envelope.payload != loaded.canonical_json:
        changed = ", ".join(_changed_keys(envelope.payload, loaded.canonical_json))
        raise fail(f"step 4: manifest changed after signing (differs in: {changed})")
    try:
        signers = dsse.verify(envelope, trust, MANIFEST_NAMESPACE, at or datetime.now(UTC), MANIFEST_PAYLOAD_TYPE)
    except dsse.SignatureVerificationError as exc:
        raise fail(re.sub(r"^step (\d+):", r"step 5.\1:", exc.message)) from None
    try:
        checked = trust.check_policy(loaded.manifest.kind, signers, MANIFEST_NAMESPACE)
    except PolicyError as exc:
        raise fail(f"step 6: {exc.message}", hint=exc.hint and exc.hint.replace("MANIFEST", str(path))) from None
    return VerifiedManifest(loaded, signers, envelope, checked)
