"""``benchmarks.bench_extract`` on two catalogs of two 1 s songs, engine local (seconds; no Ray cluster).

Its whole run through signed manifests and ``run_manifest``: two rounds of the throughput catalog, whose
stores must be byte-identical, every song's finish time recorded in order; then the memory part, a warm-up
run of one song and a run of two, each peak at or above the resident memory before it.
"""

from __future__ import annotations

import pytest

import benchmarks.bench_extract as bench


def test_throughput_and_memory(capsys: pytest.CaptureFixture[str]) -> None:
    figures = bench.main(["--songs", "2", "--seconds", "1", "--rounds", "2", "--skip-ray", "--memory", "2",
                          "--memory-seconds", "1", "--probe-seconds", "0.2"])
    out = capsys.readouterr().out
    runs = figures["throughput"]["runs"]
    assert figures["throughput"]["identical"] and "stores byte-identical across all runs: yes" in out
    assert [(r["engine"], r["round"]) for r in runs] == [("local", 1), ("local", 2)]
    for r in runs:
        finished = r["finished_s"]
        assert len(finished) == 2 and 0 < finished[0] <= finished[1] <= r["wall_s"] and r["steady"] > 0
    memory = figures["memory"]
    assert [(m["songs"], m["warm_up"]) for m in memory] == [(1, True), (2, False)]
    assert all(m["peak_mib"] >= 0 and m["wall_s"] > 0 for m in memory)
    assert out.count("CPU probe: two busy processes got") == 2 and "process peak RSS" in out
