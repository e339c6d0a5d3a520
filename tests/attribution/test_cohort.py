"""Cohort statistics and S-norm (attribution-v2 section 2), on hand-computed literals."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lumina_audit.attribution.cohort import CohortError, cohort_stats, leave_out_stats, query_stats, snorm

#: 3 controls x 2 songs. Song a: 0.5, 0.25, 0.75 -> mean 0.5, squared deviations 0, 1/16, 1/16 -> variance
#: (1/8) / 2 = 1/16, sd 0.25. Song b: 0.125, 0.125, 0.375 -> mean 0.625/3, sd computed below from its definition.
SIMS = np.array([[0.5, 0.125], [0.25, 0.125], [0.75, 0.375]])


def test_cohort_of_each_song_is_the_left_to_right_mean_and_sample_sd() -> None:
    c = cohort_stats(SIMS, ["a", "b"])
    assert c.mu[0] == 0.5 and c.sd[0] == 0.25
    mu_b = ((0.125 + 0.125) + 0.375) / 3
    sd_b = math.sqrt((((0.125 - mu_b) ** 2 + (0.125 - mu_b) ** 2) + (0.375 - mu_b) ** 2) / 2)
    assert c.mu[1] == mu_b and c.sd[1] == sd_b


def test_leave_self_out_uses_the_other_controls_in_order() -> None:
    c = leave_out_stats(SIMS, 0, ["a", "b"])  # song a without control 0: 0.25, 0.75 -> mean 0.5, var 0.125
    assert c.mu[0] == 0.5 and c.sd[0] == math.sqrt(0.125) == 0.3535533905932738
    assert c.mu[1] == 0.25 and c.sd[1] == math.sqrt(2 * 0.125**2)  # song b without control 0: 0.125, 0.375


def test_leave_self_out_refuses_a_degenerate_cohort_naming_the_song_and_control() -> None:
    with pytest.raises(CohortError, match=r"without control 'k2', catalog song 'b'.*is 0"):
        leave_out_stats(SIMS, 2, ["a", "b"], channel="P", control_id="k2")


def test_snorm_is_the_spec_formula() -> None:
    # s 0.75 against song a (mu 0.5, sd 0.25): 1.0; against the query's cohort (mu 0.25, sd 0.5): 1.0; t = 1.0.
    assert snorm(np.array([0.75]), np.array([0.5]), np.array([0.25]), 0.25, 0.5)[0] == 1.0
    # s 0: (0 - 0.5) / 0.25 = -2; (0 - 0.25) / 0.5 = -0.5; t = -1.25.
    assert snorm(np.array([0.0]), np.array([0.5]), np.array([0.25]), 0.25, 0.5)[0] == -1.25
    assert query_stats([0.5, 0.25, 0.75], what="q") == (0.5, 0.25)


def test_a_zero_sd_is_refused_naming_the_song() -> None:
    sims = np.array([[0.5, 0.2], [0.5, 0.3], [0.5, 0.1]])
    with pytest.raises(CohortError, match=r"channel M: catalog song 'x'.*standard deviation .* is 0") as info:
        cohort_stats(sims, ["x", "y"], channel="M")
    assert info.value.exit_code == 2
    with pytest.raises(CohortError, match="query 'q'"):
        query_stats([0.3, 0.3], what="query 'q'")
    with pytest.raises(CohortError, match="at least 2 controls"):
        cohort_stats(sims[:1], ["x", "y"])
