"""Changed certificates do not verify: a one-byte tamper battery over a real issued certificate, and step 5.

The certificate is issued as ``lumina-audit certificate issue`` does (:func:`issue_certificate`:
rendered, signed PAdES B-B by a throwaway ECDSA signer, written, recorded in the ledger), from
the report and ledger of :func:`.test_render_verify._make`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from lumina_audit.certificates.issue import Issued, issue_certificate
from lumina_audit.certificates.pdf import CertificateError
from lumina_audit.certificates.pki import throwaway_pki
from lumina_audit.certificates.render import render_certificate
from lumina_audit.certificates.signer import SignerCredentials, sign_certificate
from lumina_audit.certificates.verify import CertificateReport, check_contents, verify_certificate
from lumina_audit.evidence.ledger import Ledger, prove
from lumina_audit.evidence.trust import TrustStore

from .test_render_verify import OPERATOR, _make, _trust, signer_of

#: Strata of the stratified sample: the file cut in this many equal parts, one position drawn in each.
STRATA = 512
SEED = 20260504


@dataclass(frozen=True)
class Cert:
    root: Path
    ledger: Path
    #: A copy of the ledger from before the certificate was issued.
    ledger_before: Path
    issued: Issued
    pdf: bytes
    signer_root: bytes
    signer: SignerCredentials
    trust: TrustStore


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> Cert:
    """A ledger whose record 1 lists a report, and the certificate issued for it (record 2)."""
    root = tmp_path_factory.mktemp("tamper")
    _doc, data, _proof, _when = _make(root)
    report = root / "reports" / "q.json"
    report.parent.mkdir()
    report.write_bytes(data)
    pki = throwaway_pki("ec")
    signer = signer_of(pki, root / "pki")
    shutil.copytree(root / "ledger", root / "ledger-before")
    issued = issue_certificate(report, root / "ledger", root / "out" / "q.pdf", operator_key=OPERATOR,
                               principal="operator", signer=signer)
    return Cert(root, root / "ledger", root / "ledger-before", issued, issued.path.read_bytes(), pki.root_pem, signer,
                _trust())


def _verify(c: Cert, pdf: bytes, *, ledger: bool, rerender: bool = False) -> CertificateReport:
    return verify_certificate(pdf, trust_roots_pem=[c.signer_root], ledger_trust=c.trust,
                              ledger=c.ledger if ledger else None, rerender=rerender)


def _byte_range(pdf: bytes) -> tuple[re.Match[bytes], list[int]]:
    m = re.search(rb"/ByteRange\s*\[\s*(\d+)\s+(\d+)\s+(\d+)\s+(\d+)\s*\]", pdf)
    assert m is not None
    return m, [int(v) for v in m.groups()]


def _regions(pdf: bytes) -> dict[str, range]:
    """The regions the battery covers byte by byte: /Contents, /ByteRange, and each revision's xref and trailer."""
    m, (_start, first, second, _rest) = _byte_range(pdf)
    regions = {"contents": range(first, second), "byte range": range(m.start(), m.end())}
    revisions = list(re.finditer(rb"startxref\s+(\d+)\s+%%EOF\r?\n?", pdf))
    assert len(revisions) == 2  # the rendered revision and the signature's incremental update
    for i, rev in enumerate(revisions):
        regions[f"xref and trailer {i}"] = range(int(rev[1]), rev.end())
    return regions


def _positions(pdf: bytes) -> list[int]:
    """Every byte of the regions, and one seeded position in each of :data:`STRATA` equal parts of the file."""
    chosen = {i for region in _regions(pdf).values() for i in region}
    rng = random.Random(SEED)
    bounds = [len(pdf) * k // STRATA for k in range(STRATA + 1)]
    chosen.update(rng.randrange(lo, hi) for lo, hi in zip(bounds, bounds[1:], strict=False) if hi > lo)
    return sorted(chosen)


def test_the_issued_certificate_verifies_every_step(cert: Cert) -> None:
    got = _verify(cert, cert.pdf, ledger=True, rerender=True)
    assert got.certificate_record == cert.issued.seq == 2 and got.ledger_record == 1
    assert got.pdf_sha256 == cert.issued.signed_sha256 == hashlib.sha256(cert.pdf).hexdigest()
    assert got.checked_against_ledger == cert.ledger and got.rerendered
    bare = _verify(cert, cert.pdf, ledger=False)
    assert bare.certificate_record is None and bare.checked_against_ledger is None
    assert not bare.rerendered


def test_no_changed_byte_verifies(cert: Cert, caplog: pytest.LogCaptureFixture) -> None:
    """Flip one bit of one byte (bit ``i mod 8`` of byte ``i``, so that every bit occurs, the letter case
    of hex digits included), then verify with the ledger and without: both must fail.

    Positions: every byte of the signature's ``/Contents`` (the hex string the signature cannot
    cover, ``<`` and ``>`` included: 2,590 to 2,594 bytes, as much as pyHanko reserves after a
    trial signature), of ``/ByteRange [...]`` (31), of each revision's cross-reference section and
    trailer (from its ``startxref`` offset to ``%%EOF``: about 440 and 390), and one seeded position
    in each of :data:`STRATA` (512) equal strata of the whole file: 3,928 to 3,939 positions of the
    55 kB file in three runs, each verified twice (about 50 s). Without the ledger a changed
    ``/Contents`` byte is caught by step 1's checks of what the signer wrote (the padding zeros,
    upper-case hex, DER, the parts of the CMS object its signature does not sign); with it, any
    change would also be caught by step 5 (the file's SHA-256 is not the ledger's).
    """
    caplog.set_level(logging.CRITICAL, logger="pyhanko")  # pyHanko logs every broken signature at length
    caplog.set_level(logging.CRITICAL, logger="pyhanko_certvalidator")
    pdf = cert.pdf
    regions = _regions(pdf)
    positions = _positions(pdf)
    assert set(regions["contents"]) <= set(positions) and len(positions) >= 2000
    assert 2500 < len(regions["contents"]) and len(positions) >= len(regions["contents"]) + 600
    verified: list[tuple[int, bool]] = []
    steps: dict[str, int] = {}
    for i in positions:
        bad = bytearray(pdf)
        bad[i] ^= 1 << (i % 8)
        for ledger in (True, False):
            try:
                _verify(cert, bytes(bad), ledger=ledger)
            except CertificateError as exc:
                assert re.match(r"step [1-5]: ", exc.message), exc.message
                steps[exc.message[:6]] = steps.get(exc.message[:6], 0) + 1
            else:
                verified.append((i, ledger))
    assert verified == [], f"{len(verified)} changed files verified, first {verified[:10]}"
    assert sum(steps.values()) == 2 * len(positions) and steps["step 1"] > len(positions)


def test_a_changed_padding_byte_fails_through_the_command(cert: Cert, tmp_path: Path) -> None:
    """The reported case: one bit of the unsigned zero padding of ``/Contents``; exit 1, with and without --ledger."""
    from typer.testing import CliRunner

    from lumina_audit.cli.main import app
    from lumina_audit.evidence.ledger import LEDGER_NAMESPACE
    from lumina_audit.evidence.trust import format_entry

    _m, (_start, _first, second, _rest) = _byte_range(cert.pdf)
    bad = bytearray(cert.pdf)
    assert bad[second - 2] == ord("0")  # the last digit of the reserved padding
    bad[second - 2] ^= 0x01
    (tmp_path / "bad.pdf").write_bytes(bytes(bad))
    (tmp_path / "good.pdf").write_bytes(cert.pdf)
    (tmp_path / "root.pem").write_bytes(cert.signer_root)
    (tmp_path / "trust").write_text(format_entry("operator", [LEDGER_NAMESPACE], OPERATOR.public_key()) + "\n")
    runner = CliRunner()
    common = ["--roots", str(tmp_path / "root.pem"), "--trust", str(tmp_path / "trust")]
    good = runner.invoke(app, ["certificate", "verify", str(tmp_path / "good.pdf"), *common, "--ledger",
                               str(cert.ledger)])
    assert good.exit_code == 0, good.output
    assert f"certificate record {cert.issued.seq} names this file" in good.output
    for extra in ([], ["--ledger", str(cert.ledger)]):
        out = runner.invoke(app, ["certificate", "verify", str(tmp_path / "bad.pdf"), *common, *extra])
        assert isinstance(out.exception, CertificateError), out.output
        assert out.exception.exit_code == 1
        assert out.exception.message.startswith("step 1: the signature's /Contents has other bytes than zeros")


def test_check_contents_wants_what_the_signer_wrote(cert: Cert) -> None:
    pdf = cert.pdf
    _m, byte_range = _byte_range(pdf)
    first, second = byte_range[1], byte_range[2]
    contents = bytes.fromhex(pdf[first + 1 : second - 1].decode())
    check_contents(pdf, byte_range, contents)
    der_end = len(contents.rstrip(b"\0"))
    lower = pdf[: first + 1] + pdf[first + 1 : second - 1].lower() + pdf[second - 1 :]
    with pytest.raises(CertificateError, match="upper-case digits"):
        check_contents(lower, byte_range, contents)
    padded = bytearray(pdf)
    padded[first + 1 + 2 * der_end + 10] = ord("A")
    with pytest.raises(CertificateError, match="other bytes than zeros"):
        check_contents(bytes(padded), byte_range, bytes.fromhex(bytes(padded)[first + 1 : second - 1].decode()))
    with pytest.raises(CertificateError, match="not the signature's /Contents"):
        check_contents(pdf, byte_range, contents[:-1] + b"\1")
    with pytest.raises(CertificateError, match="does not cover the whole file"):
        check_contents(pdf + b"\n", byte_range, contents)
    with pytest.raises(CertificateError, match="does not leave out exactly"):
        check_contents(pdf, [0, second, first, len(pdf) - first], contents)


def test_step_5_wants_the_issued_file_byte_for_byte(cert: Cert) -> None:
    """Signed again from the same rendering: steps 1-4 and 6 pass, but it is not the file the ledger recorded."""
    data = (cert.root / "reports" / "q.json").read_bytes()
    unsigned = render_certificate(json.loads(data), data, prove(cert.ledger_before, 1),
                                  issued_at=Ledger.open(cert.ledger).records()[1].time)
    assert hashlib.sha256(unsigned).hexdigest() == cert.issued.unsigned_sha256
    again = sign_certificate(unsigned, cert.signer)
    assert again != cert.pdf and again.startswith(unsigned)
    assert _verify(cert, again, ledger=False, rerender=True).certificate_record is None
    with pytest.raises(CertificateError, match=rf"^step 5: this file \(SHA-256 {hashlib.sha256(again).hexdigest()}\) "
                                               r"is not the certificate the ledger recorded for this report "
                                               rf"\(record 2: {cert.issued.signed_sha256}\)"):
        _verify(cert, again, ledger=True)


def test_step_5_wants_a_certificate_record(cert: Cert) -> None:
    """The ledger as it was before issuing: the checkpoint is consistent with it, but no record names the file."""
    with pytest.raises(CertificateError, match=r"^step 5: the ledger .*ledger-before records no certificate issued "
                                               r"for the report of record 1$"):
        verify_certificate(cert.pdf, trust_roots_pem=[cert.signer_root], ledger_trust=cert.trust,
                           ledger=cert.ledger_before)
