"""The ``lumina-audit`` command: a thin layer over the library.

Every command runs under the numerical pins: :func:`main` re-executes the
process with the pinned environment before anything imports torch. Errors
derived from :class:`~lumina_audit.errors.LuminaError` print one line (and a
hint) and exit with the error's code, never a traceback.

Exit codes: 0 success; 1 a check failed (golden mismatch, invalid evidence);
2 bad input or refused operation; 3 could not check; 130 interrupted.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from . import cli_evidence
from .errors import ConfigError, LuminaError
from .pins import Pins, reexec_if_needed

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Court-grade music attribution evidence from MusicGen gradient signatures.")
golden_app = typer.Typer(no_args_is_help=True, help="Check this installation against the golden vectors.")
model_app = typer.Typer(no_args_is_help=True, help="Inspect MusicGen checkpoint directories.")
app.add_typer(golden_app, name="golden")
app.add_typer(model_app, name="model")
app.add_typer(cli_evidence.keys_app, name="keys")
app.add_typer(cli_evidence.manifest_app, name="manifest")
app.add_typer(cli_evidence.ledger_app, name="ledger")
app.add_typer(cli_evidence.verify_app, name="verify")
app.add_typer(cli_evidence.report_app, name="report")
app.add_typer(cli_evidence.certificate_app, name="certificate")
app.add_typer(cli_evidence.pki_app, name="pki")
app.command("run", epilog="Example: lumina-audit run manifests/demo/extract.yaml --trust work/trust "
            "--key work/keys/operator.key")(cli_evidence.run)

NOT_EVIDENCE = ("NOT EVIDENCE: this output is for inspection and independent recomputation only. "
                "Evidence comes from signed manifest runs recorded in a ledger.")


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _err(text: str) -> None:
    sys.stderr.write(text + "\n")


def _parse_digests(digest_file: Path | None, sha256: list[str]) -> dict[str, str]:
    from ._internal.digests import parse_digest_args

    return parse_digest_args(digest_file, sha256)


@app.command(epilog="Example: lumina-audit signature --model golden/models/tiny-musicgen "
             "--digests golden/models/tiny-musicgen.sha256 song.wav --json")
def signature(
    audio: Annotated[list[Path], typer.Argument(help="Audio files (WAV, FLAC, OGG, MP3, ...).")],
    model: Annotated[Path, typer.Option(help="audiocraft checkpoint directory.")],
    digests: Annotated[Path | None, typer.Option(help="File with the expected SHA-256 of each "
                                                 "checkpoint file (sha256sum format or JSON).")] = None,
    sha256: Annotated[list[str], typer.Option(help="Expected digest as NAME=HEX; repeatable.")] = [],  # noqa: B006
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    device: Annotated[str, typer.Option(help="cpu or cuda (a numerical pin).")] = "cpu",
    threads: Annotated[int, typer.Option(help="Intra-op threads (a numerical pin).")] = 1,
) -> None:
    """Compute the P and M signatures of audio files (inspection, not evidence).

    Prints per file the song id, file and PCM SHA-256, chunk count, the
    normalised signatures p and m and the raw vectors p_raw and m_raw. JSON
    numbers read back to exactly the same floats.
    """
    from ._internal.session import Session, check_inputs, load_all
    from .pins import apply_torch_pins
    from .space import SignatureConfig

    expected = _parse_digests(digests, sha256)
    pins, config = Pins(device=device, threads=threads), SignatureConfig()  # type: ignore[arg-type]
    check_inputs(audio, None)
    apply_torch_pins(pins)
    audios = load_all(audio, config)  # refuse bad audio before the model is loaded
    session = Session.open(model, expected, pins, config)
    results = session.signatures(audio, audios=audios)
    doc: dict[str, Any] = {
        "notice": NOT_EVIDENCE, "method": session.space.as_dict()["method"],
        "signature_space_sha256": session.space.digest, "model_digests": dict(expected),
        "results": [{
            "song_id": s.song_id, "file": str(path), "file_sha256": s.file_sha256,
            "pcm_sha256": s.pcm_sha256, "chunks": s.chunks,
            "p": [float(v) for v in s.p], "m": [float(v) for v in s.m],
            "p_raw": [float(v) for v in s.raw_p], "m_raw": [float(v) for v in s.raw_m],
        } for path, s in results],
    }
    if as_json:
        _out(json.dumps(doc, indent=1))
        return
    _out(NOT_EVIDENCE)
    _out(f"signature space {session.space.digest}")
    for path, s in results:
        _out(f"{s.song_id}  {path}\n  file_sha256 {s.file_sha256}\n  pcm_sha256  {s.pcm_sha256}\n"
             f"  chunks {s.chunks}\n  p[:4] {[float(v) for v in s.p[:4]]}\n  m[:4] {[float(v) for v in s.m[:4]]}")


@golden_app.command("check", epilog="Example: lumina-audit golden check --json")
def golden_check(
    golden: Annotated[Path | None, typer.Option(help="Golden folder (default: the repo's golden/).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Recompute the golden signatures and compare them bit for bit.

    Exit 0 when every clip is bitwise equal, 1 otherwise; on a mismatch the
    environment that differs from the one the vectors were made in is shown.
    """
    from . import golden as golden_mod
    from ._internal.session import Session

    gf = golden_mod.read(golden or golden_mod.default_root())
    session = Session.open(gf.model_dir, gf.digests, gf.pins)
    report = golden_mod.check(gf, session.signature, session.space.digest, session.environment())
    if as_json:
        _out(json.dumps({"bottom_line": report.bottom_line, "signature_space_sha256": report.space_sha256,
                         "clips": [c.__dict__ | {"differing": list(c.differing)} for c in report.clips],
                         "environment_differences": list(report.environment_differences)}, indent=1))
    else:
        _out(f"golden vectors in {gf.root} (model digests and space {report.space_sha256[:16]}...)")
        for c in report.clips:
            state = "bitwise equal" if c.equal else f"DIFFERS in {', '.join(c.differing)} " \
                f"(max |diff| {c.max_abs_diff:.3g})"
            _out(f"  {c.file:<28} {c.song_id:<24} chunks={c.chunks}  p_raw m_raw p m: {state}")
        _out(f"{sum(c.equal for c in report.clips)}/{len(report.clips)} clips bitwise equal")
        if not report.bottom_line:
            _out("environment differences from the one the golden vectors were made in:")
            for line in report.environment_differences or ("(none recorded: same versions, CPU and pins)",):
                _out(f"  {line}")
    if not report.bottom_line:
        raise typer.Exit(1)


@model_app.command("digests", epilog="Example: lumina-audit model digests /models/musicgen-large > large.sha256")
def model_digests(
    directory: Annotated[Path, typer.Argument(help="audiocraft checkpoint directory.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Print the SHA-256 of each checkpoint file (sha256sum format), to pin them.

    Nothing is unpickled. Pin the printed digests in a manifest only after
    obtaining the files from a source you trust.
    """
    from .model import sha256_model_files

    digests = sha256_model_files(directory)
    if as_json:
        _out(json.dumps(digests, indent=1))
    else:
        for name, value in digests.items():
            _out(f"{value}  {name}")


def _pins_from_argv(argv: list[str]) -> Pins:
    """The pins a command will run under, read before torch can start.

    ``run MANIFEST`` runs under the manifest's pins (read, not yet verified: the run
    verifies it after the re-execution and refuses it there if it is not valid).
    """
    positional = [a for a in argv if not a.startswith("-")]
    if positional[:1] == ["run"] and len(positional) > 1:
        from .manifest import load_manifest

        try:
            return load_manifest(positional[1]).pins()
        except LuminaError:
            return Pins()  # the command itself reports the problem
    values: dict[str, str] = {}
    for i, arg in enumerate(argv):
        for opt in ("--device", "--threads"):
            if arg == opt and i + 1 < len(argv):
                values[opt] = argv[i + 1]
            elif arg.startswith(opt + "="):
                values[opt] = arg.split("=", 1)[1]
    try:
        return Pins(device=values.get("--device", "cpu"),  # type: ignore[arg-type]
                    threads=int(values.get("--threads", "1")))
    except ValueError:
        raise ConfigError(f"--threads must be a whole number, got {values.get('--threads')!r}") from None


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``lumina-audit`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        reexec_if_needed(_pins_from_argv(args), args)
        from ._internal.quiet import silence_libraries

        silence_libraries()
        rc = app(args=args, prog_name="lumina-audit", standalone_mode=False)
        if isinstance(rc, int) and rc != 0:  # a command's typer.Exit(code), returned in this mode
            sys.exit(rc)
    except LuminaError as exc:
        _err(f"error: {exc.message}")
        if exc.hint:
            _err(f"hint: {exc.hint}")
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        _err("interrupted")
        sys.exit(130)
    except BrokenPipeError:
        sys.exit(1)
    except OSError as exc:  # a path given on the command line that cannot be read or written
        where = f"{exc.filename}: " if exc.filename else ""
        _err(f"error: {where}{exc.strerror or exc}")
        sys.exit(2)
    except typer.TyperException as exc:  # usage errors: typer prints them with the usage line
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            _err(f"error: {exc}")
        sys.exit(2)
