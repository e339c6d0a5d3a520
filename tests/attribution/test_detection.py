"""Detection figures of a calibration's positives, against hand-computed literals."""

from __future__ import annotations

import numpy as np
import pytest

from lumina_audit.attribution.detection import Figures, Outcome, Positive, detect, unrelated_attributed_rate
from lumina_audit.errors import LuminaError

IDS = ["a", "b", "c", "d"]
#          a     b     c     d
SIMS = np.array([
    [0.90, 0.40, 0.20, 0.10],  # p1: mp3 of a: a first, above tau 0.5
    [0.45, 0.60, 0.45, 0.10],  # p2: mp3 of c: c ties with a at 0.45 -> a (smaller id) first; c rank 3, missed
    [0.30, 0.70, 0.20, 0.55],  # p3: splice of b and d: b rank 1 detected, d rank 2 detected
    [0.20, 0.30, 0.10, 0.05],  # p4: noise of c: rank 3, missed
])
POSITIVES = [Positive("p1", "mp3-128k", ("a",)), Positive("p2", "mp3-128k", ("c",)),
             Positive("p3", "splice", ("b", "d")), Positive("p4", "noise-20db", ("c",))]


def test_outcomes_ranks_and_detection() -> None:
    d = detect(SIMS, IDS, POSITIVES, tau=0.5)
    assert [(o.positive, o.source, o.rank, o.detected) for o in d.outcomes] == [
        ("p1", "a", 1, True), ("p2", "c", 3, False), ("p3", "b", 1, True), ("p3", "d", 2, True), ("p4", "c", 3, False)]
    assert d.outcomes[1].similarity == 0.45


def test_figures_overall_and_per_transform() -> None:
    d = detect(SIMS, IDS, POSITIVES, tau=0.5)
    # 5 cases (the splice counts twice), 3 detected; ranks 1, 3, 1, 2, 3 -> median 2.
    assert d.overall == Figures(cases=5, detected=3, detection_rate=0.6, missed_rate=0.4, median_rank=2.0)
    assert d.by_transform["mp3-128k"] == Figures(2, 1, 0.5, 0.5, 2.0)  # ranks 1 and 3: median 2
    assert d.by_transform["splice"] == Figures(2, 2, 1.0, 0.0, 1.5)  # ranks 1 and 2: median 1.5
    assert d.by_transform["noise-20db"] == Figures(1, 0, 0.0, 1.0, 3.0)
    assert list(d.as_dict()["by_transform"]) == ["mp3-128k", "noise-20db", "splice"]
    assert d.as_dict()["overall"] == {"cases": 5, "detected": 3, "detection_rate": 0.6, "missed_rate": 0.4,
                                      "median_rank": 2.0}


def test_above_is_strict_and_no_case_is_not_measured() -> None:
    d = detect(SIMS[:1], IDS, POSITIVES[:1], tau=0.90)  # similarity equal to tau is not above it
    assert d.outcomes[0].detected is False and d.overall.missed_rate == 1.0
    assert Figures.of([]) == Figures(0, 0, None, None, None)
    assert Figures.of([Outcome("x", "t", "a", 0.1, 4, False), Outcome("y", "t", "a", 0.2, 7, False)]).median_rank == 5.5


def test_unrelated_attributed_rate() -> None:
    assert unrelated_attributed_rate([0, 2, 0, 1, 0]) == 0.4  # 2 of 5 controls have a song above tau
    assert unrelated_attributed_rate([0, 0]) == 0.0
    with pytest.raises(LuminaError, match="no control"):
        unrelated_attributed_rate([])


@pytest.mark.parametrize(("positives", "match"), [
    ([Positive("p1", "mp3-128k", ("zz",))], "names source 'zz', which is not in the catalog"),
    ([Positive("p1", "mp3-128k", ())], "one or more distinct"),
    ([Positive("p1", "splice", ("a", "a"))], "one or more distinct"),
])
def test_refusals(positives: list[Positive], match: str) -> None:
    with pytest.raises(LuminaError, match=match):
        detect(SIMS[:1], IDS, positives, tau=0.5)
    with pytest.raises(LuminaError, match="float64"):
        detect(SIMS.astype(np.float32), IDS, POSITIVES, tau=0.5)
