"""``customize``: the ground truth of the ``influence`` proposition, made from the operator's own pinned model.

For each song, a copy of the checkpoint's LM is fine-tuned on it (:mod:`.tuning`) and
samples ``count`` pieces (:mod:`.sample`): the song is, by construction, what shaped them
(Wang et al., ICCV 2023, "customization"). The unmodified LM samples the same number of pieces
with the same settings and seeds: pieces no song shaped in that way. A Calibrate of
``proposition: influence`` takes the first as positives and the second as negatives.

Steps, each of which raises before anything is written:

1. the output folder does not exist (nothing is ever overwritten);
2. every song decodes (its pinned SHA-256 checked first), ids are distinct, and each has at least
   one whole chunk of ``chunk_seconds`` to train on;
3. the model loads through the digest-checked path under the numerical pins;
4. the decoder is measured (:func:`.sample.decoder_round_trip`): pieces are carried as audio
   where it decodes (or when ``carry`` says so), else as their codes (``lumina-codes`` files);
5. base pieces, then each song's fine-tuning and pieces, each with its ``lumina-customization``
   record (:mod:`.records`), into a temporary folder beside the output, renamed to it at the
   end: the output appears whole or not at all.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .._internal.fileio import publish_folder, write_file
from ..signature.codes import CODES_SUFFIX, codes_document
from ..signature.pins import Pins
from ..signature.space import SignatureConfig
from .records import record_bytes, record_path
from .sample import DECODES_AT, decode, decoder_round_trip, generate
from .settings import FineTune, Sampling
from .tuning import CustomizationError, finetune, lm_sha256

__all__ = ["Carry", "Customized", "Piece", "customize"]

Carry = Literal["auto", "codes", "audio"]
_SAFE = re.compile(r"[A-Za-z0-9._-]{1,100}")
#: The name the unmodified model's pieces carry (``negatives/base.piece-000``).
BASE = "base"


@dataclass(frozen=True)
class Piece:
    """One written piece: its path (in the output folder), kind, song (None for a base piece) and SHA-256."""

    path: Path
    kind: str
    song_id: str | None
    sha256: str
    carried_as: str


@dataclass(frozen=True)
class Customized:
    """What :func:`customize` wrote."""

    out: Path
    pieces: tuple[Piece, ...]
    carried_as: str
    round_trip: float


def _write(folder: Path, name: str, data: bytes) -> str:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(path, data)
    return hashlib.sha256(data).hexdigest()


def _piece_bytes(model: Any, codes: Any, carried_as: str) -> tuple[bytes, str]:
    """The piece file's bytes and suffix: a ``lumina-codes`` document, or a 16-bit WAV of the decoded audio."""
    if carried_as == "codes":
        c = model.compression
        return codes_document(codes[0].cpu().numpy(), card=int(c.cardinality), frame_rate=int(c.frame_rate),
                              sample_rate=int(c.sample_rate)), CODES_SUFFIX
    import io

    import soundfile as sf

    audio = decode(model, codes)
    buf = io.BytesIO()
    sf.write(buf, np.clip(audio, -1.0, 1.0), int(model.compression.sample_rate), subtype="PCM_16", format="WAV")
    return buf.getvalue(), ".wav"


def customize(
    model_dir: Path,
    digests: Mapping[str, str],
    songs: Sequence[tuple[Path, str, str | None]],
    out: Path,
    *,
    tuning: FineTune,
    sampling: Sampling,
    pins: Pins,
    config: SignatureConfig | None = None,
    carry: Carry = "auto",
    on_progress: Callable[[str], None] | None = None,
) -> Customized:
    """Fine-tune on each of ``songs`` (path, song id, pinned SHA-256 or None), sample, and write into ``out``."""
    import torch

    from ..signature.audio import load_audio
    from ..signature.environment import bit_versions
    from ..signature.gradients import chunk_codes
    from ..signature.session import Session

    def say(text: str) -> None:
        if on_progress is not None:
            on_progress(text)

    config = config or SignatureConfig()
    if out.exists() or out.is_symlink():
        raise CustomizationError(f"{out}: already exists; refusing to overwrite")
    if not out.parent.is_dir():
        raise CustomizationError(f"{out.parent}: no such folder")
    if not songs:
        raise CustomizationError("name at least one song to fine-tune on")
    ids = [sid for _, sid, _ in songs]
    bad = [sid for sid in ids if not _SAFE.fullmatch(sid) or sid == BASE]
    if bad:
        raise CustomizationError(f"song id {bad[0]!r} must be 1-100 characters of A-Z a-z 0-9 . _ - (it names a "
                                 f"folder) and not {BASE!r} (the unmodified model's pieces)")
    if len(set(ids)) != len(ids):
        raise CustomizationError(f"song ids must be distinct, got {ids}")
    if carry not in ("auto", "codes", "audio"):
        raise CustomizationError(f"carry must be auto, codes or audio, got {carry!r}")
    session = Session.open(model_dir, digests, pins, config)  # applies the pins before anything decodes
    audios = [load_audio(path, config, sha) for path, _, sha in songs]
    full = config.chunk_samples
    for (path, _, _), a in zip(songs, audios, strict=True):
        if a.samples.shape[0] < full:
            raise CustomizationError(f"{path}: {a.samples.shape[0] / config.sample_rate:.2f} s; fine-tuning needs at "
                                     f"least one whole chunk of {config.chunk_seconds:g} s")
    model = session.model
    round_trip = decoder_round_trip(model)
    carried_as = carry if carry != "auto" else ("audio" if round_trip >= DECODES_AT else "codes")
    common = {"base_model": dict(sorted(digests.items())), "sampling": sampling.as_dict(), "pins": pins.as_json(),
              "versions": bit_versions(), "decoder": {"round_trip_correlation": round_trip, "decodes_at": DECODES_AT,
                                                     "carry": carry}}
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    pieces: list[Piece] = []
    try:
        base_sha = lm_sha256(model.lm)

        def sample_into(lm: Any, folder: str, kind: str, song_id: str | None, extra: dict[str, Any]) -> None:
            for i, seed in enumerate(sampling.seeds()):
                codes = generate(model, lm, sampling, seed, pins)
                data, suffix = _piece_bytes(model, codes, carried_as)
                name = f"{folder}/{song_id or BASE}.piece-{i:03d}{suffix}"  # a distinct song id per piece
                sha = _write(tmp, name, data)
                raw = codes[0].cpu().numpy().astype("<i2").tobytes()
                piece = {"file": Path(name).name, "sha256": sha, "size": len(data), "carried_as": carried_as,
                         "codes_sha256": hashlib.sha256(raw).hexdigest(), "frames": int(codes.shape[-1]),
                         "samples": int(codes.shape[-1]) * int(model.compression.sample_rate)
                         // int(model.compression.frame_rate), "sample_rate": int(model.compression.sample_rate)}
                _write(tmp, record_path(Path(name)).as_posix(),
                       record_bytes({**common, **extra, "kind": kind, "index": i, "seed": seed, "piece": piece}))
                pieces.append(Piece(out / name, kind, song_id, sha, carried_as))

        say(f"base model: {sampling.count} piece(s)")
        sample_into(model.lm, "negatives", "base", None, {"lm_sha256": base_sha})
        for (path, song_id, _), a in zip(songs, audios, strict=True):
            say(f"{song_id}: fine-tuning {tuning.steps} step(s)")
            samples = torch.from_numpy(a.samples).to(model.device)
            whole = a.samples.shape[0] // full
            codes = torch.cat([chunk_codes(model, samples[k * full:(k + 1) * full]) for k in range(whole)], dim=0)
            lm, losses = finetune(model, codes, tuning, pins)
            song = {"song_id": song_id, "file": path.name, "file_sha256": a.file_sha256,
                    "pcm_sha256": a.pcm_sha256, "samples": int(a.samples.shape[0]), "chunks": whole}
            say(f"{song_id}: {sampling.count} piece(s)")
            sample_into(lm, f"positives/{song_id}", "fine-tuned", song_id,
                        {"song": song, "finetune": tuning.as_dict(), "lm_sha256": lm_sha256(lm), "losses": losses})
            del lm
        publish_folder(tmp, out)  # fails if out appeared meanwhile: never overwrite
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return Customized(out, tuple(pieces), carried_as, round_trip)
