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

Signing is :mod:`.signer`; verification :mod:`.verify`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import rfc8785

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

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
TEMPLATE = "certificate.html.j2"
STYLESHEET = "certificate.css"
_BAR_WIDTH = 300.0
#: Added after templates/certificate.css: the size and the margins (:data:`.pdf.MARGINS_MM`), and the free corner
#: of page 1 where the signer draws the visible signature (:data:`.pdf.STAMP_MM`).
_PAGE_CSS = {name: "@page {{ size: {size}; margin: {m[0]}mm {m[1]}mm {m[2]}mm {m[3]}mm; }} "
                   ".stampbox {{ width: {w}mm; height: {h}mm; }} .beside-stamp {{ margin-right: {r}mm; }}".format(
                       size=name.lower() if name == "Letter" else name, m=MARGINS_MM[name], w=STAMP_MM[0],
                       h=STAMP_MM[1], r=STAMP_MM[0] + 2.0)
             for name in ("A4", "Letter")}
#: Rows of each channel's table (and bars of its chart) on page 1.
SUMMARY_ROWS = 5


def _pdf_date(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _chart(entries: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    """Bar geometry for an inline SVG (values and labels escaped by the template)."""
    values = [float(e.get(key, 0.0)) for e in entries]
    top = max([abs(v) for v in values] + [1e-12])
    bars = []
    for i, (e, v) in enumerate(zip(entries, values, strict=True)):
        bars.append({"y": 2 + 10 * i, "width": round(max(v, 0.0) / top * _BAR_WIDTH, 3),
                     "label": str(e.get("song_id", "")), "value": f"{v:.4f}"})
    return {"bars": bars, "height": 4 + 10 * len(bars), "bar_x": 170, "bar_max": _BAR_WIDTH, "bar_height": 8}


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
    calibration = report_doc.get("calibration", {})
    for ch in ("P", "M"):
        res = channels.get(ch, {})
        entries = list(res.get("entries", []))
        figures = calibration.get("channels", {}).get(ch, {})
        chans.append({"name": ch, "result": res, "entries": entries,
                      "share_chart": _chart(_summary_shares(entries), "share"),
                      "similarity_chart": _chart(entries, "similarity"),
                      "rates": _rate_cells(figures), "detection": figures.get("detection")})
    return {
        "report": report_doc, "channels": chans, "issued_at": _pdf_date(issued_at),
        "report_sha256": hashlib.sha256(report_bytes).hexdigest(), "proof": proof, "record": record,
        "titles": report_doc.get("titles", {}), "summary_rows": SUMMARY_ROWS,
        "signature_method": _signature_method(report_doc), "error_rates": _error_rates(calibration),
    }


def _percent(value: float) -> str:
    return f"{100 * value:.1f} %"


def _error_rates(calibration: dict[str, Any]) -> str:
    """Both error directions of the calibration, both channels, in plain words, for page 1."""
    figures = {ch: calibration.get("channels", {}).get(ch, {}) for ch in ("P", "M")}
    detections = {ch: f.get("detection") for ch, f in figures.items()}
    if all(detections.values()):
        o = {ch: d["overall"] for ch, d in detections.items() if d}
        missed = ("In the calibration, a derived copy of a catalog song was missed in "
                  f"{_percent(o['P']['missed_rate'])} (P) and {_percent(o['M']['missed_rate'])} (M) of "
                  f"{o['P']['cases']} cases")
    else:
        missed = "The calibration measured no derived copy of a catalog song: how often one is missed is not known"
    rates = {ch: f.get("unrelated_attributed_rate") for ch, f in figures.items()}
    if rates["P"] is None or rates["M"] is None:
        unrelated = ("how often an unrelated piece is attributed is not stated (a version 1 calibration; "
                     f"pair-wise false-positive rates {figures['P'].get('false_positive_rate')} (P), "
                     f"{figures['M'].get('false_positive_rate')} (M))")
    else:
        unrelated = (f"an unrelated piece was attributed to a catalog song in {_percent(rates['P'])} (P) and "
                     f"{_percent(rates['M'])} (M) of {calibration.get('C')}")
    return f"{missed}; {unrelated}."


def _rate_cells(figures: dict[str, Any]) -> dict[str, str]:
    detection = figures.get("detection")
    rate = figures.get("unrelated_attributed_rate")
    return {"unrelated": "not stated" if rate is None else _percent(rate),
            "missed": (f"{_percent(detection['overall']['missed_rate'])} of {detection['overall']['cases']}"
                       if detection else "not measured")}


def _signature_method(report_doc: dict[str, Any]) -> dict[str, str]:
    """The report's signature method: its name, its normative spec and what it keeps of the gradient."""
    from ..attribution.reports import signature_method_of
    from ..signature.methods import METHODS

    name = signature_method_of(report_doc)
    method = METHODS.get(name)
    if method is None:
        return {"name": name, "spec": "(unknown to this version of lumina-audit)", "description": ""}
    return {"name": name, "spec": method.spec, "description": method.description}


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
