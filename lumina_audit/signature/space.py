"""Signature configuration and the signature space (spec signature-v1, section 8).

A :class:`SignatureConfig` holds every setting of spec sections 1-7 that a
manifest pins. Together with the model digests and a signature method
(:mod:`.methods`) it defines a :class:`SignatureSpace`: signatures are comparable
only inside one space, and the space is named by the SHA-256 of its RFC 8785
canonical JSON: the method's name, the model digests, the shared settings and the
method's own members.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import rfc8785

from ..errors import ConfigError
from .methods import DEFAULT_METHOD, METHODS, SignatureMethod, get_method
from .methods.gradstats import GRADSTATS_V1, STATS

__all__ = [
    "MAX_CHUNK_BATCH",
    "MODEL_FILES",
    "STATS",
    "TENSORS",
    "SignatureConfig",
    "SignatureSpace",
]

#: Hooked tensors of one transformer layer, in spec order (section 4).
TENSORS: tuple[str, ...] = (
    "self_attn.in_proj_weight",
    "self_attn.out_proj.weight",
    "cross_attention.in_proj_weight",
    "cross_attention.out_proj.weight",
    "linear1.weight",
    "linear2.weight",
)

#: Files of an audiocraft checkpoint directory whose digests define the model.
MODEL_FILES: tuple[str, ...] = ("state_dict.bin", "compression_state_dict.bin")

#: The most chunks one forward and backward pass may hold (``SignatureConfig.chunk_batch``).
MAX_CHUNK_BATCH = 64

_HEX64 = re.compile(r"^[0-9a-f]{64}$")

#: The resampler of spec 1.3, the only one implemented.
_RESAMPLER: dict[str, Any] = {
    "function": "torchaudio.functional.resample",
    "lowpass_filter_width": 6,
    "rolloff": 0.99,
    "resampling_method": "sinc_interp_hann",
}


def _check_resampler(r: Mapping[str, Any]) -> None:
    """torchaudio's resampler with a pinned width, rolloff and window (spec 1.3)."""
    if set(r) != set(_RESAMPLER) or r["function"] != _RESAMPLER["function"]:
        raise ConfigError(f"resampler must have exactly the keys {sorted(_RESAMPLER)} and use "
                          f"{_RESAMPLER['function']}")
    width, rolloff, method = r["lowpass_filter_width"], r["rolloff"], r["resampling_method"]
    if not (isinstance(width, int) and not isinstance(width, bool) and 1 <= width <= 64):
        raise ConfigError(f"resampler lowpass_filter_width must be a whole number in 1..64, got {width!r}")
    if not (isinstance(rolloff, float | int) and 0.5 <= rolloff <= 1.0):
        raise ConfigError(f"resampler rolloff must lie in [0.5, 1.0], got {rolloff!r}")
    if method not in ("sinc_interp_hann", "sinc_interp_kaiser"):
        raise ConfigError(f"resampler resampling_method must be sinc_interp_hann or sinc_interp_kaiser, "
                          f"got {method!r}")


@dataclass(frozen=True)
class SignatureConfig:
    """Every setting of signature-v1 sections 1-7 (the spec's defaults)."""

    layers_p: tuple[int, ...] = (42, 43, 44, 45, 46, 47)
    layers_m: tuple[int, ...] = (12, 13, 14, 15, 16, 17)
    tensors: tuple[str, ...] = TENSORS
    stats: tuple[str, ...] = STATS
    codebook_boosts: tuple[float, ...] = (0.4, 1.2, 1.3, 1.4)
    conditioning: str = "null"
    chunk_seconds: float = 10.0
    min_chunk_seconds: float = 1.0
    sample_rate: int = 32000
    resampler: Mapping[str, Any] = field(default_factory=lambda: dict(_RESAMPLER))
    #: Refusal limit of section 1.5; not part of the space (it changes no bits).
    max_seconds: float = 900.0
    #: Full-length chunks of one song per forward and backward pass (1: one chunk at a time, the spec's
    #: reading). More than 1 changes the bits (the chunks' gradients are then summed inside float32
    #: matmuls), so it is part of the space, and only then (``docs/spec-notes.md`` E3).
    chunk_batch: int = 1

    def __post_init__(self) -> None:
        for name, layers in (("layers_p", self.layers_p), ("layers_m", self.layers_m)):
            if len(layers) != 6 or len(set(layers)) != 6 or any(i < 0 for i in layers):
                raise ConfigError(f"{name} must be 6 distinct layer indices, got {list(layers)}")
        if tuple(self.tensors) != TENSORS:
            raise ConfigError(f"tensors must be exactly {list(TENSORS)} for {GRADSTATS_V1}")
        if tuple(self.stats) != STATS:
            raise ConfigError(f"stats must be exactly {list(STATS)} for {GRADSTATS_V1}")
        if len(self.codebook_boosts) != 4 or any(
            not (isinstance(w, int | float) and 0.0 < w <= 1e6) for w in self.codebook_boosts
        ):
            raise ConfigError(f"codebook_boosts must be 4 numbers in (0, 1e6], got {list(self.codebook_boosts)}")
        if self.conditioning != "null":
            raise ConfigError(f"conditioning {self.conditioning!r} is not supported; only 'null' is")
        if not (0 < self.min_chunk_seconds <= self.chunk_seconds <= 3600.0):
            raise ConfigError("need 0 < min_chunk_seconds <= chunk_seconds <= 3600")
        if self.sample_rate != 32000:
            raise ConfigError(f"sample_rate must be 32000 (the EnCodec rate), got {self.sample_rate}")
        if not (self.chunk_seconds <= self.max_seconds <= 86400.0):
            raise ConfigError("max_seconds must lie between chunk_seconds and 86400")
        samples = self.chunk_seconds * self.sample_rate
        if abs(samples - round(samples)) > 1e-6:
            raise ConfigError("chunk_seconds * sample_rate must be a whole number of samples")
        if not (isinstance(self.chunk_batch, int) and not isinstance(self.chunk_batch, bool)
                and 1 <= self.chunk_batch <= MAX_CHUNK_BATCH):
            raise ConfigError(f"chunk_batch must be a whole number in 1..{MAX_CHUNK_BATCH}, got {self.chunk_batch!r}")
        _check_resampler(self.resampler)
        object.__setattr__(self, "resampler", MappingProxyType(dict(self.resampler)))

    @property
    def chunk_samples(self) -> int:
        return int(round(self.chunk_seconds * self.sample_rate))

    @property
    def min_chunk_samples(self) -> int:
        """Fewest samples a kept chunk has: a chunk is dropped when ``n / rate < min_chunk_seconds``."""
        return math.ceil(self.min_chunk_seconds * self.sample_rate - 1e-6)

    @property
    def max_samples(self) -> int:
        return int(round(self.max_seconds * self.sample_rate))

    def as_json(self) -> dict[str, Any]:
        """The shared settings that define a space (sections 1-5: everything but ``max_seconds`` and the stats).

        ``chunk_batch`` is a member only when it is not 1, so the spaces of unbatched signatures are
        those defined before batching existed.
        """
        doc: dict[str, Any] = {
            "layers": {"P": list(self.layers_p), "M": list(self.layers_m)},
            "tensors": list(self.tensors),
            "codebook_boosts": [float(w) for w in self.codebook_boosts],
            "conditioning": self.conditioning,
            "chunk_seconds": float(self.chunk_seconds),
            "min_chunk_seconds": float(self.min_chunk_seconds),
            "sample_rate": int(self.sample_rate),
            "resampler": dict(self.resampler),
        }
        if self.chunk_batch != 1:
            doc["chunk_batch"] = int(self.chunk_batch)
        return doc

    def space(self, model_digests: Mapping[str, str], method: SignatureMethod = DEFAULT_METHOD) -> SignatureSpace:
        """The space of ``method`` (by default gradproj, :data:`~.methods.DEFAULT_METHOD`) over these settings."""
        return SignatureSpace.build(self, model_digests, method)


@dataclass(frozen=True)
class SignatureSpace:
    """A signature space: canonical JSON (bytes) and its SHA-256 (hex)."""

    canonical_json: bytes
    digest: str

    @classmethod
    def build(cls, config: SignatureConfig, model_digests: Mapping[str, str],
              method: SignatureMethod = DEFAULT_METHOD) -> SignatureSpace:
        if set(model_digests) != set(MODEL_FILES):
            raise ConfigError(f"model digests must name exactly {list(MODEL_FILES)}")
        for name, value in model_digests.items():
            if not _HEX64.match(value):
                raise ConfigError(f"model digest of {name} is not 64 lowercase hex digits")
        doc = {"method": method.name, "model": dict(model_digests), **config.as_json(),
               **method.space_members(config)}
        try:
            data = rfc8785.dumps(doc)
        except rfc8785.CanonicalizationError as exc:
            raise ConfigError(f"signature configuration cannot be canonicalised ({exc})") from None
        return cls.from_canonical_json(data)

    @classmethod
    def from_canonical_json(cls, data: bytes) -> SignatureSpace:
        """Rebuild a space from stored canonical JSON, checking it is canonical."""
        try:
            doc = json.loads(data)
        except ValueError as exc:
            raise ConfigError(f"signature space is not JSON: {exc}") from None
        if not isinstance(doc, dict) or doc.get("method") not in METHODS:
            raise ConfigError(f"signature space is not of method {' or '.join(METHODS)}")
        try:
            canonical = rfc8785.dumps(doc)
        except rfc8785.CanonicalizationError as exc:
            raise ConfigError(f"signature space JSON is not RFC 8785 canonical ({exc})") from None
        if canonical != data:
            raise ConfigError("signature space JSON is not RFC 8785 canonical")
        return cls(canonical_json=data, digest=hashlib.sha256(data).hexdigest())

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.canonical_json)
        return result

    @property
    def method(self) -> SignatureMethod:
        """The signature method of this space."""
        return get_method(self.as_dict()["method"])
