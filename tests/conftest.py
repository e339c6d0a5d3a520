"""Test session set-up: the numerical pins go into the environment before torch loads."""

from __future__ import annotations

import os

from lumina_audit.signature.pins import Pins, pinned_environ

_PINNED = pinned_environ(Pins(), os.environ)
os.environ.clear()
os.environ.update(_PINNED)

import fnmatch  # noqa: E402
import json  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402

# No per-example deadline: CI runs on a loaded 2-core machine; the example counts stay as each test sets them.
settings.register_profile("lumina", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("lumina")

ROOT = Path(__file__).resolve().parents[1]
GOLDEN = ROOT / "lumina_audit" / "_data" / "golden"
TINY = GOLDEN / "models" / "tiny-musicgen"


#: The pins the test process runs under, written out in every test manifest: a manifest's omitted pins keep
#: the defaults its format was defined with (docs/spec-notes.md E6), which are not the program's.
PINS_YAML = "pins: {mkl_cbwr: COMPATIBLE, onednn: false}\n"


def tiny_digests() -> dict[str, str]:
    doc: dict[str, Any] = json.loads((GOLDEN / "golden.json").read_text())
    return dict(doc["model"]["digests"])


@pytest.fixture(scope="session")
def session() -> Any:
    from lumina_audit._internal.quiet import silence_libraries
    from lumina_audit.signature.session import Session

    silence_libraries()
    return Session.open(TINY, tiny_digests(), Pins())


# `make test-fast` (pytest -m "not slow") leaves these out; `make test` (CI) runs everything. Patterns are fnmatch
# globs over the node id (relative to the repository root): a module path, or a module path and a test name ("[[]"
# is a literal "["). Measured with `pytest --durations=0`; seconds are from a loaded 2-core machine.
#: End to end: a module fixture runs the whole chain (keys, manifests, `run`, calibrate, attribute) through the CLI
#: in subprocesses, tens of seconds before the first test (the demo chain: about 200 s).
E2E = ("tests/runner/test_*_e2e.py", "tests/cli/test_demo_chain.py")
SLOW = E2E + (
    # the longer benchmark smoke runs: ground truth, LR battery, fine-tuning memory (25-40 s each); the memory
    # options' smoke run marks itself (pytestmark); search, signature, extract and MusicGen-Large take seconds
    "tests/benchmarks/test_groundtruth_smoke.py", "tests/benchmarks/test_lr_battery_smoke.py",
    "tests/benchmarks/test_finetune_memory.py",
    "tests/scripts/test_gpu_check.py::test_dry_run_*",  # the GPU check's steps on the CPU (30 s)
    "tests/scripts/test_robustness.py",  # the robustness table (25 s)
    "tests/customization/test_customize.py",  # a module fixture that customizes twice (50 s)
    "tests/runner/test_extract_memory.py",  # extracts a growing catalog to watch memory (25 s)
    "tests/cli/test_show_lr.py",  # a module fixture that makes a version-3 report through the chain (27 s)
    "tests/certificates/test_render_lr.py",  # renders and signs LR certificates (a 30 s fixture, 65 s in all)
    "tests/cli/test_cli.py::test_bad_inputs_give_one_line_errors",  # dozens of CLI subprocesses (40-115 s)
    "tests/cli/test_cli.py::test_signature_json_reads_back_the_golden_bits[[]lumina-*",  # [None] stays fast
    "tests/cli/test_cli.py::test_signature_memory_pins_keep_the_bits_and_chunk_batch_names_its_space",
    "tests/signature/test_golden.py::test_golden_check_under_hostile_caller_environments",  # 12 subprocesses
    "tests/signature/test_pins.py::test_negative_control_thread_count_changes_bits",  # (25 s)
    "tests/signature/test_pins.py::test_the_default_pins_hold_when_*",  # 7 subprocesses (60 s)
    "tests/certificates/test_tamper.py::test_no_changed_byte_verifies",  # every byte of a certificate (21 s)
    "tests/cli/test_grammar.py::test_json_of_keys_manifest_ledger_proof_and_certificate",  # CLI subprocesses (12 s)
    "tests/attribution/test_derive.py::test_cli_battery_and_one_line_refusals",  # (13 s)
    "tests/attribution/test_calibration_file.py::test_every_flipped_byte_is_refused_or_harmless",  # (13 s)
)


def _matches(nodeid: str, patterns: tuple[str, ...]) -> bool:
    module = nodeid.split("::", 1)[0]
    return any(fnmatch.fnmatchcase(module, p) or fnmatch.fnmatchcase(nodeid, p) for p in patterns)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    import torch

    for item in items:
        if _matches(item.nodeid, E2E):
            item.add_marker(pytest.mark.e2e)
        if _matches(item.nodeid, SLOW):
            item.add_marker(pytest.mark.slow)
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)
