"""Benchmark: an Extract run's songs per second (local engine, Ray with 1 and 2 workers) and its peak memory.

    python -m benchmarks.bench_extract [--songs 96] [--seconds 4] [--rounds 2] [--memory 10,1000]
                                       [--memory-seconds 1] [--skip-ray] [--skip-memory]

(from the repository root, as every benchmark).

Everything runs through signed manifests and ``run_manifest``, as ``lumina-audit manifest run`` does,
on the committed tiny checkpoint, under the default pins (CPU, 1 thread per worker):

- throughput: one catalog of ``--songs`` synthetic songs of ``--seconds`` s, extracted with
  ``engine: local``, then ``engine: ray`` with 1 and 2 workers (a local cluster on loopback,
  started and stopped by each run), ``--rounds`` times in that order. Per run: the wall time
  (cluster and worker start-up included), the songs per second over the whole run, and the
  steady rate over the second half of the songs, ``(songs / 2) / (t_last - t_half)``, when every
  worker is up: what a large catalog sees. The stores of all runs must be byte-identical
  (checked, printed);
- memory: catalogs of ``--memory`` songs (default 10 and 1000) of ``--memory-seconds`` s,
  ``engine: local``, one process: before each run freed heap goes back to the kernel
  (``malloc_trim``) and the kernel's peak mark is reset (``/proc/self/clear_refs``); the run's
  peak is ``VmHWM`` after it minus ``VmRSS`` before it. A warm-up run of one song goes first.

The machine's CPU count and load average are printed with the figures, and a probe of what
the machine gives right now: a busy loop of pure Python in one process, then in two at once,
for ``--probe-seconds``; on a shared machine whose cores are busy with other work two workers
cannot run twice as fast as one, and the probe says how much more two processes got.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from lumina_tools.environment import proc_status, reset_rss_peak
from lumina_tools.invocation import reexec_pinned


def _manifest(name: str, catalog: Path, digests: dict[str, str], model: Path, extra: str = "") -> str:
    sha = ", ".join(f"{k}: {v}" for k, v in sorted(digests.items()))
    return f"""apiVersion: lumina-audit/v2
kind: Extract
metadata: {{name: {name}}}
seed: 422024
model:
  directory: {model}
  sha256: {{{sha}}}
ledger: ledger
pins: {{mkl_cbwr: COMPATIBLE, onednn: false}}  # the program's default pins (a manifest's omitted pins are older)
inputs:
  - path: {catalog}
outputs: {{store: out/catalog.h5}}
{extra}"""


class World:
    """A work folder with two keys, a trust file and the tiny checkpoint's digests.

    Two principals sign every manifest, as the default signing policy asks (a trust file without
    ``@policy`` line); the operator's key also signs the ledger.
    """

    def __init__(self, root: Path) -> None:
        from lumina_audit.evidence import keys
        from lumina_audit.evidence.trust import format_entry, load_trust
        from lumina_audit.signature import golden

        self.root = root
        self.key, self.reviewer = keys.generate(), keys.generate()
        (root / "trust").write_text(
            format_entry("op@lab", ["lumina-audit/manifest", "lumina-audit/ledger"], self.key.public_key()) + "\n"
            + format_entry("reviewer@lab", ["lumina-audit/manifest"], self.reviewer.public_key()) + "\n")
        self.trust = load_trust(root / "trust")
        gf = golden.read(golden.default_root())
        self.model, self.digests = gf.model_dir, dict(gf.digests)

    def catalog(self, name: str, songs: int, seconds: float) -> Path:
        from lumina_audit._internal.synth import SongSpec, render, write_wav

        folder = self.root / name
        folder.mkdir()
        for i in range(songs):
            write_wav(folder / f"song{i:04d}.wav", render(SongSpec(seed=40000 + i, seconds=seconds)), 32000, 16)
        return folder

    def run(self, name: str, catalog: Path, extra: str = "") -> tuple[Path, float, list[float]]:
        """Sign and run one Extract; the store, the wall time and when each song was finished."""
        from lumina_audit.evidence.manifest import sign_manifest
        from lumina_audit.runner.run import run_manifest

        folder = self.root / name
        folder.mkdir()
        manifest = folder / "extract.yaml"
        manifest.write_text(_manifest(name, catalog, self.digests, self.model, extra))
        sign_manifest(manifest, self.key)
        sign_manifest(manifest, self.reviewer)
        finished: list[float] = []
        seen = [0]

        def progress(p: Any) -> None:
            if p.done > seen[0]:
                seen[0] = p.done
                finished.append(time.perf_counter())

        start = time.perf_counter()
        run_manifest(manifest, self.trust, self.key, progress)
        return folder / "out" / "catalog.h5", time.perf_counter() - start, [t - start for t in finished]


_BUSY = "import time\nn, end = 0, time.perf_counter() + {s}\nwhile time.perf_counter() < end:\n    n += 1\nprint(n)"


def capacity(seconds: float) -> float:
    """How many times the work of one busy process two busy processes got, measured now."""
    import subprocess

    def busy(k: int) -> int:
        procs = [subprocess.Popen([sys.executable, "-c", _BUSY.format(s=seconds)], stdout=subprocess.PIPE, text=True)
                 for _ in range(k)]
        return sum(int(p.communicate()[0]) for p in procs)

    one = busy(1)
    return busy(2) / one


def throughput(world: World, songs: int, seconds: float, with_ray: bool, rounds: int) -> dict[str, Any]:
    """Extract one catalog with each engine, ``rounds`` times; per run its figures, and whether the stores agree."""
    catalog = world.catalog("throughput", songs, seconds)
    runs = [("local", "")]
    if with_ray:
        runs += [(f"ray-{n}", f"execution: {{engine: ray, workers: {n}}}\n") for n in (1, 2)]
    print(f"\nThroughput: {songs} songs of {seconds:g} s, 1 thread per worker, {rounds} round(s)")
    print(f"{'engine':<8} {'round':>5} {'wall s':>8} {'songs/s (run)':>14} {'songs/s (steady)':>17} "
          f"{'first song s':>13} {'load':>5}")
    stores: set[bytes] = set()
    steady: dict[str, list[float]] = {}
    done: list[dict[str, Any]] = []
    for r in range(rounds):
        for name, extra in runs:
            store, wall, finished = world.run(f"{name}-{r}", catalog, extra)
            stores.add(store.read_bytes())
            half = len(finished) // 2
            rate = (len(finished) - half) / (finished[-1] - finished[half - 1])
            steady.setdefault(name, []).append(rate)
            done.append({"engine": name, "round": r + 1, "wall_s": wall, "finished_s": finished, "steady": rate})
            print(f"{name:<8} {r + 1:>5} {wall:8.1f} {songs / wall:14.3f} {rate:17.3f} {finished[0]:13.1f} "
                  f"{os.getloadavg()[0]:5.2f}", flush=True)
    print(f"stores byte-identical across all runs: {'yes' if len(stores) == 1 else 'NO'}")
    if with_ray:
        best = {name: max(rates) for name, rates in steady.items()}
        print(f"steady rate, best round: local {best['local']:.3f}, ray-1 {best['ray-1']:.3f}, ray-2 "
              f"{best['ray-2']:.3f} songs/s; 2 workers over 1: {best['ray-2'] / best['ray-1']:.2f}x")
    return {"runs": done, "identical": len(stores) == 1}


def memory(world: World, sizes: list[int], seconds: float) -> list[dict[str, Any]]:
    """Each run's peak resident memory above what the process held before it (a warm-up run of one song first)."""
    print(f"\nPeak memory of a run above what the process held before it (engine local, songs of {seconds:g} s)")
    print(f"{'songs':>6} {'peak MiB':>9} {'wall s':>8}")
    rows: list[dict[str, Any]] = []
    for n in [1, *sizes]:
        catalog = world.catalog(f"memory-{n}", n, seconds)
        base = reset_rss_peak(trim=True)
        _, wall, _ = world.run(f"memory-run-{n}", catalog)
        peak = (proc_status("VmHWM") - base) / 2**20
        rows.append({"songs": n, "peak_mib": peak, "wall_s": wall, "warm_up": n == 1})
        print(f"{n:>6} {peak:9.1f} {wall:8.1f}" + ("   (warm-up: first model load, caches)" if n == 1 else ""),
              flush=True)
    print(f"process peak RSS (imports included): {proc_status('VmHWM') / 2**20:.0f} MiB")
    return rows


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure and print; the figures: ``throughput`` and ``memory`` (absent when skipped)."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_extract", description=__doc__.splitlines()[0])
    parser.add_argument("--songs", type=int, default=96)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--memory", default="10,1000", help="comma-separated catalog sizes")
    parser.add_argument("--memory-seconds", type=float, default=1.0)
    parser.add_argument("--skip-ray", action="store_true")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--probe-seconds", type=float, default=5.0)
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(args_list)

    from lumina_audit.signature.pins import Pins

    reexec_pinned(Pins(), args_list, __spec__)
    from lumina_audit._internal.quiet import silence_libraries

    silence_libraries()
    print(f"{os.cpu_count()} logical CPUs; load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} "
          f"{os.getloadavg()[2]:.2f} at the start")
    print(f"CPU probe: two busy processes got {capacity(args.probe_seconds):.2f}x the work of one "
          f"(load average {os.getloadavg()[0]:.2f})")
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-extract-") as tmp:
        world = World(Path(tmp))
        figures["throughput"] = throughput(world, args.songs, args.seconds, not args.skip_ray, args.rounds)
        print(f"CPU probe: two busy processes got {capacity(args.probe_seconds):.2f}x the work of one "
              f"(load average {os.getloadavg()[0]:.2f})")
        if not args.skip_memory:
            figures["memory"] = memory(world, [int(x) for x in args.memory.split(",")], args.memory_seconds)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f} at the end")
    return figures


if __name__ == "__main__":
    main()
