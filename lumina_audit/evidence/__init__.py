"""Area ``evidence``: signed manifests, keys and trust, and the hash-chained, Merkle-logged ledger.

:mod:`.manifest` (strict YAML, models, loading, DSSE signing), :mod:`.dsse` (envelopes),
:mod:`.keys` and :mod:`.trust` (Ed25519 keys, the trust file and its signing policy), :mod:`.ledger`
(formats, signatures, the Merkle tree, append and repair under its lock, verification, proofs),
:mod:`.merkle` (RFC 9162 trees) and :mod:`.note` (C2SP signed notes and checkpoints).

Imports the ``signature`` area (a manifest pins signature settings and numerical pins).
Importing it imports none of its modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._internal.lazy import lazy_exports

if TYPE_CHECKING:
    from . import keys
    from .dsse import SignatureVerificationError
    from .keys import (
        KeyFileError,
        generate,
        key_id,
        load_private_key,
        parse_public_key,
        write_private_key,
        write_public_key,
    )
    from .ledger.format import LEDGER_NAMESPACE, LedgerError
    from .ledger.proofs import prove, verify_proof
    from .ledger.verification import verify
    from .ledger.writer import Ledger, repair
    from .manifest.loading import LoadedManifest, ResolvedInput, load_manifest, resolve_inputs
    from .manifest.models import (
        API_V1,
        AttributeManifest,
        CalibrateManifest,
        CertificateSettings,
        LRAttributionSettings,
        LRCalibrationSettings,
    )
    from .manifest.signing import sign_manifest, verify_manifest
    from .note import parse_checkpoint
    from .trust import NAMESPACES, TrustStore, format_entry, load_trust, parse_trust

__all__ = [
    "API_V1",
    "AttributeManifest",
    "CalibrateManifest",
    "CertificateSettings",
    "KeyFileError",
    "LEDGER_NAMESPACE",
    "LRAttributionSettings",
    "LRCalibrationSettings",
    "Ledger",
    "LedgerError",
    "LoadedManifest",
    "NAMESPACES",
    "ResolvedInput",
    "SignatureVerificationError",
    "TrustStore",
    "format_entry",
    "generate",
    "key_id",
    "keys",
    "load_manifest",
    "load_private_key",
    "load_trust",
    "parse_checkpoint",
    "parse_public_key",
    "parse_trust",
    "prove",
    "repair",
    "resolve_inputs",
    "sign_manifest",
    "verify",
    "verify_manifest",
    "verify_proof",
    "write_private_key",
    "write_public_key",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "SignatureVerificationError": ".dsse",
    "KeyFileError": ".keys",
    "generate": ".keys",
    "key_id": ".keys",
    "load_private_key": ".keys",
    "parse_public_key": ".keys",
    "write_private_key": ".keys",
    "write_public_key": ".keys",
    "LEDGER_NAMESPACE": ".ledger.format",
    "LedgerError": ".ledger.format",
    "prove": ".ledger.proofs",
    "verify_proof": ".ledger.proofs",
    "verify": ".ledger.verification",
    "Ledger": ".ledger.writer",
    "repair": ".ledger.writer",
    "LoadedManifest": ".manifest.loading",
    "ResolvedInput": ".manifest.loading",
    "load_manifest": ".manifest.loading",
    "resolve_inputs": ".manifest.loading",
    "API_V1": ".manifest.models",
    "AttributeManifest": ".manifest.models",
    "CalibrateManifest": ".manifest.models",
    "CertificateSettings": ".manifest.models",
    "LRAttributionSettings": ".manifest.models",
    "LRCalibrationSettings": ".manifest.models",
    "sign_manifest": ".manifest.signing",
    "verify_manifest": ".manifest.signing",
    "parse_checkpoint": ".note",
    "NAMESPACES": ".trust",
    "TrustStore": ".trust",
    "format_entry": ".trust",
    "load_trust": ".trust",
    "parse_trust": ".trust",
}, modules={"keys": ".keys"})
