"""One grammar for the command line: a noun, then a verb; a ledger is always ``--ledger DIR``; ``--json`` on every
command that prints a result; the spellings of before as hidden aliases that say so in one line and then behave as
the new ones, exit codes included; ``docs/cli.md`` generated from the commands.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import typer.main

from lumina_audit.cli._grammar import DEPRECATED, deprecation
from lumina_audit.cli.main import app
from lumina_audit.evidence.keys import generate, key_id, write_private_key
from lumina_audit.evidence.ledger import LEDGER_NAMESPACE
from lumina_audit.evidence.trust import format_entry
from lumina_audit.signature.pins import MARKER

from ..certificates.test_render_verify import OPERATOR, _make
from ..conftest import ROOT, TINY
from ..evidence.test_manifest import FULL, SAME
from ..evidence.test_manifest import write as write_manifest

#: The grammar: every group (a noun) and its commands (verbs), as ``lumina-audit --help`` shows them.
GRAMMAR = {
    "golden": ["check"],
    "model": ["digests", "customize"],
    "signature": ["compute"],
    "audio": ["derive"],
    "keys": ["generate", "trust-line", "revoke", "rotate"],
    "pki": ["throwaway"],
    "manifest": ["sign", "verify", "run"],
    "ledger": ["show", "checkpoint", "prove", "repair", "verify"],
    "proof": ["verify"],
    "report": ["show"],
    "calibration": ["show"],
    "certificate": ["issue", "verify"],
}

#: Commands whose ``--json`` is exercised elsewhere (each needs a model, a chain or minutes): where.
JSON_ELSEWHERE = {
    "golden check": "tests/signature/test_golden.py::test_golden_check_under_hostile_caller_environments",
    "signature compute": "tests/cli/test_cli.py::test_signature_json_reads_back_the_golden_bits",
    "manifest run": "tests/runner/test_evidence_e2e.py",
    "calibration show": "tests/cli/test_show_lr.py",
    "model customize": "test_model_customize_json_is_one_document below (slow)",
}


def _tree() -> Any:
    return typer.main.get_command(app)


def _visible(group: Any) -> dict[str, Any]:
    return {name: c for name, c in group.commands.items() if not c.hidden}


def _all_commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], Any]]:
    """Every command, hidden ones too, with its path."""
    out = []
    for name, cmd in group.commands.items():
        if getattr(cmd, "commands", None) is not None:
            out += _all_commands(cmd, (*prefix, name))
        else:
            out.append(((*prefix, name), cmd))
    return out


def _visible_commands() -> dict[str, Any]:
    return {f"{g} {n}": cmd for g, group in _visible(_tree()).items() for n, cmd in _visible(group).items()}


# ------------------------------------------------------------------------------------------------ the grammar


def test_every_group_is_a_noun_and_its_commands_verbs() -> None:
    """``lumina-audit --help`` lists groups only, and each group lists its verbs: no command stands alone."""
    root = _tree()
    shown = _visible(root)
    assert all(getattr(c, "commands", None) is not None for c in shown.values()), \
        [n for n, c in shown.items() if getattr(c, "commands", None) is None]
    assert {g: list(_visible(group)) for g, group in shown.items()} == GRAMMAR
    for group in shown.values():
        assert all(getattr(c, "commands", None) is None for c in group.commands.values())  # two words, never three


def test_the_old_spellings_are_hidden_aliases() -> None:
    root = _tree()
    hidden = {name for name, c in root.commands.items() if c.hidden}
    assert hidden == {"run", "derive", "customize", "verify"}
    assert {n for n, c in root.commands["verify"].commands.items() if c.hidden} == {"ledger", "proof", "certificate"}
    for old, new in DEPRECATED.items():  # every replacement is a command of the grammar
        group, verb = new.split()[:2]
        assert verb in GRAMMAR[group], (old, new)


def test_the_ledger_is_named_by_one_option_everywhere() -> None:
    """``--ledger DIR``: required where a command cannot work without it, optional where it is optional."""
    named = {}
    for path, cmd in _visible_commands().items():
        for param in cmd.params:
            if "ledger" in (param.name or "") or (param.param_type_name == "argument" and param.name == "path"):
                assert param.param_type_name == "option" and param.opts == ["--ledger"], (path, param.opts)
                named[path] = param.required
    assert named == {"keys revoke": True, "keys rotate": True, "ledger show": True, "ledger checkpoint": True,
                     "ledger prove": True, "ledger repair": True, "ledger verify": True, "certificate issue": True,
                     "certificate verify": False}


def test_every_command_help_has_an_example_of_its_own_spelling() -> None:
    from typer.testing import CliRunner

    runner = CliRunner()
    commands = _all_commands(_tree())
    assert len(commands) == len(_visible_commands()) + 6, commands  # and the six aliases of before
    for path, cmd in commands:
        result = runner.invoke(app, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        assert cmd.epilog and cmd.epilog.startswith("Example: lumina-audit "), path
        assert "Example: lumina-audit" in result.output, path
    for spelled, cmd in _visible_commands().items():
        examples = cmd.epilog.removeprefix("Example: ").split(" ; or, ")[0].split(" ; ")
        assert all(e.startswith(f"lumina-audit {spelled} ") for e in examples), (spelled, cmd.epilog)


def test_every_command_that_prints_a_result_takes_json() -> None:
    lacking = [path for path, cmd in _visible_commands().items()
               if not any(p.param_type_name == "option" and "--json" in p.opts for p in cmd.params)]
    assert lacking == []


def test_the_cli_reference_is_generated_from_the_commands() -> None:
    from lumina_audit.cli.reference import REGENERATE, render

    text = render()
    assert text == (ROOT / "docs" / "cli.md").read_text(encoding="utf-8"), \
        f"docs/cli.md differs from the commands: regenerate it with `{REGENERATE}` (make cli-docs)"
    for spelled in _visible_commands():
        assert f"## `lumina-audit {spelled}`" in text, spelled
    for old in ("run", "derive", "customize", "verify"):  # hidden aliases are not part of the reference
        assert f"## `lumina-audit {old}`" not in text, old
    assert "Deprecated" not in text


# ---------------------------------------------------------------------------------- pins chosen before torch


@pytest.mark.parametrize("argv", [
    ["manifest", "run", "{m}", "--trust", "trust", "--key", "op.key"],
    ["manifest", "run", "--trust", "trust", "--key", "op.key", "--json", "{m}"],
    ["manifest", "run", "--trust=trust", "--passphrase-env", "P", "{m}"],
    ["manifest", "run", "--", "{m}"],
    ["run", "{m}", "--trust", "trust", "--key", "op.key"],
    ["run", "--key", "op.key", "--trust", "trust", "{m}"],
])
def test_manifest_run_chooses_the_manifests_pins_before_torch(tmp_path: Path, argv: list[str]) -> None:
    from lumina_audit.cli.main import _pins_from_argv

    manifest = write_manifest(tmp_path, FULL.replace("  threads: 1\n", "  threads: 3\n"))
    assert _pins_from_argv([manifest.as_posix() if a == "{m}" else a for a in argv]).threads == 3
    assert _pins_from_argv(["manifest", "sign", str(manifest), "--key", "k"]).threads == 1  # only a run


def test_the_options_skipped_to_find_the_manifest_are_those_of_manifest_run() -> None:
    from lumina_audit.cli.run import RUN_OPTIONS_WITH_VALUES

    run = _tree().commands["manifest"].commands["run"]
    taking = {o for p in run.params if p.param_type_name == "option" and not p.is_flag for o in p.opts}
    assert taking == RUN_OPTIONS_WITH_VALUES


# ------------------------------------------------------------------ a small world: keys, ledger, PKI, certificate


@dataclass
class World:
    root: Path
    issued: dict[str, Any]
    pki: dict[str, Any]


def cli(root: Path, *args: str | Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != MARKER}
    return subprocess.run([sys.executable, "-m", "lumina_audit", *map(str, args)], env=env, cwd=root,
                          capture_output=True, text=True, timeout=300, check=False)


def one_document(out: subprocess.CompletedProcess[str]) -> Any:
    """The one JSON document a command printed on stdout (json.loads refuses two)."""
    assert out.returncode == 0, out.stdout + out.stderr
    return json.loads(out.stdout)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    """A ledger with a run recording a report (tests/certificates), a trust file, a throwaway PKI, a certificate."""
    root = tmp_path_factory.mktemp("grammar")
    _doc, data, _proof, _when = _make(root)
    (root / "reports").mkdir()
    (root / "reports" / "q.json").write_bytes(data)
    write_private_key(root / "op.key", OPERATOR)
    (root / "trust").write_text(format_entry("operator", [LEDGER_NAMESPACE, "lumina-audit/manifest"],
                                             OPERATOR.public_key()) + "\n")
    pki = one_document(cli(root, "pki", "throwaway", "--out", "pki", "--json"))
    issued = one_document(cli(root, "certificate", "issue", "reports/q.json", "--ledger", "ledger", "--trust", "trust",
                              "--key", "op.key", "--signer-key", "pki/signer.key", "--signer-cert", "pki/signer.pem",
                              "--out", "q.pdf", "--json"))
    (root / "proof-1.json").write_text(cli(root, "ledger", "prove", "1", "--ledger", "ledger").stdout)
    proof = json.loads((root / "proof-1.json").read_text())
    (root / "proof-bad.json").write_text(json.dumps(proof | {"record": proof["record"].replace('"size":', '"bytes":')}))
    (root / "other-trust").write_text(format_entry("other", [LEDGER_NAMESPACE], generate().public_key()) + "\n")
    write_manifest(root, SAME, "unsigned.yaml")
    return World(root, issued, pki)


def test_json_of_pki_throwaway_and_certificate_issue(world: World) -> None:
    assert world.pki["kind"] == "ec" and world.pki["throwaway"] is True
    assert set(world.pki["files"]) == {"root", "key", "cert"}
    assert all((world.root / p).is_file() for p in world.pki["files"].values())
    issued = world.issued
    assert issued["path"] == "q.pdf" and issued["record"] == 2 and issued["page_size"] == "A4"
    assert issued["timestamped"] is False and "throwaway signer" in issued["signer"]
    assert issued["signed_pdf_sha256"] == hashlib.sha256((world.root / "q.pdf").read_bytes()).hexdigest()


# ------------------------------------------------------------------------------------ the aliases of before

#: (old spelling, new spelling, the DEPRECATED key whose line the old one prints, exit code).
ALIASES = [
    (["verify", "ledger", "ledger", "--trust", "trust"], ["ledger", "verify", "--ledger", "ledger", "--trust", "trust"],
     "verify ledger", 0),
    (["verify", "ledger", "--trust", "trust", "--json"], ["ledger", "verify", "--ledger", "ledger", "--trust", "trust",
                                                          "--json"], "verify ledger", 0),
    (["verify", "ledger", "ledger", "--trust", "other-trust"], ["ledger", "verify", "--ledger", "ledger", "--trust",
                                                                "other-trust"], "verify ledger", 1),
    (["verify", "proof", "proof-1.json", "--trust", "trust"], ["proof", "verify", "proof-1.json", "--trust", "trust"],
     "verify proof", 0),
    (["verify", "proof", "proof-bad.json", "--trust", "trust"], ["proof", "verify", "proof-bad.json", "--trust",
                                                                 "trust"], "verify proof", 1),
    (["verify", "certificate", "q.pdf", "--roots", "pki/root.pem", "--trust", "trust", "--ledger", "ledger", "--json"],
     ["certificate", "verify", "q.pdf", "--roots", "pki/root.pem", "--trust", "trust", "--ledger", "ledger", "--json"],
     "verify certificate", 0),
    (["verify", "certificate", "nothing.pdf", "--roots", "pki/root.pem", "--trust", "trust"],
     ["certificate", "verify", "nothing.pdf", "--roots", "pki/root.pem", "--trust", "trust"], "verify certificate", 2),
    (["run", "unsigned.yaml", "--trust", "trust", "--key", "op.key"],
     ["manifest", "run", "unsigned.yaml", "--trust", "trust", "--key", "op.key"], "run", 2),
    (["run", "nothing.yaml", "--trust", "trust", "--key", "op.key", "--json"],
     ["manifest", "run", "nothing.yaml", "--trust", "trust", "--key", "op.key", "--json"], "run", 2),
    (["signature", "--model", str(TINY), "--sha256", "bogus", "reports/q.json"],
     ["signature", "compute", "--model", str(TINY), "--sha256", "bogus", "reports/q.json"], "signature", 2),
    (["derive", "song.wav", "--transform", "bogus", "--out", "x.wav"],
     ["audio", "derive", "song.wav", "--transform", "bogus", "--out", "x.wav"], "derive", 2),
    pytest.param(["customize", "song.wav", "--model", str(TINY), "--out", "pieces", "--sha256", "bogus"],
                 ["model", "customize", "song.wav", "--model", str(TINY), "--out", "pieces", "--sha256", "bogus"],
                 "customize", 2, marks=pytest.mark.slow),  # imports torch before it refuses (10 s)
    (["ledger", "show", "ledger", "--json"], ["ledger", "show", "--ledger", "ledger", "--json"], "ledger show DIR", 0),
    (["ledger", "show", "nowhere"], ["ledger", "show", "--ledger", "nowhere"], "ledger show DIR", 1),
    (["ledger", "checkpoint", "ledger"], ["ledger", "checkpoint", "--ledger", "ledger"], "ledger checkpoint DIR", 0),
    (["ledger", "repair", "ledger"], ["ledger", "repair", "--ledger", "ledger"], "ledger repair DIR", 0),
    (["ledger", "prove", "1"], ["ledger", "prove", "1", "--ledger", "ledger"], "ledger prove RECORD", 0),
]


@pytest.mark.parametrize(("old", "new", "key", "code"), ALIASES,
                         ids=[" ".join(getattr(a, "values", a)[0][:2]) + f"-{i}" for i, a in enumerate(ALIASES)])
def test_an_old_spelling_prints_one_line_then_does_what_the_new_one_does(
        world: World, old: list[str], new: list[str], key: str, code: int) -> None:
    was, now = cli(world.root, *old), cli(world.root, *new)
    assert now.returncode == was.returncode == code, (now.stderr, was.stderr)
    assert was.stdout == now.stdout
    assert was.stderr == deprecation(key) + "\n" + now.stderr
    assert not now.stderr.startswith("lumina-audit:")  # the new spelling says nothing of the kind


def test_the_deprecation_line_names_the_old_and_the_new_spelling() -> None:
    assert deprecation("verify ledger") == "lumina-audit: 'verify ledger' is now 'ledger verify'"
    assert deprecation("run") == "lumina-audit: 'run' is now 'manifest run'"
    assert deprecation("ledger show DIR") == "lumina-audit: 'ledger show DIR' is now 'ledger show --ledger DIR'"


def test_a_group_of_the_grammar_is_not_taken_for_an_old_spelling(world: World) -> None:
    for args in (["signature"], ["signature", "--help"], ["ledger", "show", "--help"], ["ledger", "prove", "--help"]):
        out = cli(world.root, *args)
        assert "is now" not in out.stderr and "Usage: lumina-audit" in out.stdout, (args, out.stderr)


# --------------------------------------------------------------------------------- --json: one document each


def test_json_of_keys_manifest_ledger_proof_and_certificate(world: World, tmp_path: Path) -> None:
    root = world.root
    shutil.copytree(root / "ledger", tmp_path / "ledger")
    shutil.copy(root / "unsigned.yaml", tmp_path / "m.yaml")
    (tmp_path / "model").mkdir()
    (tmp_path / "audio").mkdir()
    done: set[str] = {"pki throwaway", "certificate issue"}

    def doc(*args: str | Path) -> Any:
        done.add(" ".join(map(str, args[:2])))
        return one_document(cli(tmp_path, *args, "--json"))

    gen = doc("keys", "generate", "--out", "keys/x", "--principal", "x@lab", "--role", "reviewer")
    assert gen["private_key"] == "keys/x.key" and gen["trust_line"].startswith("x@lab ")
    line = doc("keys", "trust-line", "keys/x.pub", "--principal", "x@lab", "--namespace", "lumina-audit/manifest")
    assert line["key_id"] == gen["key_id"] and line["namespaces"] == ["lumina-audit/manifest"]
    trust = str(root / "trust")
    revoked = doc("keys", "revoke", "ab" * 32, "--ledger", "ledger", "--trust", trust, "--key", str(root / "op.key"),
                  "--reason", "lost")
    assert revoked["record"] == 3 and revoked["kind"] == "key-revocation" and revoked["reason"] == "lost"
    signed = doc("manifest", "sign", "m.yaml", "--key", str(root / "op.key"))
    assert signed["key_id"] == key_id(OPERATOR.public_key()) and Path(tmp_path / signed["signatures"]).is_file()
    (tmp_path / "trust").write_text((root / "trust").read_text() + '@policy Extract version="1",threshold="1"\n')
    verified = doc("manifest", "verify", "m.yaml", "--trust", "trust")
    assert verified["valid"] is True and verified["manifest_digest"] == signed["manifest_digest"]
    shown = doc("ledger", "show", "--ledger", "ledger")
    assert [r["kind"] for r in shown["records"]] == ["run", "run", "certificate", "key-revocation"]
    checkpoint = doc("ledger", "checkpoint", "--ledger", "ledger")
    assert checkpoint["tree_size"] == 4 and checkpoint["origin"] == shown["origin"]
    assert checkpoint["checkpoint"] == cli(tmp_path, "ledger", "checkpoint", "--ledger", "ledger").stdout
    proof = doc("ledger", "prove", "3", "--ledger", "ledger")
    assert proof["format"] == "lumina-inclusion-proof"
    (tmp_path / "proof.json").write_text(json.dumps(proof))
    assert doc("proof", "verify", "proof.json", "--trust", trust)["record"] == 3
    assert doc("ledger", "verify", "--ledger", "ledger", "--trust", trust, "--no-outputs")["status"] == "valid"
    repaired = doc("ledger", "repair", "--ledger", "ledger")
    assert repaired["changed"] is False and repaired["records"] == 4
    rotated = doc("keys", "rotate", "--ledger", "ledger", "--trust", trust, "--key", str(root / "op.key"),
                  "--new", "keys/x.pub")
    assert rotated["record"] == 4 and rotated["new_key_id"] == gen["key_id"]
    cert = doc("certificate", "verify", str(root / "q.pdf"), "--roots", str(root / "pki" / "root.pem"), "--trust",
               trust)
    assert cert["valid"] is True and cert["ledger_record"] == 1
    report = doc("report", "show", str(root / "reports" / "q.json"))
    assert report["sha256"] and report["query"]["song_id"] == "query-001"
    (tmp_path / "ckpt").mkdir()
    files = {"state_dict.bin": b"lm", "compression_state_dict.bin": b"codec"}  # hashed, never unpickled
    for name, data in files.items():
        (tmp_path / "ckpt" / name).write_bytes(data)
    assert doc("model", "digests", "ckpt") == {n: hashlib.sha256(d).hexdigest() for n, d in files.items()}

    from lumina_audit._internal.synth import SongSpec, render, write_wav

    write_wav(tmp_path / "song.wav", render(SongSpec(seed=5, seconds=2.0)), 32000, 16)
    derived = doc("audio", "derive", "song.wav", "--transform", "gain-3db", "--out-dir", "derived")
    assert [d["transform"] for d in derived] == ["gain-3db"]
    assert done | set(JSON_ELSEWHERE) == set(_visible_commands()), set(_visible_commands()) - done - set(JSON_ELSEWHERE)


@pytest.mark.slow
def test_model_customize_json_is_one_document(tmp_path: Path) -> None:
    from lumina_audit._internal.synth import SongSpec, render, write_wav

    write_wav(tmp_path / "song.wav", render(SongSpec(seed=6, seconds=10.5)), 32000, 16)  # one whole chunk
    out = one_document(cli(tmp_path, "model", "customize", "song.wav", "--model", TINY, "--digests",
                           TINY.with_name("tiny-musicgen.sha256"), "--out", "pieces", "--steps", "1", "--pieces", "1",
                           "--seconds", "1", "--json"))
    assert out["out"] == "pieces" and {p["kind"] for p in out["pieces"]} == {"fine-tuned", "base"}
