"""Derived copies of catalog songs, for measuring how often a real source is missed.

A calibration's positives (attribution, section 1, both error directions) are copies of
catalog songs changed the way published music is changed. :func:`derive_audio` writes one with a
pinned battery of transforms and records, beside it, what was done:

==============  ==========================================================================
transform       what it does (parameters recorded in the output's sidecar)
==============  ==========================================================================
``mp3-128k``    MP3, constant 128 kbit/s (LAME through libsndfile)
``opus-64k``    Ogg Opus, 64 kbit/s in all, at 48 kHz (libopus through libsndfile)
``noise-30db``  white Gaussian noise at 30 dB SNR over the whole signal, seeded
``noise-20db``  the same at 20 dB
``gain-3db``    the signal times 10^(-3/20)
``gain-6db``    the signal times 10^(-6/20)
``speed+2``     2 % faster (and higher): resampled by 50/51, played at the source's rate
``speed-2``     2 % slower (and lower): resampled by 50/49
``excerpt-20s`` the 20 s in the middle of the song
``splice``      two songs: the first 60 % of one, then 30 % to 90 % of the other, 0.5 s crossfade
==============  ==========================================================================

Resampling is ``torchaudio.functional.resample`` with the settings of signature-v1 section
1.3. PCM outputs are 16-bit WAV. The sidecar ``<output>.derive.json`` (format
``lumina-derivation``, version 1, RFC 8785 JSON) names the transform and its parameters,
each source (song id, file and PCM SHA-256) and the output's SHA-256; a Calibrate manifest
reads it to label a positive. Nothing is overwritten; a failure leaves neither file.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import rfc8785
import soundfile

from .._internal.fileio import write_file
from ..errors import LuminaError

__all__ = ["FORMAT", "SEED", "SIDECAR_SUFFIX", "TRANSFORMS", "VERSION", "DeriveError", "Derived", "default_name",
           "derive_audio", "output_path", "read_sidecar"]

FORMAT = "lumina-derivation"
VERSION = 1
SIDECAR_SUFFIX = ".derive.json"
#: The seed of the noise transforms (a manifest-free constant: the sidecar records it).
SEED = 422024
_RESAMPLER = {"lowpass_filter_width": 6, "rolloff": 0.99, "resampling_method": "sinc_interp_hann"}
F64 = npt.NDArray[np.float64]


class DeriveError(LuminaError):
    """A derived copy could not be made (unknown transform, unreadable source, existing output...)."""


@dataclass(frozen=True)
class Source:
    song_id: str
    path: Path
    file_sha256: str
    pcm_sha256: str
    rate: int
    samples: F64  #: [channels, frames]


@dataclass(frozen=True)
class Derived:
    """What :func:`derive_audio` wrote."""

    path: Path
    sidecar: Path
    transform: str
    sha256: str
    sources: tuple[str, ...]


def _resample(x: F64, orig: int, new: int) -> F64:
    import torch
    import torchaudio

    if orig == new:
        return x
    y = torchaudio.functional.resample(torch.from_numpy(x.astype(np.float32)), orig, new, **_RESAMPLER)
    out: F64 = y.numpy().astype(np.float64)
    return out


def _noise(snr_db: float) -> Callable[[list[Source]], tuple[F64, int, dict[str, Any]]]:
    def apply(sources: list[Source]) -> tuple[F64, int, dict[str, Any]]:
        x = sources[0].samples
        power = math.fsum(float(v) for v in (x * x).reshape(-1)) / x.size
        std = math.sqrt(power / 10 ** (snr_db / 10))
        noise = np.random.default_rng(SEED).standard_normal(x.shape) * std
        return x + noise, sources[0].rate, {"snr_db": snr_db, "noise": "gaussian, numpy default_rng", "seed": SEED}
    return apply


def _gain(db: float) -> Callable[[list[Source]], tuple[F64, int, dict[str, Any]]]:
    def apply(sources: list[Source]) -> tuple[F64, int, dict[str, Any]]:
        return sources[0].samples * 10 ** (db / 20), sources[0].rate, {"gain_db": db}
    return apply


def _speed(orig: int, new: int) -> Callable[[list[Source]], tuple[F64, int, dict[str, Any]]]:
    """Speed ``orig / new``: resampled from ``orig`` to ``new`` and played at the source's rate."""
    def apply(sources: list[Source]) -> tuple[F64, int, dict[str, Any]]:
        s = sources[0]
        return (_resample(s.samples, orig, new), s.rate,
                {"speed": orig / new, "resample_from_to": [orig, new], **_RESAMPLER})
    return apply


def _excerpt(sources: list[Source]) -> tuple[F64, int, dict[str, Any]]:
    s = sources[0]
    length = 20 * s.rate
    if s.samples.shape[1] <= length:
        raise DeriveError(f"{s.path}: {s.samples.shape[1] / s.rate:.1f} s is too short for a 20 s excerpt from "
                          "inside the song")
    start = (s.samples.shape[1] - length) // 2
    return s.samples[:, start:start + length], s.rate, {"seconds": 20, "start_frame": start}


def _splice(sources: list[Source]) -> tuple[F64, int, dict[str, Any]]:
    from .._internal.synth import splice

    a, b = sources
    bx = _resample(b.samples, b.rate, a.rate)
    if bx.shape[0] != a.samples.shape[0]:  # mixed to mono when the channel counts differ
        ax, bx = a.samples.mean(axis=0, keepdims=True), bx.mean(axis=0, keepdims=True)
    else:
        ax = a.samples
    na, nb = ax.shape[1], bx.shape[1]
    fade = a.rate // 2
    bounds = {"a_stop": na * 3 // 5, "b_start": nb * 3 // 10, "b_stop": nb * 9 // 10, "fade": fade}
    return splice(ax, bx, **bounds), a.rate, {"first": "0-60 %", "second": "30-90 %", **bounds}


#: name -> (sources it takes, output format, apply)
TRANSFORMS: Mapping[str, tuple[int, str, Callable[[list[Source]], tuple[F64, int, dict[str, Any]]]]] = {
    "mp3-128k": (1, "mp3", lambda s: (s[0].samples, s[0].rate, {})),
    "opus-64k": (1, "opus", lambda s: (_resample(s[0].samples, s[0].rate, 48000), 48000, {"resampled_to": 48000})),
    "noise-30db": (1, "wav", _noise(30.0)),
    "noise-20db": (1, "wav", _noise(20.0)),
    "gain-3db": (1, "wav", _gain(-3.0)),
    "gain-6db": (1, "wav", _gain(-6.0)),
    "speed+2": (1, "wav", _speed(51, 50)),
    "speed-2": (1, "wav", _speed(49, 50)),
    "excerpt-20s": (1, "wav", _excerpt),
    "splice": (2, "wav", _splice),
}
_EXTENSIONS = {"mp3": ".mp3", "opus": ".ogg", "wav": ".wav"}  # Ogg Opus in .ogg: a default input extension


def _load(path: Path, song_id: str) -> Source:
    from ..signature.audio import load_audio
    from ..signature.space import SignatureConfig

    audio = load_audio(path, SignatureConfig())  # checks and the PCM hash of signature-v1 section 1
    data, rate = soundfile.read(io.BytesIO(path.read_bytes()), dtype="float64", always_2d=True)
    return Source(song_id, path, audio.file_sha256, audio.pcm_sha256, int(rate), np.ascontiguousarray(data.T))


def _encode(x: F64, rate: int, kind: str) -> tuple[bytes, dict[str, Any]]:
    y = np.clip(x, -1.0, 1.0).T
    buf = io.BytesIO()
    if kind == "wav":
        soundfile.write(buf, y, rate, subtype="PCM_16", format="WAV")
        return buf.getvalue(), {"format": "WAV", "subtype": "PCM_16"}
    if kind == "mp3":
        if rate not in (32000, 44100, 48000):
            y, rate = _resample(x, rate, 44100).T.clip(-1.0, 1.0), 44100
        level = (320 - 128) / (320 - 32)  # libsndfile maps 0 -> 320 and 1 -> 32 kbit/s
        soundfile.write(buf, y, rate, format="MP3", subtype="MPEG_LAYER_III", compression_level=level,
                        bitrate_mode="CONSTANT")
        return buf.getvalue(), {"format": "MP3", "bitrate_kbps": 128, "bitrate_mode": "constant",
                                "compression_level": level, "rate": rate}
    channels = y.shape[1]
    per_channel = 64000 // channels
    # libsndfile: bitrate = int((1 - level) * 250000 + 6000) * channels; +0.5 keeps int() on the target
    level = 1.0 - (per_channel - 6000 + 0.5) / 250000.0
    soundfile.write(buf, y, rate, format="OGG", subtype="OPUS", compression_level=level)
    return buf.getvalue(), {"format": "OGG", "subtype": "OPUS", "bitrate_bps": per_channel * channels,
                            "compression_level": level}


def derive_audio(sources: Sequence[Path], transform: str, out: Path, *,
                 song_ids: Sequence[str] | None = None) -> Derived:
    """Write ``out`` (and its sidecar) as ``transform`` of ``sources`` (one, or two for a splice).

    ``out`` gets the transform's extension appended unless it ends in it; song ids default to the file stems.
    """
    if transform not in TRANSFORMS:
        raise DeriveError(f"unknown transform {transform!r} (one of {', '.join(TRANSFORMS)})")
    takes, kind, apply = TRANSFORMS[transform]
    if len(sources) != takes:
        raise DeriveError(f"transform {transform} takes {takes} source(s), got {len(sources)}")
    ids = list(song_ids) if song_ids else [Path(s).stem for s in sources]
    if len(ids) != len(sources) or any(not i or any(ord(c) < 32 for c in i) for i in ids):
        raise DeriveError("give one song id (printable, not empty) per source")
    out = output_path(Path(out), transform)
    sidecar = out.with_name(out.name + SIDECAR_SUFFIX)
    for path in (out, sidecar):
        if path.exists():
            raise DeriveError(f"{path}: already exists; refusing to overwrite")
    loaded = [_load(Path(p), sid) for p, sid in zip(sources, ids, strict=True)]
    x, rate, params = apply(loaded)
    data, encoding = _encode(x, rate, kind)
    digest = hashlib.sha256(data).hexdigest()
    doc: dict[str, Any] = {
        "format": FORMAT, "version": VERSION, "transform": transform, "parameters": params, "encoding": encoding,
        "sources": [{"song_id": s.song_id, "file": s.path.name, "file_sha256": s.file_sha256,
                     "pcm_sha256": s.pcm_sha256} for s in loaded],
        "output": {"file": out.name, "sha256": digest, "size": len(data)},
    }
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        write_file(out, data)
        try:
            write_file(sidecar, rfc8785.dumps(doc) + b"\n")
        except BaseException:
            out.unlink(missing_ok=True)
            raise
    except FileExistsError as exc:
        raise DeriveError(f"{exc.filename}: already exists; refusing to overwrite") from None
    except OSError as exc:
        raise DeriveError(f"{out}: cannot write ({exc.strerror})") from None
    return Derived(out, sidecar, transform, digest, tuple(ids))


def read_sidecar(audio: Path) -> dict[str, Any] | None:
    """The derivation record beside ``audio``, checked against the file's bytes; None when there is none.

    The record as written, plus ``source_ids``: the sources' song ids, in order.
    """
    sidecar = audio.with_name(audio.name + SIDECAR_SUFFIX)
    if not sidecar.exists():
        return None
    try:
        doc = json.loads(sidecar.read_bytes())
    except (OSError, ValueError) as exc:
        raise DeriveError(f"{sidecar}: not a readable derivation record ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise DeriveError(f"{sidecar}: not a {FORMAT} version {VERSION} file")
    try:
        sources = [str(s["song_id"]) for s in doc["sources"]]
        transform, expected = str(doc["transform"]), str(doc["output"]["sha256"])
    except (KeyError, TypeError) as exc:
        raise DeriveError(f"{sidecar}: malformed derivation record (missing {exc})") from None
    with open(audio, "rb") as f:
        actual = hashlib.file_digest(f, "sha256").hexdigest()
    if actual != expected:
        raise DeriveError(f"{audio}: SHA-256 {actual} is not the {expected} its derivation record names")
    if transform not in TRANSFORMS or not sources:
        raise DeriveError(f"{sidecar}: unknown transform {transform!r} or no source")
    return {**doc, "source_ids": sources}


def output_path(out: Path, transform: str) -> Path:
    """``out`` with the transform's extension appended unless it already ends in it."""
    ext = _EXTENSIONS[TRANSFORMS[transform][1]]
    return out if out.suffix.lower() == ext else out.with_name(out.name + ext)


def default_name(source: Path, transform: str) -> str:
    """``<stem>.<transform><ext>``: the file name ``audio derive --out-dir`` gives."""
    return f"{source.stem}.{transform}{_EXTENSIONS[TRANSFORMS[transform][1]]}"

