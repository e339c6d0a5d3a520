"""Method ``lumina-gradproj-v1``: a seeded count sketch of the gradient's direction (gradproj-v1 section 6).

For each hooked tensor of a channel, in spec order (layers ascending, the six tensors in
spec order within each), with ``L`` its layer's index in ``lm.transformer.layers`` and ``t``
its position (0-5):

1. ``g``: its float64 chunk average, flattened row-major, ``n`` entries;
2. a tensor of L2 norm 0 contributes nothing (under null conditioning both cross-attention
   tensors); otherwise ``u = g / ||g||`` (float64);
3. counter of entry ``i``: ``c = (8 L + t) 2**32 + i``;
4. ``h = mix64(seed + (c + 1) * 0x9E3779B97F4A7C15 mod 2**64)``, the SplitMix64 finaliser,
   seed 422024: output number ``c`` of SplitMix64 seeded with ``seed``;
5. bucket ``b = (h >> 1) mod 216``, sign ``s = +1`` if ``h`` is even, else ``-1``;
6. ``y[b] += s u[i]`` in float64, ``y`` starting at zeros.

The raw vector is the sum of the tensors' ``y`` over the channel. Choices where the spec is
silent (``docs/spec-notes.md``): each tensor's ``y`` is accumulated from zeros, entry by entry
in index order (``numpy.add.at`` adds in index order); the raw vector is
``((y_0 + y_1) + y_2) + ...`` in spec order, starting from zeros; ``||g||`` is
``torch.linalg.vector_norm`` of the float64 tensor under the numerical pins, and ``u`` is
computed entry by entry as ``g[i] / ||g||`` (correctly rounded).

Memory: the tensor is read in blocks of :data:`BLOCK` entries, so the projection holds no
full-size copy of it. Buckets and signs are integers of ``(L, t, i)`` only; they are
computed once per process and kept (one ``uint8`` bucket and one ``int8`` sign per entry)
while the cache stays under :data:`CACHE_BYTES`, else computed again block by block.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from .base import GRADIENT_DESCRIPTION, ChannelSummary, SignatureMethod

if TYPE_CHECKING:
    import torch

    from ..space import SignatureConfig

__all__ = ["BLOCK", "CACHE_BYTES", "DIM", "GRADPROJ_V1", "SEED", "GradProj", "buckets_and_signs", "counter",
           "splitmix64", "sketch"]

#: The method's name: the primary method, the default wherever a method is not named.
GRADPROJ_V1 = "lumina-gradproj-v1"
#: The seed of the projection (gradproj-v1 section 6.4).
SEED = 422024
#: Buckets per channel (gradproj-v1 section 6.5).
DIM = 216
#: Entries read at a time.
BLOCK = 1 << 16
#: Most bytes the process keeps of cached buckets and signs (2 bytes per entry).
CACHE_BYTES = 2 << 30

_U64 = np.uint64
_GAMMA = _U64(0x9E3779B97F4A7C15)
_MIX1 = _U64(0xBF58476D1CE4E5B9)
_MIX2 = _U64(0x94D049BB133111EB)
_DIM = _U64(DIM)



_cache: dict[tuple[int, int, int], tuple[npt.NDArray[np.uint8], npt.NDArray[np.int8]]] = {}
_cache_bytes = 0
_cache_lock = threading.Lock()


def counter(layer: int, position: int, index: int = 0) -> int:
    """``c = (8 L + t) 2**32 + i`` (gradproj-v1 section 6.3)."""
    return (8 * layer + position) * (1 << 32) + index


def splitmix64(seed: int, counters: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """Output number ``c`` of SplitMix64 seeded with ``seed``, for each ``c`` (unsigned, mod 2**64)."""
    z = (counters + _U64(1)) * _GAMMA + _U64(seed)
    z ^= z >> _U64(30)
    z *= _MIX1
    z ^= z >> _U64(27)
    z *= _MIX2
    z ^= z >> _U64(31)
    return z


def buckets_and_signs(layer: int, position: int, start: int, stop: int,
                      seed: int = SEED) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int8]]:
    """Buckets (0-215) and signs (+1/-1) of entries ``start`` to ``stop - 1`` of tensor ``(L, t)``."""
    counters = np.arange(start, stop, dtype=np.uint64) + _U64(counter(layer, position))
    h = splitmix64(seed, counters)
    buckets = ((h >> _U64(1)) % _DIM).astype(np.uint8)
    signs = (1 - 2 * (h & _U64(1)).astype(np.int8)).astype(np.int8)
    return buckets, signs


def _tables(layer: int, position: int, n: int) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int8]] | None:
    """Cached buckets and signs of a whole tensor, computed on first use; None when over the budget."""
    global _cache_bytes
    key = (layer, position, n)
    with _cache_lock:
        found = _cache.get(key)
        if found is not None or _cache_bytes + 2 * n > CACHE_BYTES:
            return found
    buckets = np.empty(n, dtype=np.uint8)
    signs = np.empty(n, dtype=np.int8)
    for start in range(0, n, BLOCK):
        stop = min(start + BLOCK, n)
        buckets[start:stop], signs[start:stop] = buckets_and_signs(layer, position, start, stop)
    buckets.flags.writeable = False
    signs.flags.writeable = False
    with _cache_lock:
        if key not in _cache and _cache_bytes + 2 * n <= CACHE_BYTES:
            _cache[key] = (buckets, signs)
            _cache_bytes += 2 * n
    return buckets, signs


def sketch(layer: int, position: int, g: npt.NDArray[np.float64], norm: float) -> npt.NDArray[np.float64]:
    """One tensor's ``y`` ``[216]``: ``y[b_i] += s_i * (g[i] / norm)`` from zeros, in index order.

    ``g`` is the flattened float64 tensor; ``norm`` its L2 norm (not 0).
    """
    n = g.shape[0]
    y = np.zeros(DIM, dtype=np.float64)
    tables = _tables(layer, position, n)
    w = np.empty(min(BLOCK, n), dtype=np.float64)
    for start in range(0, n, BLOCK):
        stop = min(start + BLOCK, n)
        if tables is not None:
            buckets, signs = tables[0][start:stop], tables[1][start:stop]
        else:
            buckets, signs = buckets_and_signs(layer, position, start, stop)
        block = w[: stop - start]
        np.divide(g[start:stop], norm, out=block)
        block *= signs
        np.add.at(y, buckets, block)
    return y


class _Summary(ChannelSummary):
    def __init__(self) -> None:
        self._raw = np.zeros(DIM, dtype=np.float64)

    def add(self, layer: int, position: int, grad: torch.Tensor) -> None:
        import torch

        flat = grad.detach().to(device="cpu", dtype=torch.float64).reshape(-1)
        norm = float(torch.linalg.vector_norm(flat))
        if norm == 0.0:
            return  # gradproj-v1 6.2: a zero tensor contributes nothing
        self._raw += sketch(layer, position, flat.numpy(), norm)

    def raw(self) -> npt.NDArray[np.float64]:
        return self._raw.copy()


class GradProj(SignatureMethod):
    """``lumina-gradproj-v1`` (``docs/spec/gradproj-v1.md``)."""

    name = GRADPROJ_V1
    dim = DIM
    spec = "docs/spec/gradproj-v1.md"
    description = (
        f"{GRADIENT_DESCRIPTION}Each tensor's gradient is scaled to unit length and the whole is projected onto "
        "216 values by a count sketch whose buckets and signs come from SplitMix64 of seed 422024: the signature "
        "keeps the direction of the gradient. The similarity of two songs is the cosine of their signatures.")

    def space_members(self, config: SignatureConfig) -> dict[str, Any]:
        return {"projection": {"kind": "count-sketch", "hash": "splitmix64", "seed": SEED, "dim": DIM,
                               "tensor_normalisation": "l2"}}

    def summary(self) -> ChannelSummary:
        return _Summary()
