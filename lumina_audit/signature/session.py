"""One pinned extraction session: pins applied, model loaded, config fixed."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from ..errors import AudioError, ConfigError
from .methods import DEFAULT_METHODS, SignatureMethod
from .pins import Pins
from .result import Signature
from .space import SignatureConfig, SignatureSpace

if TYPE_CHECKING:
    from .audio import Audio

__all__ = ["Session", "check_inputs", "load_all"]


@dataclass(frozen=True, eq=False)
class Session:
    """Pins applied, a model loaded and checked, a configuration and the signature methods it computes.

    ``spaces`` holds each method's signature space, by method name; ``space`` is the first
    (primary) method's.
    """

    pins: Pins
    config: SignatureConfig
    model: Any  # LoadedModel; typed loosely so this module imports without torch
    methods: tuple[SignatureMethod, ...]
    spaces: Mapping[str, SignatureSpace]

    @classmethod
    def open(cls, model_dir: str | os.PathLike[str], digests: Mapping[str, str], pins: Pins,
             config: SignatureConfig | None = None,
             methods: Sequence[SignatureMethod] = DEFAULT_METHODS) -> Session:
        """Check the pins, apply them, load and check the model."""
        from .pins import apply_torch_pins, check_runtime

        config = config or SignatureConfig()
        if not methods or len({m.name for m in methods}) != len(methods):
            raise ConfigError("name at least one signature method, each once")
        device = apply_torch_pins(pins)
        from .model import load_model

        model = load_model(model_dir, digests, device, config)
        check_runtime(pins)
        spaces = MappingProxyType({m.name: config.space(model.digests, m) for m in methods})
        return cls(pins=pins, config=config, model=model, methods=tuple(methods), spaces=spaces)

    @property
    def space(self) -> SignatureSpace:
        """The signature space of the first (primary) method."""
        return self.spaces[self.methods[0].name]

    def method(self, name: str | None = None) -> SignatureMethod:
        """The session's method called ``name`` (default: the primary one)."""
        if name is None:
            return self.methods[0]
        for m in self.methods:
            if m.name == name:
                return m
        raise ConfigError(f"this session computes {', '.join(m.name for m in self.methods)}, not {name!r}")

    def signature(self, path: Path, song_id: str | None = None, method: str | None = None) -> Signature:
        from .extract import extract

        return extract(path, self.model, self.config, self.pins, song_id, method=self.method(method))

    def all_signatures(self, paths: Sequence[Path], song_ids: Sequence[str] | None = None,
                       audios: Sequence[Audio] | None = None) -> list[tuple[Path, dict[str, Signature]]]:
        """Every method's signatures of each file, one pass per file; every file is decoded and checked first."""
        from .extract import signatures_of_audio

        ids = check_inputs(paths, song_ids)
        loaded = list(audios) if audios is not None else load_all(paths, self.config)
        progress = _progress()
        return [(p, signatures_of_audio(a, self.model, self.config, self.pins, sid, self.methods,
                                        on_chunk=progress(p.name)))
                for p, a, sid in zip(paths, loaded, ids, strict=True)]

    def signatures(self, paths: Sequence[Path], song_ids: Sequence[str] | None = None,
                   audios: Sequence[Audio] | None = None, method: str | None = None) -> list[tuple[Path, Signature]]:
        """One method's signatures (default: the primary one) of each file; every file is checked first."""
        from .extract import signature_of_audio

        chosen = self.method(method)
        ids = check_inputs(paths, song_ids)
        loaded = list(audios) if audios is not None else load_all(paths, self.config)
        progress = _progress()
        return [(p, signature_of_audio(a, self.model, self.config, self.pins, sid, method=chosen,
                                       on_chunk=progress(p.name)))
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
