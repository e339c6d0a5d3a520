"""A piece carried as its EnCodec codes: the ``lumina-codes`` file format, version 1.

A generated piece is codes before it is audio. Where the checkpoint's EnCodec cannot decode
them (the embedded checkpoints' decoder is untrained: any codes decode to nearly the same
waveform), decoding to audio and encoding again would lose everything the model generated,
so the piece is kept as its codes and its signatures are computed from them
(:func:`.extract.signatures_of_codes`): exactly what audio encoding to those codes would give.

The file is RFC 8785 canonical JSON::

    {"format": "lumina-codes", "version": 1, "codebooks": K, "frames": T, "card": 2048,
     "frame_rate": 50, "sample_rate": 32000, "dtype": "<i2",
     "codes": base64 of the little-endian int16 bytes of the [K, T] array (row-major),
     "codes_sha256": SHA-256 of those bytes}

``codes_sha256`` identifies the piece's content, as the PCM SHA-256 identifies audio; the
file's own SHA-256 identifies the file. The reader refuses another format or version, a
document not in canonical form, a wrong digest, shape or value (outside ``[0, card)``).
A piece is scored in chunks of the signature config's length, as audio is.
"""

from __future__ import annotations

import base64
import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from .._internal.documents import read_versioned
from ..errors import LuminaError

__all__ = ["CODES_FORMAT", "CODES_SUFFIX", "CodesError", "CodesPiece", "codes_document", "read_codes"]

CODES_FORMAT = "lumina-codes"
VERSION = 1
#: The file extension of a piece carried as codes.
CODES_SUFFIX = ".codes"
_MAX_BYTES = 64 << 20


class CodesError(LuminaError):
    """A codes file is unreadable, of another format or version, or inconsistent."""

    exit_code = 2


@dataclass(frozen=True, eq=False)
class CodesPiece:
    """A piece's codes ``[K, T]`` int64 and what identifies them."""

    path: Path
    file_sha256: str
    file_size: int
    codes_sha256: str
    codes: npt.NDArray[np.int64]
    frame_rate: int
    sample_rate: int

    @property
    def frames(self) -> int:
        return int(self.codes.shape[1])

    @property
    def sample_count(self) -> int:
        """The length of the audio these codes stand for, in samples at ``sample_rate``."""
        return self.frames * self.sample_rate // self.frame_rate

    def chunks(self, chunk_frames: int, min_frames: int) -> list[npt.NDArray[np.int64]]:
        """The codes split into chunks of ``chunk_frames`` (the last shorter; dropped under ``min_frames``)."""
        out = [self.codes[:, s:s + chunk_frames] for s in range(0, self.frames, chunk_frames)]
        return [c for c in out if c.shape[1] >= min_frames]


def _canonical(doc: dict[str, Any]) -> bytes:
    import rfc8785

    return rfc8785.dumps(doc)


def codes_document(codes: npt.NDArray[np.integer[Any]], *, card: int, frame_rate: int, sample_rate: int) -> bytes:
    """The canonical bytes of a ``lumina-codes`` file holding ``codes`` ``[K, T]``."""
    a = np.asarray(codes)
    if a.ndim != 2 or a.shape[0] < 1 or a.shape[1] < 1:
        raise CodesError(f"codes must be [K, T] with K, T >= 1, got {list(a.shape)}")
    if a.min() < 0 or a.max() >= card or card > 32767:
        raise CodesError(f"codes must lie in [0, {card}) and card fit int16")
    raw = a.astype("<i2").tobytes(order="C")
    return _canonical({"format": CODES_FORMAT, "version": VERSION, "codebooks": int(a.shape[0]),
                       "frames": int(a.shape[1]), "card": int(card), "frame_rate": int(frame_rate),
                       "sample_rate": int(sample_rate), "dtype": "<i2",
                       "codes": base64.b64encode(raw).decode("ascii"),
                       "codes_sha256": hashlib.sha256(raw).hexdigest()})


def read_codes(path: Path, expected_sha256: str | None = None) -> CodesPiece:
    """Read and check a ``lumina-codes`` file (its SHA-256 against ``expected_sha256`` when given)."""
    try:
        size = path.stat().st_size
        if size > _MAX_BYTES:
            raise CodesError(f"{path}: {size} bytes; a codes file is at most {_MAX_BYTES}")
        data = path.read_bytes()
    except OSError as exc:
        raise CodesError(f"{path}: cannot read ({exc.strerror})") from None
    digest = hashlib.sha256(data).hexdigest()
    if expected_sha256 is not None and digest != expected_sha256:
        raise CodesError(f"{path}: SHA-256 {digest} differs from the pinned {expected_sha256}")
    doc = read_versioned(data, str(path), CODES_FORMAT, (VERSION,), CodesError)
    try:
        k, t, card = int(doc["codebooks"]), int(doc["frames"]), int(doc["card"])
        frame_rate, sample_rate = int(doc["frame_rate"]), int(doc["sample_rate"])
        raw = base64.b64decode(doc["codes"], validate=True)
        if doc["dtype"] != "<i2" or len(raw) != 2 * k * t or k < 1 or t < 1 or frame_rate < 1 or sample_rate < 1:
            raise CodesError(f"{path}: codes of {len(raw)} bytes do not make [{k}, {t}] int16")
    except (KeyError, TypeError, ValueError) as exc:
        raise CodesError(f"{path}: malformed {CODES_FORMAT} document ({exc})") from None
    if hashlib.sha256(raw).hexdigest() != doc.get("codes_sha256"):
        raise CodesError(f"{path}: the codes do not match their codes_sha256")
    codes = np.frombuffer(raw, dtype="<i2").reshape(k, t).astype(np.int64)
    if codes.min() < 0 or codes.max() >= card:
        raise CodesError(f"{path}: a code lies outside [0, {card})")
    if not math.isclose(sample_rate % frame_rate, 0.0):
        raise CodesError(f"{path}: sample rate {sample_rate} is not a whole number of samples per frame")
    return CodesPiece(path, digest, size, str(doc["codes_sha256"]), codes, frame_rate, sample_rate)
