"""The logistic calibrator (attribution-v2 section 4): a literal, the stationarity conditions, and ``lir``."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from lumina_audit.attribution import numeric as nm
from lumina_audit.attribution.calibrators import CalibrationFitError, LogitCalibrator

B = np.bool_


def test_one_trial_each_way_literal() -> None:
    # t = +1 (H1), -1 (H2), weights 1: by symmetry b = 0 and a solves a = 2 / (1 + e**a)
    # (0.67483161434239935090..., 50 digits by Newton in decimal arithmetic).
    fit = LogitCalibrator().fit(np.array([1.0, -1.0]), np.array([True, False]))
    assert fit.a == pytest.approx(0.6748316143423994, rel=2e-16) and abs(fit.b) < 1e-17
    assert fit.log10_lr(np.array([1.0]))[0] == pytest.approx(fit.a / math.log(10), rel=1e-15)


def _stationary(t: np.ndarray, h1: np.ndarray, a: float, b: float) -> tuple[float, float]:
    """The gradient of the spec's objective at (a, b), in plain float64 numpy (another evaluation)."""
    w = np.where(h1, t.size / (2.0 * h1.sum()), t.size / (2.0 * (~h1).sum()))
    y = np.where(h1, 1.0, -1.0)
    z = a * t + b
    r = -y / (1.0 + np.exp(y * z))  # d/dz softplus(-y z)
    return float(np.sum(w * r * t) + a), float(np.sum(w * r))


def test_the_fit_is_the_minimiser_and_agrees_with_lir() -> None:
    rng = np.random.default_rng(11)
    for n1, n2, sep in ((30, 300, 2.0), (40, 5000, 4.0), (10, 10, 20.0), (200, 20000, 1.0)):
        t = np.concatenate([rng.normal(sep, 1, n1), rng.normal(0, 1, n2)])
        h1 = np.concatenate([np.ones(n1, B), np.zeros(n2, B)])
        fit = LogitCalibrator().fit(t, h1)
        ga, gb = _stationary(t, h1, fit.a, fit.b)
        assert abs(ga) < 1e-9 * t.size and abs(gb) < 1e-9 * t.size
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from lir.algorithms.logistic_regression import LogitCalibrator as LirLogit

            lir = LirLogit(tol=1e-14, max_iter=100000).fit(t, h1.astype(int))
        x = np.linspace(-3, 6, 13)
        assert np.allclose(fit.log10_lr(x), lir.transform(x), rtol=0, atol=1e-6)
        default = LirLogit().fit(t, h1.astype(int))  # lir's default L-BFGS tolerance stops within 0.05 of it
        assert np.allclose(fit.log10_lr(x), default.transform(x), rtol=0, atol=0.05)


def test_bits_do_not_depend_on_the_order_within_a_lane_layout() -> None:
    """The same trials give the same bits on every run (sums in a fixed order, exp/log of numeric)."""
    rng = np.random.default_rng(5)
    t = np.concatenate([rng.normal(2, 1, 50), rng.normal(0, 1, 9000)])
    h1 = np.concatenate([np.ones(50, B), np.zeros(9000, B)])
    a = LogitCalibrator().fit(t, h1)
    b = LogitCalibrator().fit(t.copy(), h1.copy())
    assert (a.a, a.b) == (b.a, b.b)
    assert nm.lane_sum(t) == nm.lane_sum(t.copy())


def test_refusals() -> None:
    with pytest.raises(CalibrationFitError, match="both propositions"):
        LogitCalibrator().fit(np.array([1.0, 2.0]), np.array([True, True]))
    with pytest.raises(CalibrationFitError, match="not finite"):
        LogitCalibrator().fit(np.array([1.0, math.inf]), np.array([True, False]))
    with pytest.raises(CalibrationFitError, match="float64"):
        LogitCalibrator().fit(np.array([1, 2]), np.array([True, False]))
