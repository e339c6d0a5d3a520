"""PAdES B-T: a real RFC 3161 round trip to a timestamp authority on loopback.

The authority is pyHanko's ``DummyTimeStamper`` behind :mod:`http.server` on 127.0.0.1 (port 0,
a thread), with a throwaway TSA certificate (extended key usage timeStamping, critical).
"""

from __future__ import annotations

import hashlib
import io
import re
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from lumina_audit.certificates.issue import Issued, issue_certificate, rerender_matches
from lumina_audit.certificates.pdf import CertificateError
from lumina_audit.certificates.pki import ThrowawayPki, throwaway_pki
from lumina_audit.certificates.signer import SignerCredentials
from lumina_audit.certificates.verify import verify_certificate
from lumina_audit.evidence.ledger import Ledger

from .test_render_verify import OPERATOR, _make, _trust, signer_of


@dataclass(frozen=True)
class Tsa:
    url: str
    pki: ThrowawayPki
    requests: list[bytes]


@pytest.fixture(scope="module")
def tsa() -> Iterator[Tsa]:
    from asn1crypto import tsp  # type: ignore[import-untyped]
    from pyhanko.keys import load_certs_from_pemder_data, load_private_key_from_pemder_data
    from pyhanko.sign.timestamps import DummyTimeStamper

    pki = throwaway_pki("rsa", name="test TSA", purpose="timestamping")  # DummyTimeStamper signs with RSA only
    stamper = DummyTimeStamper(tsa_cert=next(iter(load_certs_from_pemder_data(pki.signer_cert_pem))),
                               tsa_key=load_private_key_from_pemder_data(pki.signer_key_pem, passphrase=None))
    seen: list[bytes] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(body)
            if self.headers.get("Content-Type") != "application/timestamp-query":
                self.send_error(415)
                return
            reply = stamper.request_tsa_response(tsp.TimeStampReq.load(body)).dump()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(reply)))
            self.end_headers()
            self.wfile.write(reply)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Tsa(f"http://127.0.0.1:{server.server_address[1]}/tsa", pki, seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


@dataclass(frozen=True)
class Setup:
    root: Path
    report: Path
    signer_root: bytes
    signer: SignerCredentials


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    """A ledger whose record 1 lists a report, the report on disk, and a signer."""
    root = tmp_path_factory.mktemp("bt")
    _doc, data, _proof, _when = _make(root)
    report = root / "reports" / "q.json"
    report.parent.mkdir()
    report.write_bytes(data)
    pki = throwaway_pki("ec")
    return Setup(root, report, pki.root_pem, signer_of(pki, root / "pki"))


@pytest.fixture(scope="module")
def stamped(setup: Setup, tsa: Tsa) -> tuple[Issued, bytes]:
    before = len(tsa.requests)
    issued = issue_certificate(setup.report, setup.root / "ledger", setup.root / "out" / "bt.pdf",
                               operator_key=OPERATOR, principal="operator", signer=setup.signer,
                               timestamp_url=tsa.url)
    assert len(tsa.requests) > before  # it really went over the wire
    return issued, issued.path.read_bytes()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_b_t_signature_carries_a_timestamp_pyhanko_accepts(stamped: tuple[Issued, bytes], setup: Setup,
                                                           tsa: Tsa) -> None:
    from cryptography import x509
    from pyhanko.keys import load_certs_from_pemder_data
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import SignatureCoverageLevel, validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    _issued, pdf = stamped
    sig = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0]
    unsigned_attrs = {a["type"].native for a in sig.signer_info["unsigned_attrs"]}
    assert "signature_time_stamp_token" in unsigned_attrs
    signer_vc = ValidationContext(trust_roots=list(load_certs_from_pemder_data(setup.signer_root)),
                                  allow_fetching=False)
    tsa_vc = ValidationContext(trust_roots=list(load_certs_from_pemder_data(tsa.pki.root_pem)), allow_fetching=False)
    status = validate_pdf_signature(sig, signer_validation_context=signer_vc, ts_validation_context=tsa_vc)
    assert status.intact and status.valid and status.trusted
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    stamp = status.timestamp_validity
    assert stamp is not None and stamp.intact and stamp.valid and stamp.trusted
    assert abs(stamp.timestamp - datetime.now(UTC)) < timedelta(minutes=10)
    tsa_cert = x509.load_der_x509_certificate(stamp.signing_cert.dump())
    eku = tsa_cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [x509.oid.ExtendedKeyUsageOID.TIME_STAMPING]


def test_b_t_certificate_still_verifies_and_re_renders(stamped: tuple[Issued, bytes], setup: Setup,
                                                       tsa: Tsa) -> None:
    issued, pdf = stamped
    report = verify_certificate(pdf, trust_roots_pem=[setup.signer_root], ledger_trust=_trust())
    assert report.ledger_record == 1 and report.timestamp is not None and not report.timestamp_trusted
    both = verify_certificate(pdf, trust_roots_pem=[setup.signer_root, tsa.pki.root_pem], ledger_trust=_trust())
    assert both.timestamp == report.timestamp and both.timestamp_trusted
    record = Ledger.open(setup.root / "ledger").records()[issued.seq]
    assert record.kind == "certificate" and record.body["signed_pdf_sha256"] == hashlib.sha256(pdf).hexdigest()
    rerender_matches(pdf)  # the timestamp lives in the signature, after the re-rendered revision
    full = verify_certificate(pdf, trust_roots_pem=[setup.signer_root], ledger_trust=_trust(),
                              ledger=setup.root / "ledger", rerender=True)
    assert full.certificate_record == issued.seq and full.rerendered and full.timestamp == report.timestamp


def test_a_timestamp_token_that_does_not_verify_is_rejected(stamped: tuple[Issued, bytes], setup: Setup) -> None:
    """Unsigned attributes are outside the signature: a broken token must be caught on its own."""
    from pyhanko.pdf_utils.reader import PdfFileReader

    _issued, pdf = stamped
    sig = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0]
    token = next(a for a in sig.signer_info["unsigned_attrs"] if a["type"].native == "signature_time_stamp_token")
    tst_signature = token["values"][0]["content"]["signer_infos"][0]["signature"].native
    m = re.search(rb"/Contents\s*<([0-9a-fA-F]+)>", pdf)
    assert m is not None
    der = bytes.fromhex(m[1].decode())
    at = der.index(tst_signature) + len(tst_signature) // 2
    broken = bytearray(der)
    broken[at] ^= 0x01
    hex_broken = bytes(broken).hex().encode()
    if m[1].isupper():
        hex_broken = hex_broken.upper()
    bad = pdf[:m.start(1)] + hex_broken + pdf[m.end(1):]
    assert len(bad) == len(pdf) and bad != pdf
    with pytest.raises(CertificateError, match=r"^step 1: the signature's timestamp token does not verify$"):
        verify_certificate(bad, trust_roots_pem=[setup.signer_root], ledger_trust=_trust())


def test_unreachable_authority_writes_nothing_and_records_nothing(setup: Setup) -> None:
    ledger_dir = setup.root / "ledger"
    before = len(Ledger.open(ledger_dir).records())
    out = setup.root / "out" / "unreachable.pdf"
    url = f"http://127.0.0.1:{_closed_port()}/tsa"
    with pytest.raises(CertificateError) as caught:
        issue_certificate(setup.report, ledger_dir, out, operator_key=OPERATOR, principal="operator",
                          signer=setup.signer, timestamp_url=url)
    message = caught.value.message
    assert message.startswith(f"cannot get a timestamp from {url}: ") and "\n" not in message
    assert not out.exists()
    assert len(Ledger.open(ledger_dir).records()) == before


@pytest.mark.parametrize("url", ["ftp://tsa.example.org/", "tsa.example.org", "http:///tsr", "http://a b/"])
def test_a_timestamp_url_that_is_not_http_is_refused_before_any_work(setup: Setup, url: str) -> None:
    out = setup.root / "out" / "never.pdf"
    with pytest.raises(CertificateError, match=r"^timestamp authority URL .* is not an http:// or https:// URL$"):
        issue_certificate(setup.root / "does-not-exist.json", setup.root / "ledger", out, operator_key=OPERATOR,
                          principal="operator", signer=setup.signer, timestamp_url=url)
    assert not out.exists()
