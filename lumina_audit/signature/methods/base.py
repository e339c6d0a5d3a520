"""The interface of a signature method, and the vector step every method shares.

A method turns one channel's chunk-averaged hooked gradients (signature-v1 sections 1-5,
the expensive part, computed once per song whatever the number of methods) into a raw
float64 vector of :attr:`SignatureMethod.dim` values. The signature is that vector
divided by its L2 norm, stored as float32 (signature-v1 section 7; gradproj-v1 section 7
says the same).

A method is one module of this package: a :class:`SignatureMethod` subclass (its name,
its vector size, its members of the signature-space JSON) and the
:class:`ChannelSummary` it fills. Registering it in :mod:`lumina_audit.signature.methods`
makes it known by name. Nothing here imports torch at import time.
"""

from __future__ import annotations

import abc
import math
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt

from ...errors import SignatureError

if TYPE_CHECKING:
    import torch

    from ..space import SignatureConfig

__all__ = ["GRADIENT_DESCRIPTION", "ChannelSummary", "SignatureMethod", "normalise"]

#: What every method starts from (signature-v1 sections 1-5), in plain words.
GRADIENT_DESCRIPTION = (
    "The gradient of the MusicGen language model's teacher-forcing cross-entropy on the song's EnCodec codes "
    "(10 s chunks, no text condition), with respect to six weight tensors in each of six transformer layers per "
    "channel (P, composition: layers 42-47; M, production: layers 12-17), averaged over the chunks. ")


class ChannelSummary(abc.ABC):
    """One channel's raw vector, built from its hooked tensors given one at a time.

    :meth:`add` receives them in the order of signature-v1 section 4 (layers ascending,
    the six tensors in spec order within each layer), each its float64 chunk average on
    the CPU; the summary may not keep a reference to a tensor after :meth:`add` returns
    (the caller frees it). :meth:`raw` is called once, after the last tensor.
    """

    @abc.abstractmethod
    def add(self, layer: int, position: int, grad: torch.Tensor) -> None:
        """Take tensor ``position`` (0-5) of layer ``layer`` (its index in ``lm.transformer.layers``)."""

    @abc.abstractmethod
    def raw(self) -> npt.NDArray[np.float64]:
        """The raw vector ``[dim]`` float64."""


class SignatureMethod(abc.ABC):
    """A signature method: a name, a vector size, its signature-space members and its summary."""

    #: The method's name, as the signature space and every file format record it.
    name: ClassVar[str]
    #: Values per channel.
    dim: ClassVar[int]
    #: The normative text of the method, in this repository (``docs/spec/``).
    spec: ClassVar[str]
    #: What the method keeps of the gradient, in plain words (certificates print it).
    description: ClassVar[str]

    @abc.abstractmethod
    def space_members(self, config: SignatureConfig) -> dict[str, Any]:
        """The method's own members of the signature-space JSON, beside the shared settings."""

    @abc.abstractmethod
    def summary(self) -> ChannelSummary:
        """A fresh summary for one channel of one song."""


def normalise(raw: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
    """Unit L2 norm in float64, stored as float32 (spec 7); norm 0 is an error."""
    # math.fsum: the exactly rounded sum of the squares, the same on every CPU.
    norm = math.sqrt(math.fsum(float(v) * float(v) for v in raw))
    if not np.isfinite(norm) or norm == 0.0:
        raise SignatureError(f"raw vector has norm {norm}; it is not a signature")
    return (raw / norm).astype(np.float32)
