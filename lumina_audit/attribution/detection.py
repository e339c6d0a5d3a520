"""Error rates both ways: how often a real source is missed, and how often an unrelated piece is attributed.

A calibration's controls (attribution-v1 section 1) measure false positives; its
*positives*, derived copies of catalog songs (:mod:`.derive`), each labelled with its source
song id (two for a splice), measure misses. Per channel, for each source of each positive:

- its similarity ``s`` to the positive;
- its rank among the N catalog songs, ordered as a report orders songs below the threshold
  (similarity descending, then song id ascending): ``1 + #{j : s_j > s} + #{j : s_j == s and
  id_j < id}``;
- *detected* when ``s > tau`` (strict, as every "above" of attribution-v1).

Figures, overall and per transform: the number of cases (source occurrences: a splice counts
twice), how many were detected, the detection rate, the rate of misses (1 - detection rate)
and the median rank (``statistics.median``: the mean of the two middle ranks for an even
count). With no case the rates and the median are ``None`` ("not measured"), never 0.

From the controls, beside the pair-wise false-positive rate of attribution-v1:
``unrelated_attributed_rate``, the fraction of controls, used as queries, for which at least
one catalog song lies above ``tau``: "an unrelated piece was attributed to a catalog song".
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from .method import AttributionError

__all__ = ["Detection", "Figures", "Outcome", "Positive", "detect", "unrelated_attributed_rate"]

F64 = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Positive:
    """A derived copy of catalog songs: its id, the transform that made it and its sources' song ids."""

    song_id: str
    transform: str
    sources: tuple[str, ...]


@dataclass(frozen=True)
class Outcome:
    """One source of one positive on one channel."""

    positive: str
    transform: str
    source: str
    similarity: float
    rank: int
    detected: bool

    def as_dict(self) -> dict[str, Any]:
        return {"source": self.source, "similarity": self.similarity, "rank": self.rank, "detected": self.detected}


@dataclass(frozen=True)
class Figures:
    """Detection figures of a set of cases."""

    cases: int
    detected: int
    detection_rate: float | None
    missed_rate: float | None
    median_rank: float | None

    @classmethod
    def of(cls, outcomes: Sequence[Outcome]) -> Figures:
        n = len(outcomes)
        hits = sum(o.detected for o in outcomes)
        if n == 0:
            return cls(0, 0, None, None, None)
        return cls(n, hits, hits / n, (n - hits) / n, float(statistics.median(o.rank for o in outcomes)))

    def as_dict(self) -> dict[str, Any]:
        return {"cases": self.cases, "detected": self.detected, "detection_rate": self.detection_rate,
                "missed_rate": self.missed_rate, "median_rank": self.median_rank}


@dataclass(frozen=True)
class Detection:
    """One channel's detection of the positives: every outcome, the overall figures and those per transform."""

    outcomes: tuple[Outcome, ...]
    overall: Figures
    by_transform: Mapping[str, Figures]

    def as_dict(self) -> dict[str, Any]:
        return {"overall": self.overall.as_dict(),
                "by_transform": {t: f.as_dict() for t, f in sorted(self.by_transform.items())}}


def _rank(sims: F64, ids: Sequence[str], j: int) -> int:
    s = sims[j]
    ties_before = sum(1 for i in np.flatnonzero(sims == s) if ids[int(i)] < ids[j])
    return 1 + int(np.count_nonzero(sims > s)) + ties_before


def detect(sims: F64, song_ids: Sequence[str], positives: Sequence[Positive], tau: float) -> Detection:
    """Detection of ``positives`` on one channel; ``sims`` is float64 [P, N] (positive i x catalog song j)."""
    index = {sid: j for j, sid in enumerate(song_ids)}
    if len(index) != len(song_ids):
        raise AttributionError("catalog song ids must be unique")
    if not isinstance(sims, np.ndarray) or sims.dtype != np.float64 or sims.shape != (len(positives), len(song_ids)):
        raise AttributionError(f"positive similarities must be float64 [{len(positives)}, {len(song_ids)}]")
    outcomes = []
    for i, p in enumerate(positives):
        if not p.sources or len(set(p.sources)) != len(p.sources):
            raise AttributionError(f"positive {p.song_id!r} must name one or more distinct source song ids")
        for source in p.sources:
            j = index.get(source)
            if j is None:
                raise AttributionError(f"positive {p.song_id!r} names source {source!r}, which is not in the catalog")
            s = float(sims[i, j])
            outcomes.append(Outcome(p.song_id, p.transform, source, s, _rank(sims[i], song_ids, j), s > tau))
    by: dict[str, list[Outcome]] = {}
    for o in outcomes:
        by.setdefault(o.transform, []).append(o)
    return Detection(tuple(outcomes), Figures.of(outcomes), {t: Figures.of(v) for t, v in by.items()})


def unrelated_attributed_rate(counts_above: Sequence[int]) -> float:
    """The fraction of controls with at least one catalog song above ``tau``."""
    if not counts_above:
        raise AttributionError("no control: the rate is not defined")
    return sum(1 for c in counts_above if c > 0) / len(counts_above)
