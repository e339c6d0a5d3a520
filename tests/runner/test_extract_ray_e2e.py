"""``execution: {engine: ray}`` (issue 13): an Extract on two Ray workers of a local cluster on loopback.

One run through the command line, with one worker SIGKILLed in the middle of a song: the store is
byte for byte the local engine's, the song is computed again by another worker (nothing lost,
nothing twice), the ledger is valid with one record naming every worker, its environment and its
songs. Kept to one cluster start: starting Ray and two workers costs most of this module's time.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from lumina_audit._internal.synth import SongSpec, render, write_wav
from lumina_audit.evidence import keys
from lumina_audit.evidence.ledger import Ledger, verify
from lumina_audit.evidence.trust import load_trust
from lumina_audit.runner.run import run_manifest
from lumina_audit.signature.environment import bit_relevant
from lumina_audit.signature.pins import MARKER

from ..conftest import ROOT
from .test_extract_stream_e2e import manifest_text
from .test_methods_e2e import sign_twice, write_trust

# Not imported here: a process that imported ray before its run starts a cluster on the machine's address.
pytestmark = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")

SONGS, KILLED = 6, 3


@dataclass
class RayRun:
    root: Path
    trust: Path
    out: subprocess.CompletedProcess[str]
    local_store: bytes


def _sign(root: Path, folder: str, text: str, key: Any) -> Path:
    path = root / folder / "extract.yaml"
    path.parent.mkdir()
    path.write_text(text)
    sign_twice(path, key)
    return path


@pytest.fixture(scope="module")
def ray_run(tmp_path_factory: pytest.TempPathFactory) -> RayRun:
    root = tmp_path_factory.mktemp("ray")
    (root / "catalog").mkdir()
    for i in range(SONGS):
        write_wav(root / "catalog" / f"song{i}.wav", render(SongSpec(seed=8300 + i, seconds=1.5 + 0.2 * i)), 32000, 16)
    key = keys.generate()
    keys.write_private_key(root / "op.key", key)
    write_trust(root, key)
    inputs = f"  - path: {root / 'catalog'}"
    local = _sign(root, "local", manifest_text("local", inputs), key)
    run_manifest(local, load_trust(root / "trust"), key)
    ray = _sign(root, "ray", manifest_text("ray", inputs, "execution: {engine: ray, workers: 2}\n"), key)
    env = {k: v for k, v in os.environ.items() if k != MARKER}
    # `lumina-audit manifest run` whose Ray worker SIGKILLs itself in song KILLED, once (a test double:
    # tests/runner/kill_worker.py; run from the repository root, which Ray puts on its workers' path)
    out = subprocess.run([sys.executable, "-m", "tests.runner.kill_worker", str(KILLED), str(root / "killed-once"),
                          "manifest", "run", str(ray), "--trust", str(root / "trust"), "--key", str(root / "op.key"),
                          "--json"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)
    return RayRun(root, root / "trust", out, (root / "local" / "out" / "c.h5").read_bytes())


def test_two_ray_workers_write_the_local_engines_store(ray_run: RayRun) -> None:
    out = ray_run.out
    assert out.returncode == 0, out.stderr[-3000:]
    doc = json.loads(out.stdout)  # stdout is the result alone: Ray's own messages went to stderr
    assert doc["songs"] == SONGS and doc["skipped"] == []
    assert (ray_run.root / "ray" / "out" / "c.h5").read_bytes() == ray_run.local_store
    assert not (ray_run.root / "ray" / "out" / ".c.h5.journal").exists()
    progress = [json.loads(line) for line in out.stderr.splitlines() if line.startswith('{"event"')]
    assert [p["done"] for p in progress] == list(range(SONGS + 1)) and {p["total"] for p in progress} == {SONGS}


def test_a_worker_killed_mid_song_loses_nothing_and_every_worker_is_recorded(ray_run: RayRun) -> None:
    assert ray_run.out.returncode == 0, ray_run.out.stderr[-3000:]
    assert (ray_run.root / "killed-once").exists()  # a worker did SIGKILL itself in song 3
    ledger = ray_run.root / "ray" / "ledger"
    report = verify(ledger, load_trust(ray_run.trust))
    assert report.status == "valid" and report.records == 1, report.findings
    body = Ledger.open(ledger).records()[0].body
    execution = body["execution"]
    assert execution["engine"] == "ray" and body["manifest"]["execution"]["workers"] == 2
    workers = {w["id"]: w for w in execution["workers"]}
    [retry] = execution["retries"]
    assert retry["song"] == KILLED and retry["worker"] in workers
    assert KILLED not in workers[retry["worker"]]["songs"]  # it died in it: another worker computed it
    computed = sorted(i for w in workers.values() for i in w["songs"])
    assert computed == list(range(SONGS))  # each song once
    # the song it died in was computed by another recorded worker (which one, and how the other songs
    # fell to the survivor and the replacement, is Ray's scheduling: a dead worker may have none)
    [computed_by] = [wid for wid, w in workers.items() if KILLED in w["songs"]]
    assert computed_by != retry["worker"] and len(workers) >= 2
    bits = [bit_relevant(w["environment"]) for w in workers.values()]
    assert all(b == bits[0] for b in bits) and bits[0]["pins"]["threads"] == 1
    assert {w["engine"] for w in workers.values()} == {"ray"} and len({w["pid"] for w in workers.values()}) == len(
        workers)
