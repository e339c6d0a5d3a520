"""Area ``evidence``: signed manifests, keys and trust, and the hash-chained, Merkle-logged ledger.

:mod:`.manifest` (strict YAML, models, loading, DSSE signing), :mod:`.dsse` (envelopes),
:mod:`.keys` and :mod:`.trust` (Ed25519 keys, the trust file and its signing policy), :mod:`.ledger` (format,
append and repair, verification, proofs), :mod:`.merkle` (RFC 9162 trees) and
:mod:`.note` (C2SP signed notes and checkpoints).

Imports the ``signature`` area (a manifest pins signature settings and numerical pins).
Importing it imports none of its modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._internal.lazy import lazy_exports

if TYPE_CHECKING:
    from .keys import generate, key_id, load_private_key
    from .ledger import Ledger, LedgerError, prove, repair, verify, verify_proof
    from .manifest import LoadedManifest, ManifestError, load_manifest, resolve_inputs, sign_manifest, verify_manifest
    from .trust import PolicyError, SigningPolicy, TrustStore, format_entry, format_policy, load_trust, parse_trust

__all__ = [
    "Ledger",
    "LedgerError",
    "LoadedManifest",
    "ManifestError",
    "PolicyError",
    "SigningPolicy",
    "TrustStore",
    "format_entry",
    "format_policy",
    "generate",
    "key_id",
    "load_manifest",
    "load_private_key",
    "load_trust",
    "parse_trust",
    "prove",
    "repair",
    "resolve_inputs",
    "sign_manifest",
    "verify",
    "verify_manifest",
    "verify_proof",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "LoadedManifest": ".manifest",
    "load_manifest": ".manifest",
    "sign_manifest": ".manifest",
    "verify_manifest": ".manifest",
    "resolve_inputs": ".manifest",
    "ManifestError": ".manifest",
    "Ledger": ".ledger",
    "LedgerError": ".ledger",
    "verify": ".ledger",
    "prove": ".ledger",
    "verify_proof": ".ledger",
    "repair": ".ledger",
    "TrustStore": ".trust",
    "load_trust": ".trust",
    "parse_trust": ".trust",
    "format_entry": ".trust",
    "format_policy": ".trust",
    "PolicyError": ".trust",
    "SigningPolicy": ".trust",
    "generate": ".keys",
    "key_id": ".keys",
    "load_private_key": ".keys",
})
