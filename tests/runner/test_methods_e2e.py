"""Several signature methods through signed manifests: ``lumina-audit/v2`` stores, calibrations and reports.

A version 2 Extract computes both methods in one pass per chunk and writes a version 2
store; Calibrate and Attribute name the method they compare (default gradproj); a version 1
store still reads and attributes under gradstats; mixing methods or spaces is refused with
both digests named, exit 2, and nothing written.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import pytest
import soundfile

from lumina_audit._internal.synth import SongSpec, render, write_wav
from lumina_audit.attribution.reports import read_calibration, read_report
from lumina_audit.attribution.store import open_info, read_store
from lumina_audit.errors import LuminaError
from lumina_audit.evidence import keys
from lumina_audit.evidence.ledger import Ledger, verify
from lumina_audit.evidence.manifest import sign_manifest
from lumina_audit.evidence.trust import format_entry, load_trust
from lumina_audit.runner.run import run_manifest
from lumina_audit.signature.pins import MARKER

from ..conftest import PINS_YAML, ROOT, TINY, tiny_digests

CATALOG, CONTROLS = 8, 10
GRADPROJ, GRADSTATS = "lumina-gradproj-v1", "lumina-gradstats-v1"
STORE_V1 = ROOT / "tests" / "data" / "store-v1.h5"


def head(name: str, kind: str, api: str = "v2", signature: str = "") -> str:
    d = tiny_digests()
    return f"""apiVersion: lumina-audit/{api}
kind: {kind}
metadata: {{name: {name}}}
seed: 422024
model:
  directory: {TINY}
  sha256: {{state_dict.bin: {d['state_dict.bin']}, compression_state_dict.bin: {d['compression_state_dict.bin']}}}
ledger: ledger
{PINS_YAML}{signature}"""


#: The reviewer beside every e2e chain's operator: the default signing policy asks for two
#: distinct principals (docs/evidence.md, "Signing policy"). The runner tests share these helpers.
REVIEWER = keys.generate()
MANIFEST_NS, LEDGER_NS = "lumina-audit/manifest", "lumina-audit/ledger"


def write_trust(root: Path, operator: Any) -> Any:
    """``root/trust``: op@lab (role operator; manifests and ledger) and rev@lab (role reviewer; manifests),
    no policy line (the default: two distinct signers). Returns it loaded."""
    (root / "trust").write_text(
        format_entry("op@lab", [MANIFEST_NS, LEDGER_NS], operator.public_key(), role="operator") + "\n"
        + format_entry("rev@lab", [MANIFEST_NS], REVIEWER.public_key(), role="reviewer") + "\n")
    return load_trust(root / "trust")


def sign_twice(path: Path, operator: Any) -> None:
    """Sign a manifest as the operator, then as :data:`REVIEWER` (what :func:`write_trust` trusts)."""
    sign_manifest(path, operator)
    sign_manifest(path, REVIEWER)


@dataclass
class Chain:
    root: Path
    key: Any
    trust: Any

    def run(self, name: str, text: str) -> Any:
        path = self.root / f"{name}.yaml"
        path.write_text(text)
        sign_twice(path, self.key)
        return run_manifest(path, self.trust, self.key)

    def records(self) -> int:
        return len(Ledger.open(self.root / "ledger").records())


def new_chain(root: Path) -> Chain:
    """A chain in ``root``: a new operator key and the trust file of :func:`write_trust`."""
    key = keys.generate()
    return Chain(root, key, write_trust(root, key))


def calibrate_text(name: str, store: str, method: str | None, out: str, api: str = "v2") -> str:
    signature = f"signature: {{method: {method}}}\n" if method else ""
    return head(name, "Calibrate", api, signature) + (f"catalog: {{path: {store}}}\ncontrols:\n  - path: controls\n"
                                                      f"outputs: {{calibration: {out}}}\n")


def attribute_text(name: str, store: str, cal: str, method: str | None, out: str, api: str = "v2") -> str:
    signature = f"signature: {{method: {method}}}\n" if method else ""
    return head(name, "Attribute", api, signature) + (f"catalog: {{path: {store}}}\ncalibration: {{path: {cal}}}\n"
                                                      f"queries:\n  - path: queries\noutputs: {{reports: {out}}}\n")


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    root = tmp_path_factory.mktemp("methods")
    for folder in ("catalog", "controls", "queries"):
        (root / folder).mkdir()
    for i in range(CATALOG):
        write_wav(root / "catalog" / f"song{i:02d}.wav", render(SongSpec(seed=6100 + i, seconds=6.0)), 32000, 16)
    for i in range(CONTROLS):
        write_wav(root / "controls" / f"ctl{i:02d}.wav", render(SongSpec(seed=6300 + i, seconds=6.0)), 32000, 16)
    data, rate = soundfile.read(root / "catalog" / "song03.wav", dtype="int16")
    soundfile.write(root / "queries" / "copy-of-song03.flac", data, rate, subtype="PCM_16", format="FLAC")
    c = new_chain(root)
    c.run("extract", head("cat", "Extract") + "inputs:\n  - path: catalog\noutputs: {store: out/catalog.h5}\n")
    c.run("extract-v1", head("cat1", "Extract", "v1") + "inputs:\n  - path: catalog\n"
          "outputs: {store: out/catalog-v1.h5}\n")
    c.run("calibrate", calibrate_text("cal", "out/catalog.h5", None, "out/calibration.json"))
    c.run("attribute", attribute_text("attr", "out/catalog.h5", "out/calibration.json", None, "out/reports"))
    return c


def test_a_v2_store_holds_both_methods_and_gradstats_is_the_v1_bits(chain: Chain) -> None:
    path = chain.root / "out" / "catalog.h5"
    info = open_info(path)
    assert (info.version, info.methods, info.count) == (2, (GRADPROJ, GRADSTATS), CATALOG)
    with h5py.File(path) as f:
        assert list(f.attrs) == ["format", "version", "methods"]
        assert json.loads(f.attrs["methods"]) == [GRADPROJ, GRADSTATS]
        assert list(f) == ["song_ids", "file_sha256", "pcm_sha256", "chunks", GRADPROJ, GRADSTATS]
    v1 = read_store(chain.root / "out" / "catalog-v1.h5")
    assert open_info(chain.root / "out" / "catalog-v1.h5").version == 1
    stats = read_store(path, info.spaces[GRADSTATS].digest)
    assert stats.space == v1.space and stats.song_ids == v1.song_ids
    for a, b in ((stats.p, v1.p), (stats.m, v1.m), (stats.raw_p, v1.raw_p), (stats.raw_m, v1.raw_m)):
        assert a.tobytes() == b.tobytes()  # one pass serving two methods changes no bit of either
    proj = read_store(path, info.spaces[GRADPROJ].digest)
    assert proj.space.as_dict()["projection"]["seed"] == 422024 and proj.p.tobytes() != stats.p.tobytes()
    with pytest.raises(LuminaError, match="holds .* name one by its digest"):
        read_store(path)
    record = Ledger.open(chain.root / "ledger").records()[0]
    assert record.body["result"]["signature_spaces"] == {m: s.digest for m, s in info.spaces.items()}


def test_calibrate_and_attribute_default_to_gradproj(chain: Chain) -> None:
    cal, _ = read_calibration(chain.root / "out" / "calibration.json")
    space = open_info(chain.root / "out" / "catalog.h5").spaces[GRADPROJ]
    assert cal["signature_space"]["method"] == GRADPROJ and cal["signature_space_sha256"] == space.digest
    report, _ = read_report(chain.root / "out" / "reports" / "copy-of-song03.json")
    assert (report["version"], report["signature_method"]) == (2, GRADPROJ)
    assert report["signature_space_sha256"] == space.digest
    for ch in ("P", "M"):
        res, floor = report["channels"][ch], cal["channels"][ch]
        top = res["entries"][0]
        assert top["song_id"] == "song03" and abs(top["similarity"] - 1.0) < 1e-6
        above = [e for e in res["entries"] if e["above_threshold"]]
        assert all(e["similarity"] > floor["tau"] for e in above)
        assert (res["verdict"] == "attributed") == bool(above)
    assert verify(chain.root / "ledger", chain.trust).bottom_line


def test_gradstats_calibrates_from_the_same_v2_store(chain: Chain) -> None:
    chain.run("calibrate-stats", calibrate_text("cals", "out/catalog.h5", GRADSTATS, "out/calibration-stats.json"))
    cal, _ = read_calibration(chain.root / "out" / "calibration-stats.json")
    assert cal["signature_space_sha256"] == open_info(chain.root / "out" / "catalog.h5").spaces[GRADSTATS].digest


def _refused(chain: Chain, name: str, text: str, *fragments: str) -> None:
    before = (chain.root / "ledger" / "records").read_bytes()
    listing = sorted(p.name for p in (chain.root / "out").iterdir())
    with pytest.raises(LuminaError) as info:
        chain.run(name, text)
    assert info.value.exit_code == 2
    for fragment in fragments:
        assert fragment in info.value.message, info.value.message
    assert (chain.root / "ledger" / "records").read_bytes() == before
    assert sorted(p.name for p in (chain.root / "out").iterdir()) == listing


def test_mixing_methods_or_spaces_is_refused_with_both_digests(chain: Chain) -> None:
    info = open_info(chain.root / "out" / "catalog.h5")
    proj, stats = info.spaces[GRADPROJ].digest, info.spaces[GRADSTATS].digest
    # A gradstats attribution against the gradproj calibration.
    _refused(chain, "mixed", attribute_text("mix", "out/catalog.h5", "out/calibration.json", GRADSTATS,
                                            "out/reports-mixed"), proj, stats)
    # A gradproj calibration of a version 1 store (gradstats only).
    shutil.copy(STORE_V1, chain.root / "old.h5")
    old = open_info(chain.root / "old.h5").space.digest
    _refused(chain, "mixed2", calibrate_text("mix2", "old.h5", GRADPROJ, "out/calibration-mixed.json"), old, proj)


def _run_through_the_cli(chain: Chain, name: str, text: str) -> subprocess.CompletedProcess[str]:
    """``lumina-audit manifest run`` of ``text`` (signed twice) in a fresh process, which re-executes under its pins."""
    path = chain.root / f"{name}.yaml"
    path.write_text(text)
    sign_twice(path, chain.key)
    keys.write_private_key(chain.root / f"{name}.key", chain.key)
    env = {k: v for k, v in os.environ.items() if k != MARKER}
    return subprocess.run([sys.executable, "-m", "lumina_audit", "manifest", "run", str(path), "--trust",
                           str(chain.root / "trust"), "--key", str(chain.root / f"{name}.key")], env=env,
                          cwd=chain.root, capture_output=True, text=True, timeout=300, check=False)


def test_mixing_is_one_line_and_exit_2_through_the_cli(chain: Chain) -> None:
    before = chain.records()
    out = _run_through_the_cli(chain, "mixed-cli", attribute_text("mixcli", "out/catalog.h5", "out/calibration.json",
                                                                  GRADSTATS, "out/reports-cli"))
    assert out.returncode == 2, out.stdout + out.stderr
    lines = out.stderr.strip().splitlines()
    assert lines[0].startswith("error: ") and "never compared" in lines[0] and "Traceback" not in out.stderr
    info = open_info(chain.root / "out" / "catalog.h5")
    assert info.spaces[GRADPROJ].digest in lines[0] and info.spaces[GRADSTATS].digest in lines[0]
    assert chain.records() == before and not (chain.root / "out" / "reports-cli").exists()


def test_a_version_1_store_still_reads_and_attributes_under_gradstats(tmp_path: Path) -> None:
    root = tmp_path
    shutil.copy(STORE_V1, root / "catalog.h5")
    (root / "controls").mkdir()
    (root / "queries").mkdir()
    for i in range(CONTROLS):
        write_wav(root / "controls" / f"ctl{i:02d}.wav",
                  render(SongSpec(seed=6500 + i, seconds=3.0, sample_rate=32000, channels=1)), 32000, 16)
    # The same music as the store's song v1song2 (tests/data/README.md), in another container.
    write_wav(root / "queries" / "again-v1song2.wav",
              render(SongSpec(seed=9003, seconds=3.0, sample_rate=32000, channels=1)), 32000, 16)
    c = new_chain(root)
    assert open_info(root / "catalog.h5").version == 1
    c.run("cal", calibrate_text("c1", "catalog.h5", None, "out/calibration.json", api="v1"))
    c.run("attr", attribute_text("a1", "catalog.h5", "out/calibration.json", None, "out/reports", api="v1"))
    report, _ = read_report(root / "out" / "reports" / "again-v1song2.json")
    assert report["version"] == 1 and "signature_method" not in report
    assert report["signature_space_sha256"] == open_info(root / "catalog.h5").space.digest
    for ch in ("P", "M"):
        top = report["channels"][ch]["entries"][0]
        assert top["song_id"] == "v1song2" and abs(top["similarity"] - 1.0) < 1e-6
    # The same store under a version 2 manifest naming gradstats reads as well.
    c.run("cal2", calibrate_text("c2", "catalog.h5", GRADSTATS, "out/calibration-v2.json"))
    assert verify(root / "ledger", c.trust).bottom_line


def test_a_store_of_other_pins_is_refused_through_the_cli(chain: Chain) -> None:
    """The store's Extract ran under PINS_YAML; a Calibrate whose manifest omits its pins runs under the
    pins its format was defined with (MKL's default branch, oneDNN on): refused before the model loads."""
    text = calibrate_text("pinscli", "out/catalog.h5", None, "out/calibration-other-pins.json")
    assert PINS_YAML in text
    before = chain.records()
    out = _run_through_the_cli(chain, "other-pins", text.replace(PINS_YAML, ""))
    assert out.returncode == 2, out.stdout + out.stderr
    first = out.stderr.strip().splitlines()[0]
    assert first.startswith("error: catalog store ") and "was computed under other numerical pins" in first, first
    assert "mkl_cbwr 'COMPATIBLE' there, None here" in first and "onednn False there, True here" in first, first
    assert "Traceback" not in out.stderr
    assert chain.records() == before and not (chain.root / "out" / "calibration-other-pins.json").exists()
