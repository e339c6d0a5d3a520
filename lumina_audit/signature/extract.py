"""Extraction: audio file + loaded model -> :class:`~lumina_audit.signature.Signature` per method.

Chunks are processed one at a time; both channels' 72 hooked gradients come
from one backward pass per chunk and are accumulated in float64 (spec 5); the
averages are then summarised by each signature method (:mod:`.methods`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from ..errors import ConfigError, SignatureError
from .audio import Audio, load_audio
from .gradients import chunk_gradients
from .methods import SignatureMethod, normalise
from .model import LoadedModel
from .pins import Pins
from .result import Signature
from .space import SignatureConfig

__all__ = ["default_song_id", "extract", "signature_of_audio", "signatures_of_audio"]


def default_song_id(path: str | os.PathLike[str]) -> str:
    """The file name without its extension (a manifest may give another)."""
    return Path(path).stem


def signatures_of_audio(audio: Audio, model: LoadedModel, config: SignatureConfig, pins: Pins, song_id: str,
                        methods: Sequence[SignatureMethod],
                        on_chunk: Callable[[int, int], None] | None = None) -> dict[str, Signature]:
    """Every method's signatures of an already loaded :class:`Audio`, by method name (spec sections 3-7).

    One forward and one backward pass per chunk serve all ``methods``: the 72 hooked gradients
    are summed over chunks in float64 (spec 5), and each tensor's average is handed to every
    method in turn and then dropped, so at most one averaged tensor exists at a time.
    """
    if not methods or len({m.name for m in methods}) != len(methods):
        raise ConfigError("name at least one signature method, each once")
    params = [*model.hooked["P"], *model.hooked["M"]]
    sums: list[torch.Tensor | None] = [torch.zeros(p.shape, dtype=torch.float64, device=model.device)
                                       for p in params]
    samples = torch.from_numpy(audio.samples).to(model.device)
    for i, (start, length) in enumerate(audio.chunks):
        grads = chunk_gradients(model, samples[start:start + length], config, pins, params)
        for acc, g in zip(sums, grads, strict=True):
            if acc is not None:
                acc.add_(g.to(torch.float64))
        del grads
        if on_chunk is not None:
            on_chunk(i + 1, len(audio.chunks))
    n = float(len(audio.chunks))
    per_layer = len(config.tensors)
    raws: dict[str, dict[str, npt.NDArray[np.float64]]] = {m.name: {} for m in methods}
    offset = 0
    for channel, layers in (("P", config.layers_p), ("M", config.layers_m)):
        summaries = [(m.name, m.summary()) for m in methods]
        for k in range(len(model.hooked[channel])):
            acc = sums[offset + k]
            if acc is None:
                raise SignatureError("a hooked tensor's sum was dropped before its average was taken")
            mean = (acc / n).cpu()  # spec 5
            sums[offset + k] = None
            del acc
            for _, summary in summaries:
                summary.add(layers[k // per_layer], k % per_layer, mean)
            del mean
        offset += len(model.hooked[channel])
        for name, summary in summaries:
            raws[name][channel] = summary.raw()
    return {
        name: Signature(song_id=song_id, file_sha256=audio.file_sha256, pcm_sha256=audio.pcm_sha256,
                        chunks=len(audio.chunks), raw_p=raw["P"], raw_m=raw["M"], p=normalise(raw["P"]),
                        m=normalise(raw["M"]))
        for name, raw in raws.items()
    }


def signature_of_audio(audio: Audio, model: LoadedModel, config: SignatureConfig, pins: Pins, song_id: str,
                       *, method: SignatureMethod,
                       on_chunk: Callable[[int, int], None] | None = None) -> Signature:
    """One method's signatures of an already loaded :class:`Audio`."""
    return signatures_of_audio(audio, model, config, pins, song_id, (method,), on_chunk)[method.name]


def extract(path: str | os.PathLike[str], model: LoadedModel, config: SignatureConfig, pins: Pins,
            song_id: str | None = None, *, method: SignatureMethod) -> Signature:
    """Decode ``path`` and compute its two signatures (channels P and M) with ``method``."""
    audio = load_audio(path, config)
    return signature_of_audio(audio, model, config, pins, song_id or default_song_id(path), method=method)
