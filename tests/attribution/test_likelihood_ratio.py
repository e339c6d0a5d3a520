"""lumina-attribution-v2 sections 4-7: folds, the casework model, bounds, the verbal scale, the database search."""

from __future__ import annotations

import numpy as np
import pytest

from lumina_audit.attribution import metrics
from lumina_audit.attribution.calibrators import LogitCalibrator
from lumina_audit.attribution.cohort import cohort_stats
from lumina_audit.attribution.likelihood_ratio import LRError, calibrate_channel, database_search, verbal
from lumina_audit.attribution.trials import Labelled, Trials, build_trials, fold_of_units
from lumina_audit.attribution.validation import cross_validate, figures


def test_verbal_scale_bands_and_mirror() -> None:
    cases = {0.0: ("none", None), 0.3: ("weak", "H1"), 1.0: ("moderate", "H1"), 1.99: ("moderate", "H1"),
             2.0: ("moderately strong", "H1"), 3.0: ("strong", "H1"), 4.0: ("very strong", "H1"),
             5.99: ("very strong", "H1"), 6.0: ("extremely strong", "H1"), -0.5: ("weak", "H2"),
             -2.5: ("moderately strong", "H2"), -7.0: ("extremely strong", "H2")}
    for llr, (strength, supports) in cases.items():
        v = verbal(llr)
        assert (v["strength"], v["supports"]) == (strength, supports), llr
    assert verbal(-2.5)["words"] == "moderately strong support for the second proposition"
    assert verbal(0.0)["words"].startswith("no support for either proposition")


def _trials(seed: int = 4, sources: int = 8, controls: int = 12, songs: int = 40) -> Trials:
    rng = np.random.default_rng(seed)
    ids = [f"s{i:02d}" for i in range(songs)]
    control_sims = rng.normal(0.1, 0.05, (controls, songs))
    positive_sims = rng.normal(0.1, 0.05, (sources * 2, songs))
    positives = []
    for i in range(sources * 2):
        src = (3 * (i // 2)) % songs
        positive_sims[i, src] = rng.normal(0.45, 0.1)
        positives.append(Labelled(f"p{i}", (src,), ("mp3-128k", "noise-20db")[i % 2]))
    return build_trials(cohort=cohort_stats(control_sims, ids), control_sims=control_sims,
                        control_control=rng.normal(0.1, 0.05, (controls, controls)), positive_sims=positive_sims,
                        positive_controls=rng.normal(0.1, 0.05, (sources * 2, controls)), positives=positives,
                        song_ids=ids, control_ids=[f"k{i}" for i in range(controls)])


def test_cross_validation_fits_each_fold_on_the_others() -> None:
    t = _trials()
    llrs = cross_validate(t, LogitCalibrator(), 5)
    fold = fold_of_units(t.units, 5)[t.unit]
    for f in range(5):
        test = fold == f
        model = LogitCalibrator().fit(t.score[~test], t.h1[~test])
        assert np.array_equal(llrs[test], model.log10_lr(t.score[test]))


def test_calibrate_channel_states_every_figure() -> None:
    t = _trials()
    cal = calibrate_channel(t, 5, "P")
    llrs = cross_validate(t, LogitCalibrator(), 5)
    f = figures(llrs, t.h1, t.unit)
    assert cal.validation.overall == f and (cal.lower, cal.upper) == metrics.elub(llrs, t.h1)
    casework = LogitCalibrator().fit(t.score, t.h1)
    assert (cal.model.a, cal.model.b) == (casework.a, casework.b) and cal.model.a > 0
    assert f.h1_trials == 16 and f.h1_units == 8 and f.h2_units == 8 + 12
    assert f.misleading_h1.count == int(np.count_nonzero(llrs[t.h1] < 0))
    assert f.misleading_h1.interval == metrics.clopper_pearson(f.misleading_h1.rate * 8, 8.0)
    assert [x for x, *_ in f.h2_at_or_above] == [1, 2, 3] and f.h2_at_or_above[0][3] == 0.1
    assert sorted(cal.validation.by_transform) == ["mp3-128k", "noise-20db"]
    sel = (t.kind == 1) | (t.transform == 0)  # the controls' trials and those of the mp3 copies
    assert cal.validation.by_transform["mp3-128k"] == figures(llrs[sel], t.h1[sel], t.unit[sel])
    d = cal.as_dict()
    assert d["trials"]["h1"] == 16 and d["validation"]["tippett"]["points"] == 1201


def test_a_calibration_that_does_not_separate_is_refused() -> None:
    t = _trials()
    flipped = Trials(score=-t.score, h1=t.h1, unit=t.unit, kind=t.kind, transform=t.transform,
                     transforms=t.transforms, units=t.units, first_sources=t.first_sources, controls=t.controls,
                     negatives=t.negatives)
    with pytest.raises(LRError, match=r"channel M: the calibration's slope a = .* is not above 0"):
        calibrate_channel(flipped, 5, "M")


def test_database_search_reads_the_tippett_counts_conservatively() -> None:
    counts = [0] * 1201
    for i in range(1201):
        counts[i] = max(0, 500 - i // 2)  # a decreasing count of H2 trials at or above each grid value
    d = database_search(0.237, counts, h2_trials=1000, h2_units=50, catalog_size=10**6)
    assert d["grid_log10_lr"] == 0.23 and d["h2_trials_at_or_above"] == counts[623] == 189
    assert d["share"] == 0.189 and d["expected"] == 0.189 * 10**6
    lo, hi = metrics.clopper_pearson(0.189 * 50, 50.0)
    assert d["share_interval"] == [lo, hi] and d["expected_interval"] == [lo * 10**6, hi * 10**6]
    assert database_search(9.0, counts, 1000, 50, 10)["grid_log10_lr"] == 6.0  # beyond the grid: its last value
