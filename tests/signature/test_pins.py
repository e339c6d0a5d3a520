"""The numerical pins: the program overrides its caller, and the pins matter."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from typing import Any

import pytest
import torch

from lumina_audit.errors import ConfigError, EnvironmentMismatch
from lumina_audit.signature import golden
from lumina_audit.signature.extract import extract
from lumina_audit.signature.methods import GRADSTATS
from lumina_audit.signature.pins import LEGACY_PINS, MARKER, Pins, check_environment, check_runtime, pinned_environ

from ..conftest import GOLDEN

HOSTILE = {"OMP_NUM_THREADS": "3", "MKL_NUM_THREADS": "3", "ATEN_CPU_CAPABILITY": "default",
           "MKL_CBWR": "AUTO", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
           "UNRELATED": "kept"}


def test_pinned_environ_sets_and_removes_owned_variables() -> None:
    env = pinned_environ(Pins(), HOSTILE)
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == "1"
    assert env["ATEN_CPU_CAPABILITY"] == "avx2" and env["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert env["MKL_CBWR"] == "COMPATIBLE" and env["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
    assert "MKL_ENABLE_INSTRUCTIONS" not in env
    assert env["UNRELATED"] == "kept" and env[MARKER] == Pins().digest
    assert pinned_environ(Pins(mkl_cbwr="AVX2"), {})["MKL_CBWR"] == "AVX2"
    assert "MKL_CBWR" not in pinned_environ(Pins(mkl_cbwr=None), HOSTILE)


def test_reexec_replaces_the_callers_environment() -> None:
    probe = "import json, os; print(json.dumps(dict(os.environ)))"
    code = ("import sys; from lumina_audit.signature.pins import Pins, reexec_if_needed; "
            f"reexec_if_needed(Pins(), [], entry=[sys.executable, '-c', {probe!r}])")
    caller = {k: v for k, v in os.environ.items() if k != MARKER} | HOSTILE
    out = subprocess.run([sys.executable, "-c", code], env=caller, capture_output=True, text=True, check=True)
    seen = json.loads(out.stdout)
    assert {k: seen.get(k) for k in HOSTILE} == {
        "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "ATEN_CPU_CAPABILITY": "avx2",
        "MKL_CBWR": "COMPATIBLE", "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": None,
        "UNRELATED": "kept"}


def test_a_process_outside_the_pins_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    check_environment(Pins())  # the test session itself runs pinned
    monkeypatch.setenv("MKL_CBWR", "AUTO")
    with pytest.raises(EnvironmentMismatch, match="differs: MKL_CBWR"):
        check_environment(Pins())
    monkeypatch.setenv("MKL_CBWR", "COMPATIBLE")
    with pytest.raises(EnvironmentMismatch, match="OMP_NUM_THREADS"):
        check_environment(Pins(threads=2))
    torch.set_num_threads(2)
    try:
        with pytest.raises(EnvironmentMismatch, match="torch uses 2 threads, the pins say 1"):
            check_runtime(Pins())
    finally:
        torch.set_num_threads(1)


def test_invalid_pins_are_refused() -> None:
    with pytest.raises(ConfigError):
        Pins(threads=0)
    with pytest.raises(ConfigError):
        Pins(tf32=True)
    with pytest.raises(ConfigError):
        Pins(device="tpu")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="deterministic"):
        Pins(device="cuda", cuda_deterministic=False)


def test_negative_control_thread_count_changes_bits(session: Any) -> None:
    """Why threads are pinned: the same clip under 2 threads gives other bits here.

    (Measured: the encoder output moves by ~3e-7, which flips a few of the 2000
    RVQ codes, and the signature moves with them; docs/pins.md has the figures.)
    """
    path, exp = golden.read(GOLDEN).expected_for("lumina-gradstats-v1")[3]
    assert exp.chunks == 2
    torch.set_num_threads(2)
    try:
        got = extract(path, session.model, session.config, session.pins, exp.song_id, method=GRADSTATS)
    finally:
        torch.set_num_threads(1)
    assert got.pcm_sha256 == exp.pcm_sha256  # audio differs not ...
    assert got.raw_p.tobytes() != exp.raw_p.tobytes()  # ... but the gradient bits do


def _digest_with_mkl_limited_to(pins: Pins, isa: str | None) -> str:
    """Digest of the first three golden clips' bits in a fresh process, MKL limited to ``isa`` (None: not limited).

    MKL picks its kernels by CPU vendor and instruction set; limiting it to an older set on this
    machine is the nearest stand-in for another CPU that a test can run. The variable is one the
    pins own, so the evidence script's child is told to let it through its environment check.
    """
    from scripts import pin_evidence

    out = pin_evidence.run_child(pins, 3, {"MKL_ENABLE_INSTRUCTIONS": isa} if isa else None)
    assert out.returncode == 0, out.stderr[-2000:]
    return str(json.loads(out.stdout.strip().splitlines()[-1])["digest"])


def _intel() -> bool:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
        return "GenuineIntel" in f.read()


def test_the_default_pins_hold_when_mkl_or_onednn_take_another_cpus_code_path() -> None:
    """Under the default pins (MKL_CBWR=COMPATIBLE, oneDNN off) neither MKL's nor oneDNN's code path
    moves a bit. Negative controls, which show the test can fail: with oneDNN on (the pins before
    2026-12-04, whose golden vectors an Intel Xeon did not reproduce) oneDNN's instruction-set cap
    changes the bits on any CPU with AVX2, and on an Intel CPU so does MKL's under its default branch
    (on other vendors MKL's default path may already be its generic one)."""
    now = Pins()
    digests = {_digest_with_mkl_limited_to(now, isa) for isa in (None, "AVX2", "SSE4_2")}
    digests.add(_digest_with_mkl_limited_to(replace(now, onednn_max_cpu_isa="SSE41"), None))
    assert len(digests) == 1, digests
    before = LEGACY_PINS
    assert (before.mkl_cbwr, before.onednn) == (None, True)
    base = _digest_with_mkl_limited_to(before, None)
    assert _digest_with_mkl_limited_to(replace(before, onednn_max_cpu_isa="SSE41"), None) != base
    if _intel():
        assert _digest_with_mkl_limited_to(before, "SSE4_2") != base
