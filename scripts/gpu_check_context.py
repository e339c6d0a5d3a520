"""What the steps of ``scripts.gpu_check`` share: the sizes of a run and a lazily built context.

The context builds the session on the committed tiny checkpoint, the random MusicGen-Large-
shaped model and the songs on first use, and keeps a failure to build as well, so that any step
can run after any other failed.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from lumina_tools.environment import proc_status, reset_rss_peak

__all__ = ["DRY", "REAL", "Context", "Sizes", "status"]


@dataclass(frozen=True)
class Sizes:
    """What a run measures: MusicGen-Large's shape on the GPU, small ones for the dry run on the CPU."""

    width: int
    heads: int
    encodec_filters: int
    encodec_dimension: int
    chunk_seconds: float  # of the batching and large-model steps (the golden steps keep the spec's 10 s)
    song_seconds: float
    batch_song_seconds: float
    matmul: int
    repeats: int
    golden_clips: tuple[int, ...] | None  # indices into golden.json's clips; None: every clip


REAL = Sizes(width=2048, heads=32, encodec_filters=64, encodec_dimension=128, chunk_seconds=10.0,
             song_seconds=180.0, batch_song_seconds=30.0, matmul=8192, repeats=5, golden_clips=None)
DRY = Sizes(width=64, heads=1, encodec_filters=4, encodec_dimension=16, chunk_seconds=2.0, song_seconds=5.0,
            batch_song_seconds=4.0, matmul=256, repeats=2, golden_clips=(2,))


class Context:
    """Lazily built state shared by the steps."""

    def __init__(self, pins: Any, sizes: Sizes) -> None:
        import torch

        self.pins, self.sizes, self.torch = pins, sizes, torch
        self.cuda = pins.device == "cuda"
        self._cache: dict[str, Any] = {}
        self.tmp = Path(tempfile.mkdtemp(prefix="lumina-gpu-check-"))

    def _once(self, key: str, make: Callable[[], Any]) -> Any:
        """``make()`` once; a failure is kept too, so the steps after it fail at once with the same error."""
        if key not in self._cache:
            try:
                self._cache[key] = make()
            except Exception as exc:
                self._cache[key] = exc
        found = self._cache[key]
        if isinstance(found, Exception):
            raise RuntimeError(f"{key} could not be built: {type(found).__name__}: {found}")
        return found

    def sync(self) -> None:
        if self.cuda:
            self.torch.cuda.synchronize()

    def session(self) -> Any:
        from lumina_audit.signature import golden
        from lumina_audit.signature.session import Session

        def make() -> Any:
            gf = golden.read(golden.default_root())
            return gf, Session.open(gf.model_dir, gf.digests, self.pins)
        return self._once("session", make)

    def clips(self) -> list[tuple[Path, dict[str, Any]]]:
        gf, _ = self.session()
        chosen = self.sizes.golden_clips
        return [c for i, c in enumerate(gf.expected) if chosen is None or i in chosen]

    def config(self) -> Any:
        """The signature configuration of the batching and large-model steps (chunks of ``chunk_seconds``)."""
        return replace(self.session()[1].config, chunk_seconds=self.sizes.chunk_seconds)

    def audio(self, seconds: float, seed: int, rate: int = 44100, channels: int = 2) -> Any:
        """A synthetic song of ``seconds``, decoded and chunked under :meth:`config`, and its decode seconds."""
        from lumina_audit._internal.synth import SongSpec, render, write_wav
        from lumina_audit.signature.audio import load_audio

        def make() -> Any:
            path = self.tmp / f"song-{seed}-{seconds:g}.wav"
            write_wav(path, render(SongSpec(seed=seed, seconds=seconds, sample_rate=rate, channels=channels)),
                      rate, 16)
            t0 = time.perf_counter()
            audio = load_audio(path, self.config())
            return audio, time.perf_counter() - t0
        return self._once(f"audio-{seed}-{seconds}", make)

    def large(self) -> Any:
        def make() -> Any:
            from benchmarks.bench_signature import build_wide

            _, session = self.session()
            t0 = time.perf_counter()
            lm = build_wide(session.model, self.sizes.width, session.model.device, session.config, self.sizes.heads)
            model = replace(lm, compression=self._encodec(session.model.device))
            self.sync()
            return model, time.perf_counter() - t0
        return self._once("large", make)

    def _encodec(self, device: Any) -> Any:
        """A random EnCodec of MusicGen's 32 kHz shape (or the dry run's), its codebooks filled with random codes."""
        from audiocraft.models import builders
        from omegaconf import OmegaConf

        from benchmarks.musicgen_large import encodec_config

        cfg = encodec_config(self.sizes.encodec_filters, self.sizes.encodec_dimension)
        cfg["device"] = str(device)
        torch = self.torch
        with torch.device(device):
            model = builders.get_compression_model(OmegaConf.create(cfg)).float().eval().to(device)
        quantizer: Any = model.quantizer
        with torch.no_grad():
            for layer in quantizer.vq.layers:
                book = layer._codebook
                book.embed.normal_()
                book.inited.fill_(1.0)
        for p in model.parameters():
            p.requires_grad_(False)
        return model

    def peak_reset(self) -> tuple[int, int]:
        """Reset the peak-memory counters (device, and the host's RSS high-water mark); the bytes in use now.

        Where the host's mark cannot be reset (not Linux, not allowed), the host figure is the process's peak so far.
        """
        host = reset_rss_peak(strict=False)
        if self.cuda:
            self.torch.cuda.empty_cache()
            self.torch.cuda.reset_peak_memory_stats()
            return int(self.torch.cuda.memory_allocated()), host
        return host, host

    def peak(self) -> tuple[int, int]:
        """Peak bytes since :meth:`peak_reset`: on the device, and the host's RSS."""
        host = status("VmHWM")
        return (int(self.torch.cuda.max_memory_allocated()) if self.cuda else host), host

    @property
    def peak_source(self) -> str:
        return "torch.cuda.max_memory_allocated" if self.cuda else "VmHWM (host RSS high-water mark)"


def status(key: str) -> int:
    """A ``/proc/self/status`` figure in bytes (``VmRSS``, ``VmHWM``), 0 where there is none."""
    return proc_status(key, default=0)
