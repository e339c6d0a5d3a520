"""``benchmarks.bench_lr_battery``: its whole computation on a few synthetic songs (no apt, seconds).

Catalog, controls and derived copies are rendered by ``lumina_audit._internal.synth`` and derived with
``lumina_audit.attribution.derive``; the signatures come from the tiny checkpoint of the test session.
The figures are checked against what the trials must hold and against an independent count on the
raw cosines, then written as the report.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

import benchmarks.bench_lr_battery as bench
from lumina_audit._internal.synth import SongSpec, render, write_wav
from lumina_audit.attribution.search import exact_similarities

TRANSFORMS = ("gain-6db", "noise-20db", "speed+2", "splice")
N_CATALOG, N_CONTROLS, SECONDS = 4, 10, 6.0


def _songs(folder: Path, prefix: str, seeds: range) -> tuple[list[Path], list[str]]:
    folder.mkdir(parents=True)
    paths = []
    for s in seeds:
        path = folder / f"{prefix}{s}.wav"
        write_wav(path, render(SongSpec(seed=s, seconds=SECONDS)), 32000, 16)
        paths.append(path)
    return paths, [p.stem for p in paths]


def _finite(x: Any) -> bool:
    return isinstance(x, float) and math.isfinite(x)


def test_lr_battery_computation_and_report(session: Any, tmp_path: Path) -> None:
    settings = bench.Settings(transforms=TRANSFORMS)
    cat, cat_ids = _songs(tmp_path / "catalog", "cat", range(7100, 7100 + N_CATALOG))
    ctl, ctl_ids = _songs(tmp_path / "controls", "ctl", range(7200, 7200 + N_CONTROLS))
    sets = bench.Sets(cat, cat_ids, ctl, ctl_ids)
    sets.copies, sets.labels = bench.derive_copies(cat, cat_ids, TRANSFORMS, tmp_path / "derived")
    assert len(sets.copies) == N_CATALOG * len(TRANSFORMS)
    for j, lab in enumerate(sets.labels):
        i = j // len(TRANSFORMS)
        assert lab.transform == TRANSFORMS[j % len(TRANSFORMS)]
        assert lab.sources == ((i, (i + 1) % N_CATALOG) if lab.transform == "splice" else (i,))

    cache = tmp_path / "cache"
    vectors, pcm, record = bench.signature_vectors(session, sets.paths, sets.ids, cache)
    assert record["computed"] == len(sets.paths) and record["reused"] == 0
    again, pcm2, record2 = bench.signature_vectors(session, sets.paths, sets.ids, cache)
    assert record2["reused"] == len(sets.paths) and record2["computed"] == 0 and pcm2 == pcm
    assert all(again[k].tobytes() == v.tobytes() for k, v in vectors.items())
    assert sorted(vectors) == sorted(f"{m} {c}" for m in bench.METHOD_NAMES for c in bench.CHANNELS)

    spaces = {m: session.spaces[m].digest for m in settings.signature_methods}
    results = bench.measure(vectors, sets, pcm, spaces, settings)
    assert list(results) == [f"{m} {c}" for m in bench.METHOD_NAMES for c in bench.CHANNELS]
    n, c = N_CATALOG, N_CONTROLS
    h1 = N_CATALOG * (len(TRANSFORMS) + 1)  # a splice has two same-source trials
    h2_copies = sum(n - len(lab.sources) for lab in sets.labels)
    for key, r in results.items():
        method, ch = key.split()
        v = vectors[key]
        copy_sims = exact_similarities(v[n + c:], v[:n])
        source_sims = np.asarray([copy_sims[i, j] for i, lab in enumerate(sets.labels) for j in lab.sources])
        fl = r["v1_floor"]
        assert fl["tau"] == fl["mu"] + settings.k * fl["sigma"]
        for score in ("raw", "snorm"):
            x = r[score]
            t = x["trials"]
            assert (t["h1"], t["h2_controls"], t["h2_copies"]) == (h1, c * n, h2_copies)
            assert t["h2"] == t["h2_controls"] + t["h2_copies"] and t["units"] == n + c
            assert t["h1_by_transform"] == {tr: N_CATALOG * (1 + (tr == "splice")) for tr in TRANSFORMS}
            a = x["at_false_alarm"]
            assert a["h2_allowed"] == t["h2"] * settings.false_alarm_percent // 100
            assert a["h2_at_or_above"] <= a["h2_allowed"] and _finite(a["threshold"])
            assert 0.0 <= a["found"] <= 1.0 and sorted(a["found_by_transform"]) == sorted(TRANSFORMS)
            assert abs(a["found"] * h1 - round(a["found"] * h1)) < 1e-9
            cal = x["calibration"]
            assert cal["status"] in ("ok", "refused")
            if cal["status"] == "ok":
                o = cal["overall"]
                assert _finite(o["cllr"]) and o["cllr"] >= 0 and 0 <= o["cllr_min"] <= 1 + 1e-12
                assert 0 <= o["eer"] <= 0.5 and o["bounds"]["lower"] <= 0 <= o["bounds"]["upper"]
                assert cal["model"]["a"] > 0 and sorted(cal["by_transform"]) == sorted(TRANSFORMS)
                assert (o["h1_trials"], o["h2_trials"]) == (t["h1"], t["h2"])
                kinds = cal["by_h2_kind"]
                assert (kinds["controls"]["h2_trials"], kinds["copies"]["h2_trials"]) == (c * n, h2_copies)
                assert kinds["controls"]["h1_trials"] == kinds["copies"]["h1_trials"] == h1
            else:
                assert cal["short"].startswith("refused") and cal["reason"]
        raw = r["raw"]
        # the raw score is the cosine itself: recount "found" and the v1 shares from the similarities
        assert raw["at_false_alarm"]["found"] == np.count_nonzero(
            source_sims >= raw["at_false_alarm"]["threshold"]) / h1
        assert raw["v1_floor"]["h1_above"] == np.count_nonzero(source_sims > fl["tau"]) / h1
        control_sims = exact_similarities(v[n:n + c], v[:n])
        assert raw["v1_floor"]["h2_controls_above"] == fl["false_positive_rate"] == \
            np.count_nonzero(control_sims > fl["tau"]) / (c * n)
        assert "v1_floor" not in r["snorm"]

    doc: dict[str, Any] = {
        "command": "python -m benchmarks.bench_lr_battery (smoke test)", "date": "today", "niceness": 0,
        "run_seconds": 1.0, "git": {"commit": None, "changed_files": 0, "changed": [], "dirty": False},
        "versions": {"numpy": np.__version__}, "settings": settings.as_dict(), "notes": bench.NOTES,
        "model": {"model": "tiny", "width": 32, "digests": {"state_dict.bin": "0" * 64}},
        "signatures": record, "results": results,
        "data": {"packages": [], "apt_installed": [], "catalog": [{"song_id": s} for s in cat_ids],
                 "controls": [{"song_id": s} for s in ctl_ids], "copies": len(sets.copies),
                 "not_committed": bench.NOT_COMMITTED}}
    text = bench.write_report(doc, tmp_path / "out")
    assert (tmp_path / "out" / "lr-battery.md").read_text() == text
    assert (tmp_path / "out" / "lr-battery.json").is_file()
    overall = text.split("## Overall")[1].split("###")[0]
    for label in ("raw cosine (v1 score)", "S-norm (v2 score)"):
        assert overall.count(f"| {label} |") == len(results)
    for key in results:
        name = key.removeprefix("lumina-").replace("-v1", "")
        assert f"## {name}: per transform" in text
    for tr in (*TRANSFORMS, "all"):
        assert text.count(f"| {tr} | ") == len(results)
    assert "H2 split by kind" in text and "## Reading" in text and "nan%" not in text and "| nan" not in text


def test_operating_point_counts_at_most_one_percent_of_h2() -> None:
    h2 = np.arange(200, dtype=np.float64)  # k = 2: the threshold is just above the third highest, 197
    score = np.concatenate([h2, [197.0, 197.5, 199.0]])
    h1 = np.concatenate([np.zeros(200, bool), np.ones(3, bool)])
    t, k, at = bench.operating_point(score, h1, 1)
    assert (k, at) == (2, 2) and t == np.nextafter(197.0, np.inf)
    assert list(score[h1] >= t) == [False, True, True]
    tied = np.concatenate([np.full(150, 1.0), np.zeros(50), [1.0]])  # 150 ties at the top: none may be reached
    t, k, at = bench.operating_point(tied, np.arange(201) == 200, 1)
    assert (k, at) == (2, 0) and t > 1.0


def test_a_refused_calibration_is_reported_as_the_result() -> None:
    from lumina_audit.attribution.trials import H1, H2_CONTROL, H2_POSITIVE, Trials

    rng = np.random.default_rng(5)
    kinds = [H1] * 10 + [H2_POSITIVE] * 40 + [H2_CONTROL] * 60  # same-source trials score LOWER: slope < 0
    score = np.concatenate([rng.normal(-1, 0.5, 10), rng.normal(1, 0.5, 100)])
    unit = np.concatenate([np.arange(10) % 5, np.arange(40) % 5, 5 + np.arange(60) % 10]).astype(np.int64)
    trials = Trials(score=score, h1=np.asarray(kinds) == H1, unit=unit, kind=np.asarray(kinds, dtype=np.int8),
                    transform=np.asarray([0] * 50 + [-1] * 60, dtype=np.int16), transforms=("gain-3db",), units=15,
                    first_sources=(0, 1, 2, 3, 4), controls=10, negatives=0)
    out = bench._figures(trials, bench.Settings(transforms=("gain-3db",)), "test", tau=0.5)
    cal = out["calibration"]
    assert cal["status"] == "refused" and cal["short"] == "refused: no positive slope" and "slope" in cal["reason"]
    assert isinstance(cal["cross_validated_despite_refusal"], dict)
    assert bench._cells(out, None)[1:] == ["refused: no positive slope", "-", "-", "-"]
    assert out["v1_floor"]["h2_controls_above"] is not None and out["at_false_alarm"]["found"] == 0.0
