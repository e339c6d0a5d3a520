"""``lumina-audit model customize``: fine-tune copies of the pinned LM on songs and sample pieces from them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Literal

import typer

from ..errors import ConfigError
from ..signature.pins import Pins
from ._common import JsonOpt, echo, err

__all__ = ["CUSTOMIZE_EPILOG", "customize"]

CUSTOMIZE_EPILOG = ("Example: lumina-audit model customize songs/a.wav songs/b.wav --model "
                    "lumina_audit/_data/golden/models/tiny-musicgen-trained "
                    "--digests lumina_audit/_data/golden/models/tiny-musicgen-trained.sha256 "
                    "--out work/pieces --steps 50 --pieces 4")


def customize(
    songs: Annotated[list[Path], typer.Argument(help="Songs to fine-tune on, one copy of the LM each (never in the "
                                                "base model's training).")],
    model: Annotated[Path, typer.Option(help="audiocraft checkpoint directory (the pinned base model).")],
    out: Annotated[Path, typer.Option(help="Output folder, made by this command (never overwritten).")],
    digests: Annotated[Path | None, typer.Option(
        help="File with the expected SHA-256 of each checkpoint file.")] = None,
    sha256: Annotated[list[str], typer.Option(help="Expected digest as NAME=HEX; repeatable.")] = [],  # noqa: B006
    song_id: Annotated[list[str], typer.Option("--song-id", help="Song id of each song, in order (default: "
                                               "the file name without extension); must be its catalog id.")] = [],  # noqa: B006
    steps: Annotated[int, typer.Option(help="Fine-tuning steps.")] = 50,
    lr: Annotated[float, typer.Option(help="AdamW learning rate (constant).")] = 1e-4,
    finetune_seed: Annotated[int, typer.Option(help="Seed set before fine-tuning.")] = 422024,
    batch: Annotated[int, typer.Option(help="Chunks per step (0: every whole chunk of the song).")] = 0,
    layers: Annotated[list[int], typer.Option("--layer", help="Train only these transformer layers "
                                              "(repeatable; default: every LM parameter).")] = [],  # noqa: B006
    grad_clip: Annotated[float, typer.Option(help="Gradient norm clip.")] = 1.0,
    pieces: Annotated[int, typer.Option(help="Pieces sampled from each model.")] = 2,
    seconds: Annotated[float, typer.Option(help="Seconds per piece.")] = 10.0,
    top_k: Annotated[int, typer.Option(help="Top-k sampling.")] = 250,
    temperature: Annotated[float, typer.Option(help="Sampling temperature.")] = 1.0,
    seed: Annotated[int, typer.Option(help="Piece i is sampled under torch.manual_seed(seed + i).")] = 1000,
    cfg_coef: Annotated[float, typer.Option(help="Classifier-free guidance coefficient.")] = 1.0,
    carry: Annotated[Literal["auto", "codes", "audio"], typer.Option(
        help="Write pieces as decoded audio or as their codes; auto: audio only where the checkpoint's EnCodec "
             "decodes (measured).")] = "auto",
    device: Annotated[str, typer.Option(help="cpu or cuda (a numerical pin).")] = "cpu",
    threads: Annotated[int, typer.Option(help="Intra-op threads (a numerical pin).")] = 1,
    as_json: JsonOpt = False,
) -> None:
    """Fine-tune a copy of the LM on each song, sample pieces from it, and as many from the unmodified LM.

    Writes OUT/positives/SONG_ID/SONG_ID.piece-NNN and OUT/negatives/base.piece-NNN, each with a record:
    every setting, the base model's digests, the song's file and PCM SHA-256, the fine-tuned weights'
    SHA-256 and the piece's. A Calibrate of proposition influence takes them as positives and negatives.
    The same inputs and settings give the same bytes.
    """
    from ..customization import FineTune, Sampling
    from ..customization import customize as run
    from ..signature.digests import parse_digest_args
    from ..signature.extract import default_song_id

    expected = parse_digest_args(digests, sha256)
    if song_id and len(song_id) != len(songs):
        raise ConfigError(f"{len(songs)} songs but {len(song_id)} --song-id")
    ids = song_id or [default_song_id(p) for p in songs]
    tuning = FineTune(steps=steps, lr=lr, seed=finetune_seed, batch=batch, grad_clip=grad_clip, layers=tuple(layers))
    sampling = Sampling(count=pieces, seconds=seconds, top_k=top_k, temperature=temperature, seed=seed,
                        cfg_coef=cfg_coef)
    pins = Pins(device=device, threads=threads)  # type: ignore[arg-type]
    done = run(model, expected, [(p, i, None) for p, i in zip(songs, ids, strict=True)], out, tuning=tuning,
               sampling=sampling, pins=pins, carry=carry, on_progress=None if as_json else err)
    if as_json:
        echo(json.dumps({"out": str(done.out), "carried_as": done.carried_as,
                         "decoder_round_trip_correlation": done.round_trip,
                         "pieces": [{"path": str(p.path), "kind": p.kind, "song_id": p.song_id, "sha256": p.sha256}
                                    for p in done.pieces]}, indent=1))
        return
    echo(f"{len(done.pieces)} pieces in {done.out}, carried as {done.carried_as} (EnCodec round trip "
         f"{done.round_trip:.3f})")
    for p in done.pieces:
        echo(f"  {p.kind:<11} {p.song_id or '-':<20} {p.path}")
