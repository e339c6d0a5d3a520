"""Extract -> Calibrate -> Attribute through signed manifests, on the tiny checkpoint."""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import soundfile

from lumina_audit._internal.synth import SongSpec, render, write_wav
from lumina_audit.attribution.reports import read_calibration, read_report
from lumina_audit.attribution.store import read_store
from lumina_audit.errors import LuminaError
from lumina_audit.evidence import keys
from lumina_audit.evidence.ledger import verify
from lumina_audit.runner.run import run_manifest

from ..conftest import PINS_YAML, TINY, tiny_digests
from .test_methods_e2e import sign_twice, write_trust

CATALOG, CONTROLS = 12, 10


def _head(name: str, kind: str) -> str:
    d = tiny_digests()
    return f"""apiVersion: lumina-audit/v1
kind: {kind}
metadata: {{name: {name}}}
seed: 422024
model:
  directory: {TINY}
  sha256: {{state_dict.bin: {d['state_dict.bin']}, compression_state_dict.bin: {d['compression_state_dict.bin']}}}
ledger: ledger
{PINS_YAML}"""


@dataclass
class Chain:
    root: Path
    key: Any
    trust: Any


def _sign_run(chain: Chain, name: str, text: str) -> Any:
    path = chain.root / f"{name}.yaml"
    path.write_text(text)
    sign_twice(path, chain.key)
    return run_manifest(path, chain.trust, chain.key)


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    root = tmp_path_factory.mktemp("chain")
    for folder in ("catalog", "controls", "queries"):
        (root / folder).mkdir()
    for i in range(CATALOG):
        write_wav(root / "catalog" / f"song{i:02d}.wav", render(SongSpec(seed=5000 + i, seconds=6.0)), 32000, 16)
    for i in range(CONTROLS):
        write_wav(root / "controls" / f"ctl{i:02d}.wav", render(SongSpec(seed=7000 + i, seconds=6.0)), 32000, 16)
    data, rate = soundfile.read(root / "catalog" / "song03.wav", dtype="int16")
    soundfile.write(root / "queries" / "copy-of-song03.flac", data, rate, subtype="PCM_16", format="FLAC")
    write_wav(root / "queries" / "unrelated.wav", render(SongSpec(seed=9999, seconds=6.0)), 32000, 16)
    key = keys.generate()
    c = Chain(root, key, write_trust(root, key))
    _sign_run(c, "extract", _head("cat", "Extract") + "inputs:\n  - path: catalog\noutputs: {store: out/catalog.h5}\n")
    _sign_run(c, "calibrate", _head("cal", "Calibrate") + "catalog: {path: out/catalog.h5}\n"
              "controls:\n  - path: controls\noutputs: {calibration: out/calibration.json}\n")
    _sign_run(c, "attribute", _head("attr", "Attribute") + "catalog: {path: out/catalog.h5}\n"
              "calibration: {path: out/calibration.json}\nqueries:\n  - path: queries\n"
              "outputs: {reports: out/reports}\n")
    return c


def test_calibration_file(chain: Chain) -> None:
    cal, digest = read_calibration(chain.root / "out" / "calibration.json")
    assert cal["C"] == CONTROLS and cal["N"] == CATALOG and cal["k"] == 3
    for ch in ("P", "M"):
        c = cal["channels"][ch]
        assert c["tau"] == c["mu"] + 3 * c["sigma"]
        assert c["false_positive_rate"] == sum(c["counts_above"]) / (CONTROLS * CATALOG)
        assert len(c["counts_above"]) == CONTROLS and c["counts_above_max"] == max(c["counts_above"])
    assert len(digest) == 64 and len(cal["controls"]) == CONTROLS


def test_flac_copy_of_a_catalog_song_ranks_first_with_similarity_one(chain: Chain) -> None:
    """Same PCM in another container: the same signature, so similarity 1 and rank 1 on both channels.

    Whether it also gets share 1.0 depends on the noise floor: on this random tiny model
    tau = mu + 3 sigma came out above 1 on both channels (measured: P 1.317, M 1.462), so
    no song can exceed it and the verdict is "no attribution above the noise floor". The
    test checks the verdict is the one the spec gives for the calibrated tau, either way.
    """
    report, _ = read_report(chain.root / "out" / "reports" / "copy-of-song03.json")
    for ch in ("P", "M"):
        res = report["channels"][ch]
        top = res["entries"][0]
        assert top["song_id"] == "song03" and top["similarity"] == pytest.approx(1.0, abs=1e-6)
        above = [e for e in res["entries"] if e["similarity"] > res["tau"]]
        assert [e["above_threshold"] for e in res["entries"]] == [e["similarity"] > res["tau"] for e in res["entries"]]
        if not above:
            assert res["verdict"] == "no attribution above the noise floor" and top["share"] == 0.0
        else:
            excess = math.fsum(e["similarity"] - res["tau"] for e in above)
            assert res["verdict"] == "attributed" and top["above_threshold"]
            assert top["share"] == (top["similarity"] - res["tau"]) / excess
    assert report["ledger"]["record"] == 2 and report["ledger"]["origin"].startswith("lumina-audit/ledger/")
    song03 = read_store(chain.root / "out" / "catalog.h5")
    assert report["query"]["pcm_sha256"] == song03.pcm_sha256[song03.song_ids.index("song03")]
    assert report["manifest_signers"][0]["principal"] == "op@lab"


def test_reports_are_recorded_and_the_ledger_verifies(chain: Chain) -> None:
    report = verify(chain.root / "ledger", chain.trust)
    assert report.status == "valid" and report.records == 3, report.findings
    unrelated, _ = read_report(chain.root / "out" / "reports" / "unrelated.json")
    for ch in ("P", "M"):
        res = unrelated["channels"][ch]
        assert len(res["entries"]) >= 10  # the top_k most similar songs are always listed
        any_above = any(e["similarity"] > res["tau"] for e in res["entries"])
        assert res["verdict"] == ("attributed" if any_above else "no attribution above the noise floor")
        assert res["above_count"] == sum(e["similarity"] > res["tau"] for e in res["entries"])


def test_report_show_prints_a_table(chain: Chain, capsys: pytest.CaptureFixture[str]) -> None:
    from lumina_audit.cli.report import report_show

    report_show(chain.root / "out" / "reports" / "copy-of-song03.json", as_json=False)
    out = capsys.readouterr().out
    verdict = read_report(chain.root / "out" / "reports" / "copy-of-song03.json")[0]["channels"]["P"]["verdict"]
    assert f"P (composition): {verdict}" in out and "M (production)" in out
    assert "song03" in out and "1.0000" in out and "below threshold" in out


def _refused(chain: Chain, tmp: Path, name: str, text: str, match: str) -> None:
    before = (chain.root / "ledger" / "records").read_bytes()
    with pytest.raises(LuminaError, match=match):
        _sign_run(chain, name, text)
    assert (chain.root / "ledger" / "records").read_bytes() == before
    (chain.root / f"{name}.yaml.sig").unlink(missing_ok=True)


def test_calibration_refuses_too_few_controls(chain: Chain, tmp_path: Path) -> None:
    few = chain.root / "few"
    few.mkdir(exist_ok=True)
    for f in sorted((chain.root / "controls").iterdir())[:3]:
        shutil.copy(f, few / f.name)
    _refused(chain, tmp_path, "few", _head("few", "Calibrate") + "catalog: {path: out/catalog.h5}\n"
             "controls:\n  - path: few\noutputs: {calibration: out/few.json}\n", "at least 10")


def test_calibration_refuses_a_control_in_the_catalog(chain: Chain, tmp_path: Path) -> None:
    mixed = chain.root / "mixed"
    mixed.mkdir(exist_ok=True)
    for f in (chain.root / "controls").iterdir():
        shutil.copy(f, mixed / f.name)
    shutil.copy(chain.root / "catalog" / "song05.wav", mixed / "not-a-control.wav")
    _refused(chain, tmp_path, "mixed", _head("mixed", "Calibrate") + "catalog: {path: out/catalog.h5}\n"
             "controls:\n  - path: mixed\noutputs: {calibration: out/mixed.json}\n", "not-a-control")


def test_a_store_from_another_signature_space_is_refused(chain: Chain, tmp_path: Path) -> None:
    other = _head("x", "Calibrate").replace("ledger: ledger\n", "ledger: ledger\nsignature: {codebook_boosts: "
                                              "[1.0, 1.0, 1.0, 1.0]}\n")
    _refused(chain, tmp_path, "other", other + "catalog: {path: out/catalog.h5}\ncontrols:\n  - path: controls\n"
             "outputs: {calibration: out/other.json}\n", "signature space .* never compared")


def test_attribute_refuses_a_calibration_of_another_store(chain: Chain, tmp_path: Path) -> None:
    cal = json.loads((chain.root / "out" / "calibration.json").read_text())
    assert cal["catalog"]["songs"] == CATALOG
    text = (_head("y", "Attribute") + "catalog: {path: out/catalog.h5, sha256: " + "ab" * 32 + "}\n"
            "calibration: {path: out/calibration.json}\nqueries:\n  - path: queries\noutputs: {reports: out/r2}\n")
    _refused(chain, tmp_path, "y", text, "differs from the pinned")




def test_certificate_issued_recorded_and_verified(chain: Chain, tmp_path: Path) -> None:
    import hashlib
    import os
    import subprocess
    import sys

    from lumina_audit.certificates.issue import check_against_ledger, issue_certificate, rerender_matches
    from lumina_audit.certificates.pdf import CertificateError
    from lumina_audit.certificates.pki import write_throwaway_pki
    from lumina_audit.certificates.signer import load_signer
    from lumina_audit.certificates.verify import verify_certificate
    from lumina_audit.evidence.ledger import Ledger
    from lumina_audit.signature.pins import MARKER

    pki = write_throwaway_pki(tmp_path / "pki")
    signer = load_signer(key=pki["key"], cert=pki["cert"])
    report = chain.root / "out" / "reports" / "unrelated.json"
    out = chain.root / "out" / "unrelated.pdf"
    issued = issue_certificate(report, chain.root / "ledger", out, operator_key=chain.key, principal="op@lab",
                               signer=signer)
    rec = Ledger.open(chain.root / "ledger").records()[issued.seq]
    pdf = out.read_bytes()
    assert rec.kind == "certificate" and rec.body["signed_pdf_sha256"] == hashlib.sha256(pdf).hexdigest()
    assert rec.body["page_size"] == "A4" and issued.page_size == "A4"
    assert rec.body["report_sha256"] == read_report(report)[1] and rec.body["report_record"] == 2
    assert verify(chain.root / "ledger", chain.trust).status == "valid"
    got = verify_certificate(pdf, trust_roots_pem=[pki["root"].read_bytes()], ledger_trust=chain.trust)
    assert got.ledger_record == 2 and got.report_sha256 == rec.body["report_sha256"]
    check_against_ledger(pdf, chain.root / "ledger", chain.trust)
    rerender_matches(pdf)
    with pytest.raises(LuminaError, match="already exists"):
        issue_certificate(report, chain.root / "ledger", out, operator_key=chain.key, principal="op@lab",
                          signer=signer)
    other = write_throwaway_pki(tmp_path / "other")
    with pytest.raises(CertificateError, match="step 2"):
        verify_certificate(pdf, trust_roots_pem=[other["root"].read_bytes()], ledger_trust=chain.trust)
    env = {k: v for k, v in os.environ.items() if k != MARKER}
    cmd = [sys.executable, "-m", "lumina_audit", "certificate", "verify", str(out), "--roots", str(pki["root"]),
           "--trust", str(chain.root / "trust"), "--ledger", str(chain.root / "ledger"), "--rerender", "--json"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["rerendered"] is True


def test_certificate_looked_at_as_a_person_would(chain: Chain, tmp_path: Path) -> None:
    """Pages turned into PNG with poppler's pdftoppm; the text layer holds the key figures."""
    import subprocess

    if shutil.which("pdftoppm") is None or shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils (pdftoppm, pdftotext) is not installed; .ci/run installs it")
    from lumina_audit.certificates.render import render_certificate
    from lumina_audit.evidence.ledger import Ledger, prove

    report = chain.root / "out" / "reports" / "copy-of-song03.json"
    doc, digest = read_report(report)
    seq = doc["ledger"]["record"]
    pdf = render_certificate(doc, report.read_bytes(), prove(chain.root / "ledger", seq),
                             issued_at=Ledger.open(chain.root / "ledger").records()[seq].time)
    (tmp_path / "c.pdf").write_bytes(pdf)
    subprocess.run(["pdftoppm", "-r", "40", "-png", str(tmp_path / "c.pdf"), str(tmp_path / "page")], check=True)
    pages = sorted(tmp_path.glob("page-*.png"))
    assert 2 <= len(pages) <= 4 and all(p.stat().st_size > 5000 for p in pages)
    text = subprocess.run(["pdftotext", "-layout", str(tmp_path / "c.pdf"), "-"], check=True, capture_output=True,
                          text=True).stdout
    first_page = text.split("\f")[0]
    assert "Music attribution certificate" in first_page and "copy-of-song03" in first_page
    for ch in ("P", "M"):
        res = doc["channels"][ch]
        assert f"Channel {ch}: {res['verdict']}" in first_page
        assert f"{res['tau']:.4f}" in first_page
    assert digest in text.replace("\n", "") or digest[:32] in text


def _with_certificates(name: str, signer: str, queries: str = "queries") -> str:
    return (_head(name, "Attribute") + "catalog: {path: out/catalog.h5}\ncalibration: {path: out/calibration.json}\n"
            f"queries:\n  - path: {queries}\ncertificates:\n  signer: {signer}\n"
            f"outputs: {{reports: out/{name}-reports, certificates: out/{name}-certificates}}\n")


def test_attribute_manifest_issues_certificates(chain: Chain) -> None:
    """One Attribute run, certificates asked for by the manifest: one per query, each its own ledger record.

    The queries are a catalog WAV and its FLAC copy (same PCM): their reports agree on every figure.
    """
    from lumina_audit.certificates.pki import write_throwaway_pki
    from lumina_audit.certificates.signer import load_signer
    from lumina_audit.certificates.verify import verify_certificate
    from lumina_audit.evidence.ledger import Ledger

    pki = write_throwaway_pki(chain.root / "pki-run")
    fingerprint = load_signer(key=pki["key"], cert=pki["cert"]).fingerprint
    pair = chain.root / "pair"
    pair.mkdir()
    shutil.copy(chain.root / "catalog" / "song03.wav", pair / "wav-song03.wav")
    shutil.copy(chain.root / "queries" / "copy-of-song03.flac", pair / "flac-song03.flac")
    before = len(Ledger.open(chain.root / "ledger").records())
    result = _sign_run(chain, "certs", _with_certificates(
        "certs", f"{{key: pki-run/signer.key, cert: pki-run/signer.pem, cert_sha256: {fingerprint}}}", "pair"))
    records = Ledger.open(chain.root / "ledger").records()
    assert result.seq == before and len(records) == before + 3
    assert [r.kind for r in records[before:]] == ["run", "certificate", "certificate"]
    assert sorted(c.path.name for c in result.certificates) == ["flac-song03.pdf", "wav-song03.pdf"]
    for c in result.certificates:
        got = verify_certificate(c.path.read_bytes(), trust_roots_pem=[pki["root"].read_bytes()],
                                 ledger_trust=chain.trust)
        assert got.ledger_record == result.seq and records[c.seq].body["report_record"] == result.seq
    wav, _ = read_report(chain.root / "out" / "certs-reports" / "wav-song03.json")
    flac, _ = read_report(chain.root / "out" / "certs-reports" / "flac-song03.json")
    assert wav["channels"] == flac["channels"] and wav["query"]["pcm_sha256"] == flac["query"]["pcm_sha256"]
    assert wav["query"]["file_sha256"] != flac["query"]["file_sha256"]
    assert verify(chain.root / "ledger", chain.trust).status == "valid"


@pytest.mark.parametrize(("signer", "match"), [
    ("{key: pki-x/signer.key, cert: pki-y/signer.pem}", "does not match"),
    ("{key: pki-x/signer.key, cert: pki-x/signer.pem, cert_sha256: " + "ab" * 32 + "}", "differs from the pinned"),
    ("{key: pki-x/signer.key, cert: pki-x/signer.pem, passphrase_env: LUMINA_TEST_UNSET}", "is not set"),
    ("{pkcs12: pki-x/none.p12}", "none.p12"),
])
def test_attribute_refuses_a_bad_signer_before_any_work(chain: Chain, tmp_path: Path, signer: str,
                                                         match: str) -> None:
    from lumina_audit.certificates.pki import write_throwaway_pki

    for name in ("pki-x", "pki-y"):
        if not (chain.root / name).exists():
            write_throwaway_pki(chain.root / name)
    _refused(chain, tmp_path, "badsigner", _with_certificates("badsigner", signer), match)
    assert not (chain.root / "out" / "badsigner-reports").exists()
    assert not (chain.root / "out" / "badsigner-certificates").exists()
