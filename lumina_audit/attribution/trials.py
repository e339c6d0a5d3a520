"""The trials of a calibration and their units (``lumina-attribution-v2`` section 3).

For one channel, from the similarities of the controls, positives and negatives with the
catalog and with the controls, :func:`build_trials` makes every trial's S-norm score
(:mod:`.cohort`), its proposition, its unit and, for a positive's trials, its transform:

- same-source (H1): positive p against each of its sources j, in label order;
- different-source (H2): (b) positive p against every catalog song that is not one of its
  sources; (a) control ``k_i`` against every catalog song, with ``k_i`` left out of both
  cohorts; (c) a negative against every catalog song.

Order of the trials (it fixes the bits of every sum over them): positives in input order,
each with its H1 trials then its H2 trials in catalog order; then the controls in input
order, each against the catalog in catalog order; then the negatives likewise.

Units (spec section 5), numbered from 0: the catalog songs that are some positive's first
source, in catalog order; then the controls, in input order; then the negatives. The unit
of a trial is its positive's first source (H1 and H2 b), its control (H2 a) or its negative
(H2 c). Unit ``u`` belongs to fold ``u mod F``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from .cohort import Cohort, leave_out_stats, query_stats, snorm

__all__ = ["H1", "H2_CONTROL", "H2_NEGATIVE", "H2_POSITIVE", "Labelled", "Trials", "build_trials", "fold_of_units"]

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

#: Trial kinds.
H1, H2_CONTROL, H2_POSITIVE, H2_NEGATIVE = 0, 1, 2, 3


@dataclass(frozen=True)
class Labelled:
    """A positive: its id, its source songs (catalog rows, the first first) and its transform (or None)."""

    song_id: str
    sources: tuple[int, ...]
    transform: str | None


@dataclass(frozen=True, eq=False)
class Trials:
    """Every trial of one channel, in the module's order.

    ``score`` float64 [T], ``h1`` bool [T], ``unit`` int64 [T], ``kind`` int8 [T] (:data:`H1` ...),
    ``transform`` int16 [T] (index into ``transforms``, -1 for none). ``units`` counts the
    units; ``first_sources`` the catalog rows that are units, in unit order.
    """

    score: F64
    h1: npt.NDArray[np.bool_]
    unit: I64
    kind: npt.NDArray[np.int8]
    transform: npt.NDArray[np.int16]
    transforms: tuple[str, ...]
    units: int
    first_sources: tuple[int, ...]
    controls: int
    negatives: int


def fold_of_units(units: int, folds: int) -> I64:
    """Fold of each unit: ``u mod folds``."""
    return np.arange(units, dtype=np.int64) % folds


def build_trials(
    *,
    cohort: Cohort,
    control_sims: F64,
    control_control: F64,
    positive_sims: F64,
    positive_controls: F64,
    positives: Sequence[Labelled],
    song_ids: Sequence[str],
    control_ids: Sequence[str],
    negative_sims: F64 | None = None,
    negative_controls: F64 | None = None,
    negative_ids: Sequence[str] = (),
    channel: str = "",
    normalise: bool = True,
) -> Trials:
    """The trials of one channel (see the module).

    ``control_sims`` [C, N], ``control_control`` [C, C] (control i against control m),
    ``positive_sims`` [P, N], ``positive_controls`` [P, C]; negatives likewise [G, N] and [G, C].
    ``normalise=False`` gives the same trials with the raw cosine as the score (no cohort), to
    compare S-norm with the single threshold of attribution-v1.
    """
    n = len(song_ids)
    c = len(control_ids)
    g = 0 if negative_sims is None else negative_sims.shape[0]
    if len(negative_ids) != g:
        raise ValueError(f"{g} negatives but {len(negative_ids)} negative ids")
    shapes = {"control_sims": (control_sims, (c, n)), "control_control": (control_control, (c, c)),
              "positive_sims": (positive_sims, (len(positives), n)),
              "positive_controls": (positive_controls, (len(positives), c)),
              "negative_sims": (negative_sims, (g, n)), "negative_controls": (negative_controls, (g, c))}
    for name, (a, shape) in shapes.items():
        if (a is not None or g) and (a is None or a.shape != shape):
            raise ValueError(f"{name} must have shape {list(shape)}, got {None if a is None else list(a.shape)}")
    if cohort.mu.shape != (n,) or cohort.sd.shape != (n,):
        raise ValueError(f"the cohort must hold {n} songs")
    for p in positives:
        if not p.sources or any(not 0 <= j < n for j in p.sources) or len(set(p.sources)) != len(p.sources):
            raise ValueError(f"positive {p.song_id!r}: its sources must be distinct catalog rows")
    first = sorted({p.sources[0] for p in positives})
    unit_of_first = {row: u for u, row in enumerate(first)}
    transforms = tuple(sorted({p.transform for p in positives if p.transform is not None}))
    t_index = {t: i for i, t in enumerate(transforms)}
    scores: list[F64] = []
    h1: list[npt.NDArray[np.bool_]] = []
    units: list[I64] = []
    kinds: list[npt.NDArray[np.int8]] = []
    tr: list[npt.NDArray[np.int16]] = []
    where = f"channel {channel}: " if channel else ""

    def score(s: F64, mu: F64, sd: F64, mu_q: float, sd_q: float) -> F64:
        return snorm(s, mu, sd, mu_q, sd_q) if normalise else s.astype(np.float64, copy=True)

    def add(score: F64, is_h1: bool, unit: int, kind: int, transform: int) -> None:
        m = score.shape[0]
        scores.append(score)
        h1.append(np.full(m, is_h1))
        units.append(np.full(m, unit, dtype=np.int64))
        kinds.append(np.full(m, kind, dtype=np.int8))
        tr.append(np.full(m, transform, dtype=np.int16))

    for i, p in enumerate(positives):
        mu_q, sd_q = query_stats(positive_controls[i].tolist(), what=f"{where}positive {p.song_id!r}")
        t = score(positive_sims[i], cohort.mu, cohort.sd, mu_q, sd_q)
        src = np.asarray(p.sources, dtype=np.int64)
        unit = unit_of_first[p.sources[0]]
        ti = -1 if p.transform is None else t_index[p.transform]
        add(t[src], True, unit, H1, ti)
        rest = np.ones(n, dtype=np.bool_)
        rest[src] = False
        add(t[rest], False, unit, H2_POSITIVE, ti)
    for i in range(c):
        cohort_of_i = [float(control_control[i, m]) for m in range(c) if m != i]
        mu_q, sd_q = query_stats(cohort_of_i, what=f"{where}control {control_ids[i]!r} (without itself)")
        loo = leave_out_stats(control_sims, i, song_ids, channel=channel, control_id=control_ids[i])
        add(score(control_sims[i], loo.mu, loo.sd, mu_q, sd_q), False, len(first) + i, H2_CONTROL, -1)
    if negative_sims is not None and negative_controls is not None:
        for i in range(g):
            mu_q, sd_q = query_stats(negative_controls[i].tolist(), what=f"{where}negative {negative_ids[i]!r}")
            add(score(negative_sims[i], cohort.mu, cohort.sd, mu_q, sd_q), False, len(first) + c + i, H2_NEGATIVE,
                -1)
    return Trials(
        score=np.concatenate(scores), h1=np.concatenate(h1), unit=np.concatenate(units),
        kind=np.concatenate(kinds), transform=np.concatenate(tr), transforms=transforms,
        units=len(first) + c + g, first_sources=tuple(first), controls=c, negatives=g,
    )
