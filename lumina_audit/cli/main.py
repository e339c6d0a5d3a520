"""The ``lumina-audit`` command: a thin layer over the library.

Every command runs under the numerical pins: :func:`main` re-executes the
process with the pinned environment before anything imports torch. Errors
derived from :class:`~lumina_audit.errors.LuminaError` print one line (and a
hint) and exit with the error's code, never a traceback.

Exit codes: 0 success; 1 a check failed (golden mismatch, invalid evidence);
2 bad input or refused operation; 3 could not check; 130 interrupted.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from ..errors import ConfigError, LuminaError
from ..signature.pins import Pins, reexec_if_needed
from . import calibration, certificate, customize, derive, keys, ledger, manifest, report, run, signature, verify
from ._common import echo, err
from ._grammar import alias_of

__all__ = ["app", "main"]

#: Modules that only the ``compute`` extra installs (what signature computation and audiocraft import):
#: a command that needs one, run on the verifier alone (``pip install lumina-audit``), says so in one line.
COMPUTE_MODULES = frozenset({
    "torch", "torchaudio", "audiocraft", "h5py", "soundfile", "lir", "xformers", "einops", "julius", "omegaconf",
    "hydra", "flashy", "num2words", "spacy", "librosa", "av", "sentencepiece", "huggingface_hub", "transformers",
    "torchmetrics"})


def _missing_extra(exc: ModuleNotFoundError) -> str | None:
    """The one line for a module of the ``compute`` extra that is not installed; None for any other module."""
    name = (exc.name or "").split(".")[0]
    if name not in COMPUTE_MODULES:
        return None
    if name == "audiocraft":
        return ("error: this command needs audiocraft, which is not installed: pip install --no-deps "
                "audiocraft==1.3.0 (after pip install 'lumina-audit[compute]')")
    return (f"error: this command needs the compute extra ({name} is not installed): "
            "pip install 'lumina-audit[compute]', then pip install --no-deps audiocraft==1.3.0")

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Court-grade music attribution evidence from MusicGen gradient signatures.")

# One grammar: a noun (the group), then a verb; a ledger is always --ledger DIR. docs/cli.md is generated
# from these commands (make cli-docs). Most are declared in their modules; these four join their groups here.
manifest.manifest_app.command("run", epilog=run.RUN_EPILOG)(run.run)
signature.model_app.command("customize", epilog=customize.CUSTOMIZE_EPILOG)(customize.customize)
ledger.ledger_app.command("verify", epilog=verify.LEDGER_VERIFY_EPILOG)(verify.ledger_verify)
certificate.certificate_app.command("verify", epilog=verify.CERTIFICATE_VERIFY_EPILOG)(verify.certificate_verify)
app.add_typer(signature.golden_app, name="golden")
app.add_typer(signature.model_app, name="model")
app.add_typer(signature.signature_app, name="signature")
app.add_typer(derive.audio_app, name="audio")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(certificate.pki_app, name="pki")
app.add_typer(manifest.manifest_app, name="manifest")
app.add_typer(ledger.ledger_app, name="ledger")
app.add_typer(verify.proof_app, name="proof")
app.add_typer(report.report_app, name="report")
app.add_typer(calibration.calibration_app, name="calibration")
app.add_typer(certificate.certificate_app, name="certificate")

# The spellings of before, hidden: each prints one line on stderr, then behaves as its new spelling
# (``signature AUDIO...`` is kept by the signature group itself, a positional ledger by the ledger commands).
app.command("run", hidden=True, cls=alias_of("run"), epilog=run.RUN_EPILOG)(run.run)
app.command("derive", hidden=True, cls=alias_of("derive"), epilog=derive.DERIVE_EPILOG)(derive.derive)
app.command("customize", hidden=True, cls=alias_of("customize"),
            epilog=customize.CUSTOMIZE_EPILOG)(customize.customize)
app.add_typer(verify.verify_app, name="verify", hidden=True)

#: Where a command that runs under a manifest's pins begins: ``manifest run MANIFEST``, and ``run MANIFEST``.
RUN_COMMANDS = (("manifest", "run"), ("run",))


def _version(value: bool) -> None:
    if value:
        from .. import __version__
        from ..signature.environment import ATTRIBUTION_PACKAGES, bit_versions

        echo(f"lumina-audit {__version__}")
        echo(", ".join(f"{name} {version}" for name, version in bit_versions().items()))
        echo("likelihood ratios (lumina-attribution-v2) follow " + ", ".join(
            f"{name} {version}" for name, version in bit_versions(ATTRIBUTION_PACKAGES, python=False).items()))
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_version,
                                          help="Print the version, and those of Python, torch, torchaudio, "
                                          "audiocraft and numpy (they decide a signature's bits) and of lir "
                                          "(the likelihood-ratio reference), then exit.")] = False,
) -> None:
    pass


def _manifest_to_run(argv: list[str]) -> str | None:
    """The MANIFEST of ``manifest run MANIFEST`` (or of the deprecated ``run MANIFEST``) in ARGV, else None."""
    for command in RUN_COMMANDS:
        if tuple(argv[:len(command)]) != command:
            continue
        rest = argv[len(command):]
        i = 0
        while i < len(rest):
            if rest[i] == "--":
                return rest[i + 1] if i + 1 < len(rest) else None
            if rest[i] in run.RUN_OPTIONS_WITH_VALUES:
                i += 2
            elif rest[i].startswith("-"):
                i += 1
            else:
                return rest[i]
        return None
    return None


def _pins_from_argv(argv: list[str]) -> Pins:
    """The pins a command will run under, read before torch can start.

    ``manifest run MANIFEST`` (and the deprecated ``run MANIFEST``) runs under the manifest's pins
    (read, not yet verified: the run verifies it after the re-execution and refuses it there if it
    is not valid).
    """
    path = _manifest_to_run(argv)
    if path is not None:
        from ..evidence.manifest import load_manifest

        try:
            return load_manifest(path).pins()
        except LuminaError:
            return Pins()  # the command itself reports the problem
    values: dict[str, str] = {}
    for i, arg in enumerate(argv):
        for opt in ("--device", "--threads", "--sums", "--gradients"):
            if arg == opt and i + 1 < len(argv):
                values[opt] = argv[i + 1]
            elif arg.startswith(opt + "="):
                values[opt] = arg.split("=", 1)[1]
    try:
        return Pins(device=values.get("--device", "cpu"),  # type: ignore[arg-type]
                    threads=int(values.get("--threads", "1")), sums=values.get("--sums", "device"),  # type: ignore[arg-type]
                    gradients=values.get("--gradients", "together"))  # type: ignore[arg-type]
    except ValueError:
        raise ConfigError(f"--threads must be a whole number, got {values.get('--threads')!r}") from None


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``lumina-audit`` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        reexec_if_needed(_pins_from_argv(args), args)
        from .._internal.quiet import silence_libraries

        silence_libraries()
        rc = app(args=args, prog_name="lumina-audit", standalone_mode=False)
        if isinstance(rc, int) and rc != 0:  # a command's typer.Exit(code), returned in this mode
            sys.exit(rc)
    except LuminaError as exc:
        err(f"error: {exc.message}")
        if exc.hint:
            err(f"hint: {exc.hint}")
        sys.exit(exc.exit_code)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        err("interrupted")
        sys.exit(130)
    except ModuleNotFoundError as exc:
        line = _missing_extra(exc)
        if line is None:
            raise
        err(line)
        sys.exit(2)
    except BrokenPipeError:
        sys.exit(1)
    except OSError as exc:  # a path given on the command line that cannot be read or written
        where = f"{exc.filename}: " if exc.filename else ""
        err(f"error: {where}{exc.strerror or exc}")
        sys.exit(2)
    except typer.TyperException as exc:  # usage errors: typer prints them with the usage line
        show = getattr(exc, "show", None)
        if callable(show):
            show()
        else:
            err(f"error: {exc}")
        sys.exit(2)
