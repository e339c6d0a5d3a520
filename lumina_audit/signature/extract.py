"""Extraction: audio file + loaded model -> :class:`~lumina_audit.signature.Signature`.

Chunks are processed one at a time; both channels' 72 hooked gradients come
from one backward pass per chunk and are accumulated in float64 (spec 5).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import torch

from .audio import Audio, load_audio
from .gradients import chunk_gradients
from .methods import GRADSTATS, SignatureMethod, normalise
from .model import LoadedModel
from .pins import Pins
from .result import Signature
from .space import SignatureConfig

__all__ = ["default_song_id", "extract", "signature_of_audio"]


def default_song_id(path: str | os.PathLike[str]) -> str:
    """The file name without its extension (a manifest may give another)."""
    return Path(path).stem


def signature_of_audio(audio: Audio, model: LoadedModel, config: SignatureConfig, pins: Pins,
                       song_id: str, on_chunk: Callable[[int, int], None] | None = None,
                       method: SignatureMethod = GRADSTATS) -> Signature:
    """Signatures of an already loaded :class:`Audio` (spec sections 3-7)."""
    params = [*model.hooked["P"], *model.hooked["M"]]
    sums = [torch.zeros(p.shape, dtype=torch.float64, device=model.device) for p in params]
    samples = torch.from_numpy(audio.samples).to(model.device)
    for i, (start, length) in enumerate(audio.chunks):
        grads = chunk_gradients(model, samples[start:start + length], config, pins, params)
        for acc, g in zip(sums, grads, strict=True):
            acc.add_(g.to(torch.float64))
        if on_chunk is not None:
            on_chunk(i + 1, len(audio.chunks))
    n = float(len(audio.chunks))
    per_layer = len(config.tensors)
    raws = {}
    offset = 0
    for channel, layers in (("P", config.layers_p), ("M", config.layers_m)):
        summary = method.summary()
        for k in range(len(model.hooked[channel])):
            summary.add(layers[k // per_layer], k % per_layer, (sums[offset + k] / n).cpu())  # spec 5
        offset += len(model.hooked[channel])
        raws[channel] = summary.raw()
    raw_p, raw_m = raws["P"], raws["M"]
    return Signature(
        song_id=song_id, file_sha256=audio.file_sha256, pcm_sha256=audio.pcm_sha256,
        chunks=len(audio.chunks), raw_p=raw_p, raw_m=raw_m, p=normalise(raw_p), m=normalise(raw_m),
    )


def extract(path: str | os.PathLike[str], model: LoadedModel, config: SignatureConfig, pins: Pins,
            song_id: str | None = None) -> Signature:
    """Decode ``path`` and compute its two signatures."""
    audio = load_audio(path, config)
    return signature_of_audio(audio, model, config, pins, song_id or default_song_id(path))
