"""Fine-tuning a copy of the LM on one song (the ground truth of the ``influence`` proposition).

:func:`finetune` deep-copies the checkpoint's LM, trains the parameters :class:`.settings.FineTune`
names on the song's EnCodec codes with the checkpoint's own training loss (:func:`training_loss`)
and returns the copy in eval mode with every parameter frozen again. Under the numerical pins on
one device this is deterministic: the same song and settings give the same weights, which
:func:`lm_sha256` names.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import LuminaError
from ..signature.model import LoadedModel
from ..signature.pins import Pins, sdpa_context
from .settings import FineTune

__all__ = ["CustomizationError", "finetune", "lm_sha256", "trainable", "training_loss"]


class CustomizationError(LuminaError):
    """A customization was refused or failed."""

    exit_code = 2


def training_loss(model: LoadedModel, lm: Any, codes: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the valid delay-pattern positions of codes ``[B, K, T]`` under null conditioning."""
    b = codes.shape[0]
    null = {name: (emb.expand(b, *emb.shape[1:]), mask.expand(b, *mask.shape[1:]))
            for name, (emb, mask) in model.null_condition.items()}
    out = lm.compute_predictions(codes=codes, conditions=[], condition_tensors=null)
    valid = out.mask.bool()
    return F.cross_entropy(out.logits[valid], codes[valid])  # NaN logits are never selected


def trainable(lm: Any, settings: FineTune) -> list[tuple[str, torch.nn.Parameter]]:
    """The (name, parameter) pairs that train: every LM parameter, or those of the named transformer layers."""
    named = list(lm.named_parameters())
    if not settings.layers:
        return named
    layers = len(lm.transformer.layers)
    missing = [i for i in settings.layers if i >= layers]
    if missing:
        raise CustomizationError(f"layers {missing} do not exist: the LM has {layers} transformer layers")
    prefixes = tuple(f"transformer.layers.{i}." for i in sorted(settings.layers))
    return [(n, p) for n, p in named if n.startswith(prefixes)]


def _batches(chunks: int, batch: int, steps: int) -> list[list[int]]:
    """Chunk indices of each step: every chunk when ``batch`` is 0, else ``batch`` at a time, cycling in order."""
    if batch == 0 or batch >= chunks:
        return [list(range(chunks))] * steps
    return [[(s * batch + i) % chunks for i in range(batch)] for s in range(steps)]


def finetune(model: LoadedModel, codes: torch.Tensor, settings: FineTune, pins: Pins) -> tuple[Any, list[float]]:
    """A copy of ``model.lm`` fine-tuned on ``codes`` ``[chunks, K, T]``; and the loss of each step.

    ``torch.manual_seed(settings.seed)`` is set first (dropout, if the LM has any, draws from it).
    """
    torch.manual_seed(settings.seed)
    lm = copy.deepcopy(model.lm)
    for p in lm.parameters():
        p.requires_grad_(False)
    params = [p for _, p in trainable(lm, settings)]
    if not params:
        raise CustomizationError("no parameter to train")
    for p in params:
        p.requires_grad_(True)
    opt = torch.optim.AdamW(params, lr=settings.lr, betas=settings.betas, eps=settings.eps,
                            weight_decay=settings.weight_decay)
    codes = codes.to(model.device)
    lm.train()
    losses: list[float] = []
    try:
        with sdpa_context(pins):
            for step, idx in enumerate(_batches(codes.shape[0], settings.batch, settings.steps)):
                loss = training_loss(model, lm, codes[idx])
                if not torch.isfinite(loss):
                    raise CustomizationError(f"the fine-tuning loss is not finite at step {step}")
                opt.zero_grad(set_to_none=True)
                loss.backward()  # type: ignore[no-untyped-call]
                torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
                opt.step()
                losses.append(float(loss.detach()))
    finally:
        lm.eval()
        for p in lm.parameters():
            p.requires_grad_(False)
            p.grad = None
    return lm, losses


def lm_sha256(lm: Any) -> str:
    """SHA-256 of an LM's weights: per state-dict entry in order, its name, dtype, shape and little-endian bytes."""
    h = hashlib.sha256()
    for name, t in lm.state_dict().items():
        a = t.detach().cpu().contiguous()
        h.update(f"{name}\0{a.dtype}\0{list(a.shape)}\0".encode())
        h.update(a.numpy().astype(a.numpy().dtype.newbyteorder("<"), copy=False).tobytes())
    return h.hexdigest()


def mean_loss(model: LoadedModel, lm: Any, codes: torch.Tensor, pins: Pins, batch: int = 8) -> float:
    """The training loss of ``codes`` ``[chunks, K, T]`` under ``lm``, without gradient (mean over chunks)."""
    was = lm.training
    lm.eval()
    total, n = 0.0, 0
    with torch.no_grad(), sdpa_context(pins):
        for i in range(0, codes.shape[0], batch):
            part: Sequence[int] = range(i, min(i + batch, codes.shape[0]))
            total += float(training_loss(model, lm, codes[list(part)].to(model.device))) * len(part)
            n += len(part)
    lm.train(was)
    return total / n
