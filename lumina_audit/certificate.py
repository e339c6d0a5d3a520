"""Signed PDF attribution certificates (PDF/A-3b, PAdES B-B or B-T).

:func:`render_certificate` turns an attribution report and the inclusion proof of the
ledger record that lists it into a PDF/A-3b document: a first page in plain language
(query, verdict per channel, the top entries and a bar chart) and a technical appendix
(method, digests, calibration, signers, ledger position, proof and checkpoint, how to
verify). The report's canonical JSON is attached as ``report.json`` (AFRelationship
``Data``) and the proof as ``inclusion-proof.json`` (``Supplement``). Every date comes from
``issued_at`` (the ledger record's time), never the clock, and the PDF identifier is derived
from the content, so rendering twice gives the same bytes. The template is autoescaped:
song ids and titles are untrusted.

Pages are A4 (the default) or US Letter (``page_size``). The size is not recorded anywhere
else: it is the first page's MediaBox (595.28 x 841.89 pt or 612 x 792 pt), which
:func:`page_size_of` reads back so that a re-rendering (``verify certificate --rerender``)
uses the same size; the signature covers it. Letter pages get smaller top and bottom margins,
so that their content box (183.9 x 259.0 mm) holds A4's (178.0 x 259.0 mm): whatever fits on
an A4 page fits on a Letter page, and both sizes give the same page breaks. The PDF
identifier of a Letter certificate also hashes the size (A4's is unchanged).

Signing is :mod:`lumina_audit.signer`. :func:`verify_certificate` checks a
signed certificate in numbered steps that raise :class:`CertificateError`:

1. exactly one signature, cryptographically intact and valid, covering the whole file
   (nothing appended after it); a timestamp token, when there is one, must verify too
   (whether its authority is trusted is reported, not required);
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
import math
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
    "PAGE_SIZES",
    "PROOF_ATTACHMENT",
    "REPORT_ATTACHMENT",
    "CertificateError",
    "CertificateReport",
    "page_size_name",
    "page_size_of",
    "read_attachments",
    "render_certificate",
    "render_html",
    "verify_certificate",
]

REPORT_ATTACHMENT = "report.json"
PROOF_ATTACHMENT = "inclusion-proof.json"
TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
TEMPLATE = "certificate.html.j2"
STYLESHEET = "certificate.css"
_BAR_WIDTH = 300.0
#: Page sizes in PostScript points (width, height), by the name ``page_size`` takes.
PAGE_SIZES: dict[str, tuple[float, float]] = {"A4": (595.28, 841.89), "Letter": (612.0, 792.0)}
#: Added after templates/certificate.css. US Letter is 17.6 mm shorter than A4 but 5.9 mm wider: with these
#: margins its content box (183.9 x 259.0 mm) holds A4's (178.0 x 259.0 mm), so what fits an A4 page fits a
#: Letter page (the footer sits in the 12.4 mm bottom margin).
_PAGE_CSS = {"A4": "@page { size: A4; }", "Letter": "@page { size: letter; margin: 8mm 16mm 12.4mm 16mm; }"}
#: Rows of each channel's table (and bars of its chart) on page 1.
SUMMARY_ROWS = 5


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
    #: The signature timestamp (PAdES B-T), when the signature carries one; its token verified.
    timestamp: datetime | None = None
    #: Whether the timestamp authority chains to one of the trusted roots given to the verifier.
    timestamp_trusted: bool = False

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
        bars.append({"y": 2 + 13 * i, "width": round(max(v, 0.0) / top * _BAR_WIDTH, 3),
                     "label": str(e.get("song_id", "")), "value": f"{v:.4f}"})
    return {"bars": bars, "height": 4 + 13 * len(bars), "bar_x": 170, "bar_max": _BAR_WIDTH, "bar_height": 11}


def _unique_associated_files(_document: Any, pdf: Any) -> None:
    """Each attachment once in the catalog's ``/AF`` (weasyprint 70 lists every one twice there)."""
    files = pdf.catalog.get("AF")
    if files is not None:
        unique = list(dict.fromkeys(files))
        files.clear()
        files.extend(unique)


def _summary_shares(entries: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The bars of page 1: the songs of its table with a share, then one bar for all the others.

    Page 1 stays one page however many songs share the attribution; every song is in the
    appendix and in the attached report.
    """
    shown = [e for e in entries[:SUMMARY_ROWS] if float(e.get("share", 0.0)) > 0.0]
    rest = [float(e.get("share", 0.0)) for e in entries[SUMMARY_ROWS:] if float(e.get("share", 0.0)) > 0.0]
    if rest:
        shown.append({"song_id": f"{len(rest)} other song(s)", "share": math.fsum(rest)})
    return shown


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
                      "share_chart": _chart(_summary_shares(entries), "share"),
                      "similarity_chart": _chart(entries, "similarity")})
    return {
        "report": report_doc, "channels": chans, "issued_at": _pdf_date(issued_at),
        "report_sha256": hashlib.sha256(report_bytes).hexdigest(), "proof": proof, "record": record,
        "titles": report_doc.get("titles", {}), "summary_rows": SUMMARY_ROWS,
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


def page_size_name(value: str) -> str:
    """The canonical name (``A4`` or ``Letter``) of a page size given in any letter case."""
    for name in PAGE_SIZES:
        if isinstance(value, str) and value.strip().lower() == name.lower():
            return name
    raise CertificateError(f"unknown page size {value!r} (one of {', '.join(PAGE_SIZES)})")


def page_size_of(pdf: bytes) -> str:
    """The page size (``A4`` or ``Letter``) of a certificate, from its first page's MediaBox."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        page = reader.find_page_for_modification(0)[0].get_object()  # type: ignore[no-untyped-call]
        x0, y0, x1, y1 = (float(v) for v in page["/MediaBox"])
    except Exception as exc:
        raise CertificateError(f"cannot read the first page's size ({type(exc).__name__}: {exc})") from None
    for name, (width, height) in PAGE_SIZES.items():
        if abs(abs(x1 - x0) - width) < 0.5 and abs(abs(y1 - y0) - height) < 0.5:
            return name
    raise CertificateError(f"the first page is {abs(x1 - x0):.2f} x {abs(y1 - y0):.2f} pt, neither A4 nor Letter")


def render_certificate(report_doc: dict[str, Any], report_bytes: bytes, proof: dict[str, Any], *,
                       issued_at: datetime, page_size: str = "A4") -> bytes:
    """An unsigned PDF/A-3b certificate on A4 or US Letter pages; the same inputs give the same bytes."""
    from weasyprint import CSS, HTML, Attachment  # type: ignore[import-untyped]

    if issued_at.tzinfo is None:
        raise CertificateError("issued_at must carry a time zone")
    page_size = page_size_name(page_size)
    html = render_html(report_doc, report_bytes, proof, issued_at=issued_at)
    when = issued_at.astimezone(UTC).replace(tzinfo=None)  # weasyprint formats with a literal Z
    proof_bytes = rfc8785.dumps(proof)
    attachments = [
        Attachment(string=report_bytes, name=REPORT_ATTACHMENT, description="attribution report (RFC 8785 JSON)",
                   created=when, modified=when, relationship="Data"),
        Attachment(string=proof_bytes, name=PROOF_ATTACHMENT, description="ledger inclusion proof",
                   created=when, modified=when, relationship="Supplement"),
    ]
    # The identifier of an A4 certificate is what it was before Letter existed, so that those re-render alike.
    seed = report_bytes + b"\0" + proof_bytes + (b"" if page_size == "A4" else b"\0" + page_size.encode())
    identifier = hashlib.sha256(seed).hexdigest()[:32].encode()
    css = TEMPLATES / STYLESHEET
    stylesheets = [CSS(filename=str(css))] if css.exists() else []
    stylesheets.append(CSS(string=_PAGE_CSS[page_size]))  # after the template's: its size wins
    doc = HTML(string=html, base_url=str(TEMPLATES))
    with _source_date_epoch(issued_at):
        pdf = doc.write_pdf(stylesheets=stylesheets, attachments=attachments, pdf_variant="pdf/a-3b",
                            pdf_identifier=identifier, finisher=_unique_associated_files)
    if not isinstance(pdf, bytes):
        raise CertificateError("weasyprint returned no PDF")
    return pdf


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
