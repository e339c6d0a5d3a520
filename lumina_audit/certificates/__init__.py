"""Area ``certificates``: signed PDF/A-3b attribution certificates that verify offline.

:mod:`.pdf` (what the others share: the error, attachments, page sizes), :mod:`.render`
(report + inclusion proof -> unsigned PDF, byte for byte reproducible), :mod:`.signer`
(X.509 signer, PAdES signing), :mod:`.verify` (numbered verification steps, the checks against
a ledger and by re-rendering included), :mod:`.issue` (issuing into the ledger) and :mod:`.pki`
(a throwaway demo PKI).

Imports the ``evidence`` and ``attribution`` areas. Importing it imports none of its modules.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .._internal.lazy import lazy_exports

if TYPE_CHECKING:
    from .issue import issue_certificate
    from .pdf import CertificateError
    from .pki import write_throwaway_pki
    from .signer import load_signer
    from .verify import verify_certificate

__all__ = [
    "CertificateError",
    "issue_certificate",
    "load_signer",
    "verify_certificate",
    "write_throwaway_pki",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "issue_certificate": ".issue",
    "CertificateError": ".pdf",
    "write_throwaway_pki": ".pki",
    "load_signer": ".signer",
    "verify_certificate": ".verify",
})
