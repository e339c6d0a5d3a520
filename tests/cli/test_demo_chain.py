"""The demo's whole chain, through the CLI, on a smaller catalog (issue 6).

``python -m scripts.demo`` runs every step as the command a user would type (keys, trust
file, throwaway PKI, manifests signed by two people, ``manifest run`` Extract -> Calibrate
(likelihood ratios once per signature method, and v1's noise floor beside them) -> Attribute
(lumina-attribution-v2) with certificates, ``ledger verify``, ``proof verify``, ``certificate
verify``, ``calibration show``, ``report show``). Here it runs with 10 catalog songs and
20 controls of 3-4 s, then the outputs are checked independently, and one flipped byte in a
certificate must be caught.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from ..conftest import ROOT

CLI = str(Path(sys.executable).with_name("lumina-audit"))
QUERY = "query-song00-song03"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    work = tmp_path_factory.mktemp("demo") / "work"
    done = subprocess.run([sys.executable, "-m", "scripts.demo", "--work", str(work), "--catalog", "10",
                           "--controls", "20", "--seconds", "3", "4"],
                          cwd=ROOT, capture_output=True, text=True, timeout=1200, check=False)
    return work, done


def cli(work: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([CLI, *args], cwd=work, capture_output=True, text=True, timeout=300, check=False)


def test_demo_runs_every_step_without_noise(demo: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    work, done = demo
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for command in ("keys generate", "pki throwaway", "audio derive", "manifest sign extract.yaml",
                    "manifest verify attribute.yaml", "manifest run extract.yaml",
                    "manifest run calibrate-gradproj.yaml", "manifest run calibrate-gradstats.yaml",
                    "manifest run noise-floor-gradproj.yaml",
                    "manifest run attribute.yaml", "ledger show --ledger ledger", "proof verify",
                    "ledger verify --ledger ledger", f"certificate verify out/certificates/{QUERY}.pdf",
                    "calibration show out/calibration-gradproj.zip", "report show"):
        assert f"$ lumina-audit {command}" in done.stdout, command
    assert "Validation (lumina-attribution-v2, cross-validated, 5 folds)" in done.stdout
    assert "the noise floor of lumina-attribution-v1 (k = 3)" in done.stdout
    assert "What the reports state (lumina-attribution-v2, gradproj):" in done.stdout
    assert "A likelihood ratio is not the probability that the proposition is true" in done.stdout
    for method in ("lumina-gradproj-v1", "lumina-gradstats-v1"):
        assert sum(line.lstrip().startswith(method) for line in done.stdout.splitlines()) >= 2, method
    for noise in ("Traceback", "XFORMERS", "Warning", "warn("):
        assert noise not in done.stdout + done.stderr, noise
    assert (work / ".lumina-demo").is_file() and f"Everything is in {work}" in done.stdout


def test_outputs_are_all_recorded(demo: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    work, _ = demo
    out = cli(work, "ledger", "verify", "--ledger", "ledger", "--trust", "trust", "--json")
    report = json.loads(out.stdout)
    assert out.returncode == 0 and report["status"] == "valid" and report["bottom_line"] is True
    assert report["records"] == 7  # five runs, then one certificate per query
    pdfs = sorted(p.name for p in (work / "out" / "certificates").iterdir())
    assert pdfs == ["flac-copy-of-song03.pdf", f"{QUERY}.pdf"]
    shown = json.loads(cli(work, "ledger", "show", "--ledger", "ledger", "--json").stdout)
    records = shown["records"] if isinstance(shown, dict) else shown
    kinds = [r["kind"] for r in records]
    assert kinds == ["run", "run", "run", "run", "run", "certificate", "certificate"], kinds


def test_flac_copy_report(demo: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    work, _ = demo
    out = cli(work, "report", "show", "out/reports/flac-copy-of-song03.json", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["signature_method"] == "lumina-gradproj-v1" and doc["method"] == "lumina-attribution-v2"
    for ch in ("P", "M"):
        top = doc["channels"][ch]["entries"][0]
        assert top["song_id"] == "song03" and abs(top["similarity"] - 1.0) < 1e-6
        assert top["log10_lr"] == doc["channels"][ch]["highest"]["log10_lr"] > 0


def test_certificate_verifies_and_one_flipped_byte_is_caught(
        demo: tuple[Path, subprocess.CompletedProcess[str]], tmp_path: Path) -> None:
    work, _ = demo
    pdf = work / "out" / "certificates" / f"{QUERY}.pdf"
    args = ("--roots", "pki/root.pem", "--trust", "trust", "--ledger", "ledger")
    good = cli(work, "certificate", "verify", str(pdf), *args, "--json")
    assert good.returncode == 0, good.stdout + good.stderr
    data = bytearray(pdf.read_bytes())
    data[len(data) // 3] ^= 0x01
    bad_pdf = tmp_path / "tampered.pdf"
    bad_pdf.write_bytes(bytes(data))
    bad = cli(work, "certificate", "verify", str(bad_pdf), *args)
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert "Traceback" not in bad.stdout + bad.stderr


def _one_line(out: subprocess.CompletedProcess[str], fragment: str) -> None:
    lines = out.stderr.strip().splitlines()
    assert out.returncode == 2, out.stdout + out.stderr
    assert lines and lines[0].startswith("error: ") and fragment in lines[0], out.stderr
    assert len(lines) <= 2 and all(ln.startswith(("error: ", "hint: ")) for ln in lines), lines
    assert "Traceback" not in out.stdout + out.stderr


def test_user_mistakes_end_in_one_line(demo: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    """A wrong path, an unsigned manifest, one signer short of the policy and a missing model: one line each
    (and a hint), no traceback."""
    work, _ = demo
    operator = ("--trust", "trust", "--key", "keys/operator.key")
    _one_line(cli(work, "manifest", "run", "no-such.yaml", *operator), "no-such.yaml")
    _one_line(cli(work, "certificate", "verify", "no-such.pdf", "--roots", "pki/root.pem", "--trust", "trust"),
              "no-such.pdf")
    text = (work / "extract.yaml").read_text()
    (work / "unsigned.yaml").write_text(text.replace("out/catalog.h5", "out/other.h5"))
    _one_line(cli(work, "manifest", "run", "unsigned.yaml", *operator), "unsigned.yaml")
    model = next(line.split(":", 1)[1].strip() for line in text.splitlines() if "directory:" in line)
    (work / "nomodel.yaml").write_text(text.replace(model, '"/nonexistent/musicgen"').replace("out/catalog.h5",
                                                                                            "out/third.h5"))
    assert cli(work, "manifest", "sign", "nomodel.yaml", "--key", "keys/operator.key").returncode == 0
    # The demo's trust file asks for an operator and a reviewer: the operator alone is refused.
    _one_line(cli(work, "manifest", "run", "nomodel.yaml", *operator), "missing: 1 reviewer")
    verified = cli(work, "manifest", "verify", "nomodel.yaml", "--trust", "trust")
    assert verified.returncode == 1 and "signing policy not met" in verified.stderr, verified.stderr
    assert cli(work, "manifest", "sign", "nomodel.yaml", "--key", "keys/reviewer.key").returncode == 0
    _one_line(cli(work, "manifest", "run", "nomodel.yaml", *operator), "/nonexistent/musicgen")
    assert not (work / "out" / "other.h5").exists() and not (work / "out" / "third.h5").exists()
    shown = json.loads(cli(work, "ledger", "show", "--ledger", "ledger", "--json").stdout)
    assert len(shown["records"]) == 7  # nothing was recorded for the refused runs
