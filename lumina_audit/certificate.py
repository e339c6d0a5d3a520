"""Signed PDF attribution certificates (PDF/A-3b, PAdES B-B).

:func:`render_certificate` turns an attribution report and the inclusion proof of the
ledger record that lists it into a PDF/A-3b document: a first page in plain language
(query, verdict per channel, the top entries and a bar chart) and a technical appendix
(method, digests, calibration, signers, ledger position, proof and checkpoint, how to
verify). The report's canonical JSON is attached as ``report.json`` (AFRelationship
``Data``) and the proof as ``inclusion-proof.json`` (``Supplement``). Every date comes from
``issued_at`` (the ledger record's time), never the clock, and the PDF identifier is derived
from the content, so rendering twice gives the same bytes. The template is autoescaped:
song ids and titles are untrusted.

:func:`sign_certificate` adds one PAdES B-B signature (pyHanko). :func:`verify_certificate`
checks a signed certificate in numbered steps that raise :class:`CertificateError`:

1. exactly one signature, cryptographically intact and valid, covering the whole file
   (nothing appended after it);
2. the signer's certificate chains to one of the trusted roots;
3. ``report.json`` and ``inclusion-proof.json`` are attached, and the SHA-256 of
   ``report.json`` is listed in the outputs of the proven ledger record;
4. the inclusion proof verifies (:func:`lumina_audit.ledger.verify_proof`) against its
   checkpoint, whose signature verifies against the ledger trust.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import rfc8785

from .errors import LuminaError
from .ledger import LedgerError, verify_proof
from .trust import TrustStore

__all__ = [
    "CertificateError",
    "CertificateReport",
    "REPORT_ATTACHMENT",
    "PROOF_ATTACHMENT",
    "read_attachments",
    "render_certificate",
    "render_html",
    "sign_certificate",
    "verify_certificate",
]

REPORT_ATTACHMENT = "report.json"
PROOF_ATTACHMENT = "inclusion-proof.json"
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
TEMPLATE = "certificate.html.j2"
STYLESHEET = "certificate.css"
_BAR_WIDTH = 300.0


class CertificateError(LuminaError):
    """A certificate cannot be made, or does not verify."""

    exit_code = 1


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

    @property
    def bottom_line(self) -> bool:
        return True


# --------------------------------------------------------------------------- rendering


def _pdf_date(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _chart(entries: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    """Bar geometry for an inline SVG (values and labels escaped by the template)."""
    values = [float(e.get(key, 0.0)) for e in entries]
    top = max([abs(v) for v in values] + [1e-12])
    bars = []
    for i, (e, v) in enumerate(zip(entries, values, strict=True)):
        bars.append({"y": 4 + 18 * i, "width": round(max(v, 0.0) / top * _BAR_WIDTH, 3),
                     "label": str(e.get("song_id", "")), "value": f"{v:.4f}"})
    return {"bars": bars, "height": 8 + 18 * len(bars), "bar_x": 170, "bar_max": _BAR_WIDTH}


def _context(report_doc: dict[str, Any], report_bytes: bytes, proof: dict[str, Any],
             issued_at: datetime) -> dict[str, Any]:
    try:
        record = json.loads(proof["record"])
    except (KeyError, TypeError, ValueError):
        raise CertificateError("the inclusion proof holds no readable ledger record") from None
    channels = report_doc.get("channels", {})
    chans = []
    for ch in ("P", "M"):
        res = channels.get(ch, {})
        entries = list(res.get("entries", []))
        chans.append({"name": ch, "result": res, "entries": entries,
                      "share_chart": _chart(entries, "share"), "similarity_chart": _chart(entries, "similarity")})
    return {
        "report": report_doc, "channels": chans, "issued_at": _pdf_date(issued_at),
        "report_sha256": hashlib.sha256(report_bytes).hexdigest(), "proof": proof, "record": record,
        "titles": report_doc.get("titles", {}),
    }


@contextlib.contextmanager
def _source_date_epoch(when: datetime) -> Iterator[None]:
    """Pin ``SOURCE_DATE_EPOCH`` while rendering.

    fontTools, which weasyprint uses to subset fonts, stamps each subset's ``head.modified``
    with the current time unless this variable is set; it is read from the process
    environment, so this is not thread-safe (two renders at once may see each other's value,
    which only changes a font timestamp, never the content).
    """
    old = os.environ.get("SOURCE_DATE_EPOCH")
    os.environ["SOURCE_DATE_EPOCH"] = str(int(when.timestamp()))
    try:
        yield
    finally:
        if old is None:
            del os.environ["SOURCE_DATE_EPOCH"]
        else:
            os.environ["SOURCE_DATE_EPOCH"] = old


def render_html(report_doc: dict[str, Any], report_bytes: bytes, proof: dict[str, Any], *,
                issued_at: datetime) -> str:
    """The certificate's HTML (autoescaped Jinja2)."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    try:
        return env.get_template(TEMPLATE).render(**_context(report_doc, report_bytes, proof, issued_at))
    except jinja2.TemplateError as exc:
        raise CertificateError(f"cannot render the certificate template ({exc})") from None


def render_certificate(report_doc: dict[str, Any], report_bytes: bytes, proof: dict[str, Any], *,
                       issued_at: datetime) -> bytes:
    """An unsigned PDF/A-3b certificate; the same inputs give the same bytes."""
    from weasyprint import CSS, HTML, Attachment  # type: ignore[import-untyped]

    if issued_at.tzinfo is None:
        raise CertificateError("issued_at must carry a time zone")
    html = render_html(report_doc, report_bytes, proof, issued_at=issued_at)
    when = issued_at.astimezone(UTC).replace(tzinfo=None)  # weasyprint formats with a literal Z
    proof_bytes = rfc8785.dumps(proof)
    attachments = [
        Attachment(string=report_bytes, name=REPORT_ATTACHMENT, description="attribution report (RFC 8785 JSON)",
                   created=when, modified=when, relationship="Data"),
        Attachment(string=proof_bytes, name=PROOF_ATTACHMENT, description="ledger inclusion proof",
                   created=when, modified=when, relationship="Supplement"),
    ]
    identifier = hashlib.sha256(report_bytes + b"\0" + proof_bytes).hexdigest()[:32].encode()
    css = TEMPLATES / STYLESHEET
    doc = HTML(string=html, base_url=str(TEMPLATES))
    with _source_date_epoch(issued_at):
        pdf = doc.write_pdf(stylesheets=[CSS(filename=str(css))] if css.exists() else None,
                            attachments=attachments, pdf_variant="pdf/a-3b", pdf_identifier=identifier)
    if not isinstance(pdf, bytes):
        raise CertificateError("weasyprint returned no PDF")
    return pdf


# --------------------------------------------------------------------------- signing


def sign_certificate(pdf: bytes, key_pem: bytes, cert_pem: bytes, chain_pem: Sequence[bytes] = (), *,
                     timestamp_url: str | None = None, passphrase: bytes | None = None) -> bytes:
    """Sign with one PAdES B-B signature (B-T when ``timestamp_url`` names an RFC 3161 server)."""
    from pyhanko.keys import load_certs_from_pemder_data, load_private_key_from_pemder_data
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers, timestamps
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    try:
        key = load_private_key_from_pemder_data(key_pem, passphrase=passphrase)
        certs = list(load_certs_from_pemder_data(cert_pem))
        chain = [c for data in chain_pem for c in load_certs_from_pemder_data(data)]
    except Exception as exc:
        raise CertificateError(f"cannot load the signing key or certificates ({exc})") from None
    if len(certs) != 1:
        raise CertificateError(f"cert_pem must hold exactly one certificate, not {len(certs)}")
    signer = signers.SimpleSigner(signing_cert=certs[0], signing_key=key,
                                  cert_registry=SimpleCertificateStore.from_certs(chain))  # type: ignore[no-untyped-call]
    meta = signers.PdfSignatureMetadata(field_name="LuminaCertificate", subfilter=fields.SigSeedSubFilter.PADES,
                                        reason="lumina-audit attribution certificate")
    tsa = timestamps.HTTPTimeStamper(timestamp_url) if timestamp_url else None
    out = io.BytesIO()
    try:
        writer = IncrementalPdfFileWriter(io.BytesIO(pdf))
        signers.PdfSigner(meta, signer=signer, timestamper=tsa).sign_pdf(writer, output=out)
    except Exception as exc:
        raise CertificateError(f"cannot sign the certificate ({exc})") from None
    return out.getvalue()


# --------------------------------------------------------------------------- verification


def read_attachments(reader: Any) -> dict[str, bytes]:
    """Embedded files by name, from the document's EmbeddedFiles name tree."""
    found: dict[str, bytes] = {}

    def walk(node: Any, depth: int = 0) -> None:
        if depth > 16:
            raise CertificateError("step 3: the embedded-files tree is too deep")
        names = node.get("/Names")
        if names is not None:
            for i in range(0, len(names) - 1, 2):
                spec = names[i + 1].get_object()
                name = str(spec.get("/UF", spec.get("/F", names[i])))
                if name in found:
                    raise CertificateError(f"step 3: attachment {name!r} appears twice")
                found[name] = spec["/EF"]["/F"].get_object().data
        for kid in node.get("/Kids", []):
            walk(kid.get_object(), depth + 1)

    root = reader.root
    if "/Names" in root and "/EmbeddedFiles" in root["/Names"]:
        walk(root["/Names"]["/EmbeddedFiles"].get_object())
    return found


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
        status = validate_pdf_signature(sigs[0], signer_validation_context=vc)
    except Exception as exc:
        raise CertificateError(f"step 1: the signature cannot be validated ({exc})") from None
    if not (status.intact and status.valid):
        raise CertificateError("step 1: the signature does not verify (the signed bytes were changed)")
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
                             proven.seq, proven.tree_size, proven.root)
