"""The signature settings and numerical pins of a manifest, and what ``lumina-audit/v2`` adds to them.

Settings added after ``lumina-audit/v2`` was first signed (``signature.chunk_batch``, the
memory pins ``pins.sums`` and ``pins.gradients``) live only in the v2 classes and are written
into the canonical JSON only where they differ from their defaults, so every manifest signed
before they existed, v1 or v2, keeps its digest (``docs/spec-notes.md`` E4).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, SerializationInfo, SerializerFunctionWrapHandler, model_serializer

from ...errors import ConfigError
from ...signature.methods.gradstats import STATS
from ...signature.pins import LEGACY_PINS, Pins
from ...signature.space import MAX_CHUNK_BATCH, TENSORS, SignatureConfig
from .fields import FrozenList, StrictModel
from .reader import Loc, ManifestError

__all__ = [
    "without_defaults","CudaPins", "ExtractSignatureSettings", "Layers", "MethodName", "PinsSettings", "PinsSettingsV2",
           "Resampler", "SignatureSettings", "UseSignatureSettings"]


class Layers(StrictModel):
    P: FrozenList[int] = (42, 43, 44, 45, 46, 47)
    M: FrozenList[int] = (12, 13, 14, 15, 16, 17)


class Resampler(StrictModel):
    function: str = "torchaudio.functional.resample"
    lowpass_filter_width: int = 6
    rolloff: float = 0.99
    resampling_method: str = "sinc_interp_hann"


_SIG_FIELDS: dict[str, Loc] = {"layers_p": ("layers", "P"), "layers_m": ("layers", "M")}


def _config_error(exc: ConfigError, what: str, section: str, fields: Mapping[str, Loc]) -> ManifestError:
    """A ConfigError as a ManifestError located at the field its message names first."""
    found = re.search(r"\b(" + "|".join(map(re.escape, fields)) + r")\b", exc.message)
    key_path = (section, *fields[found.group(1)]) if found else (section,)
    return ManifestError(f"invalid {what}: {exc.message}", key_path=key_path)


class _SignatureCommon(StrictModel):
    """Every setting of spec signature-v1 sections 1-7 but the method, with the spec's defaults."""

    layers: Layers = Field(default_factory=Layers)
    tensors: FrozenList[str] = TENSORS
    stats: FrozenList[str] = STATS
    codebook_boosts: FrozenList[float] = (0.4, 1.2, 1.3, 1.4)
    conditioning: str = "null"
    chunk_seconds: float = 10.0
    min_chunk_seconds: float = 1.0
    max_seconds: float = 900.0
    sample_rate: int = 32000
    resampler: Resampler = Field(default_factory=Resampler)

    def _config_kwargs(self) -> dict[str, Any]:
        return {"layers_p": self.layers.P, "layers_m": self.layers.M, "tensors": self.tensors, "stats": self.stats,
                "codebook_boosts": self.codebook_boosts, "conditioning": self.conditioning,
                "chunk_seconds": self.chunk_seconds, "min_chunk_seconds": self.min_chunk_seconds,
                "sample_rate": self.sample_rate, "resampler": self.resampler.model_dump(),
                "max_seconds": self.max_seconds}

    def to_config(self) -> SignatureConfig:
        try:
            return SignatureConfig(**self._config_kwargs())
        except ConfigError as exc:
            fields = {**{k: (k,) for k in type(self).model_fields}, **_SIG_FIELDS}
            raise _config_error(exc, "signature settings", "signature", fields) from None


class SignatureSettings(_SignatureCommon):
    """``lumina-audit/v1``: the one method of that version, ``lumina-gradstats-v1``."""

    method: Literal["lumina-gradstats-v1"] = "lumina-gradstats-v1"

    def method_names(self) -> tuple[str, ...]:
        return (self.method,)


MethodName = Literal["lumina-gradproj-v1", "lumina-gradstats-v1"]


def without_defaults(data: Any, defaults: Mapping[str, Any]) -> Any:
    """``data`` (a dumped model) without the keys in ``defaults`` whose value is the default."""
    if isinstance(data, dict):
        return {k: v for k, v in data.items() if not (k in defaults and v == defaults[k])}
    return data


class _SignatureV2(_SignatureCommon):
    """``lumina-audit/v2`` only: settings added after version 2 was first signed.

    ``chunk_batch`` (1 by default) is written into the canonical JSON only when it is not 1, so a
    v2 manifest signed before it existed keeps its digest (``docs/spec-notes.md`` E4).
    """

    chunk_batch: Annotated[int, Field(ge=1, le=MAX_CHUNK_BATCH)] = 1

    def _config_kwargs(self) -> dict[str, Any]:
        return {**super()._config_kwargs(), "chunk_batch": self.chunk_batch}

    @model_serializer(mode="wrap")
    def _omit_defaults(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        return without_defaults(handler(self), {"chunk_batch": 1})


def _distinct(value: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(value)) != len(value):
        raise ValueError(f"each method at most once, got {list(value)}")
    return value


class ExtractSignatureSettings(_SignatureV2):
    """``lumina-audit/v2`` Extract: the methods whose signatures the store holds, the primary one first.

    One forward and one backward pass per chunk serves all of them.
    """

    methods: Annotated[FrozenList[MethodName], Field(min_length=1), AfterValidator(_distinct)] = (
        "lumina-gradproj-v1", "lumina-gradstats-v1")

    def method_names(self) -> tuple[str, ...]:
        return tuple(self.methods)


class UseSignatureSettings(_SignatureV2):
    """``lumina-audit/v2`` Calibrate and Attribute: the one method the run compares (default gradproj)."""

    method: MethodName = "lumina-gradproj-v1"

    def method_names(self) -> tuple[str, ...]:
        return (self.method,)


#: The defaults of a manifest's pins: :data:`LEGACY_PINS`, the program's defaults when ``lumina-audit/v1`` and
#: ``/v2`` were defined (MKL's default branch, oneDNN on). A signed manifest's digest covers its pins with
#: these filled in, so they cannot follow the program's later defaults (``MKL_CBWR=COMPATIBLE``, oneDNN off,
#: the same bits on Intel and AMD CPUs); a manifest that should recompute on another CPU family says
#: ``mkl_cbwr: COMPATIBLE`` and ``onednn: false`` (``docs/spec-notes.md`` E6).
_PINS = LEGACY_PINS


class CudaPins(StrictModel):
    deterministic_algorithms: bool = _PINS.cuda_deterministic
    cublas_workspace_config: str = _PINS.cublas_workspace_config
    cudnn_deterministic: bool = _PINS.cudnn_deterministic
    cudnn_benchmark: bool = _PINS.cudnn_benchmark
    tf32: bool = _PINS.tf32


class PinsSettings(StrictModel):
    """Every field of :class:`~lumina_audit.signature.pins.Pins`, with its defaults (CUDA ones nested)."""

    device: Literal["cpu", "cuda"] = _PINS.device
    dtype: Literal["float32"] = _PINS.dtype
    threads: int = _PINS.threads
    aten_cpu_capability: str | None = _PINS.aten_cpu_capability
    onednn_max_cpu_isa: str | None = _PINS.onednn_max_cpu_isa
    mkl_cbwr: str | None = _PINS.mkl_cbwr
    onednn: bool = _PINS.onednn
    sdpa_backend: Literal["math"] = _PINS.sdpa_backend
    cuda: CudaPins = Field(default_factory=CudaPins)

    def to_pins(self) -> Pins:
        c = self.cuda
        try:
            return Pins(device=self.device, dtype=self.dtype, threads=self.threads,
                        aten_cpu_capability=self.aten_cpu_capability, onednn_max_cpu_isa=self.onednn_max_cpu_isa,
                        mkl_cbwr=self.mkl_cbwr, onednn=self.onednn, sdpa_backend=self.sdpa_backend,
                        cuda_deterministic=c.deterministic_algorithms,
                        cublas_workspace_config=c.cublas_workspace_config, cudnn_deterministic=c.cudnn_deterministic,
                        cudnn_benchmark=c.cudnn_benchmark, tf32=c.tf32)
        except ConfigError as exc:
            fields = {k: (k,) for k in ("threads", "device", "dtype")} | {"CUDA": ("cuda",), "TF32": ("cuda",)}
            raise _config_error(exc, "pins", "pins", fields) from None


class PinsSettingsV2(PinsSettings):
    """``lumina-audit/v2``: also the memory pins, which change no bit (``docs/spec-notes.md`` E1-E2).

    They are written into the canonical JSON only where they differ from their defaults, so a
    v2 manifest signed before they existed keeps its digest.
    """

    sums: Literal["device", "host"] = _PINS.sums
    gradients: Literal["together", "streamed"] = _PINS.gradients

    def to_pins(self) -> Pins:
        return replace(super().to_pins(), sums=self.sums, gradients=self.gradients)

    @model_serializer(mode="wrap")
    def _omit_defaults(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        return without_defaults(handler(self), {"sums": _PINS.sums, "gradients": _PINS.gradients})
