"""Audio stage (spec signature-v1, sections 1 and 2).

``load_audio(path, config)`` reads the file's bytes once, hashes them, decodes
*those* bytes (no second read that could differ), mixes to mono in float32,
resamples to 32 kHz with the pinned resampler, hashes the PCM and splits it
into chunks. Every refusal of the spec raises :class:`AudioError` before any
output is written.
"""

from __future__ import annotations

import hashlib
import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import soundfile

from ..errors import AudioError
from .space import SignatureConfig

__all__ = ["MAX_FILE_BYTES", "Audio", "Probe", "chunk_bounds", "load_audio", "probe_audio"]

#: Files larger than this are refused before they are read (resource exhaustion).
MAX_FILE_BYTES = 2 * 1024**3

#: Full-scale divisors of integer PCM (spec 1.1), by libsndfile subtype.
_INT_SUBTYPES = {"PCM_S8": 8, "PCM_U8": 8, "PCM_16": 16, "PCM_24": 24, "PCM_32": 32}


@dataclass(frozen=True, eq=False)
class Audio:
    """A decoded, checked file.

    ``samples`` is the mono float32 PCM at the config's rate, shape ``[S]``;
    ``chunks`` are ``(start, length)`` pairs into it (spec section 2).
    """

    path: Path
    file_sha256: str
    file_size: int
    pcm_sha256: str
    source_rate: int
    source_channels: int
    source_frames: int
    source_subtype: str
    samples: npt.NDArray[np.float32]
    chunks: tuple[tuple[int, int], ...]


def _file_size(path: Path) -> int:
    """The size of a regular file within :data:`MAX_FILE_BYTES`, else an AudioError (nothing is read)."""
    try:
        size = os.stat(path).st_size
    except FileNotFoundError:
        raise AudioError(f"{path}: no such file") from None
    except PermissionError:
        raise AudioError(f"{path}: permission denied") from None
    if not path.is_file():
        raise AudioError(f"{path}: not a regular file")
    if size > MAX_FILE_BYTES:
        raise AudioError(f"{path}: file of {size} bytes is larger than the {MAX_FILE_BYTES} byte limit")
    return size


def _read_bytes(path: Path) -> bytes:
    _file_size(path)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise AudioError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise AudioError(f"{path}: is a directory, not an audio file") from None
    except PermissionError:
        raise AudioError(f"{path}: permission denied") from None


def _check_digest(path: Path, file_sha256: str, expected_sha256: str | None) -> None:
    if expected_sha256 is not None and file_sha256 != expected_sha256:
        raise AudioError(f"{path}: SHA-256 {file_sha256} differs from the expected {expected_sha256}",
                         hint="the input is not the file the manifest pins; nothing was decoded")


def _check_header(path: Path, rate: int, channels: int, frames: int, config: SignatureConfig) -> None:
    if channels <= 0 or frames <= 0:
        raise AudioError(f"{path}: no audio ({channels} channels, {frames} samples)")
    if rate <= 0:
        raise AudioError(f"{path}: invalid sample rate {rate}")
    if frames / rate > config.max_seconds:
        raise AudioError(f"{path}: {frames / rate:.1f} s is longer than max_seconds={config.max_seconds:g}")


def _unreadable(path: Path, exc: BaseException) -> AudioError:
    reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return AudioError(f"{path}: cannot decode audio ({reason})")


@dataclass(frozen=True)
class Probe:
    """A cheap look at a file, without decoding a sample: its size, its header and (when asked) its SHA-256."""

    path: Path
    file_size: int
    file_sha256: str | None
    rate: int
    channels: int
    frames: int


def probe_audio(path: str | os.PathLike[str], config: SignatureConfig, expected_sha256: str | None = None, *,
                hash_file: bool = False) -> Probe:
    """The checks of :func:`load_audio` that need no decoding, with its messages: the file exists, is regular,
    within :data:`MAX_FILE_BYTES`, not empty; its digest, hashed in 1 MiB blocks, is ``expected_sha256``
    (when given); its header (``soundfile.info``) has channels, frames and a rate, and at most ``max_seconds``.

    Memory does not grow with the file; a corrupt body past a valid header is found by :func:`load_audio`.
    """
    from .._internal.hashing import sha256_path

    p = Path(path)
    size = _file_size(p)
    if size == 0:
        raise AudioError(f"{p}: empty file")
    digest = None
    if expected_sha256 is not None or hash_file:
        try:
            digest = sha256_path(p)
        except OSError as exc:
            raise AudioError(f"{p}: cannot read ({exc.strerror or exc})") from None
        _check_digest(p, digest, expected_sha256)
    try:
        info = soundfile.info(str(p))
    except (RuntimeError, soundfile.LibsndfileError, ValueError, OSError) as exc:
        raise _unreadable(p, exc) from None
    _check_header(p, int(info.samplerate), int(info.channels), int(info.frames), config)
    return Probe(p, size, digest, int(info.samplerate), int(info.channels), int(info.frames))


def _decode(path: Path, data: bytes, config: SignatureConfig) -> tuple[npt.NDArray[np.float32], int, str]:
    """Decode to float32 ``[channels, frames]`` scaled per spec 1.1."""
    if not data:
        raise AudioError(f"{path}: empty file")
    try:
        with soundfile.SoundFile(io.BytesIO(data)) as f:
            rate, channels, frames, subtype = f.samplerate, f.channels, f.frames, f.subtype
            _check_header(path, rate, channels, frames, config)
            if subtype in _INT_SUBTYPES:
                # libsndfile left-aligns integer PCM in int32: x / 2**31 == x_n / 2**(n-1) exactly.
                raw = f.read(dtype="int32", always_2d=True)
                x = (raw.astype(np.float64) / 2147483648.0).astype(np.float32)
            else:
                x = f.read(dtype="float32", always_2d=True)
    except AudioError:
        raise
    except (RuntimeError, soundfile.LibsndfileError, ValueError, OSError) as exc:
        raise _unreadable(path, exc) from None
    if x.shape[0] == 0:
        raise AudioError(f"{path}: no samples")
    if not np.all(np.isfinite(x)):
        raise AudioError(f"{path}: audio holds non-finite samples (NaN or infinity)")
    return np.ascontiguousarray(x.T), rate, subtype


def chunk_bounds(n_samples: int, config: SignatureConfig) -> tuple[tuple[int, int], ...]:
    """``(start, length)`` of each kept chunk: starts at multiples of chunk_samples,
    the last may be shorter, chunks under min_chunk_samples are dropped, never padded."""
    size, keep = config.chunk_samples, config.min_chunk_samples
    bounds = ((s, min(size, n_samples - s)) for s in range(0, n_samples, size))
    return tuple((s, n) for s, n in bounds if n >= keep)


def load_audio(path: str | os.PathLike[str], config: SignatureConfig, expected_sha256: str | None = None) -> Audio:
    """Decode, mix, resample, hash and chunk one file (needs the pins applied).

    With ``expected_sha256`` the file's bytes must have that digest; it is
    checked before they are decoded.
    """
    import torch
    import torchaudio

    p = Path(path)
    data = _read_bytes(p)
    file_sha256 = hashlib.sha256(data).hexdigest()
    _check_digest(p, file_sha256, expected_sha256)
    pcm, rate, subtype = _decode(p, data, config)
    channels, frames = pcm.shape
    with torch.no_grad():
        x = torch.from_numpy(pcm).mean(dim=0)  # [frames] float32 (spec 1.2)
        if rate != config.sample_rate:
            r = config.resampler
            x = torchaudio.functional.resample(
                x, rate, config.sample_rate,
                lowpass_filter_width=int(r["lowpass_filter_width"]),
                rolloff=float(r["rolloff"]),
                resampling_method=str(r["resampling_method"]),
            )
    mono = np.ascontiguousarray(x.numpy(), dtype=np.float32)
    if not np.all(np.isfinite(mono)):
        raise AudioError(f"{p}: resampling produced non-finite samples")
    pcm_sha256 = hashlib.sha256(mono.astype("<f4").tobytes()).hexdigest()
    chunks = chunk_bounds(mono.shape[0], config)
    if not chunks:
        raise AudioError(
            f"{p}: too short ({mono.shape[0] / config.sample_rate:.2f} s yields no chunk of at least "
            f"{config.min_chunk_seconds:g} s)"
        )
    return Audio(
        path=p, file_sha256=file_sha256, file_size=len(data), pcm_sha256=pcm_sha256,
        source_rate=rate, source_channels=channels, source_frames=frames, source_subtype=subtype,
        samples=mono, chunks=chunks,
    )
