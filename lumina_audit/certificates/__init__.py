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
    from .issue import Issued, issue_certificate
    from .pdf import CertificateError
    from .pki import throwaway_pki, write_throwaway_pki
    from .render import render_certificate
    from .signer import SignerCredentials, load_signer, sign_certificate
    from .verify import CertificateReport, verify_certificate

__all__ = [
    "CertificateError",
    "CertificateReport",
    "Issued",
    "SignerCredentials",
    "issue_certificate",
    "load_signer",
    "render_certificate",
    "sign_certificate",
    "throwaway_pki",
    "verify_certificate",
    "write_throwaway_pki",
]

__getattr__, __dir__ = lazy_exports(__name__, {
    "CertificateError": ".pdf",
    "render_certificate": ".render",
    "verify_certificate": ".verify",
    "CertificateReport": ".verify",
    "load_signer": ".signer",
    "sign_certificate": ".signer",
    "SignerCredentials": ".signer",
    "issue_certificate": ".issue",
    "Issued": ".issue",
    "throwaway_pki": ".pki",
    "write_throwaway_pki": ".pki",
})
