"""Offline verification of a signed certificate.

:func:`verify_certificate` checks a signed certificate in numbered steps that raise :class:`CertificateError`:

1. exactly one signature, cryptographically intact and valid, covering the whole file
   (nothing appended after it); a timestamp token, when there is one, must verify too
   (whether its authority is trusted is reported, not required);
2. the signer's certificate chains to one of the trusted roots;
3. ``report.json`` and ``inclusion-proof.json`` are attached, and the SHA-256 of
   ``report.json`` is listed in the outputs of the proven ledger record;
4. the inclusion proof verifies (:func:`lumina_audit.evidence.ledger.verify_proof`) against its
   checkpoint, whose signature verifies against the ledger trust.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import rfc8785

from ..evidence.ledger import LedgerError, verify_proof
from ..evidence.trust import TrustStore
from .pdf import PROOF_ATTACHMENT, REPORT_ATTACHMENT, CertificateError, read_attachments

__all__ = ["CertificateReport", "verify_certificate"]


@dataclass(frozen=True)
class CertificateReport:
    """A certificate that verified (failures raise)."""

    signer_subject: str
    signer_fingerprint: str
    report_sha256: str
    report: dict[str, Any]
    ledger_origin: str
    ledger_record: int
    tree_size: int
    root: str
    #: The signature timestamp (PAdES B-T), when the signature carries one; its token verified.
    timestamp: datetime | None = None
    #: Whether the timestamp authority chains to one of the trusted roots given to the verifier.
    timestamp_trusted: bool = False

    @property
    def bottom_line(self) -> bool:
        return True


def verify_certificate(pdf: bytes, *, trust_roots_pem: Sequence[bytes], ledger_trust: TrustStore) -> CertificateReport:
    """Verify a signed certificate offline, in numbered steps that raise :class:`CertificateError`."""
    from pyhanko.keys import load_certs_from_pemder_data
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import SignatureCoverageLevel, validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    # Step 1: one signature, intact and valid, over the whole file.
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        sigs = reader.embedded_signatures
    except Exception as exc:
        raise CertificateError(f"step 1: not a readable PDF ({exc})") from None
    if len(sigs) != 1:
        raise CertificateError(f"step 1: expected exactly one signature, found {len(sigs)}")
    try:
        roots = [c for data in trust_roots_pem for c in load_certs_from_pemder_data(data)]
    except Exception as exc:
        raise CertificateError(f"step 2: cannot load the trusted roots ({exc})") from None
    try:
        vc = ValidationContext(trust_roots=roots, allow_fetching=False)
        status = validate_pdf_signature(sigs[0], signer_validation_context=vc, ts_validation_context=vc)
    except Exception as exc:
        raise CertificateError(f"step 1: the signature cannot be validated ({exc})") from None
    if not (status.intact and status.valid):
        raise CertificateError("step 1: the signature does not verify (the signed bytes were changed)")
    stamp = status.timestamp_validity
    if stamp is not None and not (stamp.intact and stamp.valid):
        raise CertificateError("step 1: the signature's timestamp token does not verify")
    if status.coverage != SignatureCoverageLevel.ENTIRE_FILE:
        level = getattr(status.coverage, "name", "UNCLEAR")
        raise CertificateError(f"step 1: the signature does not cover the whole file ({level}); "
                               "something was appended after signing")
    # Step 2: the signer chains to a trusted root.
    if not status.trusted:
        raise CertificateError("step 2: the signer's certificate does not chain to a trusted root")
    cert = status.signing_cert
    # Step 3: the attached report is the one the proven ledger record lists.
    try:
        files = read_attachments(reader)
    except CertificateError:
        raise
    except Exception as exc:
        raise CertificateError(f"step 3: cannot read the attachments ({exc})") from None
    for name in (REPORT_ATTACHMENT, PROOF_ATTACHMENT):
        if name not in files:
            raise CertificateError(f"step 3: attachment {name} is missing")
    report_bytes = files[REPORT_ATTACHMENT]
    digest = hashlib.sha256(report_bytes).hexdigest()
    try:
        report = json.loads(report_bytes)
        proof = json.loads(files[PROOF_ATTACHMENT])
        record = json.loads(proof["record"])
        outputs = record["body"]["outputs"]
        listed = {o["sha256"] for o in outputs if isinstance(o, dict)}
    except (ValueError, TypeError, KeyError):
        raise CertificateError("step 3: the attachments or the record they hold are malformed") from None
    if not isinstance(report, dict) or rfc8785.dumps(report) != report_bytes:
        raise CertificateError("step 3: report.json is not canonical JSON")
    if digest not in listed:
        raise CertificateError(f"step 3: report.json (SHA-256 {digest}) is not among the outputs of ledger "
                               f"record {record.get('seq')!r}")
    position = report.get("ledger", {})
    if position.get("record") != record.get("seq") or position.get("origin") != proof.get("origin"):
        raise CertificateError("step 3: the report names another ledger position than the proven record")
    # Step 4: the inclusion proof against its checkpoint, under the ledger trust.
    try:
        proven = verify_proof(proof, ledger_trust, expected_record=str(proof["record"]).encode())
    except LedgerError as exc:
        raise CertificateError(f"step 4: {exc.message}") from None
    return CertificateReport(cert.subject.human_friendly, cert.sha256.hex(), digest, report, proven.origin,
                             proven.seq, proven.tree_size, proven.root,
                             timestamp=stamp.timestamp if stamp is not None else None,
                             timestamp_trusted=bool(stamp is not None and stamp.trusted))
