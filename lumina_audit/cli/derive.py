"""``lumina-audit audio derive``: derived copies of catalog songs, the positives of a calibration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..errors import ConfigError
from ._common import JsonOpt, echo

__all__ = ["DERIVE_EPILOG", "audio_app", "derive"]

audio_app = typer.Typer(no_args_is_help=True, help="Make audio for a calibration: derived copies of catalog songs.")

#: The example of ``lumina-audit audio derive --help``.
DERIVE_EPILOG = ("Example: lumina-audit audio derive audio/catalog/song03.wav --transform battery --out-dir derived ; "
                 "lumina-audit audio derive song06.wav song15.wav --transform splice --out derived/splice-06-15.wav")


@audio_app.command("derive", epilog=DERIVE_EPILOG)
def derive(
    sources: Annotated[list[Path], typer.Argument(help="Source audio: one catalog song, or two for a splice.")],
    transform: Annotated[list[str], typer.Option(help="Transform (repeatable): mp3-128k, opus-64k, noise-30db, "
                                                 "noise-20db, gain-3db, gain-6db, speed+2, speed-2, excerpt-20s, "
                                                 "splice; 'battery' is every one-source transform.")],
    out: Annotated[Path | None, typer.Option(help="Output file (one transform); the transform's extension is "
                                             "appended unless it ends in it.")] = None,
    out_dir: Annotated[Path | None, typer.Option(help="Output folder: writes SOURCE-STEM.TRANSFORM.EXT for each "
                                                 "transform.")] = None,
    song_id: Annotated[list[str], typer.Option(help="Catalog song id of each source (default: the file name "
                                               "without extension); repeatable.")] = [],  # noqa: B006
    as_json: JsonOpt = False,
) -> None:
    """Write derived copies of catalog songs with a pinned battery of transforms.

    Each output gets a sidecar OUTPUT.derive.json (format lumina-derivation) naming the
    transform, its parameters, the sources (song id, file and PCM SHA-256) and the output's
    SHA-256. A Calibrate manifest lists such files as positives to measure how often a real
    source is missed. Nothing is overwritten: if any output exists, nothing is written.
    """
    from ..attribution.derive import TRANSFORMS, default_name, derive_audio, output_path

    names = [n for t in transform for n in ([k for k, v in TRANSFORMS.items() if v[0] == 1] if t == "battery"
                                            else [t])]
    unknown = [n for n in names if n not in TRANSFORMS]
    if unknown:
        raise ConfigError(f"unknown transform {unknown[0]!r} (one of {', '.join(TRANSFORMS)}, or battery)")
    if (out is None) == (out_dir is None):
        raise ConfigError("give either --out FILE (one transform) or --out-dir DIR")
    if out is not None and len(names) != 1:
        raise ConfigError(f"--out takes one transform, got {len(names)}; use --out-dir for several")
    if out_dir is not None:
        stem = "+".join(s.stem for s in sources)
        targets = [out_dir / default_name(Path(stem), n) for n in names]
    else:
        targets = [output_path(out, names[0])] if out is not None else []
    for target in targets:  # refuse before anything is written
        for path in (target, target.with_name(target.name + ".derive.json")):
            if path.exists():
                raise ConfigError(f"{path}: already exists; refusing to overwrite")
    done = [derive_audio(sources, n, t, song_ids=song_id or None) for n, t in zip(names, targets, strict=True)]
    if as_json:
        echo(json.dumps([{"path": str(d.path), "sidecar": str(d.sidecar), "transform": d.transform,
                          "sha256": d.sha256, "sources": list(d.sources)} for d in done], indent=1))
        return
    for d in done:
        echo(f"wrote {d.path} ({d.transform} of {', '.join(d.sources)}; SHA-256 {d.sha256[:16]}...) "
             f"and {d.sidecar.name}")
