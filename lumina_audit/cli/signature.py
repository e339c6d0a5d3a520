"""``lumina-audit signature compute``, ``golden check`` and ``model digests``: the signature method for inspection."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from ..errors import ConfigError
from ..signature.pins import Pins
from ._common import echo
from ._grammar import default_group

__all__ = ["NOT_EVIDENCE", "SIGNATURE_EPILOG", "golden_app", "model_app", "signature", "signature_app"]

golden_app = typer.Typer(no_args_is_help=True, help="Check this installation against the golden vectors.")

model_app = typer.Typer(no_args_is_help=True, help="Inspect MusicGen checkpoint directories and fine-tune copies.")

#: ``signature AUDIO...``, the spelling of before, still computes (saying so in one line: :mod:`._grammar`).
signature_app = typer.Typer(cls=default_group("signature", "compute"), no_args_is_help=True,
                            help="Signatures of audio files, for inspection and recomputation (not evidence).")

NOT_EVIDENCE = ("NOT EVIDENCE: this output is for inspection and independent recomputation only. "
                "Evidence comes from signed manifest runs recorded in a ledger.")


def _parse_digests(digest_file: Path | None, sha256: list[str]) -> dict[str, str]:
    from ..signature.digests import parse_digest_args

    return parse_digest_args(digest_file, sha256)

#: The example of ``lumina-audit signature compute --help``.
SIGNATURE_EPILOG = ("Example: lumina-audit signature compute --model lumina_audit/_data/golden/models/tiny-musicgen "
                    "--digests lumina_audit/_data/golden/models/tiny-musicgen.sha256 song.wav --json")


@signature_app.command("compute", epilog=SIGNATURE_EPILOG)
def signature(
    audio: Annotated[list[Path], typer.Argument(help="Audio files (WAV, FLAC, OGG, MP3, ...).")],
    model: Annotated[Path, typer.Option(help="audiocraft checkpoint directory.")],
    digests: Annotated[Path | None, typer.Option(help="File with the expected SHA-256 of each "
                                                 "checkpoint file (sha256sum format or JSON).")] = None,
    sha256: Annotated[list[str], typer.Option(help="Expected digest as NAME=HEX; repeatable.")] = [],  # noqa: B006
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
    device: Annotated[str, typer.Option(help="cpu or cuda (a numerical pin).")] = "cpu",
    threads: Annotated[int, typer.Option(help="Intra-op threads (a numerical pin).")] = 1,
    method: Annotated[Literal["lumina-gradproj-v1", "lumina-gradstats-v1"], typer.Option(
        help="Signature method: the seeded projection of the gradient (gradproj, the primary method) or its "
             "six statistics per tensor (gradstats).")] = "lumina-gradproj-v1",
    sums: Annotated[Literal["device", "host"], typer.Option(
        help="Where the float64 chunk sums live (a memory pin: the same bits).")] = "device",
    gradients: Annotated[Literal["together", "streamed"], typer.Option(
        help="Hooked gradients returned together or streamed one at a time (a memory pin: the same bits).")
    ] = "together",
    chunk_batch: Annotated[int, typer.Option(
        help="Chunks per forward and backward pass; more than 1 changes the bits and the signature space.")] = 1,
) -> None:
    """Compute the P and M signatures of audio files (inspection, not evidence).

    Prints per file the song id, file and PCM SHA-256, chunk count, the
    normalised signatures p and m and the raw vectors p_raw and m_raw. JSON
    numbers read back to exactly the same floats.
    """
    from ..signature.methods import get_method
    from ..signature.pins import apply_torch_pins
    from ..signature.session import Session, check_inputs, load_all
    from ..signature.space import SignatureConfig

    expected = _parse_digests(digests, sha256)
    pins = Pins(device=device, threads=threads, sums=sums, gradients=gradients)  # type: ignore[arg-type]
    config = SignatureConfig(chunk_batch=chunk_batch)
    check_inputs(audio, None)
    apply_torch_pins(pins)
    audios = load_all(audio, config)  # refuse bad audio before the model is loaded
    session = Session.open(model, expected, pins, config, (get_method(method),))
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
        echo(json.dumps(doc, indent=1))
        return
    echo(NOT_EVIDENCE)
    echo(f"method {session.methods[0].name}, signature space {session.space.digest}")
    for path, s in results:
        echo(f"{s.song_id}  {path}\n  file_sha256 {s.file_sha256}\n  pcm_sha256  {s.pcm_sha256}\n"
             f"  chunks {s.chunks}\n  p[:4] {[float(v) for v in s.p[:4]]}\n  m[:4] {[float(v) for v in s.m[:4]]}")


@golden_app.command("check", epilog="Example: lumina-audit golden check --json")
def golden_check(
    golden: Annotated[Path | None, typer.Option(help="Golden folder (default: the package's _data/golden/); every "
                                                "golden.json and golden-*.json in it is checked.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines.")] = False,
) -> None:
    """Recompute the golden signatures and compare them bit for bit.

    Each golden file names its checkpoint; every clip, every method is recomputed.
    Exit 0 when every clip is bitwise equal, 1 otherwise; on a mismatch the
    environment that differs from the one the vectors were made in is shown.
    """
    from ..signature import golden as golden_mod
    from ..signature.methods import get_method
    from ..signature.session import Session

    root = golden or golden_mod.default_root()
    names = golden_mod.files(root)
    if not names:
        raise ConfigError(f"{root}: no golden file (golden.json or golden-*.json)")
    reports = []
    for name in names:  # one checkpoint per file, each with its own session
        gf = golden_mod.read(root, name)
        session = Session.open(gf.model_dir, gf.digests, gf.pins, methods=[get_method(m) for m in gf.spaces])

        def compute(path: Path, song_id: str, session: Session = session) -> dict[str, Any]:
            return session.all_signatures([path], [song_id])[0][1]

        spaces = {m: space.digest for m, space in session.spaces.items()}
        reports.append((name, gf, golden_mod.check(gf, compute, spaces, session.environment())))
    ok = all(r.bottom_line for _, _, r in reports)
    if as_json:
        echo(json.dumps({"bottom_line": ok,
                         "signature_spaces": {name: r.spaces for name, _, r in reports},
                         "clips": [c.__dict__ | {"differing": list(c.differing), "golden_file": name}
                                   for name, _, r in reports for c in r.clips],
                         "environment_differences": sorted({d for _, _, r in reports
                                                            for d in r.environment_differences})}, indent=1))
    for name, gf, report in ([] if as_json else reports):
        shown = ", ".join(f"{m} space {d[:16]}..." for m, d in report.spaces.items())
        echo(f"golden vectors {root / name}, checkpoint {gf.model_dir.name} ({shown})")
        for c in report.clips:
            state = "bitwise equal" if c.equal else f"DIFFERS in {', '.join(c.differing)} " \
                f"(max |diff| {c.max_abs_diff:.3g})"
            echo(f"  {c.file:<24} {c.method:<20} chunks={c.chunks}  p_raw m_raw p m: {state}")
        clips = {c.file for c in report.clips if c.song_id}
        echo(f"{sum(c.equal for c in report.clips)}/{len(report.clips)} clips bitwise equal "
             f"({len(clips)} clips x {len(gf.spaces)} methods)")
        if not report.bottom_line:
            echo("environment differences from the one the golden vectors were made in:")
            for line in report.environment_differences or ("(none recorded: same versions, CPU and pins)",):
                echo(f"  {line}")
    if not ok:
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
    from ..signature.model import sha256_model_files

    digests = sha256_model_files(directory)
    if as_json:
        echo(json.dumps(digests, indent=1))
    else:
        for name, value in digests.items():
            echo(f"{value}  {name}")
