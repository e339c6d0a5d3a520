"""Issuing certificates into the ledger.

Issuing (``lumina-audit certificate issue``) takes a :class:`~lumina_audit.certificates.signer.SignerCredentials`
that :func:`~lumina_audit.certificates.signer.load_signer` has already checked, and a page size and
timestamp authority URL that are checked before any work:

1. the report is read (canonical, known version) and the ledger record it names is found;
   that record must list the report's SHA-256 among its outputs;
2. an inclusion proof of that record against the ledger's latest checkpoint is made;
3. the certificate is rendered on A4 or US Letter pages (dates from the record, so a
   re-rendering gives the same bytes) and signed (PAdES B-B, or B-T with a timestamp); the
   signed PDF is written without overwriting anything. When signing fails (the timestamp
   authority cannot be reached, say) nothing is written and nothing is recorded;
4. a ledger record of kind ``certificate`` holds the SHA-256 of the report, of the unsigned
   and of the signed PDF, the page size, and the PDF as an output. If it cannot be written,
   the PDF is removed.

The page size is not stored separately in the PDF: :func:`~.verify.rerender_matches` (step 6 of
:func:`~.verify.verify_certificate`) reads it from the first page's MediaBox (595.28 x 841.89 pt
is A4, 612 x 792 pt is Letter) of the signed revision, renders again with it, and compares
bytes, so a wrong size cannot pass; step 5 (:func:`~.verify.check_against_ledger`) finds the
``certificate`` record of step 4 and requires the file's SHA-256 to be its ``signed_pdf_sha256``.
:func:`check_against_ledger` and :func:`rerender_matches` are importable from here too.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .._internal.fileio import write_file
from ..attribution.reports import read_report
from ..evidence.ledger import Ledger, prove
from .pdf import CertificateError, page_size_name
from .render import render_certificate
from .signer import SignerCredentials, check_timestamp_url, sign_certificate
from .verify import check_against_ledger, rerender_matches

__all__ = ["Issued", "check_against_ledger", "issue_certificate", "rerender_matches"]


@dataclass(frozen=True)
class Issued:
    path: Path
    seq: int
    report_sha256: str
    unsigned_sha256: str
    signed_sha256: str
    page_size: str = "A4"


def issue_certificate(report_path: Path, ledger_dir: Path, out: Path, *, operator_key: Ed25519PrivateKey,
                      principal: str, signer: SignerCredentials, timestamp_url: str | None = None,
                      page_size: str = "A4") -> Issued:
    """Render, sign, write and record one certificate (see the module docstring for the steps)."""
    page_size = page_size_name(page_size)
    if timestamp_url is not None:
        check_timestamp_url(timestamp_url)
    if not isinstance(signer, SignerCredentials):
        raise CertificateError("signer must be the SignerCredentials that load_signer returns")
    if out.exists() or out.is_symlink():
        raise CertificateError(f"{out}: already exists; refusing to overwrite")
    doc, report_sha = read_report(report_path)  # step 1
    seq = doc.get("ledger", {}).get("record")
    ledger = Ledger.open(ledger_dir)
    records = ledger.records()
    if not isinstance(seq, int) or not 0 <= seq < len(records):
        raise CertificateError(f"{report_path}: names ledger record {seq!r}, which {ledger_dir} does not hold")
    record = records[seq]
    if report_sha not in {o.get("sha256") for o in record.body.get("outputs", [])}:
        raise CertificateError(f"{report_path}: SHA-256 {report_sha} is not an output of ledger record {seq}")
    if doc["ledger"].get("origin") != ledger.origin:
        raise CertificateError(f"{report_path}: names ledger {doc['ledger'].get('origin')!r}, not {ledger.origin!r}")
    proof = prove(ledger_dir, seq)  # step 2
    unsigned = render_certificate(doc, report_path.read_bytes(), proof, issued_at=record.time,  # step 3
                                  page_size=page_size)
    signed = sign_certificate(unsigned, signer, timestamp_url=timestamp_url)
    if out.exists():
        raise CertificateError(f"{out}: already exists; refusing to overwrite")
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        write_file(out, signed)
    except FileExistsError:
        raise CertificateError(f"{out}: already exists; refusing to overwrite") from None
    hashes = {"report_sha256": report_sha, "unsigned_pdf_sha256": hashlib.sha256(unsigned).hexdigest(),
              "signed_pdf_sha256": hashlib.sha256(signed).hexdigest()}
    body: dict[str, Any] = {
        **hashes, "report_record": seq, "page_size": page_size,
        "outputs": [{"path": os.path.relpath(out.resolve(), ledger_dir.resolve().parent), "size": len(signed),
                     "sha256": hashes["signed_pdf_sha256"], "kind": "certificate"}],
    }
    try:  # step 4
        appended = ledger.append("certificate", body, operator_key, principal)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return Issued(out, appended.seq, report_sha, hashes["unsigned_pdf_sha256"], hashes["signed_pdf_sha256"],
                  page_size)
