"""What every kind of run shares: the refusal error, the plan a kind returns, and the helpers of its steps."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from .._internal.hashing import sha256_path
from ..errors import LuminaError
from ..evidence.manifest import (
    LoadedManifest,
)

__all__ = ["Context", "Plan", "Progress", "ProgressFn", "RunError", "audio_entries", "checked_file", "content_sha256",
           "file_entry", "is_codes", "load_input", "primary", "queries", "read_store", "same_pins", "same_space",
           "samples_of", "signatures", "store_has_space"]


class RunError(LuminaError):
    """A run was refused before it changed anything."""


def file_entry(path: Path, root: Path | None = None, **extra: Any) -> dict[str, Any]:
    """Path (relative to ``root`` when given: the ledger's parent folder), size and SHA-256."""
    shown = os.path.relpath(path, root) if root is not None else str(path)
    return {"path": shown, "size": path.stat().st_size, "sha256": sha256_path(path), **extra}


@dataclass(frozen=True)
class Progress:
    """Where a run is: ``done`` of ``total`` units (``songs`` for an Extract, ``chunks`` otherwise).

    ``skipped`` bad inputs so far; ``rate`` units per second computed by this run (None before the
    first); ``eta_s`` seconds left at that rate; ``name`` the file of the last unit.
    """

    unit: str
    done: int
    total: int
    skipped: int = 0
    rate: float | None = None
    eta_s: float | None = None
    name: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {"event": "progress", "unit": self.unit, "done": self.done, "total": self.total,
                "skipped": self.skipped, "rate": self.rate, "eta_s": self.eta_s, "name": self.name}


ProgressFn = Callable[[Progress], None]


@dataclass
class Plan:
    """What a kind computed: ledger entries for what it read, its result, and how to write its outputs.

    ``write(seq)`` runs under the ledger's writer lock and returns ``(path, kind)`` of
    every file it wrote; the record then holds their hashes.
    """

    inputs: list[dict[str, Any]]
    result: dict[str, Any]
    write: Callable[[int], list[tuple[Path, str]]]
    #: Run after the record is appended, with its sequence number and the files written (step 9).
    after: Callable[[int, list[Path]], tuple[Any, ...]] | None = None
    #: More members of the record's body (an Extract's ``execution``).
    record: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Context:
    """Everything a kind's computation sees."""

    loaded: LoadedManifest
    session: Any  #: None for an Extract, which opens its workers' sessions itself
    inputs: list[Any]
    audios: list[Any]
    on_progress: ProgressFn | None
    pre: Any  #: what the kind read before the model loaded
    signers: list[dict[str, str]]  #: the manifest's verified signers
    origin: str  #: the ledger's origin line
    operator_key: Ed25519PrivateKey
    principal: str  #: the operator's principal in the trust file


def checked_file(path: Path, expected: str | None, loc: str) -> dict[str, Any]:
    if not path.is_file():
        raise RunError(f"{path}: {loc} not found")
    entry = file_entry(path)
    if expected is not None and entry["sha256"] != expected:
        raise RunError(f"{path}: {loc} SHA-256 {entry['sha256']} differs from the pinned {expected}")
    return entry


def same_space(what: str, theirs: str, ours: str) -> None:
    if theirs != ours:
        raise RunError(f"{what} is of signature space {theirs}, this run computes signatures of space {ours}; "
                       "they are never compared")


def store_has_space(what: str, info: Any, ours: Any) -> None:
    """Refuse a store that does not hold the run's signature space, naming every digest on both sides."""
    held = list(info.spaces.values())
    if any(s.digest == ours.digest for s in held):
        return
    if len(held) == 1:
        same_space(what, held[0].digest, ours.digest)
    raise RunError(f"{what} holds signature spaces {info.describe_spaces()}, this run computes signatures of "
                   f"space {ours.digest} ({ours.as_dict()['method']}); they are never compared")


def same_pins(loaded: LoadedManifest, *files: tuple[str, Path, str]) -> None:
    """Refuse a file (``(what, path, sha256)``) whose signatures this ledger records as computed under other pins.

    The latest record that wrote a file of that SHA-256 names the pins its run had; signatures are
    compared only under the same pins (docs/pins.md), the memory pins aside (:func:`bit_pins`). A
    file that no record of this run's ledger wrote is not checked here: its provenance is another
    ledger's. The ledger is read once for all ``files``.
    """
    from ..evidence.ledger import Ledger
    from ..signature.pins import bit_pins

    if not (loaded.ledger_dir / "ledger.json").exists():
        return
    ours = bit_pins(loaded.pins().as_json())
    records = Ledger.open(loaded.ledger_dir).records()
    for what, path, sha256 in files:
        rec = next((r for r in reversed(records)
                    if any(out.get("sha256") == sha256 for out in r.body.get("outputs", []))), None)
        if rec is None:
            continue
        theirs = bit_pins(rec.body.get("environment", {}).get("pins", {}))
        differ = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
        if differ:
            pairs = ", ".join(f"{k} {theirs.get(k)!r} there, {ours.get(k)!r} here" for k in differ)
            raise RunError(f"{what} {path} was computed under other numerical pins (ledger record {rec.seq}: "
                           f"{pairs}); signatures are compared only under the same pins",
                           hint="give this manifest the pins section of the run that made it")


def read_store(loaded: LoadedManifest, ref: Any, loc: str) -> tuple[Path, Any, dict[str, Any]]:
    """A store the run reads: its pinned digest checked, its index read (no vectors)."""
    from ..attribution.store import read_index

    path = loaded.anywhere(ref.path)
    entry = checked_file(path, ref.sha256, loc)
    return path, read_index(path), entry | {"kind": "signature-store"}


def load_input(path: Path, config: Any, expected_sha256: str | None) -> Any:
    """An input decoded: :class:`~lumina_audit.signature.audio.Audio`, or, for a ``.codes`` file, the
    :class:`~lumina_audit.signature.codes.CodesPiece` it carries (its digest checked first either way)."""
    from ..signature.audio import load_audio
    from ..signature.codes import CODES_SUFFIX, read_codes

    if path.suffix.lower() == CODES_SUFFIX:
        return read_codes(path, expected_sha256)
    return load_audio(path, config, expected_sha256)


def is_codes(item: Any) -> bool:
    """Whether a loaded input is a piece carried as its codes."""
    from ..signature.codes import CodesPiece

    return isinstance(item, CodesPiece)


def samples_of(item: Any) -> int:
    """The decoded length of a loaded input, in samples at the signature rate (for codes: what they stand for)."""
    return int(item.sample_count) if is_codes(item) else int(item.samples.shape[0])


def content_sha256(item: Any) -> str:
    """What identifies a loaded input's content: its PCM SHA-256, or its codes' SHA-256."""
    return str(item.codes_sha256 if is_codes(item) else item.pcm_sha256)


def _chunk_count(item: Any, config: Any) -> int:
    if is_codes(item):
        return len(_codes_chunks(item, config))
    return len(item.chunks)


def _codes_chunks(piece: Any, config: Any) -> list[Any]:
    """A codes piece cut as audio is (spec 2): chunks of ``chunk_seconds``, the last dropped under ``min_chunk``."""
    frame = config.sample_rate // piece.frame_rate
    chunks: list[Any] = piece.chunks(config.chunk_samples // frame, -(-config.min_chunk_samples // frame))
    return chunks


def signatures(session: Any, inputs: list[Any], audios: list[Any],
               on_progress: ProgressFn | None) -> list[dict[str, Any]]:
    """Every session method's signatures of each input (one pass per song), by method name.

    A piece carried as codes goes through :func:`~lumina_audit.signature.extract.signatures_of_codes`,
    the path audio takes after its encoding.
    """
    import time

    import torch

    from ..signature.extract import signatures_of_audio, signatures_of_codes

    sigs = []
    total = sum(_chunk_count(a, session.config) for a in audios)
    done, start = 0, time.monotonic()
    for i, a in zip(inputs, audios, strict=True):
        def tick(n: int, _k: int, base: int = done, name: str = i.path.name) -> None:
            if on_progress is not None:
                rate = (base + n) / max(time.monotonic() - start, 1e-9)
                on_progress(Progress("chunks", base + n, total, rate=rate, eta_s=(total - base - n) / rate,
                                     name=name))
        if is_codes(a):
            codes = [torch.from_numpy(c.copy()).unsqueeze(0) for c in _codes_chunks(a, session.config)]
            if not codes:
                raise RunError(f"{i.path}: its codes are shorter than one chunk of "
                               f"{session.config.min_chunk_seconds:g} s")
            sigs.append(signatures_of_codes(codes, session.model, session.config, session.pins, i.song_id,
                                            session.methods, file_sha256=a.file_sha256, pcm_sha256=a.codes_sha256,
                                            on_chunk=tick))
            done += len(codes)
        else:
            sigs.append(signatures_of_audio(a, session.model, session.config, session.pins, i.song_id,
                                            session.methods, on_chunk=tick))
            done += len(a.chunks)
    return sigs


def primary(sigs: list[dict[str, Any]], session: Any) -> list[Any]:
    """The primary (first) method's signature of each song."""
    return [s[session.methods[0].name] for s in sigs]


def audio_entries(inputs: list[Any], audios: list[Any]) -> list[dict[str, Any]]:
    """Ledger entries of the audio inputs: size and SHA-256 of the very bytes that were decoded.

    A piece carried as codes has ``codes_sha256`` and ``frames`` instead of ``pcm_sha256`` and ``chunks``.
    """
    out = []
    for i, a in zip(inputs, audios, strict=True):
        entry: dict[str, Any] = {"path": str(i.path), "size": a.file_size, "sha256": a.file_sha256,
                                 "song_id": i.song_id}
        if is_codes(a):
            entry |= {"codes_sha256": a.codes_sha256, "frames": a.frames}
        else:
            entry |= {"pcm_sha256": a.pcm_sha256, "chunks": len(a.chunks)}
        out.append(entry)
    return out


def queries(sigs: list[Any]) -> dict[str, Any]:
    import numpy as np

    return {"P": np.stack([s.p for s in sigs]), "M": np.stack([s.m for s in sigs])}
