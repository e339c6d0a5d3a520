"""What the certificate modules share about the PDF: the error, the attachments, the page sizes.

A certificate attaches its attribution report as ``report.json`` (AFRelationship ``Data``)
and the ledger inclusion proof as ``inclusion-proof.json`` (``Supplement``). Its page size,
A4 or US Letter, is recorded nowhere but in the first page's MediaBox (595.28 x 841.89 pt
or 612 x 792 pt), which :func:`page_size_of` reads back.
"""

from __future__ import annotations

import io
from typing import Any

from ..errors import LuminaError

__all__ = [
    "MARGINS_MM",
    "PAGE_SIZES",
    "STAMP_MM",
    "PROOF_ATTACHMENT",
    "REPORT_ATTACHMENT",
    "CertificateError",
    "page_size_name",
    "page_size_of",
    "read_attachments",
    "stamp_box",
]

REPORT_ATTACHMENT = "report.json"
PROOF_ATTACHMENT = "inclusion-proof.json"
#: Page margins in millimetres (top, right, bottom, left). US Letter is 17.6 mm shorter than A4 but 5.9 mm wider:
#: with these margins its content box (183.9 x 259.0 mm) holds A4's (178.0 x 259.0 mm), so what fits an A4 page
#: fits a Letter page (the footer sits in the bottom margin).
MARGINS_MM: dict[str, tuple[float, float, float, float]] = {"A4": (18.0, 16.0, 20.0, 16.0),
                                                            "Letter": (8.0, 16.0, 12.4, 16.0)}
#: The visible signature's box on page 1 (width, height in mm), at the top right of the content box: the
#: template keeps that corner free, and the signer draws its stamp there.
STAMP_MM = (64.0, 21.0)
_PT_PER_MM = 72.0 / 25.4
#: Page sizes in PostScript points (width, height), by the name ``page_size`` takes.
PAGE_SIZES: dict[str, tuple[float, float]] = {"A4": (595.28, 841.89), "Letter": (612.0, 792.0)}


class CertificateError(LuminaError):
    """A certificate cannot be made, or does not verify."""

    exit_code = 1


def stamp_box(page_size: str) -> tuple[float, float, float, float]:
    """The page-1 box of the visible signature, in PDF points: (x1, y1, x2, y2) from the bottom left corner."""
    width, height = PAGE_SIZES[page_size_name(page_size)]
    top, right, _bottom, _left = MARGINS_MM[page_size_name(page_size)]
    x2 = width - right * _PT_PER_MM
    y2 = height - top * _PT_PER_MM
    return (round(x2 - STAMP_MM[0] * _PT_PER_MM, 2), round(y2 - STAMP_MM[1] * _PT_PER_MM, 2), round(x2, 2),
            round(y2, 2))


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
