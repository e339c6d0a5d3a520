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

__all__ = ["app", "main"]

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Court-grade music attribution evidence from MusicGen gradient signatures.")
app.add_typer(signature.golden_app, name="golden")
app.add_typer(signature.model_app, name="model")
app.add_typer(keys.keys_app, name="keys")
app.add_typer(manifest.manifest_app, name="manifest")
app.add_typer(ledger.ledger_app, name="ledger")
app.add_typer(verify.verify_app, name="verify")
app.add_typer(report.report_app, name="report")
app.add_typer(calibration.calibration_app, name="calibration")
app.add_typer(certificate.certificate_app, name="certificate")
app.add_typer(certificate.pki_app, name="pki")
app.command("run", epilog="Example: lumina-audit run manifests/demo/extract.yaml --trust work/trust "
            "--key work/keys/operator.key")(run.run)
app.command("signature", epilog=signature.SIGNATURE_EPILOG)(signature.signature)
app.command("derive", epilog=derive.DERIVE_EPILOG)(derive.derive)
app.command("customize", epilog=customize.CUSTOMIZE_EPILOG)(customize.customize)


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


def _pins_from_argv(argv: list[str]) -> Pins:
    """The pins a command will run under, read before torch can start.

    ``run MANIFEST`` runs under the manifest's pins (read, not yet verified: the run
    verifies it after the re-execution and refuses it there if it is not valid).
    """
    positional = [a for a in argv if not a.startswith("-")]
    if positional[:1] == ["run"] and len(positional) > 1:
        from ..evidence.manifest import load_manifest

        try:
            return load_manifest(positional[1]).pins()
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
