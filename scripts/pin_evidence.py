"""Evidence for the default numerical pins: which settings change a signature's bits.

For each variant of :class:`lumina_audit.signature.pins.Pins` it runs a fresh process
under exactly that pinned environment, computes the golden clips' signatures
and prints a digest of all their bits. Variants that print the same digest
produced identical bits.

    python -m scripts.pin_evidence [--clips N]

(from the repository root, as every script).
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from dataclasses import replace

from lumina_tools.files import GOLDEN
from lumina_tools.invocation import run_module


def variants() -> dict[str, dict[str, object]]:
    base: dict[str, object] = {}
    return {
        "default pins (1 thread, avx2, oneDNN AVX2, MKL_CBWR unset)": base,
        "threads=2": {"threads": 2},
        "threads=3": {"threads": 3},
        "ATEN_CPU_CAPABILITY unset": {"aten_cpu_capability": None},
        "ATEN_CPU_CAPABILITY=default": {"aten_cpu_capability": "default"},
        "ONEDNN_MAX_CPU_ISA unset": {"onednn_max_cpu_isa": None},
        "MKL_CBWR=COMPATIBLE": {"mkl_cbwr": "COMPATIBLE"},
        "MKL_CBWR=COMPATIBLE threads=2": {"mkl_cbwr": "COMPATIBLE", "threads": 2},
        "MKL_CBWR=AUTO threads=2": {"mkl_cbwr": "AUTO", "threads": 2},
        "oneDNN off": {"onednn": False},
        "oneDNN off threads=2": {"onednn": False, "threads": 2},
    }


def child(pins_json: str, clips: int) -> None:
    from lumina_audit._internal.quiet import silence_libraries
    from lumina_audit.signature import golden
    from lumina_audit.signature.pins import Pins
    from lumina_audit.signature.session import Session

    silence_libraries()
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


def main() -> None:
    from lumina_audit.signature.pins import Pins, pinned_environ

    clips = int(sys.argv[sys.argv.index("--clips") + 1]) if "--clips" in sys.argv else 99
    base = Pins()
    for name, change in variants().items():
        pins = replace(base, **change)  # type: ignore[arg-type]
        env = pinned_environ(pins, os.environ)
        out = run_module(__spec__, ["--child", json.dumps(pins.as_json()), str(clips)], env, capture_output=True)
        line = out.stdout.strip().splitlines()[-1] if out.returncode == 0 else f"failed: {out.stderr[-300:]}"
        print(f"{name:<58} {line}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) > 3 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]))
    else:
        main()
