"""Score-to-likelihood-ratio calibrators behind one small interface (``lumina-attribution-v2`` section 4).

A :class:`Calibrator` fits labelled scores and returns a :class:`Fitted` model that maps a
score to a log10 LR. One calibrator exists, :class:`LogitCalibrator`: class-balanced logistic
regression with an L2 penalty of 1 on the slope only,

    natural log LR = a * t + b,   (a, b) = argmin  sum_n w_n * softplus(-y_n (a t_n + b)) + a**2 / 2,

``y_n`` = +1 for H1 and -1 for H2, ``w_n = T / (2 T_class(n))``. This is what ``lir`` 1.3.1's
``LogitCalibrator()`` computes through scikit-learn's ``LogisticRegression(
class_weight="balanced")`` (whose L-BFGS stops at a tolerance and whose sums go through
BLAS). Here the same minimiser is found by Newton's method with a backtracking line search
(the objective is strictly convex: its Hessian is at least the identity in ``a``), every sum in
one fixed order (:func:`.numeric.lane_sum`) and every exponential from :mod:`.numeric`, so the
same trials give the same bits of ``(a, b)`` on every machine. Far from the minimum each
Newton step is halved until it lowers the objective; once a step is below 1e-6 (relative),
whole steps are taken until they no longer change ``a`` and ``b`` or no longer shrink: the
minimiser to the last bits, not to a tolerance. The tests compare it with ``lir`` on fixed
arrays and with the stationarity conditions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from . import numeric as nm

__all__ = ["Calibrator", "Fitted", "LogitCalibrator", "LogitFit"]

F64 = npt.NDArray[np.float64]
B = npt.NDArray[np.bool_]
#: Relative Newton step below which whole steps are taken (the quadratic region).
_QUADRATIC = 1e-6


class Fitted(Protocol):
    """A fitted calibration model."""

    def log10_lr(self, scores: F64) -> F64:
        """log10 LR of each score."""
        ...

    def as_dict(self) -> dict[str, Any]:
        ...


class Calibrator(Protocol):
    """Fits labelled scores (``h1`` True for same-source trials)."""

    name: str

    def fit(self, scores: F64, h1: B) -> Fitted:
        ...


@dataclass(frozen=True)
class LogitFit:
    """natural log LR = a * t + b."""

    a: float
    b: float
    iterations: int

    def log10_lr(self, scores: F64) -> F64:
        return (self.a * np.asarray(scores, dtype=np.float64) + self.b) / nm.LN10

    def log10_lr_scalar(self, score: float) -> float:
        return (self.a * score + self.b) / nm.LN10

    def as_dict(self) -> dict[str, Any]:
        return {"a": self.a, "b": self.b, "iterations": self.iterations}


class CalibrationFitError(ValueError):
    """The trials cannot be fitted (a class is missing, or a value is not finite)."""


@dataclass(frozen=True)
class _Data:
    t1: F64
    t2: F64
    w1: float
    w2: float


def _objective(d: _Data, a: float, b: float) -> float:
    # H1: softplus(-(a t + b)); H2: softplus(a t + b).
    s1 = nm.lane_sum(nm.softplus(-(a * d.t1 + b)))
    s2 = nm.lane_sum(nm.softplus(a * d.t2 + b))
    return d.w1 * s1 + d.w2 * s2 + a * a / 2.0


def _newton_step(d: _Data, a: float, b: float) -> tuple[float, float]:
    """The Newton step (da, db) at (a, b)."""
    p1 = nm.sigmoid(a * d.t1 + b)  # P(H1 | t) under the model, at the H1 trials
    p2 = nm.sigmoid(a * d.t2 + b)
    r1, r2 = p1 - 1.0, p2  # derivative of each term with respect to z = a t + b
    h1, h2 = p1 * (1.0 - p1), p2 * (1.0 - p2)
    ga = d.w1 * nm.lane_sum(r1 * d.t1) + d.w2 * nm.lane_sum(r2 * d.t2) + a
    gb = d.w1 * nm.lane_sum(r1) + d.w2 * nm.lane_sum(r2)
    haa = d.w1 * nm.lane_sum(h1 * d.t1 * d.t1) + d.w2 * nm.lane_sum(h2 * d.t2 * d.t2) + 1.0
    hab = d.w1 * nm.lane_sum(h1 * d.t1) + d.w2 * nm.lane_sum(h2 * d.t2)
    hbb = d.w1 * nm.lane_sum(h1) + d.w2 * nm.lane_sum(h2)
    det = haa * hbb - hab * hab
    if not det > 0.0:
        return -ga / haa, 0.0  # flat in b (all weights vanished): a gradient step in a
    return -(hbb * ga - hab * gb) / det, -(haa * gb - hab * ga) / det


class LogitCalibrator:
    """Class-balanced logistic regression, L2 penalty 1 on the slope (``lir`` 1.3.1 ``LogitCalibrator()``)."""

    name = "logit"

    def __init__(self, max_iterations: int = 200) -> None:
        self.max_iterations = max_iterations

    def fit(self, scores: F64, h1: B) -> LogitFit:
        if not isinstance(scores, np.ndarray) or scores.dtype != np.float64 or scores.ndim != 1:
            raise CalibrationFitError("scores must be a one-dimensional float64 array")
        if not isinstance(h1, np.ndarray) or h1.dtype != np.bool_ or h1.shape != scores.shape:
            raise CalibrationFitError("labels must be a bool array of the shape of the scores")
        if not np.isfinite(scores).all():
            raise CalibrationFitError("a score is not finite")
        t1, t2 = scores[h1], scores[~h1]
        if t1.size == 0 or t2.size == 0:
            raise CalibrationFitError("the fit needs trials of both propositions")
        total = float(scores.size)
        d = _Data(np.ascontiguousarray(t1), np.ascontiguousarray(t2), total / (2.0 * t1.size),
                  total / (2.0 * t2.size))
        a, b = 0.0, 0.0
        value = _objective(d, a, b)
        previous = math.inf
        for it in range(1, self.max_iterations + 1):
            da, db = _newton_step(d, a, b)
            size = max(abs(da) / (1.0 + abs(a)), abs(db) / (1.0 + abs(b)))
            if size < _QUADRATIC:
                # Near the minimum the objective's changes drown in its rounding, but Newton's steps from the
                # (accurate) gradient keep shrinking quadratically: take them whole until they stop shrinking.
                if (a + da == a and b + db == b) or size >= previous:
                    return LogitFit(a, b, it)
                a, b, previous = a + da, b + db, size
                continue
            step = 1.0
            while True:
                na, nb = a + step * da, b + step * db
                nv = _objective(d, na, nb)
                if nv < value:
                    break
                step /= 2.0
                if step < 2.0**-30:
                    raise CalibrationFitError("the logistic fit's line search found no lower objective")
            a, b, value, previous = na, nb, nv, math.inf
        raise CalibrationFitError(f"the logistic fit did not converge in {self.max_iterations} Newton steps")
