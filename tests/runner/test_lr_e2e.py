"""``lumina-attribution-v2`` through signed manifests: Calibrate (an archive) then Attribute (version 3 reports).

Refusals (attribution-v2 sections 1, 2 and 6): fewer controls, sources or same-source trials
than the manifest's minimums; a control or positive that is a catalog song; a positive that is
a control; a degenerate cohort; a query shorter than every positive; a calibration of the
other method, space or catalog. Each: one line naming what and where, nothing written, the
ledger unchanged.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from lumina_audit._internal.synth import SongSpec, render, write_wav
from lumina_audit.attribution import calibration_file
from lumina_audit.attribution.cohort import snorm
from lumina_audit.attribution.derive import derive_audio as derive
from lumina_audit.attribution.likelihood_ratio import verbal
from lumina_audit.attribution.reports import read_calibration, read_report
from lumina_audit.attribution.search import exact_similarities
from lumina_audit.attribution.store import read_store
from lumina_audit.errors import LuminaError
from lumina_audit.evidence.ledger import verify

from .test_methods_e2e import Chain, head, new_chain

CATALOG, CONTROLS = 8, 8
SOURCES = ("song00", "song01", "song02", "song03")
TRANSFORMS = ("noise-30db", "gain-3db")
LR = "calibration: {method: lumina-attribution-v2, min_controls: %d, min_sources: %d, min_trials: %d, folds: 4}\n"


def calibrate_text(name: str, out: str, controls: str = "controls", positives: str = "  - path: derived\n",
                   minimums: tuple[int, int, int] = (6, 4, 8)) -> str:
    return (head(name, "Calibrate") + f"catalog: {{path: out/catalog.h5}}\ncontrols:\n  - path: {controls}\n"
            f"positives:\n{positives}" + LR % minimums + f"outputs: {{calibration: {out}}}\n")


def attribute_text(name: str, cal: str, out: str, queries: str = "queries", method: str = "lumina-attribution-v2",
                   store: str = "out/catalog.h5") -> str:
    return (head(name, "Attribute") + f"catalog: {{path: {store}}}\ncalibration: {{path: {cal}}}\n"
            f"queries:\n  - path: {queries}\nattribution: {{method: {method}, top_k: 3}}\n"
            f"outputs: {{reports: {out}}}\n")


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Chain:
    root = tmp_path_factory.mktemp("lr")
    for folder in ("catalog", "controls", "queries", "derived"):
        (root / folder).mkdir()
    for i in range(CATALOG):
        write_wav(root / "catalog" / f"song{i:02d}.wav", render(SongSpec(seed=9100 + i, seconds=5.0)), 32000, 16)
    for i in range(CONTROLS):
        write_wav(root / "controls" / f"ctl{i:02d}.wav", render(SongSpec(seed=9200 + i, seconds=4.0)), 32000, 16)
    cat = root / "catalog"
    for src in SOURCES:
        for transform in TRANSFORMS:
            derive([cat / f"{src}.wav"], transform, root / "derived" / f"{src}.{transform}")
    derive([cat / "song05.wav"], "noise-30db", root / "queries" / "q")
    c = new_chain(root)
    c.run("extract", head("cat", "Extract", signature="signature: {methods: [lumina-gradproj-v1]}\n")
          + "inputs:\n  - path: catalog\noutputs: {store: out/catalog.h5}\n")
    c.run("calibrate", calibrate_text("cal", "out/calibration.zip"))
    c.run("attribute", attribute_text("attr", "out/calibration.zip", "out/reports"))
    return c


def test_calibration_is_a_versioned_archive_with_every_figure(chain: Chain) -> None:
    path = chain.root / "out" / "calibration.zip"
    cal, digest = read_calibration(path)
    assert cal["format"] == "lumina-calibration" and cal["version"] == 3 and cal["method"] == "lumina-attribution-v2"
    assert cal["proposition"]["name"] == "derived-copy" and "derived from catalog song j" in cal["proposition"]["h1"]
    assert cal["settings"] == {"min_controls": 6, "min_sources": 4, "min_trials": 8, "folds": 4}
    assert (cal["C"], cal["N"], cal["P"]) == (CONTROLS, CATALOG, len(SOURCES) * len(TRANSFORMS))
    arrays = calibration_file.read_arrays(path)
    for ch in ("P", "M"):
        c = cal["channels"][ch]
        assert c["trials"]["h1"] == 8 and c["trials"]["h2_controls"] == CONTROLS * CATALOG
        assert c["trials"]["h2_positives"] == 8 * (CATALOG - 1) and c["trials"]["units"] == len(SOURCES) + CONTROLS
        v = c["validation"]
        assert (v["h1_trials"], v["h2_trials"]) == (8, CONTROLS * CATALOG + 8 * (CATALOG - 1))
        assert (v["h1_units"], v["h2_units"]) == (len(SOURCES), len(SOURCES) + CONTROLS)
        assert sorted(v["by_transform"]) == sorted(TRANSFORMS)
        assert c["bounds"] == v["bounds"] and c["bounds"]["lower"] <= 0 <= c["bounds"]["upper"]
        assert c["model"]["a"] > 0 and len(v["tippett"]["h1_at_or_above"]) == 1201 and len(v["ece"]["system"]) == 501
        assert arrays[f"cohort-{ch}.npy"].shape == (CATALOG, 2)
        assert arrays[f"controls-{ch}.npy"].shape == (CONTROLS, 216)
    # The cohort of each song, recomputed from the store and the stored controls, in the spec's order.
    rows = read_store(chain.root / "out" / "catalog.h5").p
    sims = exact_similarities(arrays["controls-P.npy"], rows)
    acc = sims[0].copy()
    for r in sims[1:]:
        acc += r
    assert np.array_equal(arrays["cohort-P.npy"][:, 0], acc / CONTROLS)
    assert len(digest) == 64


def test_report_states_bounded_lrs_with_their_verbal_band(chain: Chain) -> None:
    cal, cal_digest = read_calibration(chain.root / "out" / "calibration.zip")
    report, _ = read_report(chain.root / "out" / "reports" / "q.json")
    assert report["version"] == 3 and report["method"] == "lumina-attribution-v2"
    assert report["calibration"]["sha256"] == cal_digest
    arrays = calibration_file.read_arrays(chain.root / "out" / "calibration.zip")
    store = read_store(chain.root / "out" / "catalog.h5")
    for ch in ("P", "M"):
        res = report["channels"][ch]
        c = cal["channels"][ch]
        lower, upper = c["bounds"]["lower"], c["bounds"]["upper"]
        assert res["bounds"] == {"lower": lower, "upper": upper}
        entries = res["entries"]
        assert len(entries) >= 3 and entries[0]["song_id"] == res["highest"]["song_id"]
        # Every listed value recomputed from the spec's formulas (dense, in numpy).
        rows = store.p if ch == "P" else store.m
        cohort = arrays[f"cohort-{ch}.npy"]
        mu_q, sd_q = res["query_cohort"]["mu"], res["query_cohort"]["sd"]
        for e in entries:
            j = store.song_ids.index(e["song_id"])
            t = snorm(np.asarray([e["similarity"]]), cohort[j:j + 1, 0], cohort[j:j + 1, 1], mu_q, sd_q)[0]
            assert e["score"] == t
            llr = (c["model"]["a"] * t + c["model"]["b"]) / 2.302585092994046
            assert e["log10_lr_calibrated"] == llr and e["log10_lr"] == min(max(llr, lower), upper)
            assert e["band"] == verbal(e["log10_lr"])["strength"]
            assert math.isclose(e["lr"], 10 ** e["log10_lr"], rel_tol=1e-12)
        keys_ = [(-e["log10_lr_calibrated"], e["song_id"]) for e in entries]
        assert keys_ == sorted(keys_)
        assert all((e["listed_by"] == "report_at") == (e["log10_lr"] >= res["report_at"]) for e in entries)
        assert rows.shape[0] == CATALOG
        db = res["database_search"]
        assert db["catalog_size"] == CATALOG and db["expected"] == CATALOG * db["share"]


def test_ledger_holds_both_runs_and_verifies(chain: Chain) -> None:
    assert chain.records() == 3
    assert verify(chain.root / "ledger", chain.trust).bottom_line


def _refused(chain: Chain, name: str, text: str, match: str, out: Path) -> None:
    before = chain.records()
    with pytest.raises(LuminaError, match=match) as info:
        chain.run(name, text)
    assert info.value.exit_code == 2 and "\n" not in info.value.message
    assert not out.exists() and chain.records() == before


def test_too_few_controls_sources_or_trials_are_refused(chain: Chain) -> None:
    out = chain.root / "out" / "x.zip"
    _refused(chain, "few-controls", calibrate_text("c1", "out/x.zip", minimums=(9, 4, 8)), r"8 control\(s\); "
             r"calibration.min_controls asks for at least 9", out)
    _refused(chain, "few-sources", calibrate_text("c2", "out/x.zip", minimums=(6, 5, 8)), r"4 distinct first source "
             r"song\(s\); calibration.min_sources asks for at least 5", out)
    _refused(chain, "few-trials", calibrate_text("c3", "out/x.zip", minimums=(6, 4, 9)), r"8 same-source trial\(s\); "
             r"calibration.min_trials asks for at least 9", out)


def test_a_control_or_positive_that_is_a_catalog_song_or_both_is_refused(chain: Chain) -> None:
    root, out = chain.root, chain.root / "out" / "x.zip"
    mixed = root / "controls-with-catalog"
    shutil.copytree(root / "controls", mixed)
    shutil.copy(root / "catalog" / "song06.wav", mixed / "zz.wav")
    _refused(chain, "ctl-cat", calibrate_text("c4", "out/x.zip", controls=mixed.name), r"control .*zz.wav has the PCM "
             r"of catalog song 'song06'", out)
    both = root / "controls-with-positive"
    shutil.copytree(root / "controls", both)
    shutil.copy(root / "derived" / "song00.noise-30db.wav", both / "zz.wav")
    _refused(chain, "ctl-pos", calibrate_text("c5", "out/x.zip", controls=both.name), r"positive .* has the PCM of "
             r"control .*zz.wav", out)
    itself = "  - path: derived\n  - {path: catalog/song01.wav, sources: [song01], transform: gain-3db}\n"
    _refused(chain, "pos-cat", calibrate_text("c6", "out/x.zip", positives=itself),
             r"positive .*song01.wav has the PCM of catalog song 'song01'", out)


def test_a_short_query_and_a_mix_of_methods_are_refused(chain: Chain) -> None:
    root = chain.root
    short = root / "short"
    short.mkdir()
    write_wav(short / "s.wav", render(SongSpec(seed=9300, seconds=1.5)), 32000, 16)
    out = root / "out" / "r2"
    _refused(chain, "short", attribute_text("a2", "out/calibration.zip", "out/r2", queries="short"),
             r"query .*s.wav lasts 1.50 s, shorter than the shortest positive .* outside the validated conditions", out)
    _refused(chain, "mix", attribute_text("a3", "out/calibration.zip", "out/r2", method="lumina-attribution-v1"),
             r"calibration .* is of method lumina-attribution-v2, the manifest's attribution.method is "
             "lumina-attribution-v1", out)


def test_a_degenerate_cohort_is_refused_naming_the_song(chain: Chain) -> None:
    """A catalog song whose signature is orthogonal to every control (here: zero) has a cohort sd of 0."""
    root = chain.root
    shutil.copy(root / "out" / "catalog.h5", root / "out" / "zeroed.h5")
    with h5py.File(root / "out" / "zeroed.h5", "r+") as f:
        f["lumina-gradproj-v1/signatures_p"][6] = np.zeros(216, dtype=np.float32)
    text = calibrate_text("c7", "out/x.zip").replace("out/catalog.h5", "out/zeroed.h5")
    _refused(chain, "zeroed", text, r"channel P: catalog song 'song06': the standard deviation of its similarities "
             r"with the controls is 0", root / "out" / "x.zip")


def test_a_calibration_of_another_catalog_or_space_is_refused(chain: Chain) -> None:
    root = chain.root
    shutil.copy(root / "out" / "catalog.h5", root / "out" / "other.h5")
    with h5py.File(root / "out" / "other.h5", "r+") as f:
        f["lumina-gradproj-v1/signatures_p"][0] = -f["lumina-gradproj-v1/signatures_p"][0]
    _refused(chain, "other-catalog", attribute_text("a4", "out/calibration.zip", "out/r4", store="out/other.h5"),
             r"calibration .*calibration.zip was made on catalog store [0-9a-f]{64}, not on", root / "out" / "r4")
    text = attribute_text("a5", "out/calibration.zip", "out/r5").replace(
        "ledger: ledger\n", "ledger: ledger\nsignature: {method: lumina-gradstats-v1}\n")
    _refused(chain, "other-space", text, r"is of signature space [0-9a-f]{64}, this run computes signatures of space "
             r"[0-9a-f]{64}; they are never compared", root / "out" / "r5")
