"""Gradient stage (spec signature-v1, section 3), shared by every signature method.

For each chunk: EnCodec codes under ``no_grad`` (:func:`chunk_codes`), then, from the
codes alone, teacher-forcing predictions under null conditioning, the boosted
cross-entropy over *valid* positions only, and the gradient of the hooked tensors.
Everything after the encoding takes codes, so audio and a piece carried as its codes
go through the same path. :mod:`.extract` sums the gradients over chunks in float64
(section 5) and hands their average to the methods (:mod:`.methods`).

A group of chunks (``SignatureConfig.chunk_batch`` > 1, chunks of equal length) runs as one
batch ``[B, K, T]`` through the LM: each chunk is encoded alone (so its codes are those of
the unbatched path), and the loss is the sum of the chunks' own losses, so the gradient is
the sum of the chunks' gradients, up to float32 rounding inside the matmuls. The pin
``gradients: streamed`` hands each hooked gradient to a consumer as soon as the backward
pass produces it instead of returning all of them together; the values are the same.

Interpretation (recorded in ``docs/spec-notes.md``): the loss denominator is
the number of valid positions over all codebooks together, so that boosts of
1.0 give the plain mean cross-entropy (spec 3.4).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
import torch.nn.functional as F

from ..errors import SignatureError
from .model import LoadedModel
from .pins import Pins, sdpa_context
from .space import SignatureConfig

__all__ = ["batch_codes_loss", "chunk_codes", "chunk_gradients", "chunk_loss", "codes_loss", "group_gradients",
           "group_loss", "stream_gradients"]

#: Codes of one chunk, ``[1, K, T]`` int64 (what :func:`chunk_codes` returns).
Codes = torch.Tensor


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


def chunk_gradients(model: LoadedModel, codes: Codes, config: SignatureConfig, pins: Pins,
                    params: Sequence[torch.nn.Parameter]) -> tuple[torch.Tensor, ...]:
    """Gradients (float32, same shapes as ``params``) of the loss of one chunk's codes ``[1, K, T]``."""
    with sdpa_context(pins):
        loss = codes_loss(model, codes, config.codebook_boosts)
        if not torch.isfinite(loss):
            raise SignatureError(f"the loss of a chunk is not finite ({float(loss)})")
        return torch.autograd.grad(loss, list(params))


def batch_codes_loss(model: LoadedModel, codes: torch.Tensor, boosts: Sequence[float]) -> torch.Tensor:
    """Sum over the batch of each chunk's :func:`codes_loss`, from codes ``[B, K, T]`` in one LM pass; a scalar."""
    batch = codes.shape[0]
    null = {name: (emb.expand(batch, *emb.shape[1:]), mask.expand(batch, *mask.shape[1:]))
            for name, (emb, mask) in model.null_condition.items()}
    out = model.lm.compute_predictions(codes=codes, conditions=[], condition_tensors=null)
    valid = out.mask.bool()  # [B, K, T]
    total = torch.zeros((), dtype=torch.float32, device=codes.device)
    for b in range(batch):
        n_valid = int(valid[b].sum())
        if n_valid == 0:
            raise SignatureError("a chunk has no valid position under the delay pattern")
        chunk = torch.zeros((), dtype=torch.float32, device=codes.device)
        for k, w in enumerate(boosts):
            sel = valid[b, k]  # [T]
            ce_k = F.cross_entropy(out.logits[b, k][sel], codes[b, k][sel], reduction="sum")
            chunk = chunk + float(w) * ce_k
        total = total + chunk / n_valid
    return total


def group_loss(model: LoadedModel, codes: Sequence[Codes], boosts: Sequence[float]) -> torch.Tensor:
    """The loss of one chunk's codes (:func:`codes_loss`), or the summed loss of equal-length chunks in one batch.

    Each chunk was encoded alone (so its codes are those of the unbatched path).
    """
    if len(codes) == 1:
        return codes_loss(model, codes[0], boosts)
    if len({c.shape[-1] for c in codes}) != 1:
        raise SignatureError("only chunks of equal length can share a batch")
    return batch_codes_loss(model, torch.cat(list(codes), dim=0), boosts)  # [B, K, T]


def _checked_loss(model: LoadedModel, codes: Sequence[Codes], config: SignatureConfig) -> torch.Tensor:
    loss = group_loss(model, codes, config.codebook_boosts)
    if not torch.isfinite(loss):
        raise SignatureError(f"the loss of a chunk is not finite ({float(loss)})")
    return loss


def group_gradients(model: LoadedModel, codes: Sequence[Codes], config: SignatureConfig, pins: Pins,
                    params: Sequence[torch.nn.Parameter]) -> tuple[torch.Tensor, ...]:
    """Gradients (float32, shapes of ``params``) of the summed loss of chunks' ``codes`` (one chunk:
    :func:`chunk_gradients`)."""
    if len(codes) == 1:
        return chunk_gradients(model, codes[0], config, pins, params)
    with sdpa_context(pins):
        return torch.autograd.grad(_checked_loss(model, codes, config), list(params))


def stream_gradients(model: LoadedModel, codes: Sequence[Codes], config: SignatureConfig, pins: Pins,
                     params: Sequence[torch.nn.Parameter], consume: Callable[[int, torch.Tensor], None]) -> None:
    """The gradients of :func:`group_gradients`, each handed to ``consume(k, grad)`` as the backward makes it.

    ``k`` is the index in ``params``. Each parameter's gradient passes through ``.grad`` for the
    moment of one hook (``register_post_accumulate_grad_hook``) and is set back to ``None``, so
    at most the gradients still being consumed exist, and the model keeps no ``.grad`` after.
    """
    index = {id(p): k for k, p in enumerate(params)}
    seen = [False] * len(params)
    if any(p.grad is not None for p in params):
        raise SignatureError("a hooked tensor already holds a .grad; refusing to add to it")

    def hook(p: torch.Tensor) -> None:
        k = index[id(p)]
        grad, p.grad = p.grad, None
        if grad is None or seen[k]:
            raise SignatureError("a hooked tensor's gradient arrived twice or empty")
        seen[k] = True
        consume(k, grad)

    handles = [p.register_post_accumulate_grad_hook(hook) for p in params]  # type: ignore[no-untyped-call]
    try:
        with sdpa_context(pins):
            torch.autograd.backward(_checked_loss(model, codes, config), inputs=list(params))
    finally:
        for h in handles:
            h.remove()
        for p in params:
            p.grad = None
    if not all(seen):
        raise SignatureError("a hooked tensor received no gradient")
