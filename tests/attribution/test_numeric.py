"""Machine-independent elementary functions: accuracy against ``math``, special values, the fixed-order sum."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import special, stats

from lumina_audit.attribution import numeric as nm

ULP = 2.0**-52


def test_exp_and_log_are_within_a_few_ulps_of_the_c_library() -> None:
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.uniform(-700, 700, 20000), rng.uniform(-1, 1, 20000), rng.uniform(-1e-9, 1e-9, 100)])
    got = nm.exp(x)
    ref = np.array([math.exp(v) for v in x])
    assert np.all(np.abs(got - ref) <= 4 * ULP * ref)
    y = np.concatenate([np.exp(rng.uniform(-700, 700, 20000)), rng.uniform(0.5, 2.0, 20000),
                        1 + rng.uniform(-1e-9, 1e-9, 100)])
    got = nm.log(y)
    ref = np.array([math.log(v) for v in y])
    assert np.all(np.abs(got - ref) <= 4 * ULP * np.maximum(np.abs(ref), 1.0))


def test_special_values() -> None:
    assert nm.exp(np.array([0.0]))[0] == 1.0 and nm.log(np.array([1.0]))[0] == 0.0
    assert list(nm.exp(np.array([-1000.0, 1000.0]))) == [0.0, math.inf]
    assert nm.log(np.array([0.0]))[0] == -math.inf and nm.log(np.array([math.inf]))[0] == math.inf
    assert np.isnan(nm.log(np.array([-1.0]))[0]) and np.isnan(nm.exp(np.array([math.nan]))[0])
    assert list(nm.softplus(np.array([-math.inf, math.inf, 0.0]))) == [0.0, math.inf, nm.log_scalar(2.0)]
    assert nm.softplus(np.array([800.0]))[0] == 800.0 and nm.softplus(np.array([-800.0]))[0] == 0.0
    assert nm.softplus(np.array([-40.0]))[0] == pytest.approx(math.exp(-40.0), rel=4 * ULP)
    assert list(nm.sigmoid(np.array([-1000.0, 0.0, 1000.0]))) == [0.0, 0.5, 1.0]
    assert nm.pow10_scalar(2.0) == pytest.approx(100.0, rel=4 * ULP)


def test_lane_sum_is_the_stated_order() -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal(3 * nm.LANES + 17) * 10.0 ** rng.integers(-8, 8, 3 * nm.LANES + 17)
    lanes = [0.0] * nm.LANES
    for i, v in enumerate(x.tolist()):
        lanes[i % nm.LANES] += v  # lane i adds values i, i + LANES, ... left to right
    assert nm.lane_sum(x) == math.fsum(lanes)
    small = x[: nm.LANES - 1]
    assert nm.lane_sum(small) == math.fsum(small.tolist())
    assert nm.lane_sum(x.reshape(1, -1)) == nm.lane_sum(x)


def test_lgamma_and_incomplete_beta_against_scipy() -> None:
    for v in (0.5, 1.0, 1.5, 3.0, 9.99, 10.0, 37.2, 1e4):
        assert nm.lgamma(v) == pytest.approx(special.gammaln(v), rel=1e-14, abs=1e-14)
    for a, b, x in ((1, 10, 0.3), (5.5, 3.2, 0.7), (200, 300, 0.4), (0.5, 0.5, 0.1), (30, 2, 0.95)):
        assert nm.betainc(a, b, x) == pytest.approx(special.betainc(a, b, x), rel=1e-11)
    for q, a, b in ((0.025, 3, 28), (0.975, 4, 27), (0.025, 0.5, 20.5), (0.975, 18.5, 983.5)):
        assert nm.beta_quantile(q, a, b) == pytest.approx(stats.beta.ppf(q, a, b), rel=1e-11)
    with pytest.raises(ValueError):
        nm.lgamma(0.0)
