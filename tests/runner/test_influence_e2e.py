"""The ``influence`` proposition through signed manifests: customize, Calibrate (positives and negatives), Attribute.

Pieces of ``lumina-audit model customize`` on the random tiny checkpoint (its decoder cannot decode, so
they are carried as codes) are the positives (fine-tuned on a catalog song) and the negatives
(the unmodified model, same sampling settings); a generated piece is attributed from its codes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lumina_audit._internal.synth import SongSpec, render, write_wav
from lumina_audit.attribution.reports import read_calibration, read_report
from lumina_audit.customization import FineTune, Sampling, customize
from lumina_audit.errors import LuminaError
from lumina_audit.evidence.manifest import ManifestError
from lumina_audit.signature.pins import Pins

from ..conftest import TINY, tiny_digests
from .test_methods_e2e import Chain, head, new_chain

SOURCES = 4
ORIGIN = "songs rendered by the project's own seeded generator after the checkpoint was made"
LR = ("calibration: {method: lumina-attribution-v2, proposition: influence, min_controls: 5, min_sources: 3, "
      f"min_trials: 6, folds: 3, validation_songs: \"{ORIGIN}\"}}\n")


def calibrate_text(name: str, out: str, positives: str = "pieces/positives", negatives: str = "pieces/negatives",
                   calibration: str = LR) -> str:
    pos = "".join(f"  - path: {positives}/s{i}\n" for i in range(SOURCES)) if positives == "pieces/positives" \
        else f"  - path: {positives}\n"
    return (head(name, "Calibrate") + "catalog: {path: out/catalog.h5}\ncontrols:\n  - path: controls\n"
            f"positives:\n{pos}negatives:\n  - path: {negatives}\n" + calibration
            + f"outputs: {{calibration: {out}}}\n")


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    root = tmp_path_factory.mktemp("influence")
    for folder in ("catalog", "controls"):
        (root / folder).mkdir()
    for i in range(6):
        write_wav(root / "catalog" / f"s{i}.wav", render(SongSpec(seed=62000 + i, seconds=10.5)), 32000, 16)
        write_wav(root / "controls" / f"k{i}.wav", render(SongSpec(seed=62100 + i, seconds=4.0)), 32000, 16)
    songs = [(root / "catalog" / f"s{i}.wav", f"s{i}", None) for i in range(SOURCES)]
    common = {"tuning": FineTune(steps=2, lr=1e-3), "pins": Pins()}
    customize(TINY, tiny_digests(), songs, root / "pieces", sampling=Sampling(count=2, seconds=2.0), **common)
    customize(TINY, tiny_digests(), [(root / "catalog" / "s4.wav", "s4", None)], root / "query-pieces",
              sampling=Sampling(count=1, seconds=2.0, seed=7000), **common)
    (root / "queries").mkdir()
    shutil.copy(root / "query-pieces" / "positives" / "s4" / "s4.piece-000.codes", root / "queries")
    c = new_chain(root)
    c.run("extract", head("cat", "Extract", signature="signature: {methods: [lumina-gradproj-v1]}\n")
          + "inputs:\n  - path: catalog\noutputs: {store: out/catalog.h5}\n")
    c.run("calibrate", calibrate_text("cal", "out/calibration.zip"))
    c.run("attribute", head("attr", "Attribute") + "catalog: {path: out/catalog.h5}\ncalibration: {path: "
          "out/calibration.zip}\nqueries:\n  - path: queries\nattribution: {method: lumina-attribution-v2, top_k: 3}\n"
          "outputs: {reports: out/reports}\n")
    return c


def test_calibration_of_influence_with_negatives_scored_from_codes(chain: Chain) -> None:
    cal, _ = read_calibration(chain.root / "out" / "calibration.zip")
    p = cal["proposition"]
    assert p["name"] == "influence" and p["validation_songs"] == ORIGIN and "shaped it" in p["h1"]
    assert cal["scored_from_codes"] is True and (cal["P"], cal["G"], cal["C"]) == (2 * SOURCES, 2, 6)
    assert all(x["carried_as"] == "codes" and "codes_sha256" in x for x in cal["positives"] + cal["negatives"])
    assert sorted({x["sources"][0] for x in cal["positives"]}) == [f"s{i}" for i in range(SOURCES)]
    for ch in ("P", "M"):
        t = cal["channels"][ch]["trials"]
        assert (t["h1"], t["h2_controls"], t["h2_positives"], t["h2_negatives"]) == (8, 36, 8 * 5, 2 * 6)
        assert (t["units"], t["source_units"], t["negatives"]) == (SOURCES + 6 + 2, SOURCES, 2)
        assert cal["channels"][ch]["validation"]["by_transform"] == {}


def test_a_piece_is_attributed_from_its_codes(chain: Chain) -> None:
    report, _ = read_report(chain.root / "out" / "reports" / "s4.piece-000.json")
    assert report["query"]["carried_as"] == "codes" and report["query"]["samples"] == 64000
    assert report["calibration"]["proposition"]["validation_songs"] == ORIGIN
    assert all(report["channels"][ch]["proposition"] == "influence" for ch in ("P", "M"))


def _refused(chain: Chain, name: str, text: str, match: str) -> None:
    before = chain.records()
    with pytest.raises(LuminaError, match=match) as info:
        chain.run(name, text)
    assert info.value.exit_code == 2 and not (chain.root / "out" / "x.zip").exists() and chain.records() == before


def test_bad_pieces_are_refused(chain: Chain, tmp_path: Path) -> None:
    root = chain.root
    _refused(chain, "neg-as-pos", calibrate_text("b1", "out/x.zip", positives="pieces/negatives"),
             r"sampled by the base model; positives of the influence proposition are pieces of the fine-tuned model")
    _refused(chain, "other-sampling", calibrate_text("b2", "out/x.zip", negatives="query-pieces/negatives"),
             r"negative .*base.piece-000.codes was sampled with other settings than")
    outside = root / "outside"
    write_wav(tmp_path / "z.wav", render(SongSpec(seed=62999, seconds=10.5)), 32000, 16)
    customize(TINY, tiny_digests(), [(tmp_path / "z.wav", "z", None)], outside, tuning=FineTune(steps=1),
              sampling=Sampling(count=2, seconds=2.0), pins=Pins())
    _refused(chain, "not-in-catalog", calibrate_text("b3", "out/x.zip", positives="outside/positives/z"),
             r"positive .*z.piece-000.codes: its song 'z' is not a song of the catalog store")
    loose = root / "loose"
    loose.mkdir()
    shutil.copy(root / "pieces" / "negatives" / "base.piece-000.codes", loose / "x.codes")
    _refused(chain, "no-record", calibrate_text("b4", "out/x.zip", negatives="loose"),
             r"negative .*x.codes: no customization record beside it")


def test_the_manifest_states_where_the_songs_come_from() -> None:
    from lumina_audit.evidence.manifest.models import LRCalibrationSettings

    with pytest.raises(ValueError, match="validation_songs is required with proposition influence"):
        LRCalibrationSettings(method="lumina-attribution-v2", proposition="influence")
    with pytest.raises(ValueError, match="and only there"):
        LRCalibrationSettings(method="lumina-attribution-v2", validation_songs=ORIGIN)


def test_negatives_belong_to_influence_only(chain: Chain) -> None:
    text = calibrate_text("b5", "out/x.zip", calibration="calibration: {method: lumina-attribution-v2}\n")
    path = chain.root / "b5.yaml"
    path.write_text(text)
    from lumina_audit.evidence.manifest import load_manifest

    with pytest.raises(ManifestError, match="negatives belong to proposition influence only"):
        load_manifest(path)


@pytest.mark.skipif(shutil.which("pdftotext") is None, reason="poppler-utils is not installed; .ci/run installs it")
def test_the_certificate_states_influence_and_where_the_songs_come_from(chain: Chain, tmp_path: Path) -> None:
    import subprocess

    from lumina_audit.certificates.render import render_certificate
    from lumina_audit.evidence.ledger import Ledger, prove

    path = chain.root / "out" / "reports" / "s4.piece-000.json"
    doc, _ = read_report(path)
    seq = doc["ledger"]["record"]
    when = Ledger.open(chain.root / "ledger").records()[seq].time
    pdf = tmp_path / "c.pdf"
    pdf.write_bytes(render_certificate(doc, path.read_bytes(), prove(chain.root / "ledger", seq), issued_at=when))
    page1 = " ".join(subprocess.run(["pdftotext", "-f", "1", "-l", "1", str(pdf), "-"], check=True,
                                    capture_output=True, text=True).stdout.split())
    assert "generated by a model whose training on catalog song j shaped it" in page1
    assert ORIGIN in page1 and "Scored from EnCodec codes" in page1
