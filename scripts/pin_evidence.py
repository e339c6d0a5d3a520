"""Evidence for the default numerical pins: which settings change a signature's bits.

For each variant of :class:`lumina_audit.signature.pins.Pins` it runs a fresh process
under exactly that pinned environment, computes the golden clips' signatures
and prints a digest of all their bits. Variants that print the same digest
produced identical bits.

A second table stands in for other CPUs: MKL picks its kernels by vendor and instruction
set, so each of two pin sets (the pins before 2026-12-04, MKL's default branch with oneDNN
on; and today's, ``MKL_CBWR=COMPATIBLE`` with oneDNN off) is run with MKL limited to AVX2
and to SSE4.2 (``MKL_ENABLE_INSTRUCTIONS``, a variable the pins own, set here on purpose and
let through the environment check of this script's child only). Pins that hold across CPUs
print one digest per set.

    python -m scripts.pin_evidence [--clips N]
    python -m scripts.pin_evidence --emulate EPYC-Rome [--clips N]

``--emulate CPU`` runs both pin sets of the second table natively and under
``qemu-x86_64 -cpu CPU`` (Debian's ``qemu-user``: QEMU's user mode, which reports that CPU, here
an AMD EPYC with AVX2, to MKL, oneDNN, torch and glibc, and computes every instruction in
software); the first two golden clips by default, about 10 minutes per emulated run.

(from the repository root, as every script).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import replace

from lumina_audit.signature.pins import LEGACY_PINS, Pins, pinned_environ
from lumina_tools.files import GOLDEN
from lumina_tools.invocation import run_module


def variants() -> dict[str, dict[str, object]]:
    base: dict[str, object] = {}
    return {
        "default pins (1 thread, avx2, MKL_CBWR=COMPATIBLE, oneDNN off)": base,
        "threads=2": {"threads": 2},
        "threads=3": {"threads": 3},
        "ATEN_CPU_CAPABILITY unset": {"aten_cpu_capability": None},
        "ATEN_CPU_CAPABILITY=default": {"aten_cpu_capability": "default"},
        "ONEDNN_MAX_CPU_ISA unset": {"onednn_max_cpu_isa": None},
        "threads=2 oneDNN on": {"threads": 2, "onednn": True},
        "MKL_CBWR unset (MKL's default branch)": {"mkl_cbwr": None},
        "MKL_CBWR=AUTO": {"mkl_cbwr": "AUTO"},
        "oneDNN on (ISA capped at AVX2)": {"onednn": True},
        "oneDNN on, ONEDNN_MAX_CPU_ISA unset": {"onednn": True, "onednn_max_cpu_isa": None},
    }


#: (pins, caller variables) per row of the second table: the pins of before (:data:`LEGACY_PINS`) and today's.
FOREIGN: dict[str, tuple[Pins, dict[str, str]]] = {
    "before: MKL default branch, oneDNN on": (LEGACY_PINS, {}),
    "before, MKL limited to AVX2": (LEGACY_PINS, {"MKL_ENABLE_INSTRUCTIONS": "AVX2"}),
    "before, MKL limited to SSE4.2": (LEGACY_PINS, {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}),
    "now: MKL_CBWR=COMPATIBLE, oneDNN off": (Pins(), {}),
    "now, MKL limited to AVX2": (Pins(), {"MKL_ENABLE_INSTRUCTIONS": "AVX2"}),
    "now, MKL limited to SSE4.2": (Pins(), {"MKL_ENABLE_INSTRUCTIONS": "SSE4_2"}),
}


def run_child(pins: Pins, clips: int, extra: Mapping[str, str] | None = None,
              prefix: Sequence[str] = ()) -> subprocess.CompletedProcess[str]:
    """:func:`child` in a fresh process under exactly ``pins``, plus the caller variables ``extra`` (owned ones let
    through its environment check), started behind ``prefix`` (an emulator) when given."""
    extra = dict(extra or {})
    return run_module(__spec__, ["--child", json.dumps(pins.as_json()), str(clips), *extra],
                      {**pinned_environ(pins, os.environ), **extra}, prefix, capture_output=True)


def _line(out: subprocess.CompletedProcess[str]) -> str:
    return out.stdout.strip().splitlines()[-1] if out.returncode == 0 else f"failed: {out.stderr[-300:]}"


def child(pins_json: str, clips: int, extra: list[str]) -> None:
    from lumina_audit._internal.quiet import silence_libraries
    from lumina_audit.signature import golden
    from lumina_audit.signature.session import Session

    silence_libraries()
    if extra:
        # This evidence run varies owned variables on purpose: the check sees the environment without them.
        # The check is replaced where the library looks it up (the module's global), for this child only.
        pins_module = sys.modules[Pins.__module__]
        check = pins_module.check_environment

        def check_without_extra(p: Pins) -> None:
            saved = {k: os.environ.pop(k) for k in extra}
            try:
                check(p)
            finally:
                os.environ.update(saved)

        pins_module.check_environment = check_without_extra  # type: ignore[attr-defined]
    pins = Pins(**json.loads(pins_json))
    gf = golden.read(GOLDEN)
    session = Session.open(gf.model_dir, gf.digests, pins)
    h = hashlib.sha256()
    for path, exp in gf.expected[:clips]:
        song_id = next(iter(exp.values())).song_id
        for s in session.all_signatures([path], [song_id])[0][1].values():  # every method, gradproj first
            for v in (s.raw_p, s.raw_m, s.p, s.m):
                h.update(v.tobytes())
    import torch

    print(json.dumps({"digest": h.hexdigest()[:16], "capability": torch.backends.cpu.get_cpu_capability()}))


def emulate(cpu: str, clips: int) -> None:
    """Both pin sets natively and under ``qemu-x86_64 -cpu CPU``: pins that hold print one digest each."""
    for name, pins in (("before: MKL default branch, oneDNN on", LEGACY_PINS),
                       ("now: MKL_CBWR=COMPATIBLE, oneDNN off", Pins())):
        for where, prefix in (("this CPU", []), (f"qemu -cpu {cpu}", ["qemu-x86_64", "-cpu", cpu])):
            print(f"{name:<40} {where:<22} {_line(run_child(pins, clips, prefix=prefix))}", flush=True)


def main() -> None:
    clips = int(sys.argv[sys.argv.index("--clips") + 1]) if "--clips" in sys.argv else 99
    if "--emulate" in sys.argv:
        emulate(sys.argv[sys.argv.index("--emulate") + 1], clips if "--clips" in sys.argv else 2)
        return
    rows: dict[str, tuple[Pins, dict[str, str]]] = {
        name: (replace(Pins(), **change), {}) for name, change in variants().items()}  # type: ignore[arg-type]
    for table, runs in (("pins", rows), ("other CPUs' code paths", FOREIGN)):
        print(f"# {table}", flush=True)
        for name, (pins, extra) in runs.items():
            print(f"{name:<58} {_line(run_child(pins, clips, extra))}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), sys.argv[4:])
    else:
        main()
