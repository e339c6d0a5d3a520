"""Sampling pieces from an LM, and deciding whether the checkpoint's EnCodec can decode them.

:func:`generate` is audiocraft's ``LMModel.generate`` under null text conditioning, no prompt,
``torch.manual_seed(seed)`` first: codes ``[1, K, T]``. :func:`decoder_round_trip` measures
whether the decoder can carry a piece as audio: a fixed signal (a seeded synthetic song of the
project's generator) is encoded and decoded, and the correlation of the two is returned. The
embedded checkpoints' decoder was never trained and scores about 0 (any codes decode to nearly
the same waveform); a working codec scores near 1.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from ..signature.model import LoadedModel
from ..signature.pins import Pins, sdpa_context
from .settings import Sampling

__all__ = ["DECODES_AT", "decode", "decoder_round_trip", "generate"]

#: A round-trip correlation at least this carries pieces as audio under ``carry: auto``.
DECODES_AT = 0.5
_PROBE_SEED = 422024


def generate(model: LoadedModel, lm: Any, sampling: Sampling, seed: int, pins: Pins) -> torch.Tensor:
    """Codes ``[1, K, T]`` int64 of one piece of ``sampling.seconds``, sampled under ``torch.manual_seed(seed)``."""
    from audiocraft.modules.conditioners import ConditioningAttributes

    frames = round(sampling.seconds * float(model.compression.frame_rate))
    lm.eval()
    torch.manual_seed(seed)
    with torch.no_grad(), sdpa_context(pins):
        codes = lm.generate(prompt=None, conditions=[ConditioningAttributes(text={"description": None})],
                            num_samples=1, max_gen_len=frames, use_sampling=True, temp=sampling.temperature,
                            top_k=sampling.top_k, cfg_coef=sampling.cfg_coef)
    result: torch.Tensor = codes.long().cpu()
    return result


def decode(model: LoadedModel, codes: torch.Tensor) -> npt.NDArray[np.float32]:
    """The checkpoint's EnCodec decoding of codes ``[1, K, T]``: mono float32 samples at its rate."""
    with torch.no_grad():
        wav = model.compression.decode(codes.to(model.device))
    out: npt.NDArray[np.float32] = wav[0, 0].to(torch.float32).cpu().numpy()
    return out


def _correlation(a: npt.NDArray[np.float64], b: npt.NDArray[np.float64]) -> float:
    """Pearson correlation with exactly rounded sums (the same bits on every machine)."""
    n = a.shape[0]
    ma, mb = math.fsum(a.tolist()) / n, math.fsum(b.tolist()) / n
    da, db = a - ma, b - mb
    num = math.fsum((da * db).tolist())
    den = math.sqrt(math.fsum((da * da).tolist())) * math.sqrt(math.fsum((db * db).tolist()))
    return num / den if den > 0 else 0.0


def decoder_round_trip(model: LoadedModel, seconds: float = 10.0) -> float:
    """Correlation of a fixed 10 s signal with its EnCodec encoding decoded again."""
    from .._internal.synth import SongSpec, render

    rate = int(model.compression.sample_rate)
    x = render(SongSpec(seed=_PROBE_SEED, seconds=seconds, sample_rate=rate, channels=1))[0].astype(np.float32)
    with torch.no_grad():
        codes, _ = model.compression.encode(torch.from_numpy(x).view(1, 1, -1).to(model.device))
    y = decode(model, codes)[: x.shape[0]]
    return _correlation(x[: y.shape[0]].astype(np.float64), y.astype(np.float64))
