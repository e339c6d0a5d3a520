"""The ``lumina-customization`` record (version 1): what made one generated piece.

Written beside each piece as ``<piece file>.customization.json``, RFC 8785 canonical JSON:

- ``kind``: ``fine-tuned`` (sampled from a copy of the LM fine-tuned on ``song``: a positive of
  the ``influence`` proposition) or ``base`` (sampled from the unmodified LM with the same
  sampling settings and seeds: a negative);
- ``base_model``: the SHA-256 of the checkpoint's files (the digest-checked model);
- ``song`` (fine-tuned only): song id, file name, file and PCM SHA-256, decoded samples and
  chunks trained on;
- ``finetune`` (fine-tuned only; :class:`.settings.FineTune`), ``sampling``
  (:class:`.settings.Sampling`), this piece's ``index`` and ``seed``;
- ``lm_sha256``: the weights that sampled it (the fine-tuned copy, or the base LM) and, for a
  fine-tuned piece, the loss of every step;
- ``piece``: its file name, SHA-256 and size, ``carried_as`` (``codes``: a ``lumina-codes``
  file; ``audio``: a 16-bit WAV decoded by the checkpoint's EnCodec), ``codes_sha256``,
  ``frames``, ``samples`` and ``sample_rate``;
- ``decoder``: the measured round-trip correlation of the checkpoint's EnCodec, the
  threshold and the ``carry`` setting that decided how the piece is carried;
- ``pins`` and ``versions``: the numerical pins and the versions that decide the bits.

No clock time is recorded: the same inputs and settings give the same bytes.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from .._internal.documents import read_versioned
from .tuning import CustomizationError

__all__ = ["RECORD_FORMAT", "RECORD_SUFFIX", "read_record", "record_bytes", "record_path"]

RECORD_FORMAT = "lumina-customization"
VERSION = 1
RECORD_SUFFIX = ".customization.json"
KINDS = ("fine-tuned", "base")


def record_path(piece: Path) -> Path:
    """Where the record of ``piece`` lies."""
    return piece.with_name(piece.name + RECORD_SUFFIX)


def record_bytes(doc: dict[str, Any]) -> bytes:
    import rfc8785

    return rfc8785.dumps({"format": RECORD_FORMAT, "version": VERSION, **doc})


def read_record(piece: Path, piece_sha256: str | None = None) -> dict[str, Any]:
    """The record beside ``piece``, checked: format, version, kind, and that it names this very file."""
    path = record_path(piece)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CustomizationError(f"{piece}: no customization record beside it ({path.name})",
                                 hint="pieces come from `lumina-audit model customize`, which writes one") from None
    except OSError as exc:
        raise CustomizationError(f"{path}: cannot read ({exc.strerror})") from None
    doc = read_versioned(data, str(path), RECORD_FORMAT, (VERSION,), CustomizationError, what="record")
    if doc.get("kind") not in KINDS or not isinstance(doc.get("piece"), dict):
        raise CustomizationError(f"{path}: kind must be one of {', '.join(KINDS)}, with its piece")
    if doc["kind"] == "fine-tuned" and not isinstance(doc.get("song"), dict):
        raise CustomizationError(f"{path}: a fine-tuned piece's record names its song")
    if doc["piece"].get("file") != piece.name:
        raise CustomizationError(f"{path}: the record is of {doc['piece'].get('file')!r}, not of {piece.name!r}")
    digest = piece_sha256 or hashlib.sha256(piece.read_bytes()).hexdigest()
    if doc["piece"].get("sha256") != digest:
        raise CustomizationError(f"{piece}: its SHA-256 {digest} is not the one its record states "
                                 f"({doc['piece'].get('sha256')})")
    return doc
