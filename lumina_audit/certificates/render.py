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
:func:`page_size_of` reads back so that a re-rendering (``certificate verify --rerender``)
uses the same size; the signature covers it. Letter pages get smaller top and bottom margins,
so that their content box (183.9 x 259.0 mm) holds A4's (178.0 x 259.0 mm): whatever fits on
an A4 page fits on a Letter page, and both sizes give the same page breaks. The PDF
identifier of a Letter certificate also hashes the size (A4's is unchanged).

A ``lumina-attribution-v2`` report (version 3: likelihood ratios) gets ``certificate-lr.html.j2`` and
``certificate-lr.css`` (see lumina_audit/_data/templates/README.md): propositions, LRs, bounds and validation on page 1,
then a page of Tippett and ECE plots (inline SVG from :mod:`.plots`: vector graphics) and the appendix.
The v1 pair is untouched, so certificates of version 1 and 2 reports re-render to the same bytes.

Signing is :mod:`.signer`; verification :mod:`.verify`.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import rfc8785

from ..attribution.reports import ATTRIBUTION_V2
from .context import SUMMARY_ROWS, context, lr_context
from .pdf import (
    MARGINS_MM,
    PAGE_SIZES,
    PROOF_ATTACHMENT,
    REPORT_ATTACHMENT,
    STAMP_MM,
    CertificateError,
    page_size_name,
)

__all__ = ["PAGE_SIZES", "SUMMARY_ROWS", "render_certificate", "render_html"]

#: Package data (``lumina_audit/_data/templates``, in the wheel too), never looked up in a source checkout.
TEMPLATES = Path(__file__).resolve().parents[1] / "_data" / "templates"
TEMPLATE = "certificate.html.j2"
STYLESHEET = "certificate.css"
#: The template and stylesheet of a ``lumina-attribution-v2`` (version 3) report's certificate.
TEMPLATE_LR = "certificate-lr.html.j2"
STYLESHEET_LR = "certificate-lr.css"
_PAGE_CSS = {name: "@page {{ size: {size}; margin: {m[0]}mm {m[1]}mm {m[2]}mm {m[3]}mm; }} "
                   ".stampbox {{ width: {w}mm; height: {h}mm; }} .beside-stamp {{ margin-right: {r}mm; }}".format(
                       size=name.lower() if name == "Letter" else name, m=MARGINS_MM[name], w=STAMP_MM[0],
                       h=STAMP_MM[1], r=STAMP_MM[0] + 2.0)
             for name in ("A4", "Letter")}


def _unique_associated_files(_document: Any, pdf: Any) -> None:
    """Each attachment once in the catalog's ``/AF`` (weasyprint 70 lists every one twice there)."""
    files = pdf.catalog.get("AF")
    if files is not None:
        unique = list(dict.fromkeys(files))
        files.clear()
        files.extend(unique)


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


def _is_lr(report_doc: dict[str, Any]) -> bool:
    """Whether the report states likelihood ratios (method ``lumina-attribution-v2``, report version 3)."""
    if report_doc.get("method") != ATTRIBUTION_V2:
        return False
    if report_doc.get("version") != 3:
        raise CertificateError(f"a {ATTRIBUTION_V2} report must be of version 3, not {report_doc.get('version')!r}")
    return True


def render_html(report_doc: dict[str, Any], report_bytes: bytes, proof: dict[str, Any], *,
                issued_at: datetime) -> str:
    """The certificate's HTML (autoescaped Jinja2): the likelihood-ratio template for a v2-method report."""
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), autoescape=True,
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    try:
        if _is_lr(report_doc):
            return env.get_template(TEMPLATE_LR).render(**lr_context(report_doc, report_bytes, proof, issued_at))
        return env.get_template(TEMPLATE).render(**context(report_doc, report_bytes, proof, issued_at))
    except jinja2.TemplateError as exc:
        raise CertificateError(f"cannot render the certificate template ({exc})") from None


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
    css = TEMPLATES / (STYLESHEET_LR if _is_lr(report_doc) else STYLESHEET)
    stylesheets = [CSS(filename=str(css))] if css.exists() else []
    stylesheets.append(CSS(string=_PAGE_CSS[page_size]))  # after the template's: its size wins
    doc = HTML(string=html, base_url=str(TEMPLATES))
    with _source_date_epoch(issued_at):
        pdf = doc.write_pdf(stylesheets=stylesheets, attachments=attachments, pdf_variant="pdf/a-3b",
                            pdf_identifier=identifier, finisher=_unique_associated_files)
    if not isinstance(pdf, bytes):
        raise CertificateError("weasyprint returned no PDF")
    return pdf
