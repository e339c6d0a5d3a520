"""Trials, units and folds (attribution-v2 sections 3 and 5), on a hand-built catalog."""

from __future__ import annotations

import numpy as np
import pytest

from lumina_audit.attribution.cohort import cohort_stats, leave_out_stats, query_stats, snorm
from lumina_audit.attribution.trials import (
    H1,
    H2_CONTROL,
    H2_NEGATIVE,
    H2_POSITIVE,
    Labelled,
    build_trials,
    fold_of_units,
)

SONGS = ["s0", "s1", "s2", "s3", "s4"]
CONTROLS = ["k0", "k1", "k2"]


def _data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {"control_sims": rng.uniform(0, 0.5, (3, 5)), "control_control": rng.uniform(0, 0.5, (3, 3)),
            "positive_sims": rng.uniform(0, 1, (3, 5)), "positive_controls": rng.uniform(0, 0.5, (3, 3)),
            "negative_sims": rng.uniform(0, 0.5, (2, 5)), "negative_controls": rng.uniform(0, 0.5, (2, 3))}


POSITIVES = [Labelled("p0", (3,), "mp3-128k"), Labelled("p1", (1, 4), "splice"), Labelled("p2", (3,), "gain-3db")]


def test_units_kinds_order_and_folds() -> None:
    d = _data()
    cohort = cohort_stats(d["control_sims"], SONGS)
    t = build_trials(cohort=cohort, positives=POSITIVES, song_ids=SONGS, control_ids=CONTROLS,
                     negative_ids=["n0", "n1"], **d)
    # Units: first sources in catalog order (s1 -> 0, s3 -> 1), then k0..k2 (2..4), then n0, n1 (5, 6).
    assert t.first_sources == (1, 3) and t.units == 7 and t.controls == 3 and t.negatives == 2
    # Order: p0 (1 H1 + 4 H2), p1 (2 H1 + 3 H2), p2 (1 + 4); then k0..k2 x 5 songs; then n0, n1 x 5 songs.
    kinds = [H1] + [H2_POSITIVE] * 4 + [H1] * 2 + [H2_POSITIVE] * 3 + [H1] + [H2_POSITIVE] * 4
    kinds += [H2_CONTROL] * 15 + [H2_NEGATIVE] * 10
    assert t.kind.tolist() == kinds and t.h1.tolist() == [k == H1 for k in kinds]
    units = [1] * 5 + [0] * 5 + [1] * 5 + [2] * 5 + [3] * 5 + [4] * 5 + [5] * 5 + [6] * 5
    assert t.unit.tolist() == units
    assert t.transforms == ("gain-3db", "mp3-128k", "splice")
    assert t.transform.tolist()[:15] == [1] * 5 + [2] * 5 + [0] * 5 and set(t.transform.tolist()[15:]) == {-1}
    assert fold_of_units(7, 5).tolist() == [0, 1, 2, 3, 4, 0, 1]


def test_scores_follow_the_spec() -> None:
    d = {k: v for k, v in _data().items() if not k.startswith("negative")}
    cohort = cohort_stats(d["control_sims"], SONGS)
    t = build_trials(cohort=cohort, positives=POSITIVES, song_ids=SONGS, control_ids=CONTROLS, **d)
    # p1's H1 trials: against s1 then s4, with its own cohort over the 3 controls.
    mu_q, sd_q = query_stats(d["positive_controls"][1].tolist(), what="p1")
    s = d["positive_sims"][1]
    assert t.score[5] == snorm(s[1:2], cohort.mu[1:2], cohort.sd[1:2], mu_q, sd_q)[0]
    assert t.score[6] == snorm(s[4:5], cohort.mu[4:5], cohort.sd[4:5], mu_q, sd_q)[0]
    # k1 against s2: k1 left out of both cohorts (its own: k0 and k2; the song's: controls 0 and 2).
    loo = leave_out_stats(d["control_sims"], 1, SONGS)
    mu_k, sd_k = query_stats([d["control_control"][1, 0], d["control_control"][1, 2]], what="k1")
    at = 15 + 5 + 2
    assert t.score[at] == snorm(d["control_sims"][1, 2:3], loo.mu[2:3], loo.sd[2:3], mu_k, sd_k)[0]
    raw = build_trials(cohort=cohort, positives=POSITIVES, song_ids=SONGS, control_ids=CONTROLS, normalise=False, **d)
    assert raw.score[5] == s[1] and raw.score[at] == d["control_sims"][1, 2] and raw.kind.tolist() == t.kind.tolist()


def test_inconsistent_shapes_are_refused() -> None:
    d = _data()
    cohort = cohort_stats(d["control_sims"], SONGS)
    with pytest.raises(ValueError, match="2 negatives but 0 negative ids"):
        build_trials(cohort=cohort, positives=POSITIVES, song_ids=SONGS, control_ids=CONTROLS, **d)
    d2 = {k: v for k, v in d.items() if not k.startswith("negative")}
    d2["positive_controls"] = d2["positive_controls"][:, :2]
    with pytest.raises(ValueError, match=r"positive_controls must have shape \[3, 3\], got \[3, 2\]"):
        build_trials(cohort=cohort, positives=POSITIVES, song_ids=SONGS, control_ids=CONTROLS, **d2)
