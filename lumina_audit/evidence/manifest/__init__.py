"""Run manifests: strict YAML, validated models, canonical digests, detached DSSE signatures.

A manifest says exactly what a run does: which model (by digest), which
signature settings and numerical pins, which inputs, where outputs and the
ledger go. Its identity is the SHA-256 of the RFC 8785 canonical JSON of the
validated model, defaults included, so reformatting the YAML, reordering keys
or adding comments keeps a signature valid and any change of value breaks it.

The YAML reader refuses duplicate keys, anchors, aliases, merge keys, non-string
keys and tags other than plain scalars, and remembers the line of every key so
that each error names it (``manifest.yaml:12: unknown key 'treads' in pins``).
Outputs and the ledger must stay inside the manifest's folder.

A signature lives in ``<manifest>.sig``: a DSSE envelope whose payload is the
canonical JSON; operator and reviewer may each add one. A manifest verifies only when its
signers meet the trust file's signing policy (by default two distinct principals).
"""

from __future__ import annotations

from .loading import LoadedManifest, ResolvedInput, load_manifest, resolve_inputs
from .models import (
    API_V1,
    API_V2,
    API_VERSIONS,
    DEFAULT_INPUT_EXTENSIONS,
    KINDS,
    SEED,
    AttributeManifest,
    CalibrateManifest,
    CertificateSettings,
    CertificateSigner,
    ExtractManifest,
    FileRef,
    LRAttributionSettings,
    LRCalibrationSettings,
    Manifest,
)
from .reader import ManifestError
from .signing import (
    MANIFEST_NAMESPACE,
    MANIFEST_PAYLOAD_TYPE,
    VerifiedManifest,
    sig_path,
    sign_manifest,
    verify_manifest,
)

__all__ = [
    "API_V1",
    "API_V2",
    "API_VERSIONS",
    "DEFAULT_INPUT_EXTENSIONS",
    "KINDS",
    "MANIFEST_NAMESPACE",
    "MANIFEST_PAYLOAD_TYPE",
    "SEED",
    "AttributeManifest",
    "CalibrateManifest",
    "CertificateSettings",
    "CertificateSigner",
    "ExtractManifest",
    "FileRef",
    "LRAttributionSettings",
    "LRCalibrationSettings",
    "LoadedManifest",
    "Manifest",
    "ManifestError",
    "ResolvedInput",
    "VerifiedManifest",
    "load_manifest",
    "resolve_inputs",
    "sig_path",
    "sign_manifest",
    "verify_manifest",
]
