"""Benchmark: exact similarity search over synthetic catalogs of 10**3 to 10**6 songs.

    python -m benchmarks.bench_search [--max 1000000] [--queries 32] [--repeats 5] [--stream-10m]
                                      [--method v1|v2|both]

(from the repository root, as every benchmark).

For each catalog size it writes a store of random unit float32 signatures into a
temporary folder under /tmp (deleted at the end), then, per channel, times
:func:`lumina_audit.attribution.search.top_and_threshold` (streamed from the HDF5 file):

- ``single``: one query, the median of ``--repeats`` runs;
- ``batch``: ``--queries`` queries in one call, time per query (median of 3);
- ``resident``: one query against the catalog held in memory
  (:class:`ResidentRows`, read and checked once beforehand);
- ``dense``: :func:`similarities` (all N exact similarities, as calibration
  uses them), time per query in a batch of 8;
- peak memory of a single and a batched streamed call (tracemalloc: every numpy
  and h5py buffer is traced), above what was allocated before the call.

With ``--method v2`` or ``both`` (the default) a second table sets ``lumina-attribution-v2``
next to v1 on the same store and queries: per query, an :class:`LlrKey` (as the runner makes
one per query), :func:`top_by_key` with the cut of ``report_at`` and :func:`attribute_channel`
(the listed songs, the database-search figure), against v1's :func:`top_and_threshold`. v1 and
v2 runs alternate (v1, v2, v1, v2, ...), so that a change in the machine's load falls on both;
the medians and their ratio v2/v1 are shown for a single streamed query, a batch (time per
query) and a single query against the resident catalog, with v2's ``attribute_channel`` alone
and v2's peak memory. Its settings (a random cohort per catalog, the model, the bounds) are
printed before measuring. ``--method v1`` gives the first table only, ``v2`` the second only.

Stores of up to 10**4 songs are written with :func:`store_writer.create_or_append`;
larger ones are written directly with h5py in the same format (checked against
``create_or_append`` on the smallest size), leaving ``raw_p``/``raw_m``
unwritten (HDF5 fill value 0, no disk space): the search never reads them.
``--stream-10m`` adds a 10**7-song store (channel P only, 8.6 GB) when the
disk has room. Thread settings are taken as they are and reported.
"""

from __future__ import annotations

import argparse
import importlib
import math
import os
import shutil
import statistics
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np
import numpy.typing as npt

from lumina_audit.attribution import store, store_writer
from lumina_audit.attribution.calibrators import LogitFit
from lumina_audit.attribution.cohort import Cohort
from lumina_audit.attribution.likelihood_ratio import (
    ChannelLRResult,
    LlrKey,
    attribute_channel,
    database_search,
    report_cut,
)
from lumina_audit.attribution.metrics import TIPPETT_GRID
from lumina_audit.attribution.search import (
    KeyedHits,
    ResidentRows,
    similarities,
    top_and_threshold,
    top_by_key,
)
from lumina_audit.signature.result import DIM, Signature
from lumina_audit.signature.space import SignatureConfig, SignatureSpace

SPACE = SignatureConfig().space({"state_dict.bin": "0" * 64, "compression_state_dict.bin": "1" * 64})
F32 = npt.NDArray[np.float32]
Channel = Literal["P", "M"]
CHUNK = 65536
TOP_K = 10
# lumina-attribution-v2 settings
MODEL = LogitFit(1.5, -4.0, 0)
LOWER, UPPER, REPORT_AT = -1.5, 2.5, 1.0
H2_TRIALS, H2_UNITS = 10_000, 100


def unit_rows(rng: np.random.Generator, n: int) -> F32:
    raw = rng.standard_normal((n, DIM))
    unit: F32 = (raw / np.linalg.norm(raw, axis=1, keepdims=True)).astype(np.float32)
    return unit


def hexes(n: int, offset: int) -> npt.NDArray[np.bytes_]:
    return np.array([format(offset + i, "064x").encode("ascii") for i in range(n)], dtype="S64")


def write_direct(path: Path, space: SignatureSpace, n: int, seed: int, channels: str = "PM") -> None:
    """A store of ``n`` random unit signatures, in the layout of :mod:`lumina_audit.attribution.store`."""
    rng = np.random.default_rng(seed)
    with h5py.File(path, "w", libver=("v110", "v110"), track_order=True) as f:
        f.attrs["format"] = store.FORMAT
        f.attrs["version"] = np.int64(1)  # the version 1 layout, written directly
        f.attrs["method"] = str(space.as_dict()["method"])
        f.attrs["signature_space"] = space.canonical_json.decode("utf-8")
        f.attrs["signature_space_sha256"] = space.digest
        ids = np.array([f"song-{i}" for i in range(n)], dtype=object)
        f.create_dataset("song_ids", data=ids, dtype=h5py.string_dtype("utf-8"), track_times=False)
        f.create_dataset("file_sha256", data=hexes(n, 1 << 128), track_times=False)
        f.create_dataset("pcm_sha256", data=hexes(n, 0), track_times=False)
        f.create_dataset("chunks", data=np.ones(n, dtype="<i8"), track_times=False)
        for name, dtype in (("signatures_p", "<f4"), ("signatures_m", "<f4"), ("raw_p", "<f8"), ("raw_m", "<f8")):
            f.create_dataset(name, shape=(n, DIM), dtype=dtype, track_times=False)
        for start in range(0, n, CHUNK):
            m = min(CHUNK, n - start)
            for ch in channels:
                f[f"signatures_{ch.lower()}"][start : start + m] = unit_rows(rng, m)


def write_with_store(path: Path, space: SignatureSpace, n: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    p, m = unit_rows(rng, n), unit_rows(rng, n)
    zero = np.zeros(DIM)
    sigs = [
        Signature(f"song-{i}", format(i + (1 << 128), "064x"), format(i, "064x"), 1, zero, zero, p[i], m[i])
        for i in range(n)
    ]
    store_writer.create_or_append(path, space, sigs)


def check_direct_writer(tmp: Path) -> None:
    a, b = tmp / "direct.h5", tmp / "store.h5"
    write_direct(a, SPACE, 1000, seed=3)
    write_with_store(b, SPACE, 1000, seed=3)
    x, y = store.read_store(a), store.read_store(b)
    same = (x.song_ids, x.file_sha256, x.pcm_sha256, x.chunks) == (y.song_ids, y.file_sha256, y.pcm_sha256, y.chunks)
    if not (same and np.array_equal(x.p, y.p) and np.array_equal(x.m, y.m) and np.array_equal(x.raw_p, y.raw_p)):
        raise SystemExit("the direct writer does not reproduce create_or_append")
    a.unlink()
    b.unlink()


def timed(fn: Callable[[], Any], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def peak_mib(fn: Callable[[], Any]) -> float:
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        fn()
        return (tracemalloc.get_traced_memory()[1] - base) / 2**20
    finally:
        tracemalloc.stop()


def time_resident(path: Path, ch: Channel, q1: F32, tau: float, args: argparse.Namespace) -> float:
    resident = ResidentRows(np.concatenate([b for _, b in store.iter_blocks(path, ch, args.block_rows)]))
    return timed(lambda: resident.top_and_threshold(q1, tau, TOP_K), args.repeats)


def bench_channel(path: Path, ch: Channel, n: int, queries: F32, tau: float, args: argparse.Namespace) -> list[str]:
    q1 = queries[:1]
    top_and_threshold(path, ch, q1, tau, TOP_K)  # warm the page cache
    single = timed(lambda: top_and_threshold(path, ch, q1, tau, TOP_K, args.block_rows), args.repeats)
    batch = timed(lambda: top_and_threshold(path, ch, queries, tau, TOP_K, args.block_rows), 3) / len(queries)
    resident = time_resident(path, ch, q1, tau, args) if n else math.nan
    dense = math.nan
    if n <= args.dense_max:
        dense = timed(lambda: similarities(path, ch, queries[:8], args.block_rows), 1) / 8
    mem1 = peak_mib(lambda: top_and_threshold(path, ch, q1, tau, TOP_K, args.block_rows))
    memb = peak_mib(lambda: top_and_threshold(path, ch, queries, tau, TOP_K, args.block_rows))
    hits = top_and_threshold(path, ch, q1, tau, TOP_K, args.block_rows)[0]
    ms = [f"{1e3 * v:.1f}" if math.isfinite(v) else "-" for v in (single, batch, resident, dense)]
    return [f"{n:,}", ch, *ms, f"{mem1:.0f}", f"{memb:.0f}", str(int(hits.above.sum()))]


class V2:
    """One catalog's v2 attribution inputs: a random cohort, the query cohorts, the song ids, Tippett counts."""

    def __init__(self, n: int, queries: F32, block_rows: int) -> None:
        rng = np.random.default_rng(n + 1)
        self.cohort = Cohort(rng.uniform(0.0, 0.3, n), rng.uniform(0.05, 0.3, n))
        self.mu_q: list[float] = np.asarray(rng.uniform(0.0, 0.3, queries.shape[0])).tolist()
        self.sd_q: list[float] = np.asarray(rng.uniform(0.05, 0.3, queries.shape[0])).tolist()
        self.song_ids = [f"song-{i}" for i in range(n)]  # as both writers name them
        h2 = np.sort(rng.normal(-2.0, 1.0, H2_TRIALS))  # validation H2 log10 LRs
        self.tippett_h2 = [H2_TRIALS - int(i) for i in np.searchsorted(h2, TIPPETT_GRID.values, side="left")]
        self.block_rows = block_rows
        self.cut = report_cut(REPORT_AT, UPPER)
        self.search_s = 0.0  # the search part (LlrKey + top_by_key) of the last run, seconds

    def keys(self, count: int) -> list[LlrKey]:
        return [LlrKey(self.cohort, self.mu_q[i], self.sd_q[i], MODEL, self.block_rows) for i in range(count)]

    def attribute(self, hits: KeyedHits, key: LlrKey) -> ChannelLRResult:
        return attribute_channel(hits, key, self.song_ids, proposition="derived-copy", lower=LOWER, upper=UPPER,
                                 report_at=REPORT_AT, top_k=TOP_K, tippett_h2=self.tippett_h2, h2_trials=H2_TRIALS,
                                 h2_units=H2_UNITS)

    def run(self, search: Callable[[list[LlrKey]], list[KeyedHits]], count: int) -> list[ChannelLRResult]:
        t0 = time.perf_counter()
        keys = self.keys(count)
        hits = search(keys)
        self.search_s = time.perf_counter() - t0
        return [self.attribute(h, k) for h, k in zip(hits, keys, strict=True)]

    def streamed(self, path: Path, ch: Channel, queries: F32) -> list[ChannelLRResult]:
        return self.run(lambda keys: top_by_key(path, ch, queries, keys, self.cut, TOP_K, self.block_rows),
                        queries.shape[0])

    def resident(self, rows: ResidentRows, queries: F32) -> list[ChannelLRResult]:
        return self.run(lambda keys: rows.top_by_key(queries, keys, self.cut, TOP_K), queries.shape[0])


def paired(v1: Callable[[], Any], v2: Callable[[], Any], v2_obj: V2, repeats: int) -> tuple[float, float, float]:
    """Medians of ``repeats`` alternating runs (v1, v2, v1, v2, ...): v1, v2's search part, v2 in all (seconds)."""
    t1: list[float] = []
    ts: list[float] = []
    t2: list[float] = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        v1()
        t1.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        v2()
        t2.append(time.perf_counter() - t0)
        ts.append(v2_obj.search_s)
    return statistics.median(t1), statistics.median(ts), statistics.median(t2)


def bench_v2(path: Path, ch: Channel, n: int, queries: F32, tau: float, args: argparse.Namespace) -> list[str]:
    """v1 against v2 on one channel: single streamed, batch per query, resident single; v2's attribution and peaks."""
    q1, nq = queries[:1], queries.shape[0]
    v2 = V2(n, queries, args.block_rows)
    t0 = time.perf_counter()
    v2.keys(1)  # the cohort's per-block extremes: once per cohort
    extremes = time.perf_counter() - t0
    top_and_threshold(path, ch, q1, tau, TOP_K, args.block_rows)  # warm the page cache
    first = v2.streamed(path, ch, q1)[0]
    single = paired(lambda: top_and_threshold(path, ch, q1, tau, TOP_K, args.block_rows),
                    lambda: v2.streamed(path, ch, q1), v2, args.repeats)
    batch = paired(lambda: top_and_threshold(path, ch, queries, tau, TOP_K, args.block_rows),
                   lambda: v2.streamed(path, ch, queries), v2, 3)
    rows = ResidentRows(np.concatenate([b for _, b in store.iter_blocks(path, ch, args.block_rows)]),
                        args.block_rows)
    res = paired(lambda: rows.top_and_threshold(q1, tau, TOP_K), lambda: v2.resident(rows, q1), v2, args.repeats)
    key = v2.keys(1)[0]
    hits = rows.top_by_key(q1, [key], v2.cut, TOP_K)[0]
    attr = timed(lambda: v2.attribute(hits, key), args.repeats)
    log10_lr = v2.attribute(hits, key).entries[0].log10_lr
    db = timed(lambda: database_search(log10_lr, v2.tippett_h2, H2_TRIALS, H2_UNITS, n), args.repeats)
    mem1 = peak_mib(lambda: v2.streamed(path, ch, q1))
    memb = peak_mib(lambda: v2.streamed(path, ch, queries))
    cells = [f"{n:,}", ch]
    for (t1, ts, t2), per in ((single, 1), (batch, nq), (res, 1)):
        cells += [f"{1e3 * t1 / per:.1f}", f"{1e3 * ts / per:.1f}", f"{1e3 * t2 / per:.1f}", f"{ts / t1:.2f}",
                  f"{t2 / t1:.2f}"]
    return [*cells, f"{1e3 * attr:.1f}", f"{1e3 * db:.1f}", f"{mem1:.0f}", f"{memb:.0f}", str(first.reported),
            f"{1e3 * extremes:.1f}"]


V2_HEAD = ["songs", "ch", *(f"{m} {c}" for m in ("1", "B", "R") for c in ("v1", "v2s", "v2", "s/v1", "v2/v1")),
           "attr", "db", "pk1", "pkB", "listed", "extr"]


def v2_text(cells: list[str]) -> str:
    widths = (11, 2, *(7, 7, 7, 6, 6) * 3, 6, 6, 5, 5, 6, 5)
    return " ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))


def row_text(cells: list[str]) -> str:
    widths = (11, 3, 10, 10, 10, 10, 9, 9, 6)
    return "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))


def main(argv: Sequence[str] | None = None) -> dict[str, list[list[str]]]:
    """Run the benchmark and print its tables; their rows (cells): ``v1`` and ``v2``."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_search", description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=1_000_000, help="largest catalog (a power of 10, >= 1000)")
    parser.add_argument("--queries", type=int, default=32, help="queries in the batched call")
    parser.add_argument("--repeats", type=int, default=5, help="runs of a single query (the median is shown)")
    parser.add_argument("--block-rows", type=int, default=65536)
    parser.add_argument("--dense-max", type=int, default=1_000_000, help="largest catalog timed densely")
    parser.add_argument("--stream-10m", action="store_true", help="also a 10**7-song store, if the disk allows")
    parser.add_argument("--tmp", default="/tmp")
    parser.add_argument("--method", choices=("v1", "v2", "both"), default="both",
                        help="v1: the v1 table; v2: v2 next to v1 (paired runs); both: both tables")
    args = parser.parse_args(argv)

    env = {k: os.environ.get(k, "unset") for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    try:
        info: list[dict[str, Any]] = importlib.import_module("threadpoolctl").threadpool_info()
        pools = ", ".join(f"{p['internal_api']}:{p['num_threads']}" for p in info)
    except ImportError:
        pools = "threadpoolctl not installed"
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"cpus {os.cpu_count()}, load average {load}; {env}; BLAS pools {pools}")
    print(f"top_k {TOP_K}, tau 3/sqrt(216) (mu + 3 sigma of random unit vectors), block_rows {args.block_rows}")
    if args.method != "v1":
        print(f"v2: a random cohort per catalog (mu_j ~ U(0, 0.3), sd_j ~ U(0.05, 0.3)); per query mu_q ~ U(0, 0.3), "
              f"sd_q ~ U(0.05, 0.3); model a {MODEL.a}, b {MODEL.b}; bounds [{LOWER}, {UPPER}]; report_at "
              f"{REPORT_AT} (cut {report_cut(REPORT_AT, UPPER)!r}); top_k {TOP_K}; Tippett H2 counts of "
              f"{H2_TRIALS} log10 LRs ~ N(-2, 1) in {H2_UNITS} units; per query: LlrKey + top_by_key + "
              "attribute_channel; v1: top_and_threshold; v1 and v2 runs alternate")

    cells: dict[str, list[list[str]]] = {"v1": [], "v2": []}
    tmp = Path(tempfile.mkdtemp(prefix="lumina-bench-search-", dir=args.tmp))
    try:
        check_direct_writer(tmp)
        sizes = [10**e for e in range(3, 8) if 10**e <= args.max]
        tau = 3.0 / math.sqrt(DIM)
        rng = np.random.default_rng(1)
        queries = unit_rows(rng, args.queries)
        v1_head = row_text(["songs", "ch", "single ms", "batch ms", "resident", "dense ms", "peak1 MiB",
                            "peakB MiB", "above"])
        v2_head = v2_text(V2_HEAD)
        v2_rows: list[str] = []
        if args.method != "v2":
            print(v1_head)
        plan: list[tuple[int, str]] = [(n, "PM") for n in sizes]
        if args.stream_10m:
            need = 10**7 * DIM * 4 * 1.2
            free = shutil.disk_usage(tmp).free
            if free > 2 * need:
                plan.append((10**7, "P"))
            else:
                print(f"10**7 skipped: {free / 2**30:.1f} GiB free, {2 * need / 2**30:.1f} GiB wanted")
        for n, channels in plan:
            path = tmp / f"catalog-{n}.h5"
            t0 = time.perf_counter()
            if n <= 10_000:
                write_with_store(path, SPACE, n, seed=n)
            else:
                write_direct(path, SPACE, n, seed=n, channels=channels)
            written = time.perf_counter() - t0
            q = queries.copy()
            q[0] = next(store.iter_blocks(path, "P", 1))[1][0]  # one query is a catalog song
            for ch in channels:
                c: Channel = "P" if ch == "P" else "M"
                if args.method != "v2":
                    cells["v1"].append(bench_channel(path, c, n, q, tau, args))
                    print(row_text(cells["v1"][-1]), flush=True)
                if args.method != "v1":
                    cells["v2"].append(bench_v2(path, c, n, q, tau, args))
                    v2_rows.append(v2_text(cells["v2"][-1]))
                    if args.method == "v2":
                        print(v2_rows[-1] if len(v2_rows) > 1 else f"{v2_head}\n{v2_rows[-1]}", flush=True)
            print(f"{'':>11}  (store written in {written:.1f} s, {path.stat().st_size / 2**20:,.0f} MiB)")
            path.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if args.method != "v2":
        print("single/batch: streamed from the HDF5 store (page cache warm), ms per query; resident: in memory;"
              " dense: all N exact similarities, ms per query in a batch of 8")
    if args.method != "v1":
        if args.method == "both":
            print(f"\nlumina-attribution-v2 next to v1 (paired runs)\n{v2_head}")
            print("\n".join(v2_rows))
        print(f"1: single query streamed; B: batch of {args.queries} streamed, per query; R: single query, "
              "resident catalog (ResidentRows); ms per query. v1: top_and_threshold; v2s: v2's search (LlrKey + "
              "top_by_key); v2: v2 in all (+ attribute_channel); s/v1, v2/v1: ratios. attr: attribute_channel, "
              "one query, ms; db: its database_search alone, ms; pk1/pkB: v2's peak MiB streamed, 1 / batch; "
              "listed: songs of query 0 at or above report_at; extr: ms to make a cohort's first key")
    return cells


if __name__ == "__main__":
    main()
