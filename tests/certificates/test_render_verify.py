"""Signed PDF certificates: deterministic rendering, PAdES signing, and verification steps 1-4.

Signer loading, PKCS#12, Ed25519 and page sizes: test_certificate_signer.py; PAdES B-T: test_timestamp.py.
"""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lumina_audit.attribution.reports import canonical
from lumina_audit.certificates.pdf import CertificateError
from lumina_audit.certificates.pki import ThrowawayPki, throwaway_pki
from lumina_audit.certificates.render import render_certificate, render_html
from lumina_audit.certificates.signer import SignerCredentials, load_signer, sign_certificate
from lumina_audit.certificates.verify import verify_certificate
from lumina_audit.evidence import note
from lumina_audit.evidence.keys import generate
from lumina_audit.evidence.ledger import LEDGER_NAMESPACE, Ledger, prove
from lumina_audit.evidence.trust import TrustStore, format_entry, parse_trust

OPERATOR = generate()
MALLORY = generate()
TIME = datetime(2026, 5, 4, 12, 30, 15, 123456, tzinfo=UTC)
EVIL = "<script>alert(1)</script> {{ 7*7 }}"


def _trust() -> TrustStore:
    return parse_trust(format_entry("operator", [LEDGER_NAMESPACE], OPERATOR.public_key()))


def _report(song_id: str = "query-001", title: str = "A song", origin: str = "", seq: int = 0) -> dict[str, Any]:
    entries = [{"song_id": f"cat-{i:03d}", "row": i, "similarity": 0.9 - 0.1 * i, "z": 6.0 - i,
                "excess": 0.3 - 0.1 * i, "share": [0.5, 0.3, 0.2][i], "above_threshold": True} for i in range(3)]
    channel = {"verdict": "attributed", "mu": 0.1, "sigma": 0.05, "tau": 0.35, "top_k": 10, "catalog_size": 40,
               "above_count": 3, "excess_sum": 0.6, "entries": entries}
    cal = {"mu": 0.1, "sigma": 0.05, "k": 5.0, "tau": 0.35, "false_positive_rate": 0.0, "counts_above_mean": 0.0,
           "counts_above_max": 0}
    return {
        "format": "lumina-attribution-report", "version": 1, "method": "lumina-attribution-v1",
        "query": {"song_id": song_id, "title": title, "file": f"{song_id}.wav", "file_sha256": "a" * 64,
                  "pcm_sha256": "b" * 64, "chunks": 3},
        "signature_space_sha256": "c" * 64, "catalog": {"sha256": "d" * 64, "songs": 40},
        "calibration": {"sha256": "e" * 64, "C": 8, "N": 40, "k": 5.0, "channels": {"P": cal, "M": cal}},
        "channels": {"P": channel, "M": {**channel, "entries": entries[:2]}},
        "manifest_digest": "f" * 64, "manifest_signers": [{"key_id": "0" * 64, "principal": "operator"}],
        "ledger": {"origin": origin, "record": seq},
    }


def _make(tmp: Path, **kw: Any) -> tuple[dict[str, Any], bytes, dict[str, Any], datetime]:
    """A report, a ledger record listing it, and the record's inclusion proof."""
    ledger = Ledger.create(tmp / "ledger", origin="example.org/lumina/test")
    ledger.append("run", {"outputs": []}, OPERATOR, "operator", now=TIME - timedelta(minutes=1))
    doc = _report(origin=ledger.origin, seq=1, **kw)
    data = canonical(doc)
    ledger.append("run", {"outputs": [{"path": "reports/q.json", "size": len(data),
                                       "sha256": hashlib.sha256(data).hexdigest()}]}, OPERATOR, "operator", now=TIME)
    return doc, data, prove(tmp / "ledger", 1), ledger.records()[1].time


def signer_of(pki: ThrowawayPki, folder: Path) -> SignerCredentials:
    """The throwaway PKI's signer, written to ``folder`` as PEM files and loaded as a user's would be."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "signer.key").write_bytes(pki.signer_key_pem)
    (folder / "signer.pem").write_bytes(pki.signer_cert_pem)
    return load_signer(key=folder / "signer.key", cert=folder / "signer.pem")


def _pki(kind: str, folder: Path) -> tuple[bytes, SignerCredentials]:
    """(root cert PEM, loaded signer)."""
    p = throwaway_pki("ec" if kind == "ec" else "rsa")
    return p.root_pem, signer_of(p, folder)


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], bytes, dict[str, Any], datetime]:
    return _make(tmp_path_factory.mktemp("cert"))


@pytest.fixture(scope="module")
def unsigned(made: tuple[dict[str, Any], bytes, dict[str, Any], datetime]) -> bytes:
    doc, data, proof, when = made
    return render_certificate(doc, data, proof, issued_at=when)


@pytest.fixture(scope="module", params=["ec", "rsa"])
def pki(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[bytes, SignerCredentials]:
    return _pki(request.param, tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def signed(unsigned: bytes, pki: tuple[bytes, SignerCredentials]) -> bytes:
    return sign_certificate(unsigned, pki[1])


def _verify(pdf: bytes, root: bytes, trust: TrustStore | None = None) -> Any:
    return verify_certificate(pdf, trust_roots_pem=[root], ledger_trust=trust or _trust())


def test_render_is_deterministic_pdfa(made: tuple[dict[str, Any], bytes, dict[str, Any], datetime],
                                      unsigned: bytes) -> None:
    doc, data, proof, when = made
    again = render_certificate(doc, data, proof, issued_at=when)
    assert again == unsigned
    assert unsigned.startswith(b"%PDF-")
    from pyhanko.pdf_utils.reader import PdfFileReader

    reader = PdfFileReader(io.BytesIO(unsigned))
    xmp = reader.root["/Metadata"].get_object().data
    assert b"pdfaid:part" in xmp and b"2026-05-04T12:30:15" in xmp  # PDF/A-3, dates from the ledger record
    # Each attached file once in /AF (weasyprint 70 alone lists each twice), with its relationship.
    files = [f.get_object() for f in reader.root["/AF"]]
    assert sorted(str(f["/AFRelationship"]) for f in files) == ["/Data", "/Supplement"]
    names = reader.root["/Names"]["/EmbeddedFiles"]["/Names"]
    assert sorted(str(f["/F"]) for f in files) == sorted(str(names.raw_get(i)) for i in range(0, len(names), 2))


def test_a4_and_attachments(unsigned: bytes, made: tuple[dict[str, Any], bytes, dict[str, Any], datetime]) -> None:
    from pyhanko.pdf_utils.reader import PdfFileReader

    from lumina_audit.certificates.pdf import read_attachments

    reader = PdfFileReader(io.BytesIO(unsigned))
    pages = reader.root["/Pages"]
    assert int(pages["/Count"]) >= 2
    for i in range(int(pages["/Count"])):
        page = reader.find_page_for_modification(i)[0].get_object()
        box = [float(v) for v in page["/MediaBox"]]
        assert box[2] - box[0] == pytest.approx(595.28, abs=0.5)
        assert box[3] - box[1] == pytest.approx(841.89, abs=0.5)
    files = read_attachments(reader)
    assert files["report.json"] == made[1]
    assert b'"format":"lumina-inclusion-proof"' in files["inclusion-proof.json"]


def test_sign_and_verify(signed: bytes, pki: tuple[bytes, SignerCredentials],
                         made: tuple[dict[str, Any], bytes, dict[str, Any], datetime]) -> None:
    from pyhanko.keys import load_certs_from_pemder_data
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import SignatureCoverageLevel, validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    root = pki[0]
    report = _verify(signed, root)
    assert report.bottom_line and report.ledger_record == 1 and report.tree_size == 2
    assert report.report_sha256 == hashlib.sha256(made[1]).hexdigest()
    assert "throwaway signer" in report.signer_subject
    # pyHanko's own validator agrees.
    sig = PdfFileReader(io.BytesIO(signed)).embedded_signatures[0]
    vc = ValidationContext(trust_roots=list(load_certs_from_pemder_data(root)), allow_fetching=False)
    status = validate_pdf_signature(sig, signer_validation_context=vc)
    assert status.intact and status.valid and status.trusted
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE


@pytest.mark.parametrize("where", [0.02, 0.33, 0.6, 0.97])
def test_flipped_byte_rejected_at_step_1(signed: bytes, pki: tuple[bytes, SignerCredentials], where: float) -> None:
    import re

    m = re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", signed)
    assert m is not None
    gap = (int(m[2]), int(m[3]))  # the signature's /Contents, which the signature cannot cover
    at = int(len(signed) * where)
    if gap[0] <= at < gap[1]:
        at = gap[1] + 10
    bad = bytearray(signed)
    bad[at] ^= 0x01
    with pytest.raises(CertificateError, match=r"^step 1:"):
        _verify(bytes(bad), pki[0])


def test_incremental_update_rejected(signed: bytes, pki: tuple[bytes, SignerCredentials]) -> None:
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter

    writer = IncrementalPdfFileWriter(io.BytesIO(signed))
    writer.root["/LuminaTamper"] = generic.pdf_string("changed after signing")
    writer.update_root()
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(CertificateError, match=r"^step 1: .*whole file"):
        _verify(out.getvalue(), pki[0])


def test_untrusted_root_rejected_at_step_2(signed: bytes) -> None:
    other_root = throwaway_pki("ec").root_pem
    with pytest.raises(CertificateError, match=r"^step 2:"):
        _verify(signed, other_root)


def test_swapped_report_rejected_at_step_3(made: tuple[dict[str, Any], bytes, dict[str, Any], datetime],
                                           pki: tuple[bytes, SignerCredentials]) -> None:
    doc, _data, proof, when = made
    other = {**doc, "query": {**doc["query"], "song_id": "someone-else"}}
    pdf = render_certificate(other, canonical(other), proof, issued_at=when)
    with pytest.raises(CertificateError, match=r"^step 3: report.json .* is not among the outputs"):
        _verify(sign_certificate(pdf, pki[1]), pki[0])


def test_untrusted_checkpoint_rejected_at_step_4(made: tuple[dict[str, Any], bytes, dict[str, Any], datetime],
                                                 pki: tuple[bytes, SignerCredentials]) -> None:
    doc, data, proof, when = made
    body = proof["checkpoint"].split("\n\n", 1)[0] + "\n"
    forged = {**proof, "checkpoint": note.sign_note(body, "mallory", MALLORY)}
    pdf = sign_certificate(render_certificate(doc, data, forged, issued_at=when), pki[1])
    with pytest.raises(CertificateError, match=r"^step 4: proof step 4: checkpoint"):
        _verify(pdf, pki[0])
    # ... and the genuine certificate fails too when the ledger key is not trusted.
    genuine = sign_certificate(render_certificate(doc, data, proof, issued_at=when), pki[1])
    mallory_trust = parse_trust(format_entry("mallory", [LEDGER_NAMESPACE], MALLORY.public_key()))
    with pytest.raises(CertificateError, match=r"^step 4:"):
        _verify(genuine, pki[0], mallory_trust)


def test_untrusted_text_is_escaped(tmp_path: Path) -> None:
    doc, data, proof, when = _make(tmp_path, song_id=EVIL, title=EVIL)
    html = render_html(doc, data, proof, issued_at=when)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; {{ 7*7 }}" in html
    assert "{{ 7*7 }}" in html and "> 49" not in html and "49 &mdash;" not in html
    # The laid-out text (what the PDF's text layer holds) shows the title literally.
    from weasyprint import HTML

    texts: list[str] = []

    def walk(box: Any) -> None:
        if hasattr(box, "text") and isinstance(box.text, str):
            texts.append(box.text)
        for child in getattr(box, "children", []):
            walk(child)

    for page in HTML(string=html).render().pages:
        walk(page._page_box)
    joined = " ".join(texts)
    assert "<script>alert(1)</script>" in joined and "{{ 7*7 }}" in joined
    pdf = render_certificate(doc, data, proof, issued_at=when)
    assert pdf.startswith(b"%PDF-")
