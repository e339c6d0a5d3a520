"""An Extract streamed one song at a time through a journal (issue 13), through signed manifests.

A run SIGKILLed part-way and run again computes only the songs missing and writes the store an
uninterrupted run writes (the one of today's writer on today's extraction, byte for byte); a
journal of another manifest is refused by name; bad inputs stop the run with one line and
nothing written, or under ``on_bad_input: skip`` are left out and listed in the record.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import soundfile

from lumina_audit._internal.synth import SongSpec, render, write_wav
from lumina_audit.attribution.store_writer import create_or_append_multi
from lumina_audit.cli.main import main as cli_main
from lumina_audit.evidence import keys
from lumina_audit.evidence.ledger import Ledger, verify
from lumina_audit.evidence.manifest import load_manifest
from lumina_audit.evidence.trust import load_trust
from lumina_audit.runner.base import Progress
from lumina_audit.runner.journal import Journal, journal_path
from lumina_audit.runner.run import RunError, run_manifest
from lumina_audit.signature.pins import MARKER

from ..conftest import PINS_YAML, ROOT, TINY, tiny_digests
from .test_methods_e2e import sign_twice, write_trust

SONGS = 5


@dataclass
class World:
    root: Path
    key: Any
    trust: Path
    catalog: list[Path]
    reference: bytes  #: today's store of the catalog: today's extraction, today's writer


def manifest_text(name: str, inputs: str, extra: str = "") -> str:
    d = tiny_digests()
    return f"""apiVersion: lumina-audit/v2
kind: Extract
metadata: {{name: {name}}}
seed: 422024
model:
  directory: {TINY}
  sha256: {{state_dict.bin: {d['state_dict.bin']}, compression_state_dict.bin: {d['compression_state_dict.bin']}}}
ledger: ledger
{PINS_YAML}inputs:
{inputs}
outputs: {{store: out/c.h5}}
{extra}"""


def signed(world: World, folder: str, text: str) -> Path:
    path = world.root / folder / "extract.yaml"
    path.parent.mkdir()
    path.write_text(text)
    sign_twice(path, world.key)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, session: Any) -> World:
    root = tmp_path_factory.mktemp("stream")
    (root / "catalog").mkdir()
    catalog = [root / "catalog" / f"song{i}.wav" for i in range(SONGS)]
    for i, path in enumerate(catalog):
        write_wav(path, render(SongSpec(seed=8100 + i, seconds=1.5 + 0.25 * i)), 32000, 16)
    (root / "bad").mkdir()
    (root / "bad" / "corrupt.wav").write_bytes(b"RIFF" + bytes(range(256)) * 8)
    write_wav(root / "bad" / "pinned.wav", render(SongSpec(seed=8200, seconds=1.5)), 32000, 16)
    data, rate = soundfile.read(root / "bad" / "pinned.wav", dtype="int16")
    soundfile.write(root / "bad" / "whole.flac", data, rate, subtype="PCM_16", format="FLAC")
    flac = (root / "bad" / "whole.flac").read_bytes()
    (root / "bad" / "truncated.flac").write_bytes(flac[: len(flac) // 2])  # a valid header, a body cut short
    key = keys.generate()
    keys.write_private_key(root / "op.key", key)
    write_trust(root, key)
    sigs = [s for _, s in session.all_signatures(catalog)]
    create_or_append_multi(root / "reference.h5", [session.spaces[m.name] for m in session.methods], sigs)
    return World(root, key, root / "trust", catalog, (root / "reference.h5").read_bytes())


def _record(folder: Path) -> dict[str, Any]:
    records = Ledger.open(folder / "ledger").records()
    assert len(records) == 1
    return records[0].body


def test_a_killed_run_resumes_computing_only_what_is_missing(world: World) -> None:
    manifest = signed(world, "killed", manifest_text("killed", f"  - path: {world.root / 'catalog'}"))
    folder = manifest.parent
    env = {k: v for k, v in os.environ.items() if k != MARKER}
    # `lumina-audit manifest run` whose worker SIGKILLs itself in song 2, once (a test double:
    # tests/runner/kill_worker.py)
    out = subprocess.run([sys.executable, "-m", "tests.runner.kill_worker", "2", str(folder / "killed-once"),
                          "manifest", "run", str(manifest), "--trust", str(world.trust), "--key",
                          str(world.root / "op.key"), "--json"],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert out.returncode == -9, out.stderr[-2000:]  # SIGKILLed during song 2's first chunk
    progress = [json.loads(line) for line in out.stderr.splitlines() if line.startswith("{")]
    assert [(p["event"], p["unit"], p["done"], p["total"]) for p in progress] == [
        ("progress", "songs", n, SONGS) for n in (0, 1, 2)]
    assert out.stdout == ""
    journal = journal_path(folder / "out" / "c.h5")
    assert sorted(p.name for p in (journal / "songs").iterdir()) == ["00000000.json", "00000001.json"]
    assert not (folder / "out" / "c.h5").exists() and Ledger.open(folder / "ledger").records() == ()

    events: list[Progress] = []
    result = run_manifest(manifest, load_trust(world.trust), world.key, events.append)  # the same run again
    assert events[0].done == 2 and [e.done for e in events] == [2, 3, 4, 5]
    assert (folder / "out" / "c.h5").read_bytes() == world.reference  # what an uninterrupted run writes
    assert not journal.exists() and result.summary["skipped"] == []
    report = verify(folder / "ledger", load_trust(world.trust))
    assert report.status == "valid" and report.records == 1, report.findings
    body = _record(folder)
    execution = body["execution"]
    assert (execution["engine"], execution["resumed"], execution["recomputed"]) == ("local", 2, 0)
    assert sorted(w["songs"] for w in execution["workers"]) == [[0, 1], [2, 3, 4]]
    assert {w["environment"]["versions"]["torch"] for w in execution["workers"]} == {
        body["environment"]["versions"]["torch"]}
    assert [i["song_id"] for i in body["inputs"]] == [f"song{i}" for i in range(SONGS)]
    assert [i["sha256"] for i in body["inputs"]] == [hashlib.sha256(p.read_bytes()).hexdigest()
                                                     for p in world.catalog]


def test_a_journal_of_another_manifest_is_refused_by_name(world: World) -> None:
    manifest = signed(world, "foreign", manifest_text("foreign", f"  - path: {world.root / 'catalog'}"))
    loaded = load_manifest(manifest)
    spaces = {str(s.as_dict()["method"]): s.digest for s in loaded.spaces()}
    path = journal_path(loaded.store_path)
    other = Journal.open(path, "f" * 64, spaces, {m.name: m.dim for m in loaded.methods()}, "c.h5")
    other.add_worker({"id": "aaaaaaaaaaaa", "environment": {}})
    before = sorted(str(p.relative_to(path)) for p in path.rglob("*"))
    with pytest.raises(RunError, match=f"{path}: journal of manifest {'f' * 64}, this run's manifest is "
                                       f"{loaded.digest}") as info:
        run_manifest(manifest, load_trust(world.trust), world.key)
    assert "rm -r" in (info.value.hint or "")
    assert sorted(str(p.relative_to(path)) for p in path.rglob("*")) == before
    assert not loaded.store_path.exists() and not (manifest.parent / "ledger").exists()


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    try:
        cli_main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


BAD = {  # manifest inputs (a bad one in the middle of two good ones) and the refusal's text
    "corrupt": ("{root}/bad/corrupt.wav", None, r"bad/corrupt\.wav: cannot decode audio"),
    "missing": ("{root}/bad/absent.wav", None, r"input '.*absent\.wav' not found"),
    "pinned": ("{root}/bad/pinned.wav", "ab" * 32, r"bad/pinned\.wav: SHA-256 [0-9a-f]{64} differs from the expected "
               + "ab" * 32),
}


def _inputs(world: World, bad: list[tuple[str, str | None]]) -> str:
    lines = [f"  - path: {world.catalog[0]}"]
    for path, sha in bad:
        lines.append(f"  - path: {path.format(root=world.root)}" + (f"\n    sha256: {sha}" if sha else ""))
    return "\n".join([*lines, f"  - path: {world.catalog[1]}"])


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_input_stops_the_run_with_one_line_and_nothing_written(world: World, case: str,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    path, sha, match = BAD[case]
    manifest = signed(world, f"stop-{case}", manifest_text(case, _inputs(world, [(path, sha)])))
    code, out, err = _cli(capsys, "manifest", "run", str(manifest), "--trust", str(world.trust), "--key",
                          str(world.root / "op.key"))
    lines = err.strip().splitlines()
    assert code == 2 and out == "" and len(lines) <= 2 and "Traceback" not in err, err
    assert lines[0].startswith("error: ") and re.search(match, lines[0]), lines[0]
    assert sorted(p.name for p in manifest.parent.iterdir()) == ["extract.yaml", "extract.yaml.sig"]


def test_a_body_that_does_not_decode_stops_the_run_mid_way_and_a_fixed_run_resumes(
        world: World, capsys: pytest.CaptureFixture[str], session: Any) -> None:
    folder = world.root / "stop-body"
    (folder / "audio").mkdir(parents=True)
    a, b, c = folder / "audio" / "a.wav", folder / "audio" / "b.flac", folder / "audio" / "c.wav"
    a.write_bytes(world.catalog[0].read_bytes())
    b.write_bytes((world.root / "bad" / "truncated.flac").read_bytes())
    c.write_bytes(world.catalog[1].read_bytes())
    (folder / "extract.yaml").write_text(manifest_text("body", "\n".join(f"  - path: {p}" for p in (a, b, c))))
    sign_twice(folder / "extract.yaml", world.key)
    args = ("manifest", "run", str(folder / "extract.yaml"), "--trust", str(world.trust), "--key",
            str(world.root / "op.key"))
    code, _, err = _cli(capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 2 and "b.flac: cannot decode audio" in lines[0], err
    assert "1 song(s) computed so far are kept in the journal" in lines[1]
    assert not (folder / "out" / "c.h5").exists() and Ledger.open(folder / "ledger").records() == ()
    journal = journal_path(folder / "out" / "c.h5")
    assert sorted(p.name for p in (journal / "songs").iterdir()) == ["00000000.json"]
    b.write_bytes((world.root / "bad" / "whole.flac").read_bytes())  # the input fixed ...
    a.write_bytes(world.catalog[2].read_bytes())  # ... and the journaled one changed since
    code, _, err = _cli(capsys, *args)
    assert code == 0, err
    execution = _record(folder)["execution"]
    assert (execution["resumed"], execution["recomputed"]) == (0, 1)  # a.wav computed again, from its new bytes
    sigs = [s for _, s in session.all_signatures([a, b, c])]
    create_or_append_multi(folder / "expected.h5", [session.spaces[m.name] for m in session.methods], sigs)
    assert (folder / "out" / "c.h5").read_bytes() == (folder / "expected.h5").read_bytes()


def test_bad_inputs_are_skipped_and_listed_under_skip(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    bad = [(p, s) for p, s, _ in BAD.values()] + [("{root}/bad/truncated.flac", None)]
    inputs = "\n".join([f"  - path: {world.root / 'catalog'}",
                        *(f"  - path: {p.format(root=world.root)}" + (f"\n    sha256: {s}" if s else "")
                          for p, s in bad)])
    manifest = signed(world, "skip", manifest_text("skip", inputs, "on_bad_input: skip\n"))
    code, out, err = _cli(capsys, "manifest", "run", str(manifest), "--trust", str(world.trust), "--key",
                          str(world.root / "op.key"))
    assert code == 0, err
    assert (manifest.parent / "out" / "c.h5").read_bytes() == world.reference  # the good songs, as if alone
    body = _record(manifest.parent)
    skipped = body["result"]["skipped"]
    assert [(s["index"], Path(s["path"]).name) for s in skipped] == [
        (5, "corrupt.wav"), (6, "absent.wav"), (7, "pinned.wav"), (8, "truncated.flac")]
    reasons = ["cannot decode audio", "no such file", "differs from the expected " + "ab" * 32, "cannot decode audio"]
    assert [r in s["reason"] for r, s in zip(reasons, skipped, strict=True)] == [True] * 4, skipped
    assert f"skipped {len(bad)} bad input(s), listed in the ledger record:" in out
    for s in skipped:
        assert s["reason"] in out
    assert verify(manifest.parent / "ledger", load_trust(world.trust)).status == "valid"
