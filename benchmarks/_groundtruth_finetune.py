"""Fine-tuning a copy of the LM on one song, and sampling from it, for ``bench_groundtruth.py``.

The loss is the checkpoint's own training loss, ``scripts/train_tiny.py`` ``batch_loss``: the plain
mean cross-entropy over the valid delay-pattern positions of a batch of 10 s chunks, under null
conditioning (boosts 1.0, the same quantity as ``lumina_audit.signature.gradients.codes_loss`` with
boosts 1.0). Sampling is audiocraft's own ``LMModel.generate`` under null conditioning.
"""

from __future__ import annotations

import copy
import importlib
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from _groundtruth_common import F32, ROOT

sys.path.insert(0, str(ROOT / "scripts"))
#: ``scripts/train_tiny.py`` ``batch_loss(lm, codes)``: the checkpoint's own training loss.
batch_loss: Callable[[Any, Any], Any] = importlib.import_module("train_tiny").batch_loss

__all__ = ["FineTune", "Sampling", "chunk_codes", "codes_path", "finetune", "generate", "mean_loss"]


@dataclass(frozen=True)
class FineTune:
    """Fixed fine-tuning settings: full-batch AdamW at a constant learning rate."""

    steps: int
    lr: float
    seed: int
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.0
    clip: float = 1.0

    def as_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "lr": self.lr, "seed": self.seed, "optimizer": "AdamW",
                "betas": list(self.betas), "eps": self.eps, "weight_decay": self.weight_decay,
                "grad_clip": self.clip, "schedule": "constant", "batch": "every 10 s chunk of the exemplar, each step",
                "parameters": "every LM parameter (EnCodec frozen)",
                "loss": "scripts/train_tiny.py batch_loss: mean cross-entropy over valid delay-pattern positions, "
                        "null conditioning"}


@dataclass(frozen=True)
class Sampling:
    """Fixed sampling settings of ``LMModel.generate``."""

    seconds: float
    temp: float = 1.0
    top_k: int = 250
    cfg_coef: float = 1.0

    def as_dict(self) -> dict[str, Any]:
        return {"seconds": self.seconds, "use_sampling": True, "temp": self.temp, "top_k": self.top_k,
                "cfg_coef": self.cfg_coef, "prompt": None, "conditions": "description None (null)",
                "call": "lm.generate(prompt=None, conditions=[ConditioningAttributes(text={'description': None})], "
                        "num_samples=1, max_gen_len=T, use_sampling=True, temp, top_k, cfg_coef) under "
                        "torch.manual_seed(seed); decoded by the checkpoint's EnCodec"}


def chunk_codes(compression: Any, samples: F32, chunk: int) -> Any:
    """EnCodec codes ``[chunks, 4, frames]`` int64 of every whole ``chunk``-sample window of ``samples``."""
    import torch

    n = samples.shape[0] // chunk
    if n == 0:
        raise ValueError(f"a song of {samples.shape[0]} samples has no whole chunk of {chunk}")
    x = torch.from_numpy(np.ascontiguousarray(samples[: n * chunk])).view(n, 1, chunk)
    with torch.no_grad():
        codes, _scale = compression.encode(x)
    return codes.long()


def mean_loss(lm: Any, codes: Any, pins: Any) -> float:
    """The training loss of ``codes`` under ``lm`` in eval mode, without gradient."""
    import torch

    from lumina_audit.signature.pins import sdpa_context

    was_training = lm.training
    lm.eval()
    with torch.no_grad(), sdpa_context(pins):
        value = float(batch_loss(lm, codes))
    lm.train(was_training)
    return value


def finetune(base_lm: Any, codes: Any, settings: FineTune, pins: Any) -> tuple[Any, list[float], float]:
    """A deep copy of ``base_lm`` fine-tuned on ``codes``; its per-step training losses and the seconds taken."""
    import torch

    from lumina_audit.signature.pins import sdpa_context

    t0 = time.monotonic()
    torch.manual_seed(settings.seed)
    lm = copy.deepcopy(base_lm)
    for p in lm.parameters():
        p.requires_grad_(True)
    opt = torch.optim.AdamW(lm.parameters(), lr=settings.lr, betas=settings.betas, eps=settings.eps,
                            weight_decay=settings.weight_decay)
    lm.train()
    losses: list[float] = []
    with sdpa_context(pins):
        for step in range(settings.steps):
            loss = batch_loss(lm, codes)
            if not torch.isfinite(loss):
                raise RuntimeError(f"non-finite fine-tuning loss at step {step}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(lm.parameters(), settings.clip)
            opt.step()
            losses.append(float(loss.detach()))
    lm.eval()
    for p in lm.parameters():
        p.requires_grad_(False)
    return lm, losses, time.monotonic() - t0


def generate(lm: Any, compression: Any, sampling: Sampling, seed: int, pins: Any,
             out: Path) -> tuple[float, float, Any]:
    """Sample ``sampling.seconds`` from ``lm`` under ``torch.manual_seed(seed)``, decode, write a 32 kHz WAV.

    The WAV is 16-bit PCM, clipped to [-1, 1] (a float WAV carries a time stamp, so its bytes would
    change from run to run), and the codes beside it (``out`` with suffix ``.codes.npy``, int16
    ``[1, K, T]``). Returns the peak absolute sample before clipping, the seconds taken and the codes.
    """
    import soundfile as sf
    import torch
    from audiocraft.modules.conditioners import ConditioningAttributes

    from lumina_audit.signature.pins import sdpa_context

    t0 = time.monotonic()
    frames = round(sampling.seconds * float(compression.frame_rate))
    lm.eval()
    torch.manual_seed(seed)
    with torch.no_grad(), sdpa_context(pins):
        codes = lm.generate(prompt=None, conditions=[ConditioningAttributes(text={"description": None})],
                            num_samples=1, max_gen_len=frames, use_sampling=True, temp=sampling.temp,
                            top_k=sampling.top_k, cfg_coef=sampling.cfg_coef)
        wav = compression.decode(codes)  # [1, 1, samples]
    audio = wav[0, 0].to(torch.float32).numpy()
    if not np.isfinite(audio).all():
        raise RuntimeError("the decoded generation holds a non-finite sample")
    out.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(out), np.clip(audio, -1.0, 1.0), int(compression.sample_rate), subtype="PCM_16", format="WAV")
    np.save(codes_path(out), codes.cpu().numpy().astype(np.int16))
    return float(np.abs(audio).max()), time.monotonic() - t0, codes.cpu().long()


def codes_path(wav: Path) -> Path:
    """Where :func:`generate` keeps the codes of the piece it wrote to ``wav``."""
    return wav.with_suffix(".codes.npy")
