"""Gradient stage (spec signature-v1, sections 3, 5, 6 and 7).

For each chunk: EnCodec codes under ``no_grad``, teacher-forcing predictions
under null conditioning, the boosted cross-entropy over *valid* positions only,
and the gradient of the hooked tensors. Gradients are summed over chunks in
float64 and divided by the number of chunks; six float64 statistics of each
hooked tensor make the raw vector, whose L2-normalised float32 copy is the
signature.

Interpretation (recorded in ``docs/spec-notes.md``): the loss denominator is
the number of valid positions over all codebooks together, so that boosts of
1.0 give the plain mean cross-entropy (spec 3.4).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
import torch
import torch.nn.functional as F

from .errors import SignatureError
from .model import LoadedModel
from .pins import Pins, sdpa_context
from .space import STATS, SignatureConfig

__all__ = ["chunk_codes", "chunk_gradients", "chunk_loss", "codes_loss", "normalise", "raw_vector", "tensor_stats"]


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


def tensor_stats(g: torch.Tensor) -> list[float]:
    """The six statistics of spec section 6 of one float64 tensor, in order."""
    g = g.reshape(-1)
    mean = g.mean()
    d = g - mean
    m2 = (d * d).mean()
    m3 = (d * d * d).mean()
    skew = m3 / m2**1.5 if bool(m2 != 0) else torch.zeros((), dtype=torch.float64)
    values = {
        "mean": mean,
        "std": g.std(),
        "l2": torch.linalg.vector_norm(g),
        "max": g.max(),
        "min": g.min(),
        "skew": skew,
    }
    return [float(values[name]) for name in STATS]


def raw_vector(mean_grads: Sequence[torch.Tensor]) -> npt.NDArray[np.float64]:
    """Raw vector ``[216]`` float64: index ``(layer*6 + tensor)*6 + stat`` (spec 7).

    ``mean_grads`` are the 36 chunk-averaged float64 gradients in layer-major,
    then tensor order, so that concatenating their stats gives that index.
    """
    values = [v for g in mean_grads for v in tensor_stats(g)]
    return np.asarray(values, dtype=np.float64)


def normalise(raw: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """Unit L2 norm in float64, stored as float32 (spec 7); norm 0 is an error."""
    # math.fsum: the exactly rounded sum of the squares, the same on every CPU.
    norm = math.sqrt(math.fsum(float(v) * float(v) for v in raw))
    if not np.isfinite(norm) or norm == 0.0:
        raise SignatureError(f"raw vector has norm {norm}; it is not a signature")
    return (raw / norm).astype(np.float32)
