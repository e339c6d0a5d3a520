"""The GPU check: one command that proves the CUDA path and measures MusicGen-Large's shape (under 8 minutes).

    python -m scripts.gpu_check --out DIR              # on a machine with a CUDA GPU
    python -m scripts.gpu_check --out DIR --dry-run    # the same steps on the CPU, small sizes

(from the repository root, as every script).

Needs Python 3.11 with torch built for CUDA (2.11.0: the golden vectors' version), torchaudio,
audiocraft 1.3.0 (installed without its stale pins), numpy, soundfile, rfc8785 and omegaconf,
and pytest with hypothesis for the test step: the project's ``.venv`` (``make venv``), or
``pip install --require-hashes -r requirements/main.lock`` then ``pip install --no-deps
--require-hashes -r requirements/nodeps.lock``. A missing package is one line and exit 2, and
so is a machine without CUDA (unless ``--dry-run``). No network and no weights: the models
are the committed tiny checkpoint and random models built on the device.

It runs under the numerical pins (``device: cuda``, deterministic algorithms, no TF32),
prints progress, and writes ``DIR/gpu-check.json`` and ``DIR/gpu-check.md`` (and the test
step's log ``DIR/pytest-gpu.log``). Steps (``scripts/gpu_check_steps.py``; each is recorded with its
seconds and, if it fails, its error; a failed step does not stop the others, and the exit
status is then 1):

1. ``environment``: GPU, driver, CUDA, cuDNN, versions, the pins in force;
2. ``golden``: the golden clips twice on the device, both methods, compared bit for bit
   with each other, and how far they are from the CPU golden vectors (differing entries,
   relative L2 difference, cosine; on CUDA they are expected to differ in bits);
   ``golden_options``: each memory option (``sums: host``, ``gradients: streamed``, both)
   bit for bit against the first run; ``golden_batch``: ``chunk_batch`` 2 on a 30 s song,
   within float rounding of the unbatched signature, in another signature space;
3. ``large_*``: a random MusicGen-Large-shaped LM (48 x 2048, 32 heads, FFN 8192) and a random
   EnCodec of MusicGen's shape, built on the device: the FLOPs of one chunk
   (``benchmarks/musicgen_large.py``: formula, and ``FlopCounterMode``'s count), the LM's
   forward+backward seconds per chunk and the fraction of the fp32 peak (data sheet by name,
   and a measured 8192 x 8192 fp32 matmul as a second reference); the methods' seconds on the
   chunk averages (gradproj with its 1.12 GiB cache built, then held; gradstats); then a
   3-minute song with the default pins, with each memory option and with chunk batches of 2
   and 4: seconds per chunk, per song, and the peak device memory
   (``torch.cuda.max_memory_allocated``).
4. ``large_finetune_all``, ``large_finetune_layers``: ``lumina_audit.customization.tuning.finetune``
   (AdamW) of that LM on random codes of one chunk, every parameter and the 12 hooked layers
   (12-17, 42-47): one warm-up step, then 3 timed; the peak device memory above the model at
   rest and the seconds per step, each beside its paper figure (``benchmarks/musicgen_large.py``
   ``finetune_memory``, ``finetune_seconds``). Running out of memory is recorded as the result.
5. ``pytest_gpu``: ``tests/signature/test_gpu.py``.

The device steps run in one child process; if it dies (a CUDA fault), the steps left run in a
new one. ``--budget-s`` (default 420) bounds the whole: a step that cannot finish in what is
left is recorded as skipped. With ``--dry-run`` the same steps run on the CPU with the tiny
checkpoint, one golden clip, a 48 x 64 model, a 5 s song and 2 s chunks (the fine-tuning steps'
peak is then the profiler's count of live CPU tensor bytes); ``tests/scripts/test_gpu_check.py``
runs it. Estimated on an H100/H200-class GPU: about 4.5 minutes; at most 7.5.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from lumina_tools import ROOT
from lumina_tools.invocation import reexec_pinned, run_module

__all__ = ["FORMAT", "REQUIRED", "main", "missing_packages"]

FORMAT = "lumina-gpu-check"
#: Importable names the device steps need.
REQUIRED = ("torch", "torchaudio", "audiocraft", "numpy", "soundfile", "rfc8785", "omegaconf")
_PYTEST_TIMEOUT = 240.0


def missing_packages(names: tuple[str, ...] = REQUIRED) -> list[str]:
    """The names in ``names`` that cannot be imported here (found without importing them)."""
    missing = []
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(name)
    return missing


def _refuse(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _run_child(out: Path, dry: bool, steps: list[str], deadline: float) -> None:
    """Run the device steps in one child process; each writes ``out/steps/NAME.json`` as it ends."""
    args = ["--out", str(out.resolve()), "--child", ",".join(steps), "--deadline", repr(deadline)]
    timeout = max(1.0, deadline - time.time() + 15.0)
    try:
        run_module(__spec__, args + (["--dry-run"] if dry else []), timeout=timeout)
    except subprocess.TimeoutExpired:
        print("gpu-check: the device steps ran out of time", flush=True)


def _child(out: Path, dry: bool, names: list[str], deadline: float) -> None:
    from lumina_audit._internal.quiet import silence_libraries
    from lumina_audit.signature.pins import Pins
    from scripts.gpu_check_context import DRY, REAL, Context
    from scripts.gpu_check_steps import STEPS

    silence_libraries()
    ctx = Context(Pins(device="cpu" if dry else "cuda"), DRY if dry else REAL)
    folder = out / "steps"
    folder.mkdir(parents=True, exist_ok=True)
    todo = [(n, f, est) for n, f, est in STEPS if n in names]
    for i, (name, function, estimate) in enumerate(todo):
        (folder / "running").write_text(name)
        record: dict[str, Any] = {"ok": False, "seconds": 0.0, "error": None, "result": None}
        left = deadline - time.time()
        if not dry and left < estimate:
            record["error"] = f"skipped: {left:.0f} s left of the budget, the step needs about {estimate:.0f} s"
        else:
            print(f"gpu-check: [{i + 1}/{len(todo)}] {name} ...", flush=True)
            t0 = time.perf_counter()
            try:
                record["result"] = function(ctx)
                record["ok"] = True
            except Exception as exc:  # a failed step is recorded, and the next one runs
                record["error"] = f"{type(exc).__name__}: {exc}"[:2000]
            record["seconds"] = time.perf_counter() - t0
        state = "ok" if record["ok"] else f"FAILED ({record['error']})"
        print(f"gpu-check:     {name}: {state} in {record['seconds']:.1f} s", flush=True)
        (folder / f"{name}.json").write_text(json.dumps(record, indent=1, default=str))
    (folder / "running").unlink(missing_ok=True)


def _pytest(out: Path, deadline: float) -> dict[str, Any]:
    t0 = time.perf_counter()
    record: dict[str, Any] = {"ok": False, "seconds": 0.0, "error": None, "result": None}
    if importlib.util.find_spec("pytest") is None:
        record["error"] = "pytest is not installed"
        return record
    command = [sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "tests/signature/test_gpu.py"]
    try:
        proc = subprocess.run(command, cwd=ROOT, env=os.environ, capture_output=True, text=True, check=False,
                              timeout=max(1.0, min(_PYTEST_TIMEOUT, deadline - time.time() + 30.0)))
        text, rc = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        text, rc = f"{exc.stdout!s}{exc.stderr!s}\n(timed out)", -1
    (out / "pytest-gpu.log").write_text(text)
    lines = [line for line in text.splitlines() if line.strip()]
    record.update(ok=rc == 0, seconds=time.perf_counter() - t0,
                  result={"returncode": rc, "summary": lines[-1] if lines else "", "command": " ".join(command[1:])})
    if rc != 0:
        record["error"] = f"pytest exited {rc}: {lines[-1] if lines else ''}"
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m scripts.gpu_check", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path, help="folder for gpu-check.json and gpu-check.md")
    parser.add_argument("--dry-run", action="store_true", help="the same steps on the CPU, tiny sizes")
    parser.add_argument("--budget-s", type=float, default=420.0, help="seconds the whole check may take")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    args_list = list(sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(args_list)
    missing = missing_packages(REQUIRED)
    if missing:
        _refuse(f"missing Python package(s) {', '.join(missing)}; install the project's locked requirements "
                "(see this script's docstring)")
    from lumina_audit.signature.pins import Pins

    pins = Pins(device="cpu" if args.dry_run else "cuda")
    reexec_pinned(pins, args_list, __spec__)
    if args.child is not None:
        _child(args.out, args.dry_run, args.child.split(","), args.deadline or time.time() + args.budget_s)
        return
    if not args.dry_run:
        import torch

        if not torch.cuda.is_available():
            _refuse("no CUDA device here (torch.cuda.is_available() is False); --dry-run runs the steps on the "
                    "CPU")
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _refuse(f"{args.out}: cannot create the report folder ({exc.strerror})")
    main_run(args.out, args.dry_run, args.budget_s)


def main_run(out: Path, dry: bool, budget: float) -> None:
    from scripts.gpu_check_report import write_reports
    from scripts.gpu_check_steps import STEPS

    started, t0 = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), time.perf_counter()
    deadline = time.time() + budget
    folder = out / "steps"
    names = [n for n, _, _ in STEPS]
    for stale in folder.glob("*.json") if folder.exists() else ():
        stale.unlink()
    print(f"gpu-check: {'dry run on the CPU' if dry else 'CUDA'}, {len(names) + 1} steps, budget {budget:.0f} s",
          flush=True)
    crashed: dict[str, str] = {}
    while True:
        left = [n for n in names if not (folder / f"{n}.json").exists() and n not in crashed]
        if not left or time.time() > deadline - 60:
            break
        _run_child(out, dry, left, deadline - 60)  # a minute kept for the test step
        running = folder / "running"
        if running.exists():
            name = running.read_text().strip()
            crashed[name] = "the device process died during this step"
            running.unlink()
            print(f"gpu-check: the device process died in {name}; continuing with the steps left", flush=True)
    records: dict[str, Any] = {}
    for name in names:
        path = folder / f"{name}.json"
        if path.exists():
            records[name] = json.loads(path.read_text())
        else:
            records[name] = {"ok": False, "seconds": 0.0, "result": None,
                             "error": crashed.get(name, "not run: out of time")}
    print(f"gpu-check: [{len(names) + 1}/{len(names) + 1}] pytest_gpu ...", flush=True)
    records["pytest_gpu"] = _pytest(out, deadline)
    print(f"gpu-check:     pytest_gpu: {'ok' if records['pytest_gpu']['ok'] else 'FAILED'}", flush=True)
    doc = {"format": FORMAT, "version": 1, "dry_run": dry, "started_utc": started,
           "seconds": time.perf_counter() - t0, "ok": all(r["ok"] for r in records.values()), "steps": records}
    json_path, md_path = write_reports(out, doc)
    failed = [n for n, r in records.items() if not r["ok"]]
    print(f"gpu-check: {'all steps passed' if not failed else 'FAILED: ' + ', '.join(failed)} in "
          f"{doc['seconds']:.0f} s; reports {json_path} and {md_path}", flush=True)
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
