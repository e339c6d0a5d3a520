"""The manifest models (pydantic, frozen, ``extra="forbid"``): every kind, every setting, its defaults.

A manifest says exactly what a run does: which model (by digest), which signature settings
and numerical pins, which inputs, where outputs and the ledger go. Defaults are written out
in the canonical JSON, so the digest covers them. Outputs and the ledger must stay inside the
manifest's folder.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    Field,
    TypeAdapter,
    model_validator,
)

from ..._internal.urls import timestamp_url_problem
from ...errors import ConfigError
from ...signature.methods.gradstats import STATS
from ...signature.pins import Pins
from ...signature.space import METHOD, TENSORS, SignatureConfig
from .execution import BadInputPolicy, ExecutionSettings
from .fields import FrozenList, Hex64, InsidePath, PathText
from .fields import StrictModel as _Model
from .fields import matching as _matching
from .reader import Loc, ManifestError

__all__ = [
    "ADAPTERS",
    "API_V1",
    "API_V2",
    "API_VERSIONS",
    "DEFAULT_INPUT_EXTENSIONS",
    "KINDS",
    "SEED",
    "AttributeManifest",
    "AttributeManifestV2",
    "CalibrateManifest",
    "CalibrateManifestV2",
    "CertificateSettings",
    "CertificateSigner",
    "ExecutionSettings",
    "ExtractManifest",
    "ExtractManifestV2",
    "ExtractSignatureSettings",
    "FileRef",
    "InputSpec",
    "Manifest",
    "SignatureSettings",
    "UseSignatureSettings",
]

#: The seed of lumina-gradstats-v1; a manifest must state it.
SEED = 422024

DEFAULT_INPUT_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff")

def _seed(value: int) -> int:
    if value != SEED:
        raise ValueError(f"must be {SEED} for {METHOD} (the spec's seed), got {value}")
    return value


class Metadata(_Model):
    name: Annotated[str, _matching(r"[A-Za-z0-9._-]{1,100}", "must be 1-100 characters of A-Z a-z 0-9 . _ -")]
    description: str = ""


class ModelDigests(_Model):
    state_dict: Hex64 = Field(alias="state_dict.bin")
    compression_state_dict: Hex64 = Field(alias="compression_state_dict.bin")


class ModelSpec(_Model):
    directory: PathText
    sha256: ModelDigests

    def digests(self) -> dict[str, str]:
        d = self.sha256
        return {"state_dict.bin": d.state_dict, "compression_state_dict.bin": d.compression_state_dict}


class Layers(_Model):
    P: FrozenList[int] = (42, 43, 44, 45, 46, 47)
    M: FrozenList[int] = (12, 13, 14, 15, 16, 17)


class Resampler(_Model):
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


class _SignatureCommon(_Model):
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

    def to_config(self) -> SignatureConfig:
        try:
            return SignatureConfig(
                layers_p=self.layers.P, layers_m=self.layers.M, tensors=self.tensors, stats=self.stats,
                codebook_boosts=self.codebook_boosts, conditioning=self.conditioning,
                chunk_seconds=self.chunk_seconds, min_chunk_seconds=self.min_chunk_seconds,
                sample_rate=self.sample_rate, resampler=self.resampler.model_dump(), max_seconds=self.max_seconds)
        except ConfigError as exc:
            fields = {**{k: (k,) for k in type(self).model_fields}, **_SIG_FIELDS}
            raise _config_error(exc, "signature settings", "signature", fields) from None


class SignatureSettings(_SignatureCommon):
    """``lumina-audit/v1``: the one method of that version, ``lumina-gradstats-v1``."""

    method: Literal["lumina-gradstats-v1"] = "lumina-gradstats-v1"

    def method_names(self) -> tuple[str, ...]:
        return (self.method,)


MethodName = Literal["lumina-gradproj-v1", "lumina-gradstats-v1"]


def _distinct(value: tuple[str, ...]) -> tuple[str, ...]:
    if len(set(value)) != len(value):
        raise ValueError(f"each method at most once, got {list(value)}")
    return value


class ExtractSignatureSettings(_SignatureCommon):
    """``lumina-audit/v2`` Extract: the methods whose signatures the store holds, the primary one first.

    One forward and one backward pass per chunk serves all of them.
    """

    methods: Annotated[FrozenList[MethodName], Field(min_length=1), AfterValidator(_distinct)] = (
        "lumina-gradproj-v1", "lumina-gradstats-v1")

    def method_names(self) -> tuple[str, ...]:
        return tuple(self.methods)


class UseSignatureSettings(_SignatureCommon):
    """``lumina-audit/v2`` Calibrate and Attribute: the one method the run compares (default gradproj)."""

    method: MethodName = "lumina-gradproj-v1"

    def method_names(self) -> tuple[str, ...]:
        return (self.method,)


#: The defaults of a manifest's pins are those of :class:`Pins`, read from one place.
_PINS = Pins()


class CudaPins(_Model):
    deterministic_algorithms: bool = _PINS.cuda_deterministic
    cublas_workspace_config: str = _PINS.cublas_workspace_config
    cudnn_deterministic: bool = _PINS.cudnn_deterministic
    cudnn_benchmark: bool = _PINS.cudnn_benchmark
    tf32: bool = _PINS.tf32


class PinsSettings(_Model):
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


class _ManifestBase(_Model):
    """What every kind of manifest has."""

    apiVersion: Literal["lumina-audit/v1"]
    metadata: Metadata
    seed: Annotated[int, AfterValidator(_seed)]
    model: ModelSpec
    signature: SignatureSettings = Field(default_factory=SignatureSettings)
    pins: PinsSettings = Field(default_factory=PinsSettings)
    ledger: InsidePath


class InputSpec(_Model):
    path: PathText
    sha256: Hex64 | None = None
    song_id: Annotated[str, Field(min_length=1, max_length=256)] | None = None


class Outputs(_Model):
    store: InsidePath


Extensions = FrozenList[Annotated[str, _matching(r"\.[A-Za-z0-9]{1,16}",
                                                "{value!r} is not a file extension like '.wav'")]]


class ExtractManifest(_ManifestBase):
    """Audio files -> a new signature store."""

    kind: Literal["Extract"]
    inputs: Annotated[FrozenList[InputSpec], Field(min_length=1)]
    input_extensions: Extensions = DEFAULT_INPUT_EXTENSIONS
    outputs: Outputs


class FileRef(_Model):
    """An existing file this run reads (a store, a calibration), optionally pinned by digest."""

    path: PathText
    sha256: Hex64 | None = None


class CalibrationSettings(_Model):
    """Constants of attribution-v1 section 1."""

    method: Literal["lumina-attribution-v1"] = "lumina-attribution-v1"
    k: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] = 3.0
    min_controls: Annotated[int, Field(ge=2, le=100000)] = 10


class CalibrateOutputs(_Model):
    calibration: InsidePath


class CalibrateManifest(_ManifestBase):
    """A catalog store + control tracks known not to be in training -> a calibration file."""

    kind: Literal["Calibrate"]
    catalog: FileRef
    controls: Annotated[FrozenList[InputSpec], Field(min_length=1)]
    input_extensions: Extensions = DEFAULT_INPUT_EXTENSIONS
    calibration: CalibrationSettings = Field(default_factory=CalibrationSettings)
    outputs: CalibrateOutputs


class AttributionSettings(_Model):
    method: Literal["lumina-attribution-v1"] = "lumina-attribution-v1"
    top_k: Annotated[int, Field(ge=1, le=10000)] = 10


class AttributeOutputs(_Model):
    reports: InsidePath  #: a folder; one report per query, named after its song id
    certificates: InsidePath | None = None  #: a folder; one signed PDF per query, when ``certificates`` asks


def _tsa_url(value: str) -> str:
    problem = timestamp_url_problem(value)  # one definition of an acceptable URL, shared with the signer
    if problem is not None:
        raise ValueError(problem)
    return value


class CertificateSigner(_Model):
    """The X.509 signer of the PDFs: a key and certificate (PEM or DER), or a PKCS#12 bundle.

    ``cert_sha256`` pins which certificate signs (SHA-256 of its DER). The secret
    itself never appears in a manifest: ``passphrase_env`` names the environment
    variable that holds the passphrase of the key or bundle, if it has one.
    """

    key: PathText | None = None
    cert: PathText | None = None
    pkcs12: PathText | None = None
    chain: FrozenList[PathText] = ()
    cert_sha256: Hex64 | None = None
    passphrase_env: Annotated[str, _matching(r"[A-Za-z_][A-Za-z0-9_]{0,127}", "must be the name of an "
                                             "environment variable (A-Z a-z 0-9 _)")] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> CertificateSigner:
        if self.pkcs12 is not None and (self.key is not None or self.cert is not None):
            raise ValueError("give either key and cert, or pkcs12, not both")
        if self.pkcs12 is None and (self.key is None or self.cert is None):
            raise ValueError("give key and cert (PEM or DER), or pkcs12")
        return self


class CertificateSettings(_Model):
    """Certificates issued by an Attribute run, one per query (issue 5: "a manifest can ask for them")."""

    signer: CertificateSigner
    page_size: Literal["A4", "Letter"] = "A4"
    timestamp_url: Annotated[str, AfterValidator(_tsa_url)] | None = None


class AttributeManifest(_ManifestBase):
    """Query audio + a catalog store + its calibration -> one attribution report per query."""

    kind: Literal["Attribute"]
    queries: Annotated[FrozenList[InputSpec], Field(min_length=1)]
    input_extensions: Extensions = DEFAULT_INPUT_EXTENSIONS
    catalog: FileRef
    calibration: FileRef
    attribution: AttributionSettings = Field(default_factory=AttributionSettings)
    certificates: CertificateSettings | None = None
    outputs: AttributeOutputs  #: ``outputs.certificates`` is given exactly when ``certificates`` is (load_manifest)


class ExtractManifestV2(ExtractManifest):
    """``lumina-audit/v2``: audio files -> a version 2 store holding every method named.

    ``on_bad_input`` and ``execution`` (:mod:`.execution`) exist in version 2 only, so a
    version 1 manifest keeps its canonical JSON and digest.
    """

    apiVersion: Literal["lumina-audit/v2"]  # type: ignore[assignment]
    signature: ExtractSignatureSettings = Field(default_factory=ExtractSignatureSettings)  # type: ignore[assignment]
    on_bad_input: BadInputPolicy = "stop"
    execution: ExecutionSettings = Field(default_factory=ExecutionSettings)


class CalibrateManifestV2(CalibrateManifest):
    """``lumina-audit/v2``: a calibration of one method's signature space."""

    apiVersion: Literal["lumina-audit/v2"]  # type: ignore[assignment]
    signature: UseSignatureSettings = Field(default_factory=UseSignatureSettings)  # type: ignore[assignment]


class AttributeManifestV2(AttributeManifest):
    """``lumina-audit/v2``: attribution in one method's signature space (reports name the method)."""

    apiVersion: Literal["lumina-audit/v2"]  # type: ignore[assignment]
    signature: UseSignatureSettings = Field(default_factory=UseSignatureSettings)  # type: ignore[assignment]


#: Every kind of manifest (the version 2 kinds are subclasses of the version 1 ones).
Manifest: TypeAlias = ExtractManifest | CalibrateManifest | AttributeManifest
KINDS: tuple[str, ...] = ("Extract", "Calibrate", "Attribute")
API_V1, API_V2 = "lumina-audit/v1", "lumina-audit/v2"
#: The manifest versions this reader knows: version 1 keeps its meaning (one method, version 1 outputs).
API_VERSIONS: tuple[str, ...] = (API_V1, API_V2)
ADAPTERS: dict[str, TypeAdapter[Manifest]] = {
    API_V1: TypeAdapter(Annotated[ExtractManifest | CalibrateManifest | AttributeManifest,
                                  Field(discriminator="kind")]),
    API_V2: TypeAdapter(Annotated[ExtractManifestV2 | CalibrateManifestV2 | AttributeManifestV2,
                                  Field(discriminator="kind")]),
}
