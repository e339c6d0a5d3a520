"""Metrics of an LR system (attribution-v2 section 5): hand-computed literals, then the same figures as ``lir``."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from lumina_audit.attribution import metrics as M

B = np.bool_


def arr(*v: float) -> np.ndarray:
    return np.asarray(v, dtype=np.float64)


def lab(*v: int) -> np.ndarray:
    return np.asarray(v, dtype=B)


def test_cllr_literals() -> None:
    assert M.cllr(arr(0.0, 0.0), lab(1, 0)) == 1.0  # LR 1 everywhere: log2(2) on both sides
    # LR 10 for the H1 trial, 1/10 for the H2 one: log2(1.1) on both sides.
    assert M.cllr(arr(1.0, -1.0), lab(1, 0)) == pytest.approx(math.log2(1.1), rel=1e-15)
    # Class-balanced: the mean of each class, then their mean (3 H2 trials of LR 1 weigh as much as one).
    assert M.cllr(arr(1.0, 0.0, 0.0, 0.0), lab(1, 0, 0, 0)) == pytest.approx((math.log2(1.1) + 1.0) / 2, rel=1e-15)


def test_pav_cllr_min_and_eer_literals() -> None:
    # Sorted: 0 (H2), 1 (H1), 2 (H2), 3 (H1). PAV pools 1 and 2 (one H1, one H2: LR 1); 0 alone holds only H2
    # (LR 0) and 3 only H1 (LR inf). Cllr_min: H1 trials log2(1 + 1) = 1 and 0, H2 trials 0 and 1: 0.5.
    llrs, h1 = arr(1.0, 3.0, 2.0, 0.0), lab(1, 1, 0, 0)
    p = M.pav(llrs, h1)
    assert list(p.ones) == [0, 1, 1] and list(p.twos) == [1, 1, 0]
    assert list(p.llrs()) == [-math.inf, 0.0, math.inf] and list(p.block_of) == [1, 2, 1, 0]
    assert M.cllr_min(llrs, h1) == 0.5
    # ROC convex hull (P_fa, P_miss): (1, 0), (0.5, 0), (0, 0.5), (0, 1); the middle segment meets
    # P_fa = P_miss at 0.25.
    assert M.eer(llrs, h1) == 0.25
    assert M.eer(arr(2.0, 3.0, 0.0, 1.0), lab(1, 1, 0, 0)) == 0.0  # separated
    assert M.eer(arr(0.0, 0.0), lab(1, 0)) == 0.5  # one tie: the hull is the diagonal


def test_pav_pools_equal_values_first() -> None:
    p = M.pav(arr(1.0, 1.0, 1.0, 0.0), lab(1, 0, 0, 1))
    assert list(p.ones) == [2] and list(p.twos) == [2]  # 0 (H1) then 1 (1 H1, 2 H2): a violation, pooled


def test_elub_literals() -> None:
    # One trial each way: no LR other than 1 is supported.
    assert M.elub(arr(2.0, -2.0), lab(1, 0)) == (0.0, 0.0)
    # 9 and 9 trials, perfectly separated at +-3: thresholds only up to log10(10) = 1; a threshold x < 0 is
    # unacceptable where 10**x < 0.1 + 0.1 * 10**x, i.e. x < -log10(9) = -0.954..., so the lower bound is the
    # grid value after -0.96, -0.95; symmetrically the upper bound is 0.95.
    assert M.elub(arr(*[3.0] * 9, *[-3.0] * 9), lab(*[1] * 9, *[0] * 9)) == (-0.95, 0.95)


def test_clopper_pearson_literals() -> None:
    lo, hi = M.clopper_pearson(0, 10)  # upper = 1 - 0.025**(1/10)
    assert lo == 0.0 and hi == pytest.approx(1 - 0.025**0.1, rel=1e-14)
    lo, hi = M.clopper_pearson(10, 10)  # lower = 0.025**(1/10)
    assert hi == 1.0 and lo == pytest.approx(0.025**0.1, rel=1e-14)
    lo, hi = M.clopper_pearson(1, 1)
    assert lo == pytest.approx(0.025, rel=1e-13) and hi == 1.0
    with pytest.raises(ValueError):
        M.clopper_pearson(3, 2)


def test_tippett_counts_are_at_or_above() -> None:
    t1, t2 = M.tippett(arr(0.0, 1.5, -0.5), lab(1, 1, 0))
    g = M.TIPPETT_GRID.values
    assert len(t1) == 1201 and g[600] == 0.0 and g[0] == -6.0 and g[-1] == 6.0
    assert t1[600] == 2 and t1[601] == 1 and t1[750] == 1 and t1[751] == 0  # 1.5 is at or above 1.5
    assert t2[549] == 1 and t2[550] == 1 and t2[551] == 0


def test_ece_of_the_neutral_system_is_the_prior_entropy() -> None:
    e = M.ece(arr(0.5, -0.5), lab(1, 0))
    assert len(e["system"]) == 501 and e["neutral"][250] == 1.0
    p = 1 / (1 + 10**-1.0)  # log10 prior odds 1
    assert e["neutral"][350] == pytest.approx(-(p * math.log2(p) + (1 - p) * math.log2(1 - p)), rel=1e-14)


@pytest.fixture
def fixed() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20261203)
    one, two = rng.normal(1.0, 1.2, 157), rng.normal(-1.5, 1.0, 1203)
    return np.concatenate([one, two]), np.concatenate([np.ones(157, B), np.zeros(1203, B)])


def test_the_same_figures_as_lir(fixed: tuple[np.ndarray, np.ndarray]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from lir.algorithms.bayeserror import elub
        from lir.algorithms.isotonic_regression import IsotonicCalibrator
        from lir.data.models import LLRData
        from lir.metrics import cllr, cllr_min
        from lir.plotting.expected_calibration_error import calculate_ece
    llrs, h1 = fixed
    y = h1.astype(int)
    data = LLRData(features=llrs.copy(), labels=y)
    assert M.cllr(llrs, h1) == pytest.approx(cllr(data), rel=1e-14)
    assert M.cllr_min(llrs, h1) == pytest.approx(cllr_min(data), rel=1e-14)
    lo, hi = elub(llrs.copy(), y.copy(), add_misleading=1, step_size=0.01)
    assert M.elub(llrs, h1) == (pytest.approx(lo, abs=1e-12), pytest.approx(hi, abs=1e-12))
    g = M.ECE_GRID.values
    prior = 10**g / (1 + 10**g)
    e = M.ece(llrs, h1)
    assert np.allclose(e["system"], calculate_ece(10**llrs, y, prior), rtol=1e-13, atol=0)
    pav_llrs = IsotonicCalibrator().fit_transform(llrs, y)
    assert np.allclose(e["pav"], calculate_ece(10**pav_llrs, y, prior), rtol=1e-12, atol=0)
    assert np.allclose(e["neutral"], calculate_ece(np.ones(y.size), y, prior), rtol=1e-13, atol=0)


def test_eer_is_where_the_hull_crosses_the_diagonal(fixed: tuple[np.ndarray, np.ndarray]) -> None:
    """The ROCCH EER lies between the best threshold's two error rates (a check independent of the hull code)."""
    llrs, h1 = fixed
    e = M.eer(llrs, h1)
    best = min(max(np.mean(llrs[h1] < x), np.mean(llrs[~h1] >= x)) for x in np.unique(llrs))
    assert 0 < e <= best + 1e-12 and best - e < 0.02
