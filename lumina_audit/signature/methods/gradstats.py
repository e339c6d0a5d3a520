"""Method ``lumina-gradstats-v1``: six statistics of each hooked tensor (signature-v1 section 6).

Per tensor, in float64 over all its entries and in this order: mean, std (n - 1), L2
norm, max, min, skew (``m3 / m2**1.5``, 0 when ``m2 == 0``). The raw vector ``[216]``
has index ``(layer_position * 6 + tensor_position) * 6 + stat_position`` (section 7):
the statistics are appended in the order the tensors arrive.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .base import GRADIENT_DESCRIPTION, ChannelSummary, SignatureMethod

if TYPE_CHECKING:
    import torch

    from ..space import SignatureConfig

__all__ = ["DIM", "GRADSTATS_V1", "STATS", "GradStats", "raw_vector", "tensor_stats"]

#: The method's name: the one method of ``lumina-audit/v1`` manifests and version 1 stores and reports.
GRADSTATS_V1 = "lumina-gradstats-v1"
#: Statistics of one hooked tensor, in spec order (section 6).
STATS: tuple[str, ...] = ("mean", "std", "l2", "max", "min", "skew")
#: Values per channel: 6 layers x 6 tensors x 6 statistics (section 7).
DIM = 216


def tensor_stats(g: torch.Tensor) -> list[float]:
    """The six statistics of spec section 6 of one float64 tensor, in order."""
    import torch

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


class _Summary(ChannelSummary):
    def __init__(self) -> None:
        self._values: list[float] = []

    def add(self, layer: int, position: int, grad: torch.Tensor) -> None:
        self._values.extend(tensor_stats(grad))

    def raw(self) -> npt.NDArray[np.float64]:
        return np.asarray(self._values, dtype=np.float64)


class GradStats(SignatureMethod):
    """``lumina-gradstats-v1`` (``docs/spec/signature-v1.md``)."""

    name = GRADSTATS_V1
    dim = DIM
    spec = "docs/spec/signature-v1.md"
    description = (
        f"{GRADIENT_DESCRIPTION}Six statistics of each tensor's gradient (mean, standard deviation, L2 norm, "
        "maximum, minimum, skew) make 216 values per channel: the signature keeps each tensor's scale and the shape "
        "of its distribution, not where the gradient points. The similarity of two songs is the cosine of their "
        "signatures.")

    def space_members(self, config: SignatureConfig) -> dict[str, Any]:
        return {"stats": list(config.stats)}

    def summary(self) -> ChannelSummary:
        return _Summary()
