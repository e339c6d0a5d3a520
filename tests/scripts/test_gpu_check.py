"""``scripts.gpu_check``: its dry run on the CPU, its refusals, its FLOP count and its report."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from benchmarks.musicgen_large import LARGE, Shape, hooked_entries, lm_parameters, paper_memory, peak_fp32, spec_flops
from scripts import gpu_check, gpu_check_steps
from scripts.gpu_check_report import markdown

from ..conftest import ROOT

STEP_NAMES = [name for name, _, _ in gpu_check_steps.STEPS] + ["pytest_gpu"]


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "scripts.gpu_check", *args], cwd=ROOT, env=os.environ,
                          capture_output=True, text=True, timeout=900, check=False)


def test_dry_run_passes_every_step_and_writes_both_reports(tmp_path: Path) -> None:
    out = tmp_path / "report"
    proc = _run("--dry-run", "--out", str(out))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "gpu-check: [1/" in proc.stdout and "all steps passed" in proc.stdout
    doc = json.loads((out / "gpu-check.json").read_text())
    assert doc["format"] == "lumina-gpu-check" and doc["version"] == 1 and doc["dry_run"] and doc["ok"]
    steps = doc["steps"]
    assert list(steps) == STEP_NAMES and all(s["ok"] for s in steps.values()), {
        n: s["error"] for n, s in steps.items() if not s["ok"]}
    env = steps["environment"]["result"]
    assert env["pins"]["device"] == "cpu" and env["versions"]["torch"] and "gpu" in env
    golden = steps["golden"]["result"]
    # on the CPU under the default pins the dry run must reproduce the golden vectors bit for bit
    assert golden["all_repeats_bitwise_equal"] and golden["all_equal_to_cpu_golden"] and golden["clips"]
    assert steps["golden_options"]["result"]["all_bitwise_equal"]
    batch = steps["golden_batch"]["result"]
    assert batch["space_digests_differ"] and batch["chunks"] == 2
    for v in batch["methods"].values():
        assert not v["bitwise_equal"] and v["raw_p_rel_l2"] < 1e-5 and v["raw_m_rel_l2"] < 1e-5
    flops = steps["large_flops"]["result"]
    assert flops["counted_flops"] == flops["formula_flops"]["total"] and flops["lm_seconds_per_chunk"] > 0
    assert flops["positions"] == flops["frames"] + 1
    songs = [steps[n]["result"] for n in STEP_NAMES if n.startswith("large_song_")]
    assert [s["chunk_batch"] for s in songs] == [1, 1, 1, 1, 2, 4]
    for s in songs:
        assert s["chunks"] == 3 and s["seconds_per_song"] > 0 and s["peak_bytes"] >= s["rest_bytes"] > 0
    assert steps["pytest_gpu"]["result"]["returncode"] == 0
    text = (out / "gpu-check.md").read_text()
    for heading in ("# GPU check: CPU, dry run", "## Environment", "## Golden clips on the device",
                    "## MusicGen-Large shape (random weights)", "## Fine-tuning the MusicGen-Large shape", "## Steps"):
        assert heading in text
    assert all(f"| {name} | yes |" in text for name in STEP_NAMES)
    check_finetune_steps(steps, text)


def check_finetune_steps(steps: dict[str, Any], text: str) -> None:
    """The dry run's fine-tuning steps: the library's ``finetune``, 1 + 3 steps on one 2 s chunk, measured
    against the paper (on the CPU, the profiler's count of live tensor bytes: within a few percent)."""
    tunes = {n: steps[n]["result"] for n in ("large_finetune_all", "large_finetune_layers")}
    assert tunes["large_finetune_all"]["parameters"] == "all"
    assert tunes["large_finetune_layers"]["parameters"] == {"layers": [*range(12, 18), *range(42, 48)]}
    for r in tunes.values():
        assert r["fits"] and r["error"] is None and r["frames"] == 100 and r["steps"] == 4
        assert len(r["losses"]) == 4 and all(0 < v < 20 for v in r["losses"])
        assert len(r["step_seconds"]) == 3 and r["seconds_per_step"] > 0 and r["paper_seconds_per_step"] > 0
        assert r["flops_per_step"] > 0 and r["achieved_tflops"] > 0 and "estimate" in r["paper_assumes"]
        assert {"base", "weights", "gradients", "adam", "activations", "logits", "optimizer", "peak"} <= set(r["paper"])
        assert r["paper"]["adam"] == 2 * r["paper"]["gradients"] and r["peak_above_rest_bytes"] > 0
        assert 0.98 < r["measured_over_paper"] < 1.05, r["measured_over_paper"]
    assert tunes["large_finetune_all"]["trained_parameters"] > tunes["large_finetune_layers"]["trained_parameters"]
    assert tunes["large_finetune_all"]["losses"][0] == tunes["large_finetune_layers"]["losses"][0]  # same codes
    assert "| all | " in text and "| layers 12-17, 42-47 | " in text


def test_finetune_out_of_memory_is_the_result(monkeypatch: pytest.MonkeyPatch) -> None:
    import lumina_audit.customization.tuning as tuning
    from lumina_audit.signature.pins import Pins
    from scripts.gpu_check_context import DRY, Context

    def oom(*_: Any) -> Any:
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 12.00 GiB\nmore")

    monkeypatch.setattr(tuning, "finetune", oom)
    result = gpu_check_steps._finetune(Context(Pins(device="cpu"), DRY), None)
    assert not result["fits"] and result["error"] == "out of memory: CUDA out of memory. Tried to allocate 12.00 GiB"
    assert result["seconds_per_step"] is None and result["measured_over_paper"] is None and result["losses"] == []
    doc = {"dry_run": False, "started_utc": "2026-12-02T00:00:00Z", "seconds": 1.0,
           "steps": {"large_finetune_all": {"ok": True, "seconds": 1.0, "error": None, "result": result}}}
    assert "| all | 4,213,120 | **no** (out of memory: CUDA out of memory." in markdown(doc)


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_without_cuda_it_refuses_in_one_line(tmp_path: Path) -> None:
    proc = _run("--out", str(tmp_path / "report"))
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: no CUDA device") and len(proc.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "report").exists()


def test_a_missing_package_is_one_line(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    assert gpu_check.missing_packages(("numpy", "no_such_package_for_lumina")) == ["no_such_package_for_lumina"]
    monkeypatch.setattr(gpu_check, "REQUIRED", ("torch", "no_such_package_for_lumina"))
    with pytest.raises(SystemExit) as exc:
        gpu_check.main(["--out", str(tmp_path)])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: missing Python package(s) no_such_package_for_lumina")
    assert len(err.strip().splitlines()) == 1


def test_a_failing_step_is_recorded_and_the_next_one_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def broken(ctx: Any) -> dict[str, Any]:
        raise RuntimeError("planted failure")

    monkeypatch.setattr(gpu_check_steps, "STEPS", (("broken", broken, 1.0), ("fine", lambda ctx: {"x": 1}, 1.0)))
    gpu_check._child(tmp_path, True, ["broken", "fine"], deadline=1e12)
    broken_record = json.loads((tmp_path / "steps" / "broken.json").read_text())
    assert not broken_record["ok"] and broken_record["error"] == "RuntimeError: planted failure"
    assert json.loads((tmp_path / "steps" / "fine.json").read_text())["result"] == {"x": 1}
    assert not (tmp_path / "steps" / "running").exists()


def test_a_dead_device_process_loses_only_its_step(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    names = [n for n, _, _ in gpu_check_steps.STEPS]
    calls: list[list[str]] = []

    def fake_child(out: Path, dry: bool, steps: list[str], deadline: float) -> None:
        calls.append(steps)
        folder = out / "steps"
        folder.mkdir(parents=True, exist_ok=True)
        if len(calls) == 1:  # dies in its second step
            (folder / f"{steps[0]}.json").write_text(json.dumps({"ok": True, "seconds": 1.0, "error": None,
                                                                 "result": None}))
            (folder / "running").write_text(steps[1])
            return
        for name in steps:
            (folder / f"{name}.json").write_text(json.dumps({"ok": True, "seconds": 1.0, "error": None,
                                                             "result": None}))

    monkeypatch.setattr(gpu_check, "_run_child", fake_child)
    monkeypatch.setattr(gpu_check, "_pytest", lambda out, deadline: {"ok": True, "seconds": 0.0, "error": None,
                                                                     "result": None})
    with pytest.raises(SystemExit) as exc:
        gpu_check.main_run(tmp_path, True, 600.0)
    assert exc.value.code == 1
    assert calls == [names, names[2:]]
    doc = json.loads((tmp_path / "gpu-check.json").read_text())
    assert [n for n, r in doc["steps"].items() if not r["ok"]] == [names[1]]
    assert doc["steps"][names[1]]["error"] == "the device process died during this step"
    assert f"**Failed: {names[1]}.**" in (tmp_path / "gpu-check.md").read_text()


def test_flop_formula_is_what_the_flop_counter_counts(session: Any) -> None:
    from torch.utils.flop_counter import FlopCounterMode

    from lumina_audit.signature.gradients import chunk_codes, codes_loss
    from lumina_audit.signature.pins import sdpa_context

    model, config = session.model, session.config
    codes = chunk_codes(model, torch.randn(64000) * 0.1)  # 2 s: 100 frames
    params = [*model.hooked["P"], *model.hooked["M"]]
    with FlopCounterMode(display=False) as counter, sdpa_context(session.pins):
        torch.autograd.grad(codes_loss(model, codes, config.codebook_boosts), params)
    tiny = Shape(width=32, heads=4, ffn=128)
    assert counter.get_total_flops() == spec_flops(tiny, codes.shape[-1] + 1)["total"]
    assert sum(p.numel() for p in model.lm.parameters()) == lm_parameters(tiny)
    assert sum(p.numel() for p in params) == hooked_entries(tiny)


def test_musicgen_large_on_paper() -> None:
    assert hooked_entries(LARGE) == 805_306_368  # the "805M hooked gradients"
    flops = spec_flops(LARGE, 501)
    assert 5.5e12 < flops["total"] < 6.5e12 and spec_flops(LARGE, 501, batch=4)["total"] == 4 * flops["total"]
    rows = paper_memory(LARGE, layer_activation=1e8, head_activation=5e7)
    device, host = rows["sums=device, gradients=together"], rows["sums=host, gradients=together"]
    assert device["peak"] - host["peak"] == 8 * hooked_entries(LARGE) == host["host"] * 2 / 3
    assert device["model"] == 4 * lm_parameters(LARGE)


@pytest.mark.parametrize(("name", "expected"), [
    ("NVIDIA H100 80GB HBM3", 67.0), ("NVIDIA H100 PCIe", 51.2), ("NVIDIA H200", 67.0), ("NVIDIA H200 NVL", 60.0),
    ("NVIDIA A10G", 31.2), ("NVIDIA L40S", 91.6), ("NVIDIA L4", 30.3), ("NVIDIA GeForce RTX 4090", 82.6)])
def test_peak_by_name(name: str, expected: float) -> None:
    peak, source = peak_fp32(name)
    assert peak == expected and source.startswith("data sheet")


def test_peak_computed_when_the_name_is_unknown() -> None:
    peak, source = peak_fp32("Some Future GPU", sms=132, capability=(9, 0), max_clock_mhz=1980)
    assert peak == pytest.approx(66.9, abs=0.05) and source.startswith("computed: 132 SMs")
    assert peak_fp32("Some Future GPU") == (None, "unknown device: no data-sheet entry and no SM clock")


def test_report_of_a_failed_run_names_the_failures() -> None:
    doc = {"dry_run": False, "started_utc": "2026-12-02T00:00:00Z", "seconds": 12.0,
           "steps": {"environment": {"ok": False, "seconds": 0.1, "error": "ImportError: x | y", "result": None},
                     "pytest_gpu": {"ok": True, "seconds": 3.0, "error": None, "result": {"summary": "1 passed"}}}}
    text = markdown(doc)
    assert "# GPU check: unknown device" in text and "**Failed: environment.**" in text
    assert "| environment | **no** | 0.1 | ImportError: x / y |" in text and "1 passed" in text
