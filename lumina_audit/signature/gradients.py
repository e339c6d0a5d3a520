"""Gradient stage (spec signature-v1, section 3), shared by every signature method.

For each chunk: EnCodec codes under ``no_grad``, teacher-forcing predictions
under null conditioning, the boosted cross-entropy over *valid* positions only,
and the gradient of the hooked tensors. :mod:`.extract` sums the gradients over
chunks in float64 (section 5) and hands their average to the methods
(:mod:`.methods`).

Interpretation (recorded in ``docs/spec-notes.md``): the loss denominator is
the number of valid positions over all codebooks together, so that boosts of
1.0 give the plain mean cross-entropy (spec 3.4).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from ..errors import SignatureError
from .model import LoadedModel
from .pins import Pins, sdpa_context
from .space import SignatureConfig

__all__ = ["chunk_codes", "chunk_gradients", "chunk_loss", "codes_loss"]


def chunk_codes(model: LoadedModel, chunk: torch.Tensor) -> torch.Tensor:
    """EnCodec codes ``[1, K, T]`` of one chunk ``[S]`` float32, without gradient (spec 3.1)."""
    with torch.no_grad():
        codes, _scale = model.compression.encode(chunk.view(1, 1, -1))
    result: torch.Tensor = codes
    return result


def chunk_loss(model: LoadedModel, chunk: torch.Tensor, boosts: Sequence[float]) -> torch.Tensor:
    """Boosted masked cross-entropy of one chunk ``[S]`` float32 (spec 3.1-3.4); a scalar."""
    return codes_loss(model, chunk_codes(model, chunk), boosts)


def codes_loss(model: LoadedModel, codes: torch.Tensor, boosts: Sequence[float]) -> torch.Tensor:
    """Boosted masked cross-entropy of codes ``[1, K, T]`` under null conditioning (spec 3.2-3.4)."""
    out = model.lm.compute_predictions(codes=codes, conditions=[], condition_tensors=dict(model.null_condition))
    valid = out.mask.bool()  # [1, K, T]
    n_valid = int(valid.sum())
    if n_valid == 0:
        raise SignatureError("a chunk has no valid position under the delay pattern")
    total = torch.zeros((), dtype=torch.float32, device=codes.device)
    for k, w in enumerate(boosts):
        sel = valid[0, k]  # [T]
        logits_k = out.logits[0, k][sel]  # [n_k, card]; NaN rows are never selected
        ce_k = F.cross_entropy(logits_k, codes[0, k][sel], reduction="sum")
        total = total + float(w) * ce_k
    return total / n_valid


def chunk_gradients(model: LoadedModel, chunk: torch.Tensor, config: SignatureConfig, pins: Pins,
                    params: Sequence[torch.nn.Parameter]) -> tuple[torch.Tensor, ...]:
    """Gradients (float32, same shapes as ``params``) of the loss of one chunk."""
    with sdpa_context(pins):
        loss = chunk_loss(model, chunk, config.codebook_boosts)
        if not torch.isfinite(loss):
            raise SignatureError(f"the loss of a chunk is not finite ({float(loss)})")
        return torch.autograd.grad(loss, list(params))
