"""Cohort statistics and S-norm scores (``lumina-attribution-v2`` section 2).

The cohort of a catalog song ``j`` is its similarities with the C controls, ``s(k_i, x_j)``;
the cohort of a query ``q`` is ``s(q, k_i)``. Their mean and sample standard deviation
(n - 1) are defined in one fixed order, so that their bits never depend on the machine:

    mean = (((v_1 + v_2) + v_3) + ... + v_n) / n          (controls in input order, float64)
    sd   = sqrt((((d_1**2 + d_2**2) + ...) + d_n**2) / (n - 1)),   d_i = v_i - mean

Over a [C, N] block this is C - 1 elementwise additions of rows: vectorised, and exactly the
loop above for every column. When the query is control ``k_i`` itself, ``k_i`` is left out
of both cohorts (the statistics are over the other C - 1 controls, in the same order).

The S-norm score of a query and a song is

    t(q, j) = ((s - mu_j) / sd_j + (s - mu_q) / sd_q) / 2

evaluated in exactly that order. A standard deviation of exactly 0 (a degenerate cohort)
is refused, naming the song.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from ..errors import LuminaError

__all__ = ["Cohort", "CohortError", "cohort_stats", "leave_out_stats", "query_stats", "snorm"]

F64 = npt.NDArray[np.float64]


class CohortError(LuminaError):
    """A cohort cannot normalise a score (a standard deviation of 0, or too few controls)."""

    exit_code = 2


@dataclass(frozen=True, eq=False)
class Cohort:
    """Per-song cohort statistics of one channel: ``mu`` and ``sd`` (float64 [N])."""

    mu: F64
    sd: F64


def _rows_stats(rows: Sequence[F64]) -> tuple[F64, F64]:
    """Mean and sample sd of each column over ``rows`` (each float64 [N]), in row order."""
    n = len(rows)
    acc = rows[0].astype(np.float64, copy=True)
    for r in rows[1:]:
        np.add(acc, r, out=acc)
    mu = acc / n
    d = rows[0] - mu
    sq = d * d
    for r in rows[1:]:
        np.subtract(r, mu, out=d)
        np.multiply(d, d, out=d)
        np.add(sq, d, out=sq)
    sd = np.sqrt(sq / (n - 1))
    return mu, sd


def _check_sd(sd: F64, names: Sequence[str], what: str) -> None:
    zero = np.flatnonzero(~(sd > 0))
    if zero.size:
        name = names[int(zero[0])]
        more = f" (and {zero.size - 1} more)" if zero.size > 1 else ""
        raise CohortError(f"{what} {name!r}{more}: the standard deviation of its similarities with the controls "
                          "is 0 (a degenerate cohort); its score cannot be normalised")


def cohort_stats(control_sims: F64, song_ids: Sequence[str], *, channel: str = "") -> Cohort:
    """``mu_j``, ``sd_j`` of every catalog song from ``control_sims`` float64 [C, N] (controls x songs)."""
    c = control_sims.shape[0]
    if c < 2:
        raise CohortError(f"a cohort needs at least 2 controls, got {c}")
    mu, sd = _rows_stats([control_sims[i] for i in range(c)])
    _check_sd(sd, song_ids, f"channel {channel}: catalog song" if channel else "catalog song")
    return Cohort(mu, sd)


def leave_out_stats(control_sims: F64, left_out: int, song_ids: Sequence[str], *, channel: str = "",
                    control_id: str = "") -> Cohort:
    """The catalog songs' cohort without control ``left_out`` (the other C - 1 controls, in order)."""
    c = control_sims.shape[0]
    if c < 3:
        raise CohortError(f"a leave-one-out cohort needs at least 3 controls, got {c}")
    mu, sd = _rows_stats([control_sims[i] for i in range(c) if i != left_out])
    _check_sd(sd, song_ids, f"channel {channel}: without control {control_id!r}, catalog song")
    return Cohort(mu, sd)


def query_stats(sims_to_controls: Sequence[float], *, what: str) -> tuple[float, float]:
    """``mu_q``, ``sd_q`` of a query from its similarities with the controls (in control order)."""
    n = len(sims_to_controls)
    if n < 2:
        raise CohortError(f"{what}: a cohort needs at least 2 controls, got {n}")
    rows = [np.asarray([v], dtype=np.float64) for v in sims_to_controls]
    mu, sd = _rows_stats(rows)
    if not sd[0] > 0:
        raise CohortError(f"{what}: the standard deviation of its similarities with the controls is 0 "
                          "(a degenerate cohort); its score cannot be normalised")
    return float(mu[0]), float(sd[0])


def snorm(s: F64, mu_j: F64, sd_j: F64, mu_q: float, sd_q: float) -> F64:
    """``((s - mu_j) / sd_j + (s - mu_q) / sd_q) / 2``, elementwise, in that order (float64)."""
    if not (math.isfinite(mu_q) and sd_q > 0):
        raise CohortError(f"the query's cohort is degenerate (mu {mu_q!r}, sd {sd_q!r})")
    return ((s - mu_j) / sd_j + (s - mu_q) / sd_q) / 2.0
