"""Tests of calibration and attribution (lumina_audit.attribution, spec attribution-v1)."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lumina_audit.attribution.method import (
    ATTRIBUTED,
    NO_ATTRIBUTION,
    AttributionError,
    ChannelResult,
    attribute,
    attribute_hits,
    calibrate,
)
from lumina_audit.attribution.search import select, similarities, top_and_threshold, top_and_threshold_rows
from lumina_audit.errors import LuminaError
from lumina_audit.signature.result import DIM
from lumina_audit.signature.space import SignatureConfig

from .test_search import make_store, unit_rows

SPACE = SignatureConfig().space({"state_dict.bin": "0" * 64, "compression_state_dict.bin": "1" * 64})
OTHER = SignatureConfig().space({"state_dict.bin": "0" * 64, "compression_state_dict.bin": "2" * 64})


def h(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def rows_of(result: ChannelResult) -> list[tuple[Any, ...]]:
    return [(e.song_id, e.similarity, e.z, e.excess, e.share, e.above_threshold) for e in result.entries]


# --------------------------------------------------------------------------- attribution, literals
# mu = 0, sigma = 0.25, tau = 0.75 (k = 3); dyadic values, so every figure below is exact.


def test_no_song_above_the_threshold() -> None:
    r = attribute(np.array([0.125, 0.375, 0.25, -0.5]), ["a", "b", "c", "d"], 0.0, 0.25, 0.75, top_k=2)
    assert r.verdict == NO_ATTRIBUTION == "no attribution above the noise floor"
    assert (r.above_count, r.excess_sum, r.catalog_size, r.top_k) == (0, 0.0, 4, 2)
    # the top 2 by similarity, marked below the threshold, z = s / 0.25
    assert rows_of(r) == [("b", 0.375, 1.5, 0.0, 0.0, False), ("c", 0.25, 1.0, 0.0, 0.0, False)]
    assert [e.row for e in r.entries] == [1, 2]


def test_exactly_one_song_above() -> None:
    r = attribute(np.array([0.5, 0.875, 0.25]), ["a", "b", "c"], 0.0, 0.25, 0.75, top_k=2)
    assert r.verdict == ATTRIBUTED == "attributed"
    # b: excess 0.875 - 0.75 = 0.125, share 1.0, z = 3.5; then the top-2 extra a (0.5, z = 2)
    assert rows_of(r) == [("b", 0.875, 3.5, 0.125, 1.0, True), ("a", 0.5, 2.0, 0.0, 0.0, False)]
    assert (r.above_count, r.excess_sum) == (1, 0.125)


def test_single_song_above_has_share_exactly_one() -> None:
    r = attribute(np.array([0.1, 0.7000000000000001, 0.3]), ["x", "y", "z"], 0.2, 0.1, 0.5, top_k=0)
    assert [(e.song_id, e.share) for e in r.entries] == [("y", 1.0)]


def test_two_songs_with_equal_excess_tie_by_song_id() -> None:
    r = attribute(np.array([0.875, 0.875, 0.5]), ["zeta", "alpha", "mid"], 0.0, 0.25, 0.75, top_k=3)
    assert rows_of(r) == [
        ("alpha", 0.875, 3.5, 0.125, 0.5, True),
        ("zeta", 0.875, 3.5, 0.125, 0.5, True),
        ("mid", 0.5, 2.0, 0.0, 0.0, False),
    ]
    assert [e.row for e in r.entries] == [1, 0, 2]


def test_three_songs_dyadic_three_two_one() -> None:
    # tau 0.25; excesses 0.375, 0.25, 0.125 (sum 0.75) -> shares 1/2, 1/3, 1/6
    r = attribute(np.array([0.375, 0.5, 0.625, 0.0]), ["c", "b", "a", "d"], 0.0, 0.125, 0.25, top_k=1)
    assert [(e.song_id, e.excess, e.share) for e in r.entries] == [
        ("a", 0.375, 0.5), ("b", 0.25, 0.3333333333333333), ("c", 0.125, 0.16666666666666666),
    ]
    assert r.excess_sum == 0.75


def test_three_songs_excess_point_three_two_one() -> None:
    # tau 0.5; similarities 0.8, 0.7, 0.6 -> excesses 0.3, 0.2, 0.1 -> shares 0.5, 1/3, 1/6
    r = attribute(np.array([0.6, 0.8, 0.7]), ["s1", "s2", "s3"], 0.0, 0.1, 0.5, top_k=3)
    assert [e.song_id for e in r.entries] == ["s2", "s3", "s1"]
    assert [e.excess for e in r.entries] == pytest.approx([0.3, 0.2, 0.1], abs=1e-15)
    assert [e.share for e in r.entries] == pytest.approx([0.5, 0.3333333333333333, 0.16666666666666666], abs=1e-15)
    assert [e.z for e in r.entries] == pytest.approx([8.0, 7.0, 6.0], abs=1e-14)
    assert math.fsum(e.share for e in r.entries) == pytest.approx(1.0, abs=1e-15)


def test_negative_similarities() -> None:
    # mu = -0.5, sigma = 0.125, k = 3 -> tau = -0.125
    r = attribute(np.array([-0.0625, -0.25, -1.0]), ["a", "b", "c"], -0.5, 0.125, -0.125, top_k=3)
    assert rows_of(r) == [
        ("a", -0.0625, 3.5, 0.0625, 1.0, True),
        ("b", -0.25, 2.0, 0.0, 0.0, False),
        ("c", -1.0, -4.0, 0.0, 0.0, False),
    ]


def test_similarity_equal_to_tau_is_not_above() -> None:
    r = attribute(np.array([0.75, 0.5]), ["a", "b"], 0.0, 0.25, 0.75, top_k=1)
    assert r.verdict == NO_ATTRIBUTION
    assert rows_of(r) == [("a", 0.75, 3.0, 0.0, 0.0, False)]


def test_top_k_tie_at_the_boundary_is_broken_by_song_id() -> None:
    r = attribute(np.array([0.5, 0.25, 0.5, 0.5]), ["m", "a", "z", "b"], 0.0, 0.25, 0.75, top_k=2)
    assert [e.song_id for e in r.entries] == ["b", "m"]


def test_query_identical_to_a_catalog_song(tmp_path: Path) -> None:
    vecs = np.zeros((3, DIM), dtype=np.float32)
    vecs[0, :4] = 0.5  # unit norm, dyadic
    vecs[1, 2:6] = 0.5  # overlaps vecs[0] in 2 components: similarity 0.5
    vecs[2, 10] = -1.0  # orthogonal: similarity 0
    path = make_store(tmp_path / "cat.h5", vecs)
    sims = similarities(path, "P", vecs[:1])[0]
    assert sims.tolist() == [1.0, 0.5, 0.0]
    ids = ["song-0", "song-1", "song-2"]
    r = attribute(sims, ids, 0.0, 0.25, 0.75, top_k=2)
    assert rows_of(r) == [("song-0", 1.0, 4.0, 0.25, 1.0, True), ("song-1", 0.5, 2.0, 0.0, 0.0, False)]
    sparse = attribute_hits(top_and_threshold(path, "P", vecs[:1], 0.75, 2, block_rows=1)[0], ids, 0.0, 0.25, 0.75, 2)
    assert sparse == r


def test_attribution_refusals() -> None:
    with pytest.raises(AttributionError, match="sigma must be above 0"):
        attribute(np.array([0.1]), ["a"], 0.0, 0.0, 0.5)
    with pytest.raises(AttributionError, match="tau must be a finite number"):
        attribute(np.array([0.1]), ["a"], 0.0, 0.1, math.inf)
    with pytest.raises(AttributionError, match="2 similarities but 1 song ids"):
        attribute(np.array([0.1, 0.2]), ["a"], 0.0, 0.1, 0.5)
    with pytest.raises(AttributionError, match="non-finite"):
        attribute(np.array([np.nan]), ["a"], 0.0, 0.1, 0.5)
    with pytest.raises(AttributionError, match="float64"):
        attribute(np.array([0.1], dtype=np.float32), ["a"], 0.0, 0.1, 0.5)
    hits = select(np.array([0.1, 0.9]), 0.5, 1)
    with pytest.raises(AttributionError, match="tau"):
        attribute_hits(hits, ["a", "b"], 0.0, 0.1, 0.6, 1)
    with pytest.raises(AttributionError, match="top 1 rows"):
        attribute_hits(hits, ["a", "b"], 0.0, 0.1, 0.5, 2)
    with pytest.raises(AttributionError, match="2 rows but 3 song ids"):
        attribute_hits(hits, ["a", "b", "c"], 0.0, 0.1, 0.5, 1)
    assert issubclass(AttributionError, LuminaError) and AttributionError.exit_code == 2


# --------------------------------------------------------------------------- attribution, properties


def check_invariants(r: ChannelResult, sims: npt.NDArray[np.float64], ids: list[str], tau: float, top_k: int) -> None:
    above = {ids[j] for j in range(len(ids)) if sims[j] > tau}
    shared = [e for e in r.entries if e.share > 0]
    extras = [e for e in r.entries if e.share == 0]
    assert r.entries == tuple(shared + extras)
    assert {e.song_id for e in shared} == above and all(e.above_threshold for e in shared)
    assert not any(e.above_threshold for e in extras)
    assert [(-e.share, e.song_id) for e in shared] == sorted((-e.share, e.song_id) for e in shared)
    assert [(-e.similarity, e.song_id) for e in extras] == sorted((-e.similarity, e.song_id) for e in extras)
    top = sorted(range(len(ids)), key=lambda j: (-sims[j], ids[j]))[:top_k]
    listed = {e.song_id for e in r.entries}
    assert {ids[j] for j in top} <= listed and listed == above | {ids[j] for j in top}
    if above:
        assert r.verdict == ATTRIBUTED
        assert abs(math.fsum(e.share for e in r.entries) - 1.0) <= 1e-12
        if len(above) == 1:
            assert shared[0].share == 1.0
    else:
        assert r.verdict == NO_ATTRIBUTION and all(e.share == 0.0 for e in r.entries)
    for e in r.entries:
        assert ids[e.row] == e.song_id and e.similarity == sims[e.row]


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.one_of(st.sampled_from([-0.5, 0.0, 0.25, 0.5, 0.75, 1.0]), st.floats(-1, 1)),
                    min_size=1, max_size=40),
    tau=st.one_of(st.sampled_from([0.0, 0.25, 0.5]), st.floats(-1, 1)), top_k=st.integers(0, 12),
    seed=st.integers(0, 1000),
)
def test_attribution_invariants(values: list[float], tau: float, top_k: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    sims = np.array(values)
    ids = [f"id-{x:03d}" for x in rng.permutation(len(sims))]  # ids not in row order
    r = attribute(sims, ids, 0.0, 0.5, tau, top_k)
    check_invariants(r, sims, ids, tau, top_k)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(n=st.integers(1, 150), dup=st.integers(0, 40), k=st.floats(0.5, 4.0), top_k=st.integers(0, 12),
       block_rows=st.integers(1, 64), seed=st.integers(0, 2**32 - 1))
def test_sparse_equals_dense_on_random_catalogs(
    n: int, dup: int, k: float, top_k: int, block_rows: int, seed: int
) -> None:
    rng = np.random.default_rng(seed)
    rows = unit_rows(rng, n)
    rows = np.concatenate([rows, rows[rng.integers(0, n, dup)]])  # exact ties
    ids = [f"s{x:04d}" for x in rng.permutation(rows.shape[0])]
    q = rows[rng.integers(0, rows.shape[0], 2)].copy()
    from lumina_audit.attribution.search import exact_similarities

    dense = exact_similarities(q, rows)
    mu, sigma = float(dense.mean()), float(dense.std()) + 1e-3
    tau = mu + k * sigma
    hits = top_and_threshold_rows(rows, q, tau, top_k, block_rows)
    for i in range(2):
        want = attribute(dense[i], ids, mu, sigma, tau, top_k)
        assert attribute_hits(hits[i], ids, mu, sigma, tau, top_k) == want
        check_invariants(want, dense[i], ids, tau, top_k)


def test_sparse_equals_dense_on_a_store(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    n = 400
    p = unit_rows(rng, n)
    p[200:220] = p[0]  # ties
    ids = [f"song-{(7 * i) % n:04d}" for i in range(n)]
    path = make_store(tmp_path / "cat.h5", p, ids=ids)
    q = np.concatenate([p[:1], p[5:6] * np.float32(0.5) + p[6:7] * np.float32(0.5)])
    dense = similarities(path, "M", q)
    for tau, top_k in ((0.2, 10), (0.05, 3), (0.99, 25)):
        for block_rows in (1, 64, 1000):
            hits = top_and_threshold(path, "M", q, tau, top_k, block_rows)
            for i in range(2):
                assert attribute_hits(hits[i], ids, 0.0, 0.07, tau, top_k) == attribute(
                    dense[i], ids, 0.0, 0.07, tau, top_k
                )


# --------------------------------------------------------------------------- calibration

CONTROL_IDS = [f"control-{i}" for i in range(10)]
CONTROL_PCM = [h(f"control-pcm-{i}") for i in range(10)]
CATALOG_PCM = [h("catalog-pcm-0"), h("catalog-pcm-1")]


def run_calibrate(sims: dict[str, npt.NDArray[np.float64]], **over: Any) -> Any:
    kwargs: dict[str, Any] = dict(
        control_ids=CONTROL_IDS, control_pcm_sha256=CONTROL_PCM, catalog_pcm_sha256=CATALOG_PCM,
        control_space=SPACE.digest, catalog_space=SPACE.digest,
    )
    kwargs.update(over)
    return calibrate(sims, **kwargs)


def test_calibration_literals() -> None:
    # P: C = 10 controls x N = 2 songs, all 0 but control 0 / song 0 = 1.0; n = 20 values.
    #   mu = 1 / 20 = 0.05
    #   sum of squared deviations = 0.95**2 + 19 * 0.05**2 = 0.9025 + 0.0475 = 0.95
    #   sigma = sqrt(0.95 / 19) = sqrt(0.05) = 0.22360679774997896
    #   tau = 0.05 + 3 * 0.22360679774997896 = 0.7208203932499369
    #   one value of 20 above tau: false-positive rate 0.05; counts 1, 0 x 9: mean 0.1, max 1
    # M: every control is [0.5, -0.5]: mu = 0, sigma = sqrt(20 * 0.25 / 19) = sqrt(5 / 19)
    #   = 0.5129891760425771, tau = 1.5389675281277313, nothing above.
    p = np.zeros((10, 2))
    p[0, 0] = 1.0
    m = np.tile([0.5, -0.5], (10, 1))
    cal = run_calibrate({"P": p, "M": m})
    assert list(cal) == ["P", "M"]
    cp, cm = cal["P"], cal["M"]
    assert (cp.channel, cp.controls, cp.catalog_size, cp.k) == ("P", 10, 2, 3.0)
    assert cp.mu == 0.05
    assert cp.sigma == pytest.approx(0.22360679774997896, rel=1e-15)
    assert cp.tau == pytest.approx(0.7208203932499369, rel=1e-15)
    assert cp.false_positive_rate == 0.05
    assert cp.counts_above == (1, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    assert (cp.counts_above_mean, cp.counts_above_max) == (0.1, 1)
    assert cm.mu == 0.0
    assert cm.sigma == pytest.approx(0.5129891760425771, rel=1e-15)
    assert cm.tau == pytest.approx(1.5389675281277313, rel=1e-15)
    assert (cm.false_positive_rate, cm.counts_above_mean, cm.counts_above_max) == (0.0, 0.0, 0)
    assert cp.as_dict()["counts_above"] == [1] + [0] * 9


def test_calibration_k_and_single_channel() -> None:
    # P as above with k = 1: tau = 0.05 + 0.2236... = 0.27360679774997896, still 1 value above
    p = np.zeros((10, 2))
    p[0, 0] = 1.0
    cal = run_calibrate({"P": p}, k=1.0)
    assert list(cal) == ["P"]
    assert cal["P"].tau == pytest.approx(0.27360679774997896, rel=1e-15)
    assert cal["P"].false_positive_rate == 0.05


def test_calibration_is_independent_of_layout() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((10, 2))
    a = run_calibrate({"P": x})["P"]
    b = run_calibrate({"P": np.asfortranarray(x)})["P"]
    assert (a.mu, a.sigma) == (b.mu, b.sigma)
    assert a.mu == math.fsum(x.ravel().tolist()) / 20


def test_calibration_refusals() -> None:
    p = np.zeros((10, 2))
    p[0, 0] = 1.0
    with pytest.raises(AttributionError, match="9 controls given; calibration needs at least 10"):
        run_calibrate({"P": p[:9]}, control_ids=CONTROL_IDS[:9], control_pcm_sha256=CONTROL_PCM[:9])
    with pytest.raises(AttributionError, match="control 'control-3' is in the catalog"):
        run_calibrate({"P": p}, catalog_pcm_sha256=[CATALOG_PCM[0], CONTROL_PCM[3]])
    with pytest.raises(AttributionError, match=f"controls {OTHER.digest}, catalog {SPACE.digest}"):
        run_calibrate({"P": p}, control_space=OTHER.digest)
    with pytest.raises(AttributionError, match="sigma 0.0"):
        run_calibrate({"P": np.full((10, 2), 0.25)})
    with pytest.raises(AttributionError, match="empty"):
        run_calibrate({"P": np.zeros((10, 0))}, catalog_pcm_sha256=[])
    with pytest.raises(AttributionError, match="non-finite"):
        run_calibrate({"P": np.where(p > 0, np.inf, 0.0)})
    with pytest.raises(AttributionError, match=r"shape \[10, 3\]; expected \[10, 2\]"):
        run_calibrate({"P": np.zeros((10, 3))})
    with pytest.raises(AttributionError, match="same PCM hash"):
        run_calibrate({"P": p}, control_pcm_sha256=[CONTROL_PCM[0]] * 10)
    with pytest.raises(AttributionError, match="channels"):
        run_calibrate({"X": p})
    with pytest.raises(AttributionError, match="k must be"):
        run_calibrate({"P": p}, k=math.nan)
    with pytest.raises(AttributionError, match="at least 3"):
        run_calibrate({"P": p}, min_controls=3, control_ids=CONTROL_IDS[:2], control_pcm_sha256=CONTROL_PCM[:2])
    with pytest.raises(AttributionError, match="sigma inf"):
        run_calibrate({"P": np.where(p > 0, 1e300, -1e300)})
    with pytest.raises(AttributionError, match="sigma inf"):
        run_calibrate({"P": np.full((10, 2), 1.7e308)})
