"""The command line as a user meets it: outputs, one-line errors, exit codes."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile
import torch

from lumina_audit._internal.synth import SongSpec, render, write_wav
from lumina_audit.signature import golden
from lumina_audit.signature.model import sha256_model_files
from lumina_audit.signature.pins import MARKER

from ..conftest import GOLDEN, ROOT, TINY

DIGESTS = GOLDEN / "models" / "tiny-musicgen.sha256"


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if k != MARKER}
    return subprocess.run([sys.executable, "-m", "lumina_audit", *args], env=env or base, cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.parametrize("method", [None, "lumina-gradproj-v1", "lumina-gradstats-v1"])
def test_signature_json_reads_back_the_golden_bits(method: str | None) -> None:
    gf = golden.read(GOLDEN)
    expected = gf.expected_for(method or "lumina-gradproj-v1")  # gradproj by default
    clips = [expected[1], expected[4]]
    chosen = ["--method", method] if method else []
    out = cli("signature", "compute", "--model", str(TINY), "--digests", str(DIGESTS), *(str(p) for p, _ in clips),
              "--json", *chosen)
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["method"] == (method or "lumina-gradproj-v1")
    assert "NOT EVIDENCE" in doc["notice"] and doc["signature_space_sha256"] == gf.spaces[doc["method"]]
    for result, (_, exp) in zip(doc["results"], clips, strict=True):
        assert result["song_id"] == exp.song_id and result["chunks"] == exp.chunks
        assert result["pcm_sha256"] == exp.pcm_sha256 and result["file_sha256"] == exp.file_sha256
        assert np.asarray(result["p"], np.float64).astype(np.float32).tobytes() == exp.p.tobytes()
        assert np.asarray(result["m_raw"], np.float64).tobytes() == exp.raw_m.tobytes()
        assert len(result["p_raw"]) == len(result["m"]) == 216
    assert out.stderr == ""  # no library noise


def test_signature_memory_pins_keep_the_bits_and_chunk_batch_names_its_space() -> None:
    from lumina_audit.signature.methods import GRADPROJ
    from lumina_audit.signature.space import SignatureConfig

    gf = golden.read(GOLDEN)
    path, exp = gf.expected_for("lumina-gradproj-v1")[1]  # one chunk: a batch of one, the unbatched bits
    out = cli("signature", "compute", "--model", str(TINY), "--digests", str(DIGESTS), str(path), "--json", "--sums",
              "host", "--gradients=streamed", "--chunk-batch", "2")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["signature_space_sha256"] == SignatureConfig(chunk_batch=2).space(gf.digests, GRADPROJ).digest
    assert doc["signature_space_sha256"] != gf.spaces["lumina-gradproj-v1"]
    result = doc["results"][0]
    assert result["chunks"] == exp.chunks == 1
    assert np.asarray(result["p"], np.float64).astype(np.float32).tobytes() == exp.p.tobytes()
    bad = cli("signature", "compute", "--model", str(TINY), "--digests", str(DIGESTS), str(path), "--sums", "gpu")
    assert bad.returncode == 2 and bad.stderr.startswith("error: sums must be 'device' or 'host'")


def _bad_inputs(tmp: Path) -> dict[str, tuple[list[str], str]]:
    """name -> (arguments, expected message fragment)."""
    good = str(GOLDEN / "clips" / "d_mono32k_float.wav")
    (tmp / "empty.wav").write_bytes(b"")
    (tmp / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEfmt garbage" * 10)
    nan = render(SongSpec(seed=3, seconds=2.0)).T.astype(np.float32)
    nan[100, 0] = np.nan
    soundfile.write(tmp / "nan.wav", nan, 32000, subtype="FLOAT")
    write_wav(tmp / "short.wav", render(SongSpec(seed=4, seconds=0.5)), 32000, 16)
    soundfile.write(tmp / "long.wav", np.zeros((4000 * 901, 1), np.int16), 4000, subtype="PCM_16")
    ckpt = tmp / "ckpt"
    shutil.copytree(TINY, ckpt)
    pkg = torch.load(ckpt / "state_dict.bin", weights_only=True)
    del pkg["best_state"]["transformer.layers.44.self_attn.in_proj_weight"]
    torch.save(pkg, ckpt / "state_dict.bin")
    hurt = [f"--sha256={k}={v}" for k, v in sha256_model_files(ckpt).items()]
    model = ["--model", str(TINY), "--digests", str(DIGESTS)]
    return {
        "missing file": ([*model, str(tmp / "nope.wav")], "no such file"),
        "empty file": ([*model, str(tmp / "empty.wav")], "empty file"),
        "corrupt file": ([*model, str(tmp / "corrupt.wav")], "cannot decode audio"),
        "NaN samples": ([*model, str(tmp / "nan.wav")], "non-finite samples"),
        "too short": ([*model, str(tmp / "short.wav")], "too short"),
        "too long": ([*model, str(tmp / "long.wav")], "longer than max_seconds=900"),
        "wrong digest": (["--model", str(TINY), "--sha256", "state_dict.bin=" + "ab" * 32,
                          "--sha256", "compression_state_dict.bin=" + "cd" * 32, good], "differs from the expected"),
        "missing tensor": (["--model", str(ckpt), *hurt, good], "transformer.layers.44.self_attn.in_proj_weight"),
        "missing model": (["--model", str(tmp / "none"), "--digests", str(DIGESTS), good], "directory not found"),
        "no digests": (["--model", str(TINY), good], "no expected SHA-256"),
    }


def test_bad_inputs_give_one_line_errors(tmp_path: Path) -> None:
    cases = _bad_inputs(tmp_path)

    def run(item: tuple[str, tuple[list[str], str]]) -> tuple[str, str, Any]:
        name, (args, fragment) = item
        return name, fragment, cli("signature", "compute", *args)

    with ThreadPoolExecutor(max_workers=2) as pool:
        for name, fragment, out in pool.map(run, cases.items()):
            lines = out.stderr.strip().splitlines()
            assert out.returncode == 2, (name, out.stderr)
            assert lines and lines[0].startswith("error: ") and fragment in lines[0], (name, out.stderr)
            assert len(lines) <= 2 and all(ln.startswith(("error: ", "hint: ")) for ln in lines), (name, lines)
            assert "Traceback" not in out.stderr and out.stdout == "", name


def test_every_command_help_has_an_example() -> None:
    for command in (["signature", "compute"], ["golden", "check"], ["model", "digests"]):
        out = cli(*command, "--help")
        assert out.returncode == 0 and "Example: lumina-audit" in out.stdout, command


def test_model_digests_prints_sha256sum_lines() -> None:
    out = cli("model", "digests", str(TINY))
    assert out.returncode == 0
    assert out.stdout == DIGESTS.read_text()


def test_unknown_option_is_a_usage_error() -> None:
    out = cli("signature", "compute", "--model", str(TINY), "--bogus")
    assert out.returncode == 2 and "No such option" in out.stderr and "Traceback" not in out.stderr


def test_golden_check_mismatch_exits_1_and_names_the_environment(tmp_path: Path) -> None:
    doc = json.loads((GOLDEN / "golden.json").read_text())
    clip = next(c for c in doc["clips"] if c["song_id"] == "d_mono32k_float")
    clip["vectors"]["lumina-gradstats-v1"]["m"][5] *= 2
    doc["clips"] = [clip]
    doc["model"]["directory"] = str(TINY)
    doc["environment"]["versions"]["torch"] = "2.10.0"
    shutil.copytree(GOLDEN / "clips", tmp_path / "clips")
    (tmp_path / "golden.json").write_text(json.dumps(doc))
    out = cli("golden", "check", "--golden", str(tmp_path))
    assert out.returncode == 1, out.stderr
    assert "DIFFERS in m " in out.stdout and "1/2 clips bitwise equal (1 clips x 2 methods)" in out.stdout
    assert out.stdout.count("DIFFERS") == 1
    assert "versions.torch: '2.10.0' -> '2.11.0'" in out.stdout


def _commands(group: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, cmd in getattr(group, "commands", {}).items():
        if getattr(cmd, "commands", None):
            out += _commands(cmd, (*prefix, name))
        else:
            out.append((*prefix, name))
    return out


def test_every_command_of_the_app_has_an_example_in_its_help() -> None:
    import typer.main
    from typer.testing import CliRunner

    from lumina_audit.cli.main import app

    commands = _commands(typer.main.get_command(app))
    assert len(commands) >= 17, commands
    runner = CliRunner()
    for command in commands:
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, (command, result.output)
        assert "Example: lumina-audit" in result.output, command


def test_version_names_the_package_and_the_versions_that_decide_bits() -> None:
    from importlib import metadata

    from lumina_audit import __version__

    out = cli("--version")
    assert out.returncode == 0, out.stderr
    first, second, third = out.stdout.splitlines()
    assert first == f"lumina-audit {__version__}" and __version__ == metadata.version("lumina-audit")
    assert second == (f"Python {sys.version.split()[0]}, torch {metadata.version('torch')}, torchaudio "
                      f"{metadata.version('torchaudio')}, audiocraft {metadata.version('audiocraft')}, numpy "
                      f"{metadata.version('numpy')}")
    assert third == f"likelihood ratios (lumina-attribution-v2) follow lir {metadata.version('lir')}"
    assert out.stderr == ""


#: Spellings of before (lumina_audit/cli/_grammar.py): a message or document that names one fails the test below.
DEPRECATED_SPELLING = re.compile(
    r"lumina-audit (?:run|derive|customize)\b(?!-)"  # manifest run, audio derive, model customize
    r"|lumina-audit signature (?!compute\b|\[OPTIONS\])\S"  # signature compute
    r"|(?:lumina-audit |`)verify (?:ledger|proof|certificate)\b"  # ledger verify, proof verify, certificate verify
    r"|lumina-audit ledger (?:show|checkpoint|repair|verify) [^-\s/|`\[]")  # the ledger as --ledger DIR

#: Where the old spellings may stay: the alias definitions, and the v1 certificate template, which must not change
#: (already-issued certificates re-render byte for byte; its "How to verify" names the command of its time).
MAY_NAME_OLD_SPELLINGS = {Path("lumina_audit/cli/_grammar.py"),
                          Path("lumina_audit/_data/templates/certificate.html.j2")}


def _named_in_messages_and_documents() -> dict[Path, str]:
    sources = [*Path("lumina_audit").rglob("*.py"), *Path("lumina_audit/_data/templates").glob("*.j2"),
               Path("lumina_audit/_data/templates/README.md"), *Path("scripts").glob("*.py"),
               *Path("scripts").glob("*.sh"), *Path("benchmarks").rglob("*.py"), *Path("benchmarks").rglob("*.md"),
               Path("README.md"), Path("SECURITY.md"), *Path("docs").rglob("*.md"), *Path("manifests").rglob("*.yaml")]
    return {src: src.read_text("utf-8") for src in sources}


def test_every_command_a_message_or_document_names_exists() -> None:
    """Hints, docstrings, docs, manifests and templates name ``lumina-audit GROUP COMMAND``: each must be a real
    command, spelled as it is now (noun then verb, the ledger as --ledger DIR), never as it was."""
    import typer.main

    from lumina_audit.cli.main import app

    commands: dict[str, Any] = typer.main.get_command(app).commands  # type: ignore[attr-defined]
    groups = {name: {n for n, sub in c.commands.items() if not sub.hidden} for name, c in commands.items()
              if getattr(c, "commands", None) is not None and not c.hidden}
    named: set[tuple[str, str]] = set()
    old: list[str] = []
    for src, text in _named_in_messages_and_documents().items():
        for m in re.finditer(r"lumina-audit ([a-z][a-z-]*) ([a-z][a-z-]*)", text):
            named.add((m.group(1), m.group(2)))
        if src not in MAY_NAME_OLD_SPELLINGS:
            old += [f"{src}:{text.count(chr(10), 0, m.start()) + 1}: {m.group(0)}"
                    for m in DEPRECATED_SPELLING.finditer(text)]
    checked = [pair for pair in sorted(named) if pair[0] in groups]  # prose ("lumina-audit computes") is no group
    unknown = [" ".join(pair) for pair in checked if pair[1] not in groups[pair[0]]]
    assert len(checked) > 10 and not unknown, unknown
    assert not old, "deprecated spellings (lumina_audit/cli/_grammar.py has the new ones):\n" + "\n".join(old)
    # the hint this test was first written for ("run `lumina-audit ledger verify`") is now the spelling
    assert "verify" in groups["ledger"] and "verify" not in groups


@pytest.mark.parametrize("text", ["lumina-audit run m.yaml", "see `lumina-audit derive`", "lumina-audit customize",
                                  "lumina-audit signature --model M", "lumina-audit signature a.wav",
                                  "``verify ledger``", "lumina-audit verify certificate X.pdf", "`verify proof FILE`",
                                  "lumina-audit ledger show work/ledger", "lumina-audit ledger repair ledger"])
def test_the_message_check_catches_each_deprecated_spelling(text: str) -> None:
    assert DEPRECATED_SPELLING.search(text), text


@pytest.mark.parametrize("text", ["lumina-audit manifest run m.yaml", "lumina-audit audio derive",
                                  "lumina-audit model customize", "lumina-audit signature compute --model M",
                                  "`ledger verify`", "lumina-audit certificate verify X.pdf", "lumina-audit runs",
                                  "lumina-audit ledger show --ledger work/ledger", "`lumina-audit ledger checkpoint`",
                                  "lumina-audit ledger show / checkpoint", "lumina-audit signature-v1",
                                  "lumina-audit signature [OPTIONS] COMMAND", "lumina-audit ledger show [OPTIONS]",
                                  "we verify ledger records"])
def test_the_message_check_passes_the_current_spellings(text: str) -> None:
    assert not DEPRECATED_SPELLING.search(text), text
