"""Extraction: audio (or EnCodec codes) + loaded model -> :class:`~lumina_audit.signature.Signature` per method.

:func:`signatures_of_audio` encodes each chunk with the checkpoint's EnCodec (spec 3.1) and
hands the codes to :func:`signatures_of_codes`, which every later step belongs to: chunks one
at a time (or, with ``SignatureConfig.chunk_batch`` > 1, in groups of equal-length chunks);
both channels' 72 hooked gradients come from one backward pass per chunk (or group) and are
accumulated in float64 (spec 5) where the pin ``sums`` says (:mod:`.accumulate`); the averages
are then summarised by each signature method (:mod:`.methods`). A piece carried as its codes
(a generated piece whose decoder cannot decode it) is therefore scored exactly as the audio
that encodes to those codes would be.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch

from ..errors import ConfigError
from .accumulate import ChunkSums, make_sums
from .audio import Audio, load_audio
from .gradients import Codes, chunk_codes, group_gradients, stream_gradients
from .methods import SignatureMethod, normalise
from .model import LoadedModel
from .pins import Pins
from .result import Signature
from .space import SignatureConfig

__all__ = ["chunk_groups", "default_song_id", "extract", "signature_of_audio", "signatures_of_audio",
           "signatures_of_codes", "summarise"]


def default_song_id(path: str | os.PathLike[str]) -> str:
    """The file name without its extension (a manifest may give another)."""
    return Path(path).stem


def chunk_groups(chunks: Sequence[tuple[int, int]], batch: int) -> list[list[tuple[int, int]]]:
    """Chunks ``(start, length)`` in order, in groups of at most ``batch`` consecutive chunks of equal length.

    Every chunk but the last has the full length, so with ``batch`` > 1 the full chunks go
    ``batch`` at a time (the last group of them may hold fewer) and a shorter last chunk goes alone.
    """
    groups: list[list[tuple[int, int]]] = []
    for chunk in chunks:
        if groups and len(groups[-1]) < batch and groups[-1][0][1] == chunk[1]:
            groups[-1].append(chunk)
        else:
            groups.append([chunk])
    return groups


def signatures_of_audio(audio: Audio, model: LoadedModel, config: SignatureConfig, pins: Pins, song_id: str,
                        methods: Sequence[SignatureMethod],
                        on_chunk: Callable[[int, int], None] | None = None) -> dict[str, Signature]:
    """Every method's signatures of an already loaded :class:`Audio`, by method name (spec sections 3-7).

    Each chunk is encoded alone (spec 3.1), then :func:`signatures_of_codes` does the rest,
    grouping chunks of equal sample length.
    """
    samples = torch.from_numpy(audio.samples).to(model.device)
    codes = [chunk_codes(model, samples[start:start + length]) for start, length in audio.chunks]
    return signatures_of_codes(codes, model, config, pins, song_id, methods, file_sha256=audio.file_sha256,
                               pcm_sha256=audio.pcm_sha256, lengths=[length for _, length in audio.chunks],
                               on_chunk=on_chunk)


def signatures_of_codes(codes: Sequence[Codes], model: LoadedModel, config: SignatureConfig, pins: Pins,
                        song_id: str, methods: Sequence[SignatureMethod], *, file_sha256: str, pcm_sha256: str,
                        lengths: Sequence[int] | None = None,
                        on_chunk: Callable[[int, int], None] | None = None) -> dict[str, Signature]:
    """Every method's signatures of chunks given as EnCodec codes (each ``[1, K, T]`` int64), by method name.

    Spec sections 3.2-7: one forward and one backward pass per chunk (or group of
    ``config.chunk_batch`` consecutive chunks of equal ``lengths``; the codes' frame counts
    when not given) serve all ``methods``: the 72 hooked gradients are summed over chunks in
    float64 (spec 5), on the device or the host (pin ``sums``), taken together or streamed (pin
    ``gradients``), and each tensor's average is handed to every method in turn and then
    dropped, so at most one averaged tensor exists at a time. ``file_sha256`` and
    ``pcm_sha256`` name what the codes came from (for a piece carried as codes: its file's and
    its codes' SHA-256).
    """
    if not methods or len({m.name for m in methods}) != len(methods):
        raise ConfigError("name at least one signature method, each once")
    if not codes:
        raise ConfigError("no chunk to compute a signature of")
    for c in codes:
        if c.dim() != 3 or c.shape[0] != 1 or c.shape[1] != len(config.codebook_boosts):
            raise ConfigError(f"codes of a chunk must be [1, {len(config.codebook_boosts)}, T], got {list(c.shape)}")
    keys = list(lengths) if lengths is not None else [int(c.shape[-1]) for c in codes]
    if len(keys) != len(codes):
        raise ConfigError(f"{len(codes)} chunks of codes but {len(keys)} lengths")
    params = [*model.hooked["P"], *model.hooked["M"]]
    sums = make_sums(params, model.device, pins)
    try:
        done = 0
        for group in chunk_groups(list(enumerate(keys)), config.chunk_batch):
            group_codes = [codes[i].to(model.device) for i, _ in group]
            if pins.gradients == "streamed":
                stream_gradients(model, group_codes, config, pins, params, sums.add)
            else:
                grads = group_gradients(model, group_codes, config, pins, params)
                for k, g in enumerate(grads):
                    sums.add(k, g)
                del grads
            for _ in group:
                done += 1
                if on_chunk is not None:
                    on_chunk(done, len(codes))
        raws = summarise(sums, len(codes), model, config, methods)
    finally:
        sums.close()
    return {
        name: Signature(song_id=song_id, file_sha256=file_sha256, pcm_sha256=pcm_sha256, chunks=len(codes),
                        raw_p=raw["P"], raw_m=raw["M"], p=normalise(raw["P"]), m=normalise(raw["M"]))
        for name, raw in raws.items()
    }


def summarise(sums: ChunkSums, chunks: int, model: LoadedModel, config: SignatureConfig,
              methods: Sequence[SignatureMethod]) -> dict[str, dict[str, npt.NDArray[np.float64]]]:
    """Each method's raw vectors by channel from the float64 gradient sums of ``chunks`` chunks (spec 5-7).

    Each hooked tensor's average (``sums.mean``, on the CPU) is handed to every method in turn
    and then dropped, so at most one averaged tensor exists at a time.
    """
    n = float(chunks)
    per_layer = len(config.tensors)
    raws: dict[str, dict[str, npt.NDArray[np.float64]]] = {m.name: {} for m in methods}
    offset = 0
    for channel, layers in (("P", config.layers_p), ("M", config.layers_m)):
        summaries = [(m.name, m.summary()) for m in methods]
        for k in range(len(model.hooked[channel])):
            mean = sums.mean(offset + k, n)  # spec 5, on the CPU
            for _, summary in summaries:
                summary.add(layers[k // per_layer], k % per_layer, mean)
            del mean
        offset += len(model.hooked[channel])
        for name, summary in summaries:
            raws[name][channel] = summary.raw()
    return raws


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
