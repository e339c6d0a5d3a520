"""``benchmarks.bench_search`` at 10**3 songs with both methods (seconds): its whole run, and its counts recounted.

The run writes its stores into the test's folder (checked against ``create_or_append`` first, as every run
does), times v1 and v2 on both channels and deletes the stores; the table's structure is checked. Then
``bench_channel`` on a streamed store of four blocks: its ``above`` must be the count of songs above tau.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pytest

import benchmarks.bench_search as bench
from lumina_audit.attribution import store

N = 1000


def _floats(cells: list[str]) -> list[float]:
    return [float(c) for c in cells]


def test_both_methods_at_a_thousand_songs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cells = bench.main(["--max", str(N), "--queries", "4", "--repeats", "1", "--tmp", str(tmp_path),
                        "--method", "both"])
    out = capsys.readouterr().out
    assert list(tmp_path.iterdir()) == []  # the stores are deleted
    v1, v2 = cells["v1"], cells["v2"]
    assert [r[:2] for r in v1] == [r[:2] for r in v2] == [[f"{N:,}", "P"], [f"{N:,}", "M"]]
    for r in v1:
        assert len(r) == 9
        single, batch, resident, dense = _floats(r[2:6])
        assert min(single, batch, resident, dense) > 0 and all(math.isfinite(x) for x in (single, dense))
        assert int(r[6]) >= 0 and int(r[7]) >= 0
        assert int(r[8]) >= 1  # query 0 is a catalog song: similarity 1, above tau
    for r in v2:
        assert len(r) == len(bench.V2_HEAD) == 23
        for group in range(3):  # single, batch, resident: v1, v2's search, v2, and the two ratios
            t1, ts, t2, search_ratio, ratio = _floats(r[2 + 5 * group:7 + 5 * group])
            assert t1 > 0 and ts >= 0 and t2 > 0 and search_ratio >= 0 and ratio > 0
        attr, db = _floats(r[17:19])
        assert attr >= 0 and db >= 0 and int(r[19]) >= 0 and int(r[20]) >= 0 and int(r[21]) >= 0
        assert float(r[22]) >= 0
    assert out.count(f"{N:,}") == 4 and out.count("store written in") == 1  # each row once; one store
    assert "lumina-attribution-v2 next to v1 (paired runs)" in out and "BLAS pools" in out


@pytest.mark.parametrize("channel", ["P", "M"])
def test_above_is_the_count_of_songs_above_tau(tmp_path: Path, channel: bench.Channel) -> None:
    path = tmp_path / "store.h5"
    bench.write_direct(path, bench.SPACE, N, seed=5)
    rows = store.read_store(path)
    matrix = rows.p if channel == "P" else rows.m
    queries = bench.unit_rows(np.random.default_rng(9), 4)
    queries[0] = matrix[17]
    tau = 3.0 / math.sqrt(bench.DIM)
    args = argparse.Namespace(block_rows=256, repeats=1, dense_max=N)  # four blocks, streamed
    cells = bench.bench_channel(path, channel, N, queries, tau, args)
    sims = matrix.astype(np.float64) @ queries[0].astype(np.float64)
    assert cells[:2] == [f"{N:,}", channel] and int(cells[-1]) == int(np.count_nonzero(sims > tau)) >= 1
