"""The document signer (PEM, DER, PKCS#12; ECDSA, RSA, Ed25519), page sizes, and the certificate CLI."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, rsa
from cryptography.x509.oid import NameOID

from lumina_audit.certificates.issue import rerender_matches
from lumina_audit.certificates.pdf import PAGE_SIZES, CertificateError, page_size_of
from lumina_audit.certificates.pki import throwaway_pki, write_throwaway_pki
from lumina_audit.certificates.render import render_certificate
from lumina_audit.certificates.signer import load_signer, sign_certificate
from lumina_audit.certificates.verify import verify_certificate
from lumina_audit.evidence.ledger import LEDGER_NAMESPACE, Ledger
from lumina_audit.evidence.trust import format_entry

from .test_render_verify import OPERATOR, _make, _trust, signer_of

P12_PASS = b"correct horse battery staple"
PEM = serialization.Encoding.PEM
DER = serialization.Encoding.DER
Made = tuple[dict[str, Any], bytes, dict[str, Any], datetime]


@pytest.fixture(scope="module")
def made(tmp_path_factory: pytest.TempPathFactory) -> Made:
    """As :func:`_make`, with the report as it reads back from its canonical JSON (5.0 reads back as 5), the
    form ``issue_certificate`` and ``rerender_matches`` render."""
    _doc, data, proof, when = _make(tmp_path_factory.mktemp("signer"))
    return json.loads(data), data, proof, when


@pytest.fixture(scope="module")
def rendered(made: Made) -> dict[str, bytes]:
    """The same report and proof on A4 and on Letter pages (two renders, shared by the module)."""
    doc, data, proof, when = made
    return {size: render_certificate(doc, data, proof, issued_at=when, page_size=size) for size in PAGE_SIZES}


@pytest.fixture(scope="module")
def pkis(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    """Throwaway PKIs on disk: ``ec`` (with signer.p12), ``rsa``, ``ed25519`` and ``other`` (ec)."""
    base = tmp_path_factory.mktemp("pkis")
    return {"ec": write_throwaway_pki(base / "ec", "ec", pkcs12_passphrase=P12_PASS),
            "rsa": write_throwaway_pki(base / "rsa", "rsa"),
            "ed25519": write_throwaway_pki(base / "ed25519", "ed25519", pkcs12_passphrase=P12_PASS),
            "other": write_throwaway_pki(base / "other", "ec")}


def _verify(pdf: bytes, root: Path) -> Any:
    return verify_certificate(pdf, trust_roots_pem=[root.read_bytes()], ledger_trust=_trust())


def _pyhanko_status(pdf: bytes, root: Path) -> Any:
    from pyhanko.keys import load_certs_from_pemder_data
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    sig = PdfFileReader(io.BytesIO(pdf)).embedded_signatures[0]
    vc = ValidationContext(trust_roots=list(load_certs_from_pemder_data(root.read_bytes())), allow_fetching=False)
    return validate_pdf_signature(sig, signer_validation_context=vc)


# ------------------------------------------------------------------ key types


@pytest.mark.parametrize(("kind", "key_type"), [("ec", "ECDSA P-256"), ("rsa", "RSA 2048"), ("ed25519", "Ed25519")])
def test_each_key_type_signs_and_both_validators_accept(rendered: dict[str, bytes], pkis: dict[str, dict[str, Path]],
                                                        kind: str, key_type: str) -> None:
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import SignatureCoverageLevel

    paths = pkis[kind]
    signer = load_signer(key=paths["key"], cert=paths["cert"])
    assert signer.key_type == key_type and signer.chain == ()
    pdf = sign_certificate(rendered["A4"], signer)
    status = _pyhanko_status(pdf, paths["root"])
    assert status.intact and status.valid and status.trusted
    assert status.coverage == SignatureCoverageLevel.ENTIRE_FILE
    report = _verify(pdf, paths["root"])
    assert report.ledger_record == 1 and report.signer_fingerprint == signer.fingerprint
    assert report.timestamp is None
    if kind == "ed25519":  # RFC 8419 in CMS, and the PDF declares ISO 32002 for readers
        assert status.pkcs7_signature_mechanism == "ed25519" and status.md_algorithm == "sha512"
        extensions = PdfFileReader(io.BytesIO(pdf)).root["/Extensions"]
        assert "/ISO_" in extensions
        bad = bytearray(pdf)
        bad[len(pdf) // 3] ^= 0x01
        with pytest.raises(CertificateError, match=r"^step 1:"):
            _verify(bytes(bad), paths["root"])
    with pytest.raises(CertificateError, match=r"^step 2:"):
        _verify(pdf, pkis["other"]["root"])


def _key_file(folder: Path, name: str, key: Any) -> Path:
    path = folder / name
    path.write_bytes(key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return path


@pytest.mark.parametrize(("make", "found"), [
    (lambda: rsa.generate_private_key(65537, 1024), "RSA 1024"),
    (lambda: ec.generate_private_key(ec.SECP521R1()), "ECDSA on curve secp521r1"),
    (lambda: ec.generate_private_key(ec.SECP256K1()), "ECDSA on curve secp256k1"),
    (lambda: ed448.Ed448PrivateKey.generate(), "Ed448PrivateKey"),
])
def test_unsupported_key_types_are_refused(tmp_path: Path, pkis: dict[str, dict[str, Path]], make: Any,
                                           found: str) -> None:
    key = _key_file(tmp_path, "weak.key", make())
    with pytest.raises(CertificateError, match=rf"^{key}: unsupported signing key \({found}\); use ECDSA P-256"):
        load_signer(key=key, cert=pkis["ec"]["cert"])


def test_p384_is_accepted_and_signs(rendered: dict[str, bytes], tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "p384 self-signed")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
            .sign(key, hashes.SHA384()))
    (tmp_path / "c.der").write_bytes(cert.public_bytes(DER))
    (tmp_path / "root.pem").write_bytes(cert.public_bytes(PEM))  # self-signed: its own trust root
    signer = load_signer(key=_key_file(tmp_path, "k.pem", key), cert=tmp_path / "c.der")
    assert signer.key_type == "ECDSA P-384"
    pdf = sign_certificate(rendered["A4"], signer)
    status = _pyhanko_status(pdf, tmp_path / "root.pem")
    assert status.intact and status.valid and status.trusted
    assert "ecdsa" in status.pkcs7_signature_mechanism and status.signing_cert.dump() == cert.public_bytes(DER)
    report = _verify(pdf, tmp_path / "root.pem")
    assert report.ledger_record == 1 and report.signer_fingerprint == signer.fingerprint


# ------------------------------------------------------------------ files, passphrases, mismatches


def test_der_files_and_an_encrypted_key(tmp_path: Path, pkis: dict[str, dict[str, Path]]) -> None:
    paths = pkis["rsa"]
    key = serialization.load_pem_private_key(paths["key"].read_bytes(), password=None)
    cert = x509.load_pem_x509_certificate(paths["cert"].read_bytes())
    (tmp_path / "signer.der").write_bytes(cert.public_bytes(DER))
    (tmp_path / "root.der").write_bytes(x509.load_pem_x509_certificate(paths["root"].read_bytes()).public_bytes(DER))
    (tmp_path / "plain.der").write_bytes(key.private_bytes(DER, serialization.PrivateFormat.TraditionalOpenSSL,
                                                           serialization.NoEncryption()))
    secret = serialization.BestAvailableEncryption(b"s3cret")
    (tmp_path / "locked.pem").write_bytes(key.private_bytes(PEM, serialization.PrivateFormat.PKCS8, secret))
    plain = load_signer(key=tmp_path / "plain.der", cert=tmp_path / "signer.der", chain=[tmp_path / "root.der"])
    assert plain.fingerprint == hashlib.sha256(cert.public_bytes(DER)).hexdigest() and len(plain.chain) == 1
    locked = load_signer(key=tmp_path / "locked.pem", cert=paths["cert"], passphrase=b"s3cret")
    assert locked.fingerprint == plain.fingerprint
    assert load_signer(key=tmp_path / "plain.der", cert=tmp_path / "signer.der", passphrase=b"unneeded")
    with pytest.raises(CertificateError, match=r"locked.pem: wrong passphrase for the private key$"):
        load_signer(key=tmp_path / "locked.pem", cert=paths["cert"], passphrase=b"guess")
    with pytest.raises(CertificateError, match=r"locked.pem: the private key is encrypted; give its passphrase$"):
        load_signer(key=tmp_path / "locked.pem", cert=paths["cert"])


def test_sign_from_pkcs12(rendered: dict[str, bytes], pkis: dict[str, dict[str, Path]]) -> None:
    paths = pkis["ec"]
    assert paths["pkcs12"].stat().st_mode & 0o777 == 0o600
    signer = load_signer(pkcs12=paths["pkcs12"], passphrase=P12_PASS)
    from_pem = load_signer(key=paths["key"], cert=paths["cert"])
    assert signer.fingerprint == from_pem.fingerprint and signer.key_type == "ECDSA P-256"
    assert [c.dump() for c in signer.chain] == [x509.load_pem_x509_certificate(paths["root"].read_bytes())
                                                 .public_bytes(DER)]
    report = _verify(sign_certificate(rendered["A4"], signer), paths["root"])
    assert report.signer_fingerprint == signer.fingerprint
    ed = load_signer(pkcs12=pkis["ed25519"]["pkcs12"], passphrase=P12_PASS)
    assert ed.key_type == "Ed25519"


def test_pkcs12_refusals(pkis: dict[str, dict[str, Path]]) -> None:
    p12 = pkis["ec"]["pkcs12"]
    with pytest.raises(CertificateError, match=r"signer.p12: wrong passphrase for the PKCS#12 bundle$"):
        load_signer(pkcs12=p12, passphrase=b"wrong")
    with pytest.raises(CertificateError, match=r"signer.p12: the PKCS#12 bundle is encrypted; give its passphrase$"):
        load_signer(pkcs12=p12)
    with pytest.raises(CertificateError, match=r"signer.pem: not a PKCS#12 bundle$"):
        load_signer(pkcs12=pkis["ec"]["cert"], passphrase=P12_PASS)
    with pytest.raises(CertificateError, match=r"^give the signer either as a PKCS#12 bundle or as a key and"):
        load_signer(pkcs12=p12, key=pkis["ec"]["key"], passphrase=P12_PASS)


def test_key_that_does_not_match_the_certificate_is_refused(pkis: dict[str, dict[str, Path]]) -> None:
    with pytest.raises(CertificateError, match=r"signer.pem: the private key does not match the certificate's publ"):
        load_signer(key=pkis["other"]["key"], cert=pkis["ec"]["cert"])
    with pytest.raises(CertificateError, match=r"does not match"):  # same key type is not enough, nor another type
        load_signer(key=pkis["rsa"]["key"], cert=pkis["ed25519"]["cert"])


@pytest.mark.parametrize(("start", "message"), [
    (datetime(2020, 1, 1, tzinfo=UTC), r"the certificate expired on 2020-01-31 00:00 UTC$"),
    (datetime.now(UTC) + timedelta(days=400), r"the certificate is not valid yet \(valid from "),
])
def test_certificate_outside_its_validity_is_refused(tmp_path: Path, start: datetime, message: str) -> None:
    pki = throwaway_pki("ec", now=start)
    with pytest.raises(CertificateError, match=message):
        signer_of(pki, tmp_path)


def test_certificate_file_must_hold_exactly_one_certificate(tmp_path: Path, pkis: dict[str, dict[str, Path]]) -> None:
    both = tmp_path / "both.pem"
    both.write_bytes(pkis["ec"]["cert"].read_bytes() + pkis["ec"]["root"].read_bytes())
    with pytest.raises(CertificateError, match=r"both.pem: must hold exactly one certificate, not 2"):
        load_signer(key=pkis["ec"]["key"], cert=both)
    with pytest.raises(CertificateError, match=r"signer.key: not an X.509 certificate \(PEM or DER\)$"):
        load_signer(key=pkis["ec"]["key"], cert=pkis["ec"]["key"])
    with pytest.raises(CertificateError, match=r"signer.pem: not a private key"):
        load_signer(key=pkis["ec"]["cert"], cert=pkis["ec"]["cert"])
    with pytest.raises(CertificateError, match=r"nope.pem: cannot read the signer certificate \("):
        load_signer(key=pkis["ec"]["key"], cert=tmp_path / "nope.pem")
    with pytest.raises(CertificateError, match=r"^the signer needs both a private key and its certificate$"):
        load_signer(key=pkis["ec"]["key"])
    with pytest.raises(CertificateError, match=r"^no document signer given"):
        load_signer()


def test_certificate_whose_key_usage_forbids_signing_is_refused(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "encipherment only")])
    now = datetime.now(UTC)
    usage = x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                          data_encipherment=False, key_agreement=True, key_cert_sign=False, crl_sign=False,
                          encipher_only=False, decipher_only=False)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now - timedelta(hours=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(usage, critical=True).sign(key, hashes.SHA256()))
    (tmp_path / "c.pem").write_bytes(cert.public_bytes(PEM))
    with pytest.raises(CertificateError, match=r"c.pem: the certificate's key usage allows neither digitalSignature"):
        load_signer(key=_key_file(tmp_path, "k.pem", key), cert=tmp_path / "c.pem")


def test_repr_never_shows_the_key(pkis: dict[str, dict[str, Path]]) -> None:
    signer = load_signer(key=pkis["ec"]["key"], cert=pkis["ec"]["cert"])
    key_der = serialization.load_pem_private_key(pkis["ec"]["key"].read_bytes(), password=None).private_bytes(
        DER, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    text = repr(signer) + str(signer) + signer.describe()
    assert "throwaway signer (ec)" in text and "ECDSA P-256" in text and signer.fingerprint[:16] in text
    assert repr(key_der) not in text and key_der.hex() not in text and "PrivateKeyInfo" not in text


# ------------------------------------------------------------------ page sizes


def _pdf_tool(*args: str) -> str:
    return subprocess.run(list(args), check=True, capture_output=True, text=True, timeout=60).stdout


@pytest.mark.skipif(shutil.which("pdfinfo") is None or shutil.which("pdftotext") is None,
                    reason="poppler-utils (pdfinfo, pdftotext) is not installed; .ci/run installs it")
def test_a4_and_letter_both_fit(rendered: dict[str, bytes], made: Made, tmp_path: Path) -> None:
    doc = made[0]
    expected = {"A4": "595.276 x 841.89 pts (A4)", "Letter": "612 x 792 pts (letter)"}
    pages = {}
    for size, pdf in rendered.items():
        path = tmp_path / f"{size}.pdf"
        path.write_bytes(pdf)
        info = dict(line.split(":", 1) for line in _pdf_tool("pdfinfo", "-l", "99", str(path)).splitlines()
                    if ":" in line)
        pages[size] = int(info["Pages"])
        page_sizes = {v.strip() for k, v in info.items() if k.startswith("Page") and k.endswith("size")}
        assert page_sizes == {expected[size]}, (size, info)  # every page, not only the first
        assert page_size_of(pdf) == size
        first = _pdf_tool("pdftotext", "-layout", "-f", "1", "-l", "1", str(path), "-")
        assert "Music attribution certificate" in first and doc["query"]["song_id"] in first, size
        for ch in ("P", "M"):
            res = doc["channels"][ch]
            assert f"Channel {ch}: {res['verdict']}" in first, (size, ch)
            assert f"{res['tau']:.4f}" in first and f"{res['above_count']} of {res['catalog_size']}" in first
            for e in res["entries"][:5]:
                assert e["song_id"] in first and f"{100 * e['share']:.1f} %" in first, (size, ch, e)
        second = _pdf_tool("pdftotext", "-f", "2", "-l", "2", str(path), "-")
        assert second.startswith("Technical appendix"), size  # nothing of page 1 spilled over
    assert pages["A4"] == pages["Letter"] >= 2


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils is not installed; .ci/run installs it")
def test_page_one_stays_one_page_at_its_worst(made: Made, tmp_path: Path) -> None:
    """Ten songs share each channel, with ids of 200 characters: page 1 still holds the whole summary."""
    doc, data, proof, when = made
    long_id = "a-very-long-catalog-song-identifier-" * 6
    entries = [{"song_id": f"{long_id[:190]}-{i:03d}", "row": i, "similarity": 0.95 - 0.01 * i, "z": 9.0 - i / 10,
                "excess": 0.1 - 0.005 * i, "share": 0.1, "above_threshold": True} for i in range(10)]
    worst = {**doc, "query": {**doc["query"], "song_id": "q" * 256},
             "channels": {ch: {**doc["channels"][ch], "above_count": 10, "entries": entries} for ch in ("P", "M")}}
    for size in PAGE_SIZES:
        path = tmp_path / f"{size}.pdf"
        path.write_bytes(render_certificate(worst, data, proof, issued_at=when, page_size=size))
        first = _pdf_tool("pdftotext", "-f", "1", "-l", "1", str(path), "-")
        assert "5 other song(s)" in first and "Channel M" in first, size  # the chart's last bar sums the rest
        second = _pdf_tool("pdftotext", "-f", "2", "-l", "2", str(path), "-")
        assert second.startswith("Technical appendix"), (size, second[:300])


def test_letter_is_deterministic_and_differs_from_a4(rendered: dict[str, bytes], made: Made) -> None:
    doc, data, proof, when = made
    assert render_certificate(doc, data, proof, issued_at=when, page_size="letter") == rendered["Letter"]
    assert rendered["Letter"] != rendered["A4"]
    with pytest.raises(CertificateError, match=r"^unknown page size 'B5' \(one of A4, Letter\)$"):
        render_certificate(doc, data, proof, issued_at=when, page_size="B5")


def test_page_size_of_refuses_other_sizes() -> None:
    from pyhanko.pdf_utils import generic
    from pyhanko.pdf_utils.writer import PdfFileWriter

    writer = PdfFileWriter()
    writer.insert_page(generic.DictionaryObject({
        generic.NameObject("/Type"): generic.NameObject("/Page"),
        generic.NameObject("/MediaBox"): generic.ArrayObject([generic.NumberObject(v) for v in (0, 0, 600, 800)])}))
    out = io.BytesIO()
    writer.write(out)
    with pytest.raises(CertificateError, match=r"^the first page is 600.00 x 800.00 pt, neither A4 nor Letter$"):
        page_size_of(out.getvalue())


def test_signed_letter_certificate_re_renders(rendered: dict[str, bytes], pkis: dict[str, dict[str, Path]]) -> None:
    signer = load_signer(key=pkis["ec"]["key"], cert=pkis["ec"]["cert"])
    pdf = sign_certificate(rendered["Letter"], signer)
    rerender_matches(pdf)
    assert page_size_of(pdf) == "Letter"


# ------------------------------------------------------------------ CLI


def test_cli_throwaway_p12_issue_letter_and_rerender(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`pki throwaway --kind --pkcs12-passphrase-env`, `certificate issue --pkcs12 --page-size letter`,
    then `certificate verify --rerender`: all in process (typer's CliRunner)."""
    from typer.testing import CliRunner

    from lumina_audit.cli.main import app
    from lumina_audit.evidence.keys import write_private_key

    root = tmp_path
    _doc, data, _proof, _when = _make(root)
    (root / "reports").mkdir()
    (root / "reports" / "q.json").write_bytes(data)
    write_private_key(root / "operator.key", OPERATOR)
    (root / "trust").write_text(format_entry("operator", [LEDGER_NAMESPACE], OPERATOR.public_key()) + "\n")
    monkeypatch.setenv("LUMINA_TEST_P12", P12_PASS.decode())
    runner = CliRunner()
    made_pki = runner.invoke(app, ["pki", "throwaway", "--out", str(root / "pki"), "--kind", "ed25519",
                                   "--pkcs12-passphrase-env", "LUMINA_TEST_P12"])
    assert made_pki.exit_code == 0, made_pki.output
    assert (root / "pki" / "signer.p12").is_file() and "signer.p12" in made_pki.output
    again = runner.invoke(app, ["pki", "throwaway", "--out", str(root / "pki")])
    assert isinstance(again.exception, CertificateError) and "already exists" in again.exception.message
    common = ["certificate", "issue", str(root / "reports" / "q.json"), "--ledger", str(root / "ledger"),
              "--trust", str(root / "trust"), "--key", str(root / "operator.key")]
    wrong = runner.invoke(app, [*common, "--pkcs12", str(root / "pki" / "signer.p12"), "--out", str(root / "x.pdf")])
    assert isinstance(wrong.exception, CertificateError) and "give its passphrase" in wrong.exception.message
    assert not (root / "x.pdf").exists() and len(Ledger.open(root / "ledger").records()) == 2
    issued = runner.invoke(app, [*common, "--pkcs12", str(root / "pki" / "signer.p12"), "--signer-passphrase-env",
                                 "LUMINA_TEST_P12", "--page-size", "letter", "--out", str(root / "q.pdf")])
    assert issued.exit_code == 0, issued.output
    assert "signer Common Name: lumina-audit throwaway signer (ed25519) (Ed25519," in issued.output
    record = Ledger.open(root / "ledger").records()[-1]
    assert record.kind == "certificate" and record.body["page_size"] == "Letter" and record.seq == 2
    assert page_size_of((root / "q.pdf").read_bytes()) == "Letter"
    verified = runner.invoke(app, ["certificate", "verify", str(root / "q.pdf"), "--roots",
                                   str(root / "pki" / "root.pem"), "--trust", str(root / "trust"), "--ledger",
                                   str(root / "ledger"), "--rerender", "--json"])
    assert verified.exit_code == 0, verified.output
    assert json.loads(verified.output)["rerendered"] is True


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils is not installed; .ci/run installs it")
@pytest.mark.parametrize(("version", "method", "spec"), [
    (1, "lumina-gradstats-v1", "signature-v1.md"),  # a version 1 report implies gradstats
    (2, "lumina-gradproj-v1", "gradproj-v1.md"),
    (2, "lumina-gradstats-v1", "signature-v1.md"),
])
def test_the_certificate_names_the_signature_method_and_its_spec(made: Made, tmp_path: Path, version: int,
                                                                 method: str, spec: str) -> None:
    from lumina_audit.signature.methods import METHODS

    doc, data, proof, when = made
    report = {**doc, "version": version} | ({"signature_method": method} if version == 2 else {})
    path = tmp_path / "cert.pdf"
    path.write_bytes(render_certificate(report, data, proof, issued_at=when))
    first = " ".join(_pdf_tool("pdftotext", "-f", "1", "-l", "1", str(path), "-").split())
    assert f"method: signature {method} ({spec}); attribution lumina-attribution-v1" in first
    appendix = " ".join(_pdf_tool("pdftotext", "-f", "2", "-l", "3", str(path), "-").split())
    assert f"{method} (spec {spec})" in appendix and "lumina-attribution-v1 (spec attribution-v1.md)" in appendix
    assert " ".join(METHODS[method].description.split())[:80] in appendix


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils is not installed; .ci/run installs it")
def test_page_one_states_both_error_directions_in_plain_words(made: Made, tmp_path: Path) -> None:
    doc, data, proof, when = made
    detection = {"overall": {"cases": 8, "detected": 7, "detection_rate": 0.875, "missed_rate": 0.125,
                             "median_rank": 1.0}, "by_transform": {"mp3-128k": {
                                 "cases": 8, "detected": 7, "detection_rate": 0.875, "missed_rate": 0.125,
                                 "median_rank": 1.0}}}
    cal = doc["calibration"]
    channels = {ch: {**cal["channels"][ch], "unrelated_attributed_rate": rate, "detection": detection}
                for ch, rate in (("P", 0.0), ("M", 0.25))}
    report = {**doc, "version": 2, "signature_method": "lumina-gradproj-v1",
              "calibration": {**cal, "P": 8, "channels": channels}}
    path = tmp_path / "rates.pdf"
    path.write_bytes(render_certificate(report, data, proof, issued_at=when))
    first = " ".join(_pdf_tool("pdftotext", "-f", "1", "-l", "1", str(path), "-").split())
    assert ("In the calibration, a derived copy of a catalog song was missed in 12.5 % (P) and 12.5 % (M) of 8 "
            "cases; an unrelated piece was attributed to a catalog song in 0.0 % (P) and 25.0 % (M) of 8.") in first
    appendix = " ".join(_pdf_tool("pdftotext", "-f", "2", "-l", "9", str(path), "-").split())
    assert "Derived copies, channel P" in appendix and "mp3-128k 8 7 12.5 % 1.0" in appendix
    plain = tmp_path / "plain.pdf"  # a calibration without positives says what it does not know
    plain.write_bytes(render_certificate(doc, data, proof, issued_at=when))
    first = " ".join(_pdf_tool("pdftotext", "-f", "1", "-l", "1", str(plain), "-").split())
    assert "measured no derived copy of a catalog song: how often one is missed is not known" in first


def test_the_signature_is_visible_on_page_one(rendered: dict[str, bytes], pkis: dict[str, dict[str, Path]]) -> None:
    from pyhanko.pdf_utils.reader import PdfFileReader

    from lumina_audit.certificates.pdf import stamp_box

    signer = load_signer(key=pkis["ec"]["key"], cert=pkis["ec"]["cert"])
    for size, pdf in rendered.items():
        signed = sign_certificate(pdf, signer)
        reader = PdfFileReader(io.BytesIO(signed))
        (sig,) = reader.embedded_signatures
        widget = sig.sig_field
        assert [round(float(v), 1) for v in widget["/Rect"]] == [round(v, 1) for v in stamp_box(size)]
        page = reader.root["/Pages"]["/Kids"][0].get_object()
        assert any(a.get_object() is widget or a.get_object().get("/T") == widget.get("/T") for a in page["/Annots"])
        stream = widget["/AP"]["/N"].get_object().data.decode("latin-1")
        assert f"({signer.fingerprint[:32]})" in stream and f"({signer.fingerprint[32:]})" in stream
        assert "Digitally signed by" in stream and "throwaway" in stream  # the subject's name
        assert widget["/F"] & 4  # printed, as PDF/A wants
