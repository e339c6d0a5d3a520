"""One pinned extraction session: pins applied, model loaded, config fixed."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import AudioError
from ..pins import Pins
from ..signature import Signature
from ..space import SignatureConfig, SignatureSpace

__all__ = ["Session"]


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
        from ..pins import apply_torch_pins, check_runtime

        config = config or SignatureConfig()
        device = apply_torch_pins(pins)
        from ..model import load_model

        model = load_model(model_dir, digests, device, config)
        check_runtime(pins)
        return cls(pins=pins, config=config, model=model, space=config.space(model.digests))

    def signature(self, path: Path, song_id: str | None = None) -> Signature:
        from ..extract import extract

        return extract(path, self.model, self.config, self.pins, song_id)

    def signatures(self, paths: Sequence[Path]) -> list[tuple[Path, Signature]]:
        """Decode and check every file first, then compute: a bad file stops the run before any work."""
        from ..audio import load_audio
        from ..extract import default_song_id, signature_of_audio

        audios = [load_audio(p, self.config) for p in paths]
        seen: dict[str, Path] = {}
        for p in paths:
            sid = default_song_id(p)
            if sid in seen:
                raise AudioError(f"{p}: song id {sid!r} is also that of {seen[sid]}")
            seen[sid] = p
        progress = _progress()
        out = []
        for p, a in zip(paths, audios, strict=True):
            out.append((p, signature_of_audio(a, self.model, self.config, self.pins, default_song_id(p),
                                              on_chunk=progress(p.name))))
        return out

    def environment(self) -> dict[str, Any]:
        from ..environment import describe

        return describe(self.pins)


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
