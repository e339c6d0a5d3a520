"""Tests of the exact similarity search (lumina_audit.attribution.search)."""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Literal
from unittest import mock

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lumina_audit.attribution import scan
from lumina_audit.attribution.search import (
    Hits,
    ResidentRows,
    exact_similarities,
    select,
    similarities,
    top_and_threshold,
    top_and_threshold_rows,
)
from lumina_audit.attribution.store_writer import create_or_append
from lumina_audit.errors import StoreError
from lumina_audit.signature.result import DIM, Signature
from lumina_audit.signature.space import SignatureConfig

SPACE = SignatureConfig().space({"state_dict.bin": "0" * 64, "compression_state_dict.bin": "1" * 64})
OTHER = SignatureConfig().space({"state_dict.bin": "2" * 64, "compression_state_dict.bin": "1" * 64})


def unit_rows(rng: np.random.Generator, n: int) -> npt.NDArray[np.float32]:
    raw = rng.standard_normal((n, DIM))
    unit: npt.NDArray[np.float32] = (raw / np.linalg.norm(raw, axis=1, keepdims=True)).astype(np.float32)
    return unit


def fake_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def make_store(
    path: Path, p: npt.NDArray[np.float32], m: npt.NDArray[np.float32] | None = None, prefix: str = "song",
    ids: list[str] | None = None,
) -> Path:
    """A store of these rows (P, and M = P unless given); song ids ``prefix-i`` unless ``ids`` names them."""
    m = p if m is None else m
    ids = [f"{prefix}-{i}" for i in range(p.shape[0])] if ids is None else ids
    sigs = [
        Signature(
            song_id=ids[i], file_sha256=fake_hash(f"file{prefix}{i}"), pcm_sha256=fake_hash(f"pcm{prefix}{i}"),
            chunks=1, raw_p=p[i].astype(np.float64), raw_m=m[i].astype(np.float64), p=p[i], m=m[i],
        )
        for i in range(p.shape[0])
    ]
    create_or_append(path, SPACE, sigs)
    return path


def reference(q: npt.NDArray[np.float32], b: npt.NDArray[np.float32]) -> float:
    """The module's definition, as a plain Python loop."""
    s = 0.0
    for x, y in zip(q.tolist(), b.tolist(), strict=True):
        s += float(x) * float(y)
    return s


Catalog = tuple[Path, npt.NDArray[np.float32], npt.NDArray[np.float32]]


@pytest.fixture(scope="module")
def random_store(tmp_path_factory: pytest.TempPathFactory) -> Catalog:
    rng = np.random.default_rng(7)
    p, m = unit_rows(rng, 300), unit_rows(rng, 300)
    return make_store(tmp_path_factory.mktemp("search") / "cat.h5", p, m), p, m


def test_dense_bitwise_across_block_sizes_and_batches(random_store: Catalog) -> None:
    path, p, m = random_store
    q = unit_rows(np.random.default_rng(1), 5)
    channels: tuple[tuple[Literal["P", "M"], npt.NDArray[np.float32]], ...] = (("P", p), ("M", m))
    for channel, rows in channels:
        runs = [similarities(path, channel, q, block_rows=b) for b in (1, 7, 1000, 65536)]
        for r in runs[1:]:
            assert r.dtype == np.float64 and r.shape == (5, 300)
            assert r.tobytes() == runs[0].tobytes()
        single = np.concatenate([similarities(path, channel, q[i : i + 1], block_rows=333) for i in range(5)])
        assert single.tobytes() == runs[0].tobytes()
        assert exact_similarities(q, rows).tobytes() == runs[0].tobytes()
        assert ResidentRows(rows, 64).similarities(q).tobytes() == runs[0].tobytes()
        # a direct float64 numpy computation agrees to rounding (its summation order is BLAS's)
        direct = q.astype(np.float64) @ rows.astype(np.float64).T
        assert np.max(np.abs(direct - runs[0])) < 1e-14
        # and the plain-Python definition agrees bit for bit
        for i, j in ((0, 0), (4, 299), (2, 217), (3, 6)):
            assert runs[0][i, j] == reference(q[i], rows[j])


def test_definition_bitwise_on_all_rows() -> None:
    rng = np.random.default_rng(3)
    rows, q = unit_rows(rng, 40), unit_rows(rng, 2)
    got = exact_similarities(q, rows)
    want = np.array([[reference(q[i], rows[j]) for j in range(40)] for i in range(2)])
    assert got.tobytes() == want.tobytes()


def test_identical_and_opposite_signatures(tmp_path: Path) -> None:
    # dyadic components: every product and sum below is exact
    a = np.zeros(DIM, dtype=np.float32)
    a[:4] = 0.5  # norm 1
    b = np.zeros(DIM, dtype=np.float32)
    b[0], b[5] = 0.6, 0.8  # float32(0.6), float32(0.8): norm 1 only to float32 precision
    c = np.zeros(DIM, dtype=np.float32)
    c[1], c[2] = 0.75, -0.25
    rows = np.stack([a, -a, c])
    path = make_store(tmp_path / "c.h5", rows)
    s = similarities(path, "P", np.stack([a, b]))
    # a.a = 4 * 0.25 = 1; a.(-a) = -1; a.c = 0.5*0.75 - 0.5*0.25 = 0.25
    assert s[0].tolist() == [1.0, -1.0, 0.25]
    # b.a = 0.5 * float32(0.6) exactly; b.(-a) its negative; b.c = 0
    half_06 = 0.5 * float(np.float32(0.6))
    assert s[1].tolist() == [half_06, -half_06, 0.0]
    assert half_06 == 0.30000001192092896


def test_top_and_threshold_equals_dense_selection(random_store: Catalog) -> None:
    path, _, m = random_store
    q = unit_rows(np.random.default_rng(2), 4)
    dense = similarities(path, "M", q)
    for tau, top_k in ((0.0, 0), (0.1, 1), (0.2, 10), (2.0, 10), (0.15, 5000)):
        want = [select(dense[i], tau, top_k) for i in range(4)]
        for block_rows in (1, 7, 1000) if top_k == 10 else (7, 65536):
            got = top_and_threshold(path, "M", q, tau, top_k, block_rows)
            resident = ResidentRows(m, block_rows).top_and_threshold(q, tau, top_k)
            assert len(got) == len(resident) == 4
            for g, r, w in zip(got, resident, want, strict=True):
                assert_same_hits(g, w)
                assert_same_hits(r, w)


def assert_same_hits(got: Hits, want: Hits) -> None:
    assert (got.catalog_size, got.tau, got.top_k) == (want.catalog_size, want.tau, want.top_k)
    assert got.rows.tolist() == want.rows.tolist()
    assert got.similarities.tobytes() == want.similarities.tobytes()
    assert got.excess_sum == want.excess_sum


def test_select_literal() -> None:
    sims = np.array([0.25, 0.75, -0.5, 0.75, 0.5, 0.625])
    h = select(sims, 0.5, 2)
    # above 0.5: rows 1, 3 (0.75) and 5 (0.625); the top 2 are rows 1 and 3
    assert h.rows.tolist() == [1, 3, 5]
    assert h.similarities.tolist() == [0.75, 0.75, 0.625]
    assert h.excess_sum == 0.625  # 0.25 + 0.25 + 0.125
    assert h.above.tolist() == [True, True, True]
    h = select(sims, 0.8, 3)
    # nothing above; top 3: 0.75 (rows 1, 3), 0.625 (row 5)
    assert h.rows.tolist() == [1, 3, 5] and h.excess_sum == 0.0
    h = select(sims, 0.8, 1)
    # the 1st value is tied between rows 1 and 3: both kept for the caller's tie-break
    assert h.rows.tolist() == [1, 3]
    h = select(sims, 0.0, 0)
    assert h.rows.tolist() == [1, 3, 5, 4, 0]


def test_near_threshold_rows_below_float32_resolution() -> None:
    # Rows whose exact similarities differ by ~1e-10, far below float32 resolution:
    # the screen cannot separate them, the exact values must.
    rng = np.random.default_rng(5)
    base = unit_rows(rng, 1)[0]
    rows = np.repeat(base[None, :], 300, axis=0)
    d = int(np.argmax(np.abs(base)))
    for i in range(300):
        rows[i, d] = np.nextafter(rows[i, d], np.float32(np.inf) * np.sign(rows[i, d]))
        for _ in range(i % 5):
            rows[i, d] = np.nextafter(rows[i, d], np.float32(np.inf) * np.sign(rows[i, d]))
    rows = np.concatenate([rows, unit_rows(rng, 700)])
    q = base[None, :].copy()
    dense = exact_similarities(q, rows)[0]
    levels = np.unique(dense[:300])
    assert levels.shape[0] == 5 and np.ptp(levels) < 1e-6
    tau = float((levels[1] + levels[2]) / 2)
    for top_k in (0, 3, 70, 400):
        want = select(dense, tau, top_k)
        for block_rows in (13, 256, 4096):
            assert_same_hits(top_and_threshold_rows(rows, q, tau, top_k, block_rows)[0], want)
            with mock.patch.object(scan, "_NARROW_ABOVE", 0):
                assert_same_hits(top_and_threshold_rows(rows, q, tau, top_k, block_rows)[0], want)


def test_huge_rows_fall_back_to_exact() -> None:
    rng = np.random.default_rng(9)
    rows = unit_rows(rng, 50)
    rows[10] *= np.float32(1e25)  # squares overflow float32: the screen bound is not usable
    q = unit_rows(rng, 2)
    dense = exact_similarities(q, rows)
    for i in range(2):
        assert_same_hits(top_and_threshold_rows(rows, q, 0.05, 5, 16)[i], select(dense[i], 0.05, 5))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n=st.integers(0, 120), n_q=st.integers(1, 3), dup=st.integers(0, 30), seed=st.integers(0, 2**32 - 1),
    tau=st.floats(-0.3, 0.5), top_k=st.integers(0, 15), block_rows=st.integers(1, 50),
)
def test_sparse_equals_dense_random(
    n: int, n_q: int, dup: int, seed: int, tau: float, top_k: int, block_rows: int
) -> None:
    rng = np.random.default_rng(seed)
    rows = unit_rows(rng, n)
    if n:  # duplicated rows make exact ties
        rows = np.concatenate([rows, rows[rng.integers(0, n, dup)]])
    q = unit_rows(rng, n_q)
    if n:
        q[0] = rows[0]
    dense = exact_similarities(q, rows)
    got = top_and_threshold_rows(rows, q, tau, top_k, block_rows)
    with mock.patch.object(scan, "_NARROW_ABOVE", 0):  # narrow every block with its own top_k-th value
        narrowed = top_and_threshold_rows(rows, q, tau, top_k, block_rows)
    for i in range(n_q):
        want = select(dense[i], tau, top_k)
        assert_same_hits(got[i], want)
        assert_same_hits(narrowed[i], want)


def test_empty_store(tmp_path: Path) -> None:
    path = tmp_path / "empty.h5"
    create_or_append(path, SPACE, [])
    q = unit_rows(np.random.default_rng(0), 2)
    assert similarities(path, "P", q).shape == (2, 0)
    hits = top_and_threshold(path, "P", q, 0.1, 10)
    assert [(h.catalog_size, h.rows.tolist(), h.excess_sum) for h in hits] == [(0, [], 0.0)] * 2


def test_no_queries(random_store: Catalog) -> None:
    path, _, _ = random_store
    none = np.empty((0, DIM), dtype=np.float32)
    assert similarities(path, "P", none).shape == (0, 300)
    assert top_and_threshold(path, "P", none, 0.1, 3) == []


def test_refusals(random_store: Catalog) -> None:
    path, _, _ = random_store
    q = unit_rows(np.random.default_rng(0), 1)
    with pytest.raises(ValueError, match="float32"):
        similarities(path, "P", q.astype(np.float64))
    with pytest.raises(ValueError, match="shape"):
        similarities(path, "P", q[:, :100])
    with pytest.raises(ValueError, match="non-finite"):
        similarities(path, "P", np.full((1, DIM), np.nan, dtype=np.float32))
    with pytest.raises(ValueError, match="channel"):
        similarities(path, "X", q)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="block_rows"):
        top_and_threshold(path, "P", q, 0.1, 3, 0)
    with pytest.raises(ValueError, match="tau"):
        top_and_threshold(path, "P", q, math.nan, 3)
    with pytest.raises(ValueError, match="top_k"):
        top_and_threshold(path, "P", q, 0.1, -1)
    with pytest.raises(StoreError, match=f"store has {SPACE.digest}, queries have {OTHER.digest}"):
        similarities(path, "P", q, space_digest=OTHER.digest)
    with pytest.raises(StoreError, match="signature space differs"):
        top_and_threshold(path, "P", q, 0.1, 3, space_digest=OTHER.digest)
    assert similarities(path, "P", q, space_digest=SPACE.digest).shape == (1, 300)
    with pytest.raises(StoreError, match="no such store"):
        similarities(path.with_name("missing.h5"), "P", q)
