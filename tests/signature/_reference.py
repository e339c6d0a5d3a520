"""An independent implementation of signature-v1 sections 3-5 for the tests: ``loss.backward()`` and numpy sums.

Written out apart from the library (no ``codes_loss``, no accumulator), so the tests of both
methods compare the library's chunk averages against the spec read literally.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from lumina_audit.signature.audio import load_audio
from lumina_audit.signature.pins import sdpa_context

__all__ = ["codes_and_out", "reference_means"]


def codes_and_out(session: Any, chunk: torch.Tensor) -> tuple[torch.Tensor, Any]:
    """EnCodec codes ``[1, K, T]`` of one chunk ``[S]`` and the LM's predictions under null conditioning."""
    with torch.no_grad():
        codes, _ = session.model.compression.encode(chunk.view(1, 1, -1))
    with sdpa_context(session.pins):
        out = session.model.lm.compute_predictions(codes=codes, conditions=[],
                                                   condition_tensors=dict(session.model.null_condition))
    return codes, out


def reference_means(session: Any, path: Path) -> list[np.ndarray]:
    """The 72 hooked tensors' float64 gradients averaged over the chunks of ``path``, P then M (spec 3-5)."""
    model, config = session.model, session.config
    audio = load_audio(path, config)
    hooked = [*model.hooked["P"], *model.hooked["M"]]
    sums = [np.zeros(p.shape) for p in hooked]
    for start, length in audio.chunks:
        chunk = torch.from_numpy(audio.samples[start:start + length])
        codes, out = codes_and_out(session, chunk)
        valid = out.mask.bool()
        loss = torch.zeros(())
        for k, w in enumerate(config.codebook_boosts):
            loss = loss + w * F.cross_entropy(out.logits[0, k][valid[0, k]], codes[0, k][valid[0, k]],
                                              reduction="sum")
        for p in hooked:
            p.grad = None
        with sdpa_context(session.pins):
            (loss / valid.sum()).backward()
        for acc, p in zip(sums, hooked, strict=True):
            acc += p.grad.double().numpy()
            p.grad = None
    return [s / len(audio.chunks) for s in sums]
