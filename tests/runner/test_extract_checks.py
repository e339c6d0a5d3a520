"""The Extract coordinator's checks of each worker (issue 13): one environment and the run's spaces per store."""

from __future__ import annotations

import copy
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from lumina_audit.runner.base import RunError
from lumina_audit.runner.extract import Checked, _Collector
from lumina_audit.runner.journal import Journal

from .test_journal import DIMS, MANIFEST, SPACES

ENV: dict[str, Any] = {
    "versions": {"python": "3.11.7", "torch": "2.11.0", "audiocraft": "1.3.0", "numpy": "2.3.0"},
    "platform": "Linux-a", "cpu": {"model": "EPYC", "machine": "x86_64", "simd_flags": ["avx", "avx2"],
                                   "logical_cpus": 16},
    "torch_cpu_capability": "AVX2", "torch_threads": 1,
    "gpu": {"name": "NVIDIA H100", "capability": "9.0", "cuda": "13.0", "cudnn": 91000, "driver": "580.1"},
    "pins": {"threads": 1, "device": "cuda"},
}


def _collector(tmp_path: Path) -> _Collector:
    journal = Journal.open(tmp_path / ".c.h5.journal", MANIFEST, SPACES, DIMS, "c.h5")
    checked = Checked([], [], {}, [], journal, {}, 0, "stop", dict(SPACES))
    return _Collector(checked, SimpleNamespace(on_progress=None))  # type: ignore[arg-type]


def _worker(wid: str, host: str, env: dict[str, Any], spaces: dict[str, str] = SPACES) -> dict[str, Any]:
    return {"id": wid, "engine": "ray", "host": host, "pid": 7, "device": "cuda", "environment": env,
            "spaces": spaces}


def _with(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    env = copy.deepcopy(ENV)
    target = env
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return env


def test_workers_alike_in_what_decides_bits_are_taken_and_journaled(tmp_path: Path) -> None:
    c = _collector(tmp_path)
    c.worker(_worker("aaaaaaaaaaaa", "node1", ENV))
    other_box = _with(("cpu", "model"), "Xeon") | {"platform": "Linux-b"}  # neither decides a bit
    other_box["cpu"]["logical_cpus"] = 64
    c.worker(_worker("bbbbbbbbbbbb", "node2", other_box))
    assert set(c.c.journal.workers()) == {"aaaaaaaaaaaa", "bbbbbbbbbbbb"}
    assert "spaces" not in c.c.journal.workers()["aaaaaaaaaaaa"]


@pytest.mark.parametrize(("path", "value", "shown"), [
    (("versions", "torch"), "2.10.0", "versions.torch: '2.11.0' -> '2.10.0'"),
    (("cpu", "simd_flags"), ["avx", "avx2", "avx512f"], "cpu.simd_flags"),
    (("gpu", "name"), "NVIDIA A100", "gpu.name: 'NVIDIA H100' -> 'NVIDIA A100'"),
    (("gpu", "driver"), "575.2", "gpu.driver"),
    (("gpu", "cuda"), "12.8", "gpu.cuda"),
    (("torch_cpu_capability",), "AVX512", "torch_cpu_capability"),
    (("pins", "threads"), 2, "pins.threads: 1 -> 2"),
])
def test_a_worker_of_another_environment_is_refused_naming_the_difference(
        tmp_path: Path, path: tuple[str, ...], value: Any, shown: str) -> None:
    c = _collector(tmp_path)
    c.worker(_worker("aaaaaaaaaaaa", "node1", ENV))
    with pytest.raises(RunError, match="worker bbbbbbbbbbbb on node2 computes under another environment than "
                                       "the other workers \\(worker aaaaaaaaaaaa\\)") as info:
        c.worker(_worker("bbbbbbbbbbbb", "node2", _with(path, value)))
    assert shown in info.value.message
    assert set(c.c.journal.workers()) == {"aaaaaaaaaaaa"}  # the refused worker is not journaled


def test_a_worker_of_other_signature_spaces_is_refused(tmp_path: Path) -> None:
    c = _collector(tmp_path)
    with pytest.raises(RunError, match="computes signature spaces .*, this run's are"):
        c.worker(_worker("aaaaaaaaaaaa", "node1", ENV, {"lumina-gradproj-v1": "0" * 64}))
    assert not c.c.journal.path.exists()
