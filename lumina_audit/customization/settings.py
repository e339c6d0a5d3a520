"""The pinned settings of a customization: how a copy of the LM is fine-tuned on one song, and how it samples.

Every value that can change a piece's bits is a field here; the ``lumina-customization``
record of each piece holds them all (:meth:`FineTune.as_dict`, :meth:`Sampling.as_dict`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError

__all__ = ["FineTune", "Sampling"]


def _positive(name: str, value: float, *, integer: bool = False, upper: float = math.inf) -> None:
    bad = isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value)
    if bad or value <= 0 or value > upper or (integer and not isinstance(value, int)):
        kind = "an integer" if integer else "a number"
        raise ConfigError(f"{name} must be {kind} above 0{'' if upper == math.inf else f' and at most {upper:g}'}, "
                          f"got {value!r}")


@dataclass(frozen=True)
class FineTune:
    """Fine-tuning of a copy of the LM on one song's codes: AdamW at a constant learning rate.

    Each step takes ``batch`` 10 s chunks of the song (all of them when 0), in order, cycling;
    the loss is the plain mean cross-entropy over the valid delay-pattern positions under null
    conditioning (the checkpoint's training loss). ``layers`` names the transformer layers whose
    parameters train (empty: every LM parameter); EnCodec never trains.
    """

    steps: int = 50
    lr: float = 1e-4
    seed: int = 422024
    batch: int = 0
    betas: tuple[float, float] = (0.9, 0.95)
    eps: float = 1e-8
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    layers: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        _positive("steps", self.steps, integer=True, upper=1_000_000)
        _positive("lr", self.lr, upper=1.0)
        _positive("eps", self.eps, upper=1.0)
        _positive("grad_clip", self.grad_clip)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise ConfigError(f"seed must be an integer in [0, 2**63), got {self.seed!r}")
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch < 0:
            raise ConfigError(f"batch must be 0 (every chunk) or a positive integer, got {self.batch!r}")
        if not all(0.0 <= b < 1.0 for b in self.betas) or len(self.betas) != 2:
            raise ConfigError(f"betas must be two numbers in [0, 1), got {self.betas!r}")
        if not (math.isfinite(self.weight_decay) and self.weight_decay >= 0):
            raise ConfigError(f"weight_decay must be a number of at least 0, got {self.weight_decay!r}")
        if len(set(self.layers)) != len(self.layers) or any(isinstance(v, bool) or v < 0 for v in self.layers):
            raise ConfigError(f"layers must be distinct layer indices (0 or more), got {list(self.layers)}")

    def as_dict(self) -> dict[str, Any]:
        return {"steps": self.steps, "lr": self.lr, "schedule": "constant", "optimizer": "AdamW",
                "betas": list(self.betas), "eps": self.eps, "weight_decay": self.weight_decay,
                "grad_clip": self.grad_clip, "seed": self.seed, "batch": self.batch,
                "parameters": "all" if not self.layers else {"layers": sorted(self.layers)},
                "loss": "mean cross-entropy over the valid delay-pattern positions, null conditioning"}


@dataclass(frozen=True)
class Sampling:
    """Sampling of ``count`` pieces of ``seconds`` each, piece ``i`` under ``torch.manual_seed(seed + i)``.

    audiocraft's ``LMModel.generate`` with null text conditioning, no prompt, ``top_k``,
    ``temperature`` and classifier-free guidance ``cfg_coef``.
    """

    count: int = 2
    seconds: float = 10.0
    top_k: int = 250
    temperature: float = 1.0
    seed: int = 1000
    cfg_coef: float = 1.0

    def __post_init__(self) -> None:
        _positive("count", self.count, integer=True, upper=10_000)
        _positive("seconds", self.seconds, upper=600.0)
        _positive("top_k", self.top_k, integer=True, upper=1_000_000)
        _positive("temperature", self.temperature, upper=100.0)
        _positive("cfg_coef", self.cfg_coef, upper=100.0)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**62:
            raise ConfigError(f"seed must be an integer in [0, 2**62), got {self.seed!r}")

    def seeds(self) -> list[int]:
        return [self.seed + i for i in range(self.count)]

    def as_dict(self) -> dict[str, Any]:
        return {"count": self.count, "seconds": self.seconds, "top_k": self.top_k, "temperature": self.temperature,
                "seeds": self.seeds(), "cfg_coef": self.cfg_coef, "use_sampling": True, "prompt": None,
                "condition": "null (text description None)"}
