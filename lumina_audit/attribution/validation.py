"""Cross-validated validation of a calibration (``lumina-attribution-v2`` section 5).

:func:`cross_validate` fits the calibrator on the trials outside each fold and gives the
trials of the fold their log10 LRs (the *validation LLRs*); :func:`figures` states what they
show: trial and unit counts, C_llr, C_llr_min, EER, the rates of misleading evidence with
95 % Clopper-Pearson intervals counted in units, the share of H2 trials at or above log10 LR
1, 2 and 3 against the 10**-x a valid LR allows, and the ELUB bounds. :func:`validate` adds the
plot data (Tippett counts, ECE curves) and the same figures per transform.

Intervals "counted in units": trials of one unit (one control, one source song) are not
independent, so a rate's interval is the Clopper-Pearson interval of ``rate * U`` successes
in ``U`` trials, ``U`` the number of units of that proposition (``docs/spec-notes.md``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from . import metrics
from .calibrators import CalibrationFitError, Calibrator
from .trials import H2_CONTROL, H2_NEGATIVE, Trials, fold_of_units

__all__ = ["Figures", "Validation", "cross_validate", "figures", "validate"]

F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]
#: The log10 LRs at which the share of H2 trials is stated (against 10**-x).
AT_OR_ABOVE = (1, 2, 3)


class ValidationError(ValueError):
    """The trials cannot be cross-validated (a fold's training trials lack a proposition)."""


def cross_validate(trials: Trials, calibrator: Calibrator, folds: int) -> F64:
    """The validation log10 LR of every trial: fitted on the other folds' trials."""
    fold = fold_of_units(trials.units, folds)[trials.unit]
    out = np.empty(trials.score.shape[0], dtype=np.float64)
    for f in range(folds):
        test = fold == f
        if not test.any():
            continue
        train = ~test
        try:
            model = calibrator.fit(trials.score[train], trials.h1[train])
        except CalibrationFitError as exc:
            raise ValidationError(f"fold {f} of {folds}: the trials outside it cannot be fitted ({exc})") from None
        out[test] = model.log10_lr(trials.score[test])
    return out


@dataclass(frozen=True)
class Rate:
    """A rate of misleading evidence: ``count`` of ``trials``, and its interval counted in ``units``."""

    rate: float
    count: int
    trials: int
    units: int
    interval: tuple[float, float]

    def as_dict(self) -> dict[str, Any]:
        return {"rate": self.rate, "count": self.count, "trials": self.trials, "units": self.units,
                "interval": list(self.interval)}


def _rate(count: int, trials: int, units: int) -> Rate:
    rate = count / trials
    return Rate(rate, count, trials, units, metrics.clopper_pearson(rate * units, float(units)))


@dataclass(frozen=True)
class Figures:
    """What a set of validation LLRs shows."""

    h1_trials: int
    h2_trials: int
    h1_units: int
    h2_units: int
    cllr: float
    cllr_min: float
    eer: float
    misleading_h1: Rate
    misleading_h2: Rate
    #: (x, count of H2 trials with log10 LR >= x, their share, 10**-x)
    h2_at_or_above: tuple[tuple[int, int, float, float], ...]
    lower: float
    upper: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "h1_trials": self.h1_trials, "h2_trials": self.h2_trials, "h1_units": self.h1_units,
            "h2_units": self.h2_units, "cllr": self.cllr, "cllr_min": self.cllr_min, "eer": self.eer,
            "misleading": {"h1": self.misleading_h1.as_dict(), "h2": self.misleading_h2.as_dict()},
            "h2_at_or_above": [{"log10_lr": x, "count": c, "share": s, "valid_at_most": b}
                               for x, c, s, b in self.h2_at_or_above],
            "bounds": {"lower": self.lower, "upper": self.upper},
        }


def figures(llrs: F64, h1: B, units: npt.NDArray[np.int64]) -> Figures:
    """The figures of validation LLRs ``llrs`` with labels ``h1`` and the unit of each trial."""
    one, two = llrs[h1], llrs[~h1]
    u1 = int(np.unique(units[h1]).size)
    u2 = int(np.unique(units[~h1]).size)
    at = []
    for x in AT_OR_ABOVE:
        c = int(np.count_nonzero(two >= x))
        at.append((x, c, c / two.size, 1.0 / 10**x))
    lower, upper = metrics.elub(llrs, h1)
    return Figures(
        h1_trials=int(one.size), h2_trials=int(two.size), h1_units=u1, h2_units=u2,
        cllr=metrics.cllr(llrs, h1), cllr_min=metrics.cllr_min(llrs, h1), eer=metrics.eer(llrs, h1),
        misleading_h1=_rate(int(np.count_nonzero(one < 0)), int(one.size), u1),
        misleading_h2=_rate(int(np.count_nonzero(two > 0)), int(two.size), u2),
        h2_at_or_above=tuple(at), lower=lower, upper=upper,
    )


@dataclass(frozen=True)
class Validation:
    """Figures overall and per transform, and the plot data, of one channel's validation LLRs."""

    folds: int
    overall: Figures
    by_transform: dict[str, Figures]
    tippett_h1: list[int]
    tippett_h2: list[int]
    ece: dict[str, list[float]]

    def as_dict(self) -> dict[str, Any]:
        return {
            "folds": self.folds, **self.overall.as_dict(),
            "by_transform": {t: f.as_dict() for t, f in sorted(self.by_transform.items())},
            "tippett": {**metrics.TIPPETT_GRID.as_dict(), "h1_at_or_above": self.tippett_h1,
                        "h2_at_or_above": self.tippett_h2},
            "ece": {**metrics.ECE_GRID.as_dict(), **self.ece},
        }


def validate(trials: Trials, llrs: F64, folds: int) -> Validation:
    """Figures of the validation LLRs ``llrs`` of ``trials``: overall, per transform, and the plot data."""
    by: dict[str, Figures] = {}
    shared = (trials.kind == H2_CONTROL) | (trials.kind == H2_NEGATIVE)
    for i, name in enumerate(trials.transforms):
        sel = shared | (trials.transform == i)
        by[name] = figures(llrs[sel], trials.h1[sel], trials.unit[sel])
    t1, t2 = metrics.tippett(llrs, trials.h1)
    return Validation(folds, figures(llrs, trials.h1, trials.unit), by, t1, t2, metrics.ece(llrs, trials.h1))
