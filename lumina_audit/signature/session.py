"""One pinned extraction session: pins applied, model loaded, config fixed."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AudioError
from .pins import Pins
from .result import Signature
from .space import SignatureConfig, SignatureSpace

if TYPE_CHECKING:
    from .audio import Audio

__all__ = ["Session", "check_inputs", "load_all"]


@dataclass(frozen=True, eq=False)
class Session:
    pins: Pins
    config: SignatureConfig
    model: Any  # LoadedModel; typed loosely so this module imports without torch
    space: SignatureSpace

    @classmethod
    def open(cls, model_dir: str | os.PathLike[str], digests: Mapping[str, str], pins: Pins,
             config: SignatureConfig | None = None) -> Session:
        """Check the pins, apply them, load and check the model."""
        from .pins import apply_torch_pins, check_runtime

        config = config or SignatureConfig()
        device = apply_torch_pins(pins)
        from .model import load_model

        model = load_model(model_dir, digests, device, config)
        check_runtime(pins)
        return cls(pins=pins, config=config, model=model, space=config.space(model.digests))

    def signature(self, path: Path, song_id: str | None = None) -> Signature:
        from .extract import extract

        return extract(path, self.model, self.config, self.pins, song_id)

    def signatures(self, paths: Sequence[Path], song_ids: Sequence[str] | None = None,
                   audios: Sequence[Audio] | None = None) -> list[tuple[Path, Signature]]:
        """Decode and check every file first, then compute: a bad file stops the run before any work."""
        from .extract import signature_of_audio

        ids = check_inputs(paths, song_ids)
        loaded = list(audios) if audios is not None else load_all(paths, self.config)
        progress = _progress()
        return [(p, signature_of_audio(a, self.model, self.config, self.pins, sid, on_chunk=progress(p.name)))
                for p, a, sid in zip(paths, loaded, ids, strict=True)]

    def environment(self) -> dict[str, Any]:
        from .environment import describe

        return describe(self.pins)


def check_inputs(paths: Sequence[Path], song_ids: Sequence[str] | None) -> list[str]:
    """Song ids (default: file stems), refusing duplicates and a length mismatch."""
    from .extract import default_song_id

    ids = list(song_ids) if song_ids is not None else [default_song_id(p) for p in paths]
    if len(ids) != len(paths):
        raise AudioError(f"{len(paths)} files but {len(ids)} song ids")
    seen: dict[str, Path] = {}
    for p, sid in zip(paths, ids, strict=True):
        if sid in seen:
            raise AudioError(f"{p}: song id {sid!r} is also that of {seen[sid]}")
        seen[sid] = p
    return ids


def load_all(paths: Sequence[Path], config: SignatureConfig) -> list[Audio]:
    """Decode and check every file (needs the pins applied)."""
    from .audio import load_audio

    return [load_audio(p, config) for p in paths]


def _progress() -> Any:
    """A per-file chunk callback that draws a progress line on a terminal, else nothing."""
    if not sys.stderr.isatty():
        return lambda name: None

    def for_file(name: str) -> Any:
        def on_chunk(done: int, total: int) -> None:
            sys.stderr.write(f"\r{name}: chunk {done}/{total}" + ("\n" if done == total else ""))
            sys.stderr.flush()
        return on_chunk

    return for_file
