"""Error rates both ways through signed manifests: a version 2 Calibrate with positives, then an Attribute."""

from __future__ import annotations

import shutil

import pytest

from lumina_audit._internal.synth import SongSpec, render, write_wav
from lumina_audit.attribution.derive import derive_audio as derive
from lumina_audit.attribution.detection import Figures, Outcome
from lumina_audit.attribution.reports import read_calibration, read_report
from lumina_audit.errors import LuminaError
from lumina_audit.evidence.ledger import Ledger, verify

from .test_methods_e2e import Chain, head, new_chain

CATALOG, CONTROLS = 6, 10
CALIBRATE = "catalog: {path: out/catalog.h5}\ncontrols:\n  - path: controls\noutputs: {calibration: %s}\n"


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    root = tmp_path_factory.mktemp("positives")
    for folder in ("catalog", "controls", "queries", "derived"):
        (root / folder).mkdir()
    for i in range(CATALOG):
        write_wav(root / "catalog" / f"song{i:02d}.wav", render(SongSpec(seed=8300 + i, seconds=6.0)), 32000, 16)
    for i in range(CONTROLS):
        write_wav(root / "controls" / f"ctl{i:02d}.wav", render(SongSpec(seed=8400 + i, seconds=4.0)), 32000, 16)
    cat = root / "catalog"
    for src, transform in (("song00", "speed+2"), ("song01", "noise-30db"), ("song02", "gain-3db"),
                           ("song03", "mp3-128k")):
        derive([cat / f"{src}.wav"], transform, root / "derived" / f"{src}.{transform}")
    derive([cat / "song04.wav", cat / "song05.wav"], "splice", root / "derived" / "song04+song05.splice")
    shutil.copy(root / "derived" / "song01.noise-30db.wav", root / "queries" / "q.wav")
    c = new_chain(root)
    signature = "signature: {methods: [lumina-gradproj-v1]}\n"
    c.run("extract", head("cat", "Extract", signature=signature) + "inputs:\n  - path: catalog\n"
          "outputs: {store: out/catalog.h5}\n")
    c.run("calibrate", head("cal", "Calibrate") + CALIBRATE % "out/calibration.json" +
          "positives:\n  - path: derived\n")
    c.run("attribute", head("attr", "Attribute") + "catalog: {path: out/catalog.h5}\n"
          "calibration: {path: out/calibration.json}\nqueries:\n  - path: queries\noutputs: {reports: out/reports}\n")
    return c


def test_calibration_states_both_error_directions(chain: Chain) -> None:
    cal, _ = read_calibration(chain.root / "out" / "calibration.json")
    assert cal["version"] == 2 and cal["P"] == 5
    assert sorted(p["transform"] for p in cal["positives"]) == ["gain-3db", "mp3-128k", "noise-30db", "speed+2",
                                                                "splice"]
    splice = next(p for p in cal["positives"] if p["transform"] == "splice")
    assert splice["sources"] == ["song04", "song05"]
    for ch in ("P", "M"):
        c = cal["channels"][ch]
        outcomes = [Outcome(p["song_id"], p["transform"], o["source"], o["similarity"], o["rank"], o["detected"])
                    for p in cal["positives"] for o in p["channels"][ch]]
        assert len(outcomes) == 6  # the splice counts twice
        for o in outcomes:
            assert o.detected == (o.similarity > c["tau"]) and 1 <= o.rank <= CATALOG
        assert c["detection"]["overall"] == Figures.of(outcomes).as_dict()
        for transform, figures in c["detection"]["by_transform"].items():
            assert figures == Figures.of([o for o in outcomes if o.transform == transform]).as_dict()
        assert c["unrelated_attributed_rate"] == sum(n > 0 for n in c["counts_above"]) / CONTROLS
    record = Ledger.open(chain.root / "ledger").records()[1]
    kinds = [e.get("kind") for e in record.body["inputs"]]
    assert kinds.count("positive") == 5 and record.body["result"]["positives"] == 5


def test_reports_carry_the_calibrations_error_rates(chain: Chain) -> None:
    cal, _ = read_calibration(chain.root / "out" / "calibration.json")
    report, _ = read_report(chain.root / "out" / "reports" / "q.json")
    assert report["calibration"]["P"] == 5
    for ch in ("P", "M"):
        for key in ("unrelated_attributed_rate", "detection"):
            assert report["calibration"]["channels"][ch][key] == cal["channels"][ch][key]
    assert verify(chain.root / "ledger", chain.trust).bottom_line


def _refused(chain: Chain, name: str, positive: str, fragment: str) -> None:
    before = (chain.root / "ledger" / "records").read_bytes()
    out = f"out/{name}.json"
    with pytest.raises(LuminaError) as info:
        chain.run(name, head(name, "Calibrate") + CALIBRATE % out + f"positives:\n  - {positive}\n")
    assert info.value.exit_code == 2 and fragment in info.value.message, info.value.message
    assert "\n" not in info.value.message
    assert (chain.root / "ledger" / "records").read_bytes() == before and not (chain.root / out).exists()


def test_bad_positives_are_refused_before_any_work(chain: Chain) -> None:
    wav = chain.root / "derived" / "song02.gain-3db.wav"
    shutil.copy(wav, chain.root / "loose.wav")  # no derivation record beside it
    _refused(chain, "nosource", "{path: loose.wav, sources: [song99], transform: gain-3db}",
             "source 'song99' is not a song of the catalog store")
    _refused(chain, "unlabelled", "{path: loose.wav}", "name its sources and transform")
    _refused(chain, "unknown", "{path: loose.wav, sources: [song02], transform: wobble-7}",
             "unknown transform 'wobble-7'")
    _refused(chain, "itself", "{path: catalog/song01.wav, sources: [song01], transform: gain-3db}",
             "has the PCM of catalog song 'song01'")
    _refused(chain, "mislabelled", "{path: derived/song02.gain-3db.wav, sources: [song03], transform: gain-3db}",
             "its derivation record gain-3db of song02")


def test_version_1_calibrations_have_no_positives(chain: Chain) -> None:
    text = head("v1", "Calibrate", "v1") + CALIBRATE % "out/v1.json" + "positives:\n  - path: derived\n"
    with pytest.raises(LuminaError, match="unknown key 'positives'"):
        chain.run("v1", text)


