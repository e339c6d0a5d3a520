"""Tests of the search ranked by a per-row key (search.top_by_key) with lumina-attribution-v2's LlrKey.

Every check compares the streamed and resident searches with a dense evaluation: all N exact
similarities (search.similarities / exact_similarities), all N keys (LlrKey.exact), and the
selection written out here in full. Rows, similarities and keys must agree bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lumina_audit.attribution import scan
from lumina_audit.attribution.calibrators import LogitFit
from lumina_audit.attribution.cohort import Cohort, snorm
from lumina_audit.attribution.likelihood_ratio import (
    LlrKey,
    LREntry,
    attribute_channel,
    database_search,
    report_cut,
)
from lumina_audit.attribution.metrics import TIPPETT_GRID
from lumina_audit.attribution.numeric import LN10
from lumina_audit.attribution.search import (
    KeyedHits,
    ResidentRows,
    RowKey,
    SievedRowKey,
    exact_similarities,
    similarities,
    top_and_threshold,
    top_by_key,
)
from lumina_audit.signature.result import DIM

from .test_search import make_store, unit_rows

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]

MODEL = LogitFit(1.5, -4.0, 7)
GENEROUS = LogitFit(0.75, 2.5, 7)  # many rows above report_at
QUERY_COHORTS = ((0.02, 0.004), (0.15, 0.3), (-0.03, 0.05), (0.1, 0.11))
TIPPETT_H2 = [max(0, 5000 - 4 * i) for i in range(TIPPETT_GRID.values.shape[0])]


# --------------------------------------------------------------------------- the dense reference


def dense_selection(keys: F64, cut: float, top_k: int) -> I64:
    """Every row with key > cut, then the top_k of the other rows by key and every row tied with their top_k-th;
    by key desc, row asc."""
    keep = keys > cut
    rest = keys[~keep]
    if top_k and rest.shape[0]:
        kth = np.sort(rest)[::-1][min(top_k, rest.shape[0]) - 1]
        keep |= keys >= kth
    rows = np.flatnonzero(keep).astype(np.int64)
    order = sorted(rows.tolist(), key=lambda r: (-float(keys[r]), r))
    return np.asarray(order, dtype=np.int64)


def assert_dense(got: KeyedHits, sims: F64, keys: F64, cut: float, top_k: int) -> None:
    rows = dense_selection(keys, cut, top_k)
    assert (got.catalog_size, got.cut, got.top_k) == (sims.shape[0], cut, top_k)
    assert got.rows.tolist() == rows.tolist()
    assert got.similarities.tobytes() == sims[rows].tobytes()
    assert got.keys.tobytes() == keys[rows].tobytes()


def dense_keys(key: RowKey, sims: F64) -> F64:
    return key.exact(np.arange(sims.shape[0], dtype=np.int64), sims)


# --------------------------------------------------------------------------- a catalog with exact ties


@dataclass(frozen=True)
class Catalog:
    path: Path
    rows: F32
    cohort: Cohort
    ids: list[str]
    queries: F32


N_BASE, N_DUP = 230, 20  # N = 250 rows


def build(path: Path) -> Catalog:
    rng = np.random.default_rng(11)
    base = unit_rows(rng, N_BASE)
    dup = rng.integers(0, N_BASE, N_DUP)
    dup[:3] = 5  # row 5 has three copies: exact ties at the top of query 0
    rows = np.concatenate([base, base[dup]])
    n = rows.shape[0]
    # standard deviations spanning 100x (0.003 .. 0.3), means of either sign
    sd = np.exp(rng.uniform(math.log(0.003), math.log(0.3), n))
    mu = rng.uniform(-0.05, 0.3, n)
    # most copies share their original's cohort (ties in the key), the last few do not (ties in s only)
    same = np.arange(N_BASE, N_BASE + N_DUP - 4)
    sd[same], mu[same] = sd[dup[: N_DUP - 4]], mu[dup[: N_DUP - 4]]
    ids = [f"song-{i:04d}" for i in rng.permutation(n)]  # song id order differs from row order
    queries = unit_rows(rng, len(QUERY_COHORTS))
    queries[0] = rows[5]
    queries[2] = rows[17] + np.float32(0.05) * queries[2]
    return Catalog(make_store(path, rows, ids=ids), rows, Cohort(mu, sd), ids, queries)


@pytest.fixture(scope="module")
def catalog(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    return build(tmp_path_factory.mktemp("keyed") / "cat.h5")


def llr_keys(cat: Catalog, block_rows: int, model: LogitFit = MODEL) -> list[LlrKey]:
    return [LlrKey(cat.cohort, mu_q, sd_q, model, block_rows) for mu_q, sd_q in QUERY_COHORTS]


# --------------------------------------------------------------------------- top_by_key == dense


def test_exact_keys_are_the_spec_evaluation(catalog: Catalog) -> None:
    """LlrKey.exact is t = ((s - mu_j)/sd_j + (s - mu_q)/sd_q)/2, then (a t + b)/ln 10, in plain floats."""
    sims = exact_similarities(catalog.queries, catalog.rows)
    key = llr_keys(catalog, 64)[1]
    keys = dense_keys(key, sims[1])
    for j in (0, 5, 17, 101, 249):
        s, mu, sd = float(sims[1, j]), float(catalog.cohort.mu[j]), float(catalog.cohort.sd[j])
        t = ((s - mu) / sd + (s - 0.15) / 0.3) / 2.0
        assert keys[j] == (1.5 * t + -4.0) / LN10
    rows = np.arange(sims.shape[1], dtype=np.int64)
    scores = snorm(sims[1], catalog.cohort.mu, catalog.cohort.sd, 0.15, 0.3)
    assert key.score(rows, sims[1]).tobytes() == scores.tobytes()


@pytest.mark.parametrize("block_rows", [1, 7, 64, 100, 65536])
def test_top_by_key_equals_dense(catalog: Catalog, block_rows: int) -> None:
    sims = similarities(catalog.path, "P", catalog.queries)
    n = sims.shape[1]
    for model in (MODEL, GENEROUS):
        keys = llr_keys(catalog, block_rows, model)
        dense = [dense_keys(k, sims[i]) for i, k in enumerate(keys)]
        median = float(np.median(dense[3]))
        exact_cut = float(np.sort(dense[1])[-20])  # a cut equal to a row's key: "above" is strict
        for cut in (math.inf, report_cut(1.0, 2.5), median, exact_cut):
            top_ks = (0, 1, 10, n + 5) if block_rows in (7, 100) else (1, 10)
            for top_k in top_ks:
                streamed = top_by_key(catalog.path, "P", catalog.queries, keys, cut, top_k, block_rows)
                resident = ResidentRows(catalog.rows, block_rows).top_by_key(catalog.queries, keys, cut, top_k)
                assert len(streamed) == len(resident) == len(keys)
                for i in range(len(keys)):
                    assert_dense(streamed[i], sims[i], dense[i], cut, top_k)
                    assert_dense(resident[i], sims[i], dense[i], cut, top_k)


def test_ties_are_all_kept(catalog: Catalog) -> None:
    # query 0 is row 5, which has three copies with its cohort: four rows share the top key
    sims = exact_similarities(catalog.queries[:1], catalog.rows)[0]
    key = llr_keys(catalog, 64)[0]
    keys = dense_keys(key, sims)
    top = ResidentRows(catalog.rows, 64).top_by_key(catalog.queries[:1], [key], math.inf, 1)[0]
    assert top.rows.tolist() == [5, N_BASE, N_BASE + 1, N_BASE + 2]
    assert np.unique(top.keys).shape[0] == 1 and top.keys[0] == keys.max()
    assert_dense(top, sims, keys, math.inf, 1)


def test_key_blocks_need_not_match_the_search_blocks(catalog: Catalog) -> None:
    sims = exact_similarities(catalog.queries, catalog.rows)
    for key_rows, scan_rows in ((7, 64), (64, 7), (100, 33), (65536, 1)):
        keys = llr_keys(catalog, key_rows)
        hits = ResidentRows(catalog.rows, scan_rows).top_by_key(catalog.queries, keys, report_cut(1.0, 2.5), 10)
        for i, k in enumerate(keys):
            assert_dense(hits[i], sims[i], dense_keys(k, sims[i]), report_cut(1.0, 2.5), 10)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(1, 150), n_q=st.integers(1, 3), dup=st.integers(0, 30), seed=st.integers(0, 2**32 - 1),
    top_k=st.integers(0, 15), block_rows=st.integers(1, 60), key_rows=st.integers(1, 60),
    spread=st.floats(1.0, 1000.0), cut=st.one_of(st.just(math.inf), st.floats(-4.0, 2.0)),
    a=st.floats(0.05, 4.0), b=st.floats(-6.0, 3.0), sample=st.sampled_from([2048, 4]),
)
def test_top_by_key_equals_dense_random(
    n: int, n_q: int, dup: int, seed: int, top_k: int, block_rows: int, key_rows: int, spread: float,
    cut: float, a: float, b: float, sample: int,
) -> None:
    rng = np.random.default_rng(seed)
    rows = unit_rows(rng, n)
    picked = rng.integers(0, n, dup)
    rows = np.concatenate([rows, rows[picked]])
    n = rows.shape[0]
    sd = 0.3 / np.exp(rng.uniform(0.0, math.log(spread), n))
    mu = rng.uniform(-0.1, 0.3, n)
    sd[n - dup :], mu[n - dup :] = sd[picked], mu[picked]  # copies with their original's cohort: key ties
    q = unit_rows(rng, n_q)
    q[0] = rows[int(rng.integers(0, n))]
    model = LogitFit(a, b, 1)
    cohort = Cohort(mu, sd)
    keys = [LlrKey(cohort, float(rng.uniform(-0.05, 0.3)), float(rng.uniform(0.003, 0.3)), model, key_rows)
            for _ in range(n_q)]
    sims = exact_similarities(q, rows)
    with mock.patch.object(scan, "_SAMPLE", sample), mock.patch.object(scan, "_SAMPLE_ABOVE", 1):
        got = ResidentRows(rows, block_rows).top_by_key(q, keys, cut, top_k)
        with mock.patch.object(scan, "_NARROW_ABOVE", 0):  # narrow every block with its own top_k-th
            narrowed = ResidentRows(rows, block_rows).top_by_key(q, keys, cut, top_k)
    for i, key in enumerate(keys):
        k = dense_keys(key, sims[i])
        assert_dense(got[i], sims[i], k, cut, top_k)
        assert_dense(narrowed[i], sims[i], k, cut, top_k)


# --------------------------------------------------------------------------- the floor itself


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), spread=st.floats(1.0, 1000.0), centre=st.floats(-0.5, 0.5),
       mu_q=st.floats(-0.3, 0.3), sd_q=st.floats(0.002, 0.5), a=st.floats(0.01, 5.0), b=st.floats(-8.0, 8.0),
       start=st.integers(0, 3))
def test_floor_rules_out_only_rows_below_lo(
    seed: int, spread: float, centre: float, mu_q: float, sd_q: float, a: float, b: float, start: int,
) -> None:
    rng = np.random.default_rng(seed)
    n = 400
    cohort = Cohort(rng.uniform(-0.2, 0.3, n), 0.3 / np.exp(rng.uniform(0.0, math.log(spread), n)))
    key = LlrKey(cohort, mu_q, sd_q, LogitFit(a, b, 1), 100)
    s = (centre + 0.2 * rng.standard_normal(100)).astype(np.float32)
    s[:5] = [0.0, -0.0, np.float32(1e-30), np.float32(-1e-30), centre]
    begin = 100 * start
    est, err = key.screen(begin, s, 1e-5, 1.0)
    assert err == key.screen_error(begin, 100, 1e-5, 1.0) and err > 0
    rows = np.arange(begin, begin + 100, dtype=np.int64)
    assert est.tobytes() == key.exact(rows, s.astype(np.float64)).tobytes()
    for lo in [*np.quantile(est, [0.0, 0.1, 0.5, 0.9, 1.0]).tolist(), float(est.max()) + 1e-12, -1e9, 1e9]:
        f = key.floor(begin, 100, 1.0, lo)
        below = s.astype(np.float64) < f
        assert not (est[below] >= lo).any()
    assert key.floor(begin, 100, 1.0, math.inf) == -math.inf  # no floor without a finite lo


# --------------------------------------------------------------------------- the tests can fail


class WrongMargin:
    """A RowKey whose screen lowers one row's estimate and claims no error at all."""

    def __init__(self, inner: LlrKey, row: int) -> None:
        self.inner, self.row = inner, row

    def screen(self, start: int, s: F32, margin: float, bound: float) -> tuple[F64, float]:
        est, _ = self.inner.screen(start, s, margin, bound)
        est = est.copy()
        if start <= self.row < start + s.shape[0]:
            est[self.row - start] -= 1e6
        return est, 0.0

    def exact(self, rows: I64, s: F64) -> F64:
        return self.inner.exact(rows, s)


class HighFloor(LlrKey):
    """An LlrKey whose floor is too high (a wrong sieve)."""

    def floor(self, start: int, n: int, bound: float, lo: float) -> float:
        return super().floor(start, n, bound, lo) + 0.5


def test_a_wrong_margin_or_floor_is_noticed(catalog: Catalog) -> None:
    sims = exact_similarities(catalog.queries[:1], catalog.rows)[0]
    key = llr_keys(catalog, 64)[0]
    keys = dense_keys(key, sims)
    resident = ResidentRows(catalog.rows, 64)
    good = resident.top_by_key(catalog.queries[:1], [key], math.inf, 1)[0]
    assert_dense(good, sims, keys, math.inf, 1)
    assert good.rows.tolist() == [5, N_BASE, N_BASE + 1, N_BASE + 2]  # a tie of four rows, in blocks 0 and 3
    wrong = WrongMargin(key, N_BASE)
    assert not isinstance(wrong, SievedRowKey)  # the plain RowKey path
    bad = resident.top_by_key(catalog.queries[:1], [wrong], math.inf, 1)[0]
    assert N_BASE not in bad.rows.tolist()  # a top row was missed (with no margin, its unperturbed copies too) ...
    with pytest.raises(AssertionError):  # ... and the dense comparison notices
        assert_dense(bad, sims, keys, math.inf, 1)
    high = HighFloor(catalog.cohort, *QUERY_COHORTS[0], MODEL, 64)
    assert isinstance(high, SievedRowKey)
    missed = resident.top_by_key(catalog.queries[:1], [high], report_cut(1.0, 2.5), 10)[0]
    with pytest.raises(AssertionError):
        assert_dense(missed, sims, keys, report_cut(1.0, 2.5), 10)


class Counting(LlrKey):
    """An LlrKey that counts the estimates and exact keys it evaluates."""

    evaluated = 0

    def screen(self, start: int, s: F32, margin: float, bound: float) -> tuple[F64, float]:
        Counting.evaluated += s.shape[0]
        return super().screen(start, s, margin, bound)

    def exact(self, rows: I64, s: F64) -> F64:
        Counting.evaluated += rows.shape[0]
        return super().exact(rows, s)


def test_the_sieve_is_used_and_prunes() -> None:
    # 20000 rows in blocks of 5000: after the first block the floor must rule out most rows unevaluated.
    rng = np.random.default_rng(4)
    rows = unit_rows(rng, 20000)
    cohort = Cohort(rng.uniform(0.0, 0.3, 20000), rng.uniform(0.05, 0.3, 20000))
    key = Counting(cohort, 0.1, 0.2, MODEL, 5000)
    q = unit_rows(rng, 1)
    Counting.evaluated = 0
    hit = ResidentRows(rows, 5000).top_by_key(q, [key], report_cut(1.0, 2.5), 10)[0]
    assert 0 < Counting.evaluated < 20000 // 4
    sims = exact_similarities(q, rows)[0]
    assert_dense(hit, sims, dense_keys(LlrKey(cohort, 0.1, 0.2, MODEL, 5000), sims), report_cut(1.0, 2.5), 10)


# --------------------------------------------------------------------------- the identity key


class Identity:
    """The similarity itself as a RowKey: top_by_key must then be top_and_threshold."""

    def screen(self, start: int, s: F32, margin: float, bound: float) -> tuple[F32, float]:
        return s, margin

    def exact(self, rows: I64, s: F64) -> F64:
        return s


def test_identity_key_ranks_by_similarity(catalog: Catalog) -> None:
    """The identity key: the rows above tau and the top_k others; top_and_threshold: the top_k of all."""
    q = catalog.queries
    sims = similarities(catalog.path, "P", q)
    for tau, top_k, block_rows in ((0.1, 10, 7), (0.05, 0, 64), (2.0, 3, 1000)):
        plain = top_and_threshold(catalog.path, "P", q, tau, top_k, block_rows)
        keyed = top_by_key(catalog.path, "P", q, [Identity()] * q.shape[0], tau, top_k, block_rows)
        for i, (p, k) in enumerate(zip(plain, keyed, strict=True)):
            assert_dense(k, sims[i], sims[i], tau, top_k)
            assert set(p.rows.tolist()) <= set(k.rows.tolist())
            if not (sims[i] > tau).any():
                assert p.rows.tolist() == k.rows.tolist()


# --------------------------------------------------------------------------- attribute_channel == dense

#: (model, lower, upper, report_at, top_k): listed by report_at or not, clipped above and below, top_k > N.
ATTRIBUTIONS = ((MODEL, -1.5, 2.5, 1.0, 10), (MODEL, -0.1, 2.5, 1.0, 10), (GENEROUS, -1.5, 2.5, 1.0, 3),
                (GENEROUS, -0.5, 0.5, 1.0, 1), (MODEL, -1.5, 2.5, 1.0, 400))


def entry(j: int, sims: F64, keys: F64, scores: F64, ids: list[str], lower: float, upper: float,
          by: str) -> LREntry:
    k = float(keys[j])
    bounded = "upper" if k > upper else "lower" if k < lower else None
    return LREntry(ids[j], j, float(sims[j]), float(scores[j]), k, min(max(k, lower), upper), bounded, by)


def dense_attribution(sims: F64, key: LlrKey, ids: list[str], lower: float, upper: float, report_at: float,
                      top_k: int) -> tuple[list[LREntry], int]:
    """The entries of one query over all N songs, ordered by unbounded log10 LR descending, then song id.

    Listed by report_at: every song whose bounded log10 LR is at least report_at; then the top_k
    highest other songs (spec-notes L12, "then the top_k others").
    """
    keys = dense_keys(key, sims)
    scores = snorm(sims, key.mu, key.sd, key.mu_q, key.sd_q)
    n = sims.shape[0]
    order = sorted(range(n), key=lambda j: (-float(keys[j]), ids[j]))
    listed = [j for j in order if min(float(keys[j]), upper) >= report_at]
    others = [j for j in order if not min(float(keys[j]), upper) >= report_at]
    chosen = [*((j, "report_at") for j in listed), *((j, "top_k") for j in others[:top_k])]
    return [entry(j, sims, keys, scores, ids, lower, upper, by) for j, by in chosen], len(listed)


def attribute(hits: KeyedHits, key: LlrKey, ids: list[str], lower: float, upper: float, report_at: float,
              top_k: int) -> Any:
    return attribute_channel(hits, key, ids, proposition="derived-copy", lower=lower, upper=upper,
                             report_at=report_at, top_k=top_k, tippett_h2=TIPPETT_H2, h2_trials=5000, h2_units=50)


@pytest.mark.parametrize("block_rows", [1, 7, 100, 65536])
def test_attribute_channel_equals_dense(catalog: Catalog, block_rows: int) -> None:
    sims = similarities(catalog.path, "P", catalog.queries)
    for model, lower, upper, report_at, top_k in ATTRIBUTIONS:
        keys = llr_keys(catalog, block_rows, model)
        cut = report_cut(report_at, upper)
        streamed = top_by_key(catalog.path, "P", catalog.queries, keys, cut, top_k, block_rows)
        resident = ResidentRows(catalog.rows, block_rows).top_by_key(catalog.queries, keys, cut, top_k)
        for i, key in enumerate(keys):
            entries, reported = dense_attribution(sims[i], key, catalog.ids, lower, upper, report_at, top_k)
            database = database_search(entries[0].log10_lr, TIPPETT_H2, 5000, 50, len(catalog.ids))
            for hits in (streamed[i], resident[i]):
                got = attribute(hits, key, catalog.ids, lower, upper, report_at, top_k)
                assert list(got.entries) == entries
                assert (got.reported, got.catalog_size, got.database) == (reported, len(catalog.ids), database)
                # floats by their repr: bit for bit
                assert repr(got.as_dict()["entries"]) == repr([e.as_dict() for e in entries])


def test_attributions_reach_every_branch(catalog: Catalog) -> None:
    """The cases above clip above and below, list by report_at and by top_k, and tie on song ids."""
    sims = exact_similarities(catalog.queries, catalog.rows)
    seen: set[tuple[str | None, str]] = set()
    for model, lower, upper, report_at, top_k in ATTRIBUTIONS:
        for i, key in enumerate(llr_keys(catalog, 64, model)):
            entries, _ = dense_attribution(sims[i], key, catalog.ids, lower, upper, report_at, top_k)
            seen |= {(e.bounded, e.listed_by) for e in entries}
            # copies of one song with its cohort: equal keys, listed by song id, not by row
            tied = [e for e in entries if e.row in (5, N_BASE, N_BASE + 1, N_BASE + 2)]
            assert [e.song_id for e in tied] == sorted(e.song_id for e in tied)
    assert {"upper", "lower", None} <= {b for b, _ in seen}
    assert {"report_at", "top_k"} <= {by for _, by in seen}
    assert [catalog.ids[r] for r in (5, N_BASE, N_BASE + 1, N_BASE + 2)] != sorted(
        catalog.ids[r] for r in (5, N_BASE, N_BASE + 1, N_BASE + 2))


def test_attribute_channel_lists_top_k_others(catalog: Catalog) -> None:
    sims = exact_similarities(catalog.queries, catalog.rows)
    resident = ResidentRows(catalog.rows, 64)
    for model, lower, upper, report_at, top_k in ATTRIBUTIONS:
        keys = llr_keys(catalog, 64, model)
        hits = resident.top_by_key(catalog.queries, keys, report_cut(report_at, upper), top_k)
        for i, key in enumerate(keys):
            entries, _ = dense_attribution(sims[i], key, catalog.ids, lower, upper, report_at, top_k)
            assert list(attribute(hits[i], key, catalog.ids, lower, upper, report_at, top_k).entries) == entries


def test_attribute_channel_independent_of_the_search_top_k(catalog: Catalog) -> None:
    resident = ResidentRows(catalog.rows, 64)
    for model, lower, upper, report_at, top_k in ATTRIBUTIONS:
        keys = llr_keys(catalog, 64, model)
        cut = report_cut(report_at, upper)
        narrow = resident.top_by_key(catalog.queries, keys, cut, top_k)
        wide = resident.top_by_key(catalog.queries, keys, cut, 4 * top_k)
        for i, key in enumerate(keys):
            assert (attribute(narrow[i], key, catalog.ids, lower, upper, report_at, top_k).entries
                    == attribute(wide[i], key, catalog.ids, lower, upper, report_at, top_k).entries)


def test_report_cut() -> None:
    assert report_cut(1.0, 2.5) == float(np.nextafter(1.0, -math.inf))
    assert report_cut(1.0, 0.5) == math.inf  # the bounds forbid reaching report_at


# --------------------------------------------------------------------------- refusals


def test_llr_key_refusals() -> None:
    mu, sd = np.zeros(10), np.full(10, 0.1)
    bad_sd = sd.copy()
    bad_sd[3] = 0.0
    with pytest.raises(ValueError, match="above 0"):
        LlrKey(Cohort(mu, bad_sd), 0.0, 0.1, MODEL, 4)
    bad_mu = mu.copy()
    bad_mu[7] = math.nan
    with pytest.raises(ValueError, match="finite"):
        LlrKey(Cohort(bad_mu, sd), 0.0, 0.1, MODEL, 4)
    with pytest.raises(ValueError, match="one length"):
        LlrKey(Cohort(mu[:5], sd), 0.0, 0.1, MODEL, 4)
    with pytest.raises(ValueError, match="degenerate"):
        LlrKey(Cohort(mu, sd), 0.0, 0.0, MODEL, 4)
    with pytest.raises(ValueError, match="block_rows"):
        LlrKey(Cohort(mu, sd), 0.0, 0.1, MODEL, 0)
    short = LlrKey(Cohort(mu, sd), 0.0, 0.1, MODEL, 4)
    rows = unit_rows(np.random.default_rng(0), 12)  # a catalog longer than the cohort
    with pytest.raises(ValueError, match="not within the cohort"):
        ResidentRows(rows, 4).top_by_key(rows[:1], [short], math.inf, 1)
    with pytest.raises(ValueError, match="2 queries but 1 keys"):
        ResidentRows(rows[:10], 4).top_by_key(rows[:2], [short], math.inf, 1)
    assert ResidentRows(rows[:10], 4).top_by_key(np.empty((0, DIM), dtype=np.float32), [], 0.0, 1) == []
