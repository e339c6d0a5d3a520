"""Benchmark: exact similarity search over synthetic catalogs of 10**3 to 10**6 songs.

    python benchmarks/bench_search.py [--max 1000000] [--queries 32] [--repeats 5] [--stream-10m]

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
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import h5py
import numpy as np
import numpy.typing as npt

from lumina_audit.attribution import store, store_writer
from lumina_audit.attribution.search import ResidentRows, similarities, top_and_threshold
from lumina_audit.signature.result import DIM, Signature
from lumina_audit.signature.space import SignatureConfig, SignatureSpace

SPACE = SignatureConfig().space({"state_dict.bin": "0" * 64, "compression_state_dict.bin": "1" * 64})
F32 = npt.NDArray[np.float32]
Channel = Literal["P", "M"]
CHUNK = 65536
TOP_K = 10


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


def row_text(cells: list[str]) -> str:
    widths = (11, 3, 10, 10, 10, 10, 9, 9, 6)
    return "  ".join(c.rjust(w) for c, w in zip(cells, widths, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max", type=int, default=1_000_000, help="largest catalog (a power of 10, >= 1000)")
    parser.add_argument("--queries", type=int, default=32, help="queries in the batched call")
    parser.add_argument("--repeats", type=int, default=5, help="runs of a single query (the median is shown)")
    parser.add_argument("--block-rows", type=int, default=65536)
    parser.add_argument("--dense-max", type=int, default=1_000_000, help="largest catalog timed densely")
    parser.add_argument("--stream-10m", action="store_true", help="also a 10**7-song store, if the disk allows")
    parser.add_argument("--tmp", default="/tmp")
    args = parser.parse_args()

    env = {k: os.environ.get(k, "unset") for k in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    try:
        info: list[dict[str, Any]] = importlib.import_module("threadpoolctl").threadpool_info()
        pools = ", ".join(f"{p['internal_api']}:{p['num_threads']}" for p in info)
    except ImportError:
        pools = "threadpoolctl not installed"
    load = ", ".join(f"{v:.2f}" for v in os.getloadavg())
    print(f"cpus {os.cpu_count()}, load average {load}; {env}; BLAS pools {pools}")
    print(f"top_k {TOP_K}, tau 3/sqrt(216) (mu + 3 sigma of random unit vectors), block_rows {args.block_rows}")

    tmp = Path(tempfile.mkdtemp(prefix="lumina-bench-search-", dir=args.tmp))
    try:
        check_direct_writer(tmp)
        sizes = [10**e for e in range(3, 8) if 10**e <= args.max]
        tau = 3.0 / math.sqrt(DIM)
        rng = np.random.default_rng(1)
        queries = unit_rows(rng, args.queries)
        print(row_text(["songs", "ch", "single ms", "batch ms", "resident", "dense ms", "peak1 MiB",
                        "peakB MiB", "above"]))
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
                print(row_text(bench_channel(path, c, n, q, tau, args)), flush=True)
            print(f"{'':>11}  (store written in {written:.1f} s, {path.stat().st_size / 2**20:,.0f} MiB)")
            path.unlink()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print("single/batch: streamed from the HDF5 store (page cache warm), ms per query; resident: in memory;"
          " dense: all N exact similarities, ms per query in a batch of 8")


if __name__ == "__main__":
    main()
