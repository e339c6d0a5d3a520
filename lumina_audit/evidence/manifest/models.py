"""The manifest models (pydantic, frozen, ``extra="forbid"``): every kind, every setting, its defaults.

A manifest says exactly what a run does: which model (by digest), which signature settings
and numerical pins, which inputs, where outputs and the ledger go. Defaults are written out
in the canonical JSON, so the digest covers them (but for the settings added to version 2
later, written only where they are not their defaults: :mod:`.settings`). Outputs and the
ledger must stay inside the manifest's folder. Field types: :mod:`.fields`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    SerializationInfo,
    SerializerFunctionWrapHandler,
    Tag,
    TypeAdapter,
    model_serializer,
    model_validator,
)

from ..._internal.urls import timestamp_url_problem
from ...signature.methods.gradstats import GRADSTATS_V1
from .execution import BadInputPolicy, ExecutionSettings
from .fields import FrozenList, Hex64, InsidePath, PathText, StrictModel, matching
from .settings import (
    ExtractSignatureSettings,
    PinsSettings,
    PinsSettingsV2,
    SignatureSettings,
    UseSignatureSettings,
    without_defaults,
)

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
    "LRAttributionSettings",
    "LRCalibrationSettings",
    "PositiveSpec",
    "Manifest",
    "PinsSettings",
    "PinsSettingsV2",
    "SignatureSettings",
    "UseSignatureSettings",
]

#: The seed of lumina-gradstats-v1; a manifest must state it.
SEED = 422024

DEFAULT_INPUT_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff")


def _seed(value: int) -> int:
    if value != SEED:
        raise ValueError(f"must be {SEED} for {GRADSTATS_V1} (the spec's seed), got {value}")
    return value


class Metadata(StrictModel):
    name: Annotated[str, matching(r"[A-Za-z0-9._-]{1,100}", "must be 1-100 characters of A-Z a-z 0-9 . _ -")]
    description: str = ""


class ModelDigests(StrictModel):
    state_dict: Hex64 = Field(alias="state_dict.bin")
    compression_state_dict: Hex64 = Field(alias="compression_state_dict.bin")


class ModelSpec(StrictModel):
    directory: PathText
    sha256: ModelDigests

    def digests(self) -> dict[str, str]:
        d = self.sha256
        return {"state_dict.bin": d.state_dict, "compression_state_dict.bin": d.compression_state_dict}


class _ManifestBase(StrictModel):
    """What every kind of manifest has."""

    apiVersion: Literal["lumina-audit/v1"]
    metadata: Metadata
    seed: Annotated[int, AfterValidator(_seed)]
    model: ModelSpec
    signature: SignatureSettings = Field(default_factory=SignatureSettings)
    pins: PinsSettings = Field(default_factory=PinsSettings)
    ledger: InsidePath


class InputSpec(StrictModel):
    path: PathText
    sha256: Hex64 | None = None
    song_id: Annotated[str, Field(min_length=1, max_length=256)] | None = None


SongId = Annotated[str, Field(min_length=1, max_length=256)]


class PositiveSpec(InputSpec):
    """A derived copy of catalog songs (a file, or a folder of them), for the calibration's miss rate.

    ``sources`` (catalog song ids) and ``transform`` label it; for a file either may come from its
    derivation record (``lumina-audit audio derive`` writes one beside it), and in a folder they must.
    """

    sources: Annotated[FrozenList[SongId], Field(min_length=1, max_length=2)] | None = None
    transform: Annotated[str, matching(r"[a-z0-9][a-z0-9+.-]{0,31}", "{value!r} is not a transform name like "
                                       "'mp3-128k'")] | None = None


class Outputs(StrictModel):
    store: InsidePath


Extensions = FrozenList[Annotated[str, matching(r"\.[A-Za-z0-9]{1,16}",
                                                "{value!r} is not a file extension like '.wav'")]]


class ExtractManifest(_ManifestBase):
    """Audio files -> a new signature store."""

    kind: Literal["Extract"]
    inputs: Annotated[FrozenList[InputSpec], Field(min_length=1)]
    input_extensions: Extensions = DEFAULT_INPUT_EXTENSIONS
    outputs: Outputs


class FileRef(StrictModel):
    """An existing file this run reads (a store, a calibration), optionally pinned by digest."""

    path: PathText
    sha256: Hex64 | None = None


class CalibrationSettings(StrictModel):
    """Constants of attribution-v1 section 1."""

    method: Literal["lumina-attribution-v1"] = "lumina-attribution-v1"
    k: Annotated[float, Field(gt=0, le=100, allow_inf_nan=False)] = 3.0
    min_controls: Annotated[int, Field(ge=2, le=100000)] = 10


class LRCalibrationSettings(StrictModel):
    """``lumina-attribution-v2`` (``lumina-audit/v2`` only): the proposition, the minimums and the folds F.

    Every default is the spec's (attribution-v2 sections 1 and 5) and is written out, so the
    manifest's digest pins it.
    """

    method: Literal["lumina-attribution-v2"]
    proposition: Literal["derived-copy", "influence"] = "derived-copy"
    min_controls: Annotated[int, Field(ge=3, le=100000)] = 20
    min_sources: Annotated[int, Field(ge=2, le=1000000)] = 6
    min_trials: Annotated[int, Field(ge=2, le=10000000)] = 30
    folds: Annotated[int, Field(ge=2, le=100)] = 5
    #: ``influence`` only, required there: where the positives' songs come from and why they were not in
    #: the base model's training (the certificate repeats it).
    validation_songs: Annotated[str, Field(min_length=10, max_length=2000)] | None = None

    @model_validator(mode="after")
    def _origin_with_influence(self) -> LRCalibrationSettings:
        if (self.proposition == "influence") != (self.validation_songs is not None):
            raise ValueError("validation_songs is required with proposition influence (where the fine-tuning songs "
                             "come from, and why the base model never trained on them), and only there")
        return self

    @model_serializer(mode="wrap")
    def _omit_origin(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        return without_defaults(handler(self), {"validation_songs": None})


def _method_of(value: Any, v1: str) -> str:
    """The ``method`` of a settings section (the v1 method where it names none, as before v2 existed)."""
    if isinstance(value, dict):
        return str(value.get("method", v1))
    return str(getattr(value, "method", v1))


def _tagged(v1: str) -> Discriminator:
    return Discriminator(lambda value: _method_of(value, v1))


CalibrationSettingsV2 = Annotated[
    Annotated[CalibrationSettings, Tag("lumina-attribution-v1")]
    | Annotated[LRCalibrationSettings, Tag("lumina-attribution-v2")],
    _tagged("lumina-attribution-v1"),
]


class CalibrateOutputs(StrictModel):
    calibration: InsidePath


class CalibrateManifest(_ManifestBase):
    """A catalog store + control tracks known not to be in training -> a calibration file."""

    kind: Literal["Calibrate"]
    catalog: FileRef
    controls: Annotated[FrozenList[InputSpec], Field(min_length=1)]
    input_extensions: Extensions = DEFAULT_INPUT_EXTENSIONS
    calibration: CalibrationSettings = Field(default_factory=CalibrationSettings)
    outputs: CalibrateOutputs


class AttributionSettings(StrictModel):
    method: Literal["lumina-attribution-v1"] = "lumina-attribution-v1"
    top_k: Annotated[int, Field(ge=1, le=10000)] = 10


class LRAttributionSettings(StrictModel):
    """``lumina-attribution-v2`` section 6: list every song at or above ``report_at`` (log10 LR), then the top_k."""

    method: Literal["lumina-attribution-v2"]
    top_k: Annotated[int, Field(ge=1, le=10000)] = 10
    report_at: Annotated[float, Field(gt=0, le=20, allow_inf_nan=False)] = 1.0


AttributionSettingsV2 = Annotated[
    Annotated[AttributionSettings, Tag("lumina-attribution-v1")]
    | Annotated[LRAttributionSettings, Tag("lumina-attribution-v2")],
    _tagged("lumina-attribution-v1"),
]


class AttributeOutputs(StrictModel):
    reports: InsidePath  #: a folder; one report per query, named after its song id
    certificates: InsidePath | None = None  #: a folder; one signed PDF per query, when ``certificates`` asks


def _tsa_url(value: str) -> str:
    problem = timestamp_url_problem(value)  # one definition of an acceptable URL, shared with the signer
    if problem is not None:
        raise ValueError(problem)
    return value


class CertificateSigner(StrictModel):
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
    passphrase_env: Annotated[str, matching(r"[A-Za-z_][A-Za-z0-9_]{0,127}", "must be the name of an "
                                             "environment variable (A-Z a-z 0-9 _)")] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> CertificateSigner:
        if self.pkcs12 is not None and (self.key is not None or self.cert is not None):
            raise ValueError("give either key and cert, or pkcs12, not both")
        if self.pkcs12 is None and (self.key is None or self.cert is None):
            raise ValueError("give key and cert (PEM or DER), or pkcs12")
        return self


class CertificateSettings(StrictModel):
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


#: The default ``execution`` as it is dumped (one local process).
_LOCAL = ExecutionSettings().model_dump(mode="json")


class ExtractManifestV2(ExtractManifest):
    """``lumina-audit/v2``: audio files -> a version 2 store holding every method named.

    ``on_bad_input`` and ``execution`` (:mod:`.execution`) exist in version 2 only and are
    written into the canonical JSON only when not the default, so every signed v1 and v2
    manifest keeps its digest.
    """

    apiVersion: Literal["lumina-audit/v2"]  # type: ignore[assignment]
    signature: ExtractSignatureSettings = Field(default_factory=ExtractSignatureSettings)  # type: ignore[assignment]
    pins: PinsSettingsV2 = Field(default_factory=PinsSettingsV2)
    on_bad_input: BadInputPolicy = "stop"
    execution: ExecutionSettings = Field(default_factory=ExecutionSettings)

    @model_serializer(mode="wrap")
    def _omit_defaults(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        """The default policy and engine: nothing in the canonical JSON, as before they existed (spec-notes E4)."""
        return without_defaults(handler(self), {"on_bad_input": "stop", "execution": _LOCAL})


class CalibrateManifestV2(CalibrateManifest):
    """``lumina-audit/v2``: a calibration of one method's signature space, and of how often a source is missed."""

    apiVersion: Literal["lumina-audit/v2"]  # type: ignore[assignment]
    signature: UseSignatureSettings = Field(default_factory=UseSignatureSettings)  # type: ignore[assignment]
    pins: PinsSettingsV2 = Field(default_factory=PinsSettingsV2)
    positives: FrozenList[PositiveSpec] = ()
    #: Pieces the unmodified model generated with the positives' sampling settings (``influence`` only).
    negatives: FrozenList[InputSpec] = ()
    calibration: CalibrationSettingsV2 = Field(default_factory=CalibrationSettings)  # type: ignore[assignment]

    @model_serializer(mode="wrap")
    def _omit_defaults(self, handler: SerializerFunctionWrapHandler, info: SerializationInfo) -> Any:
        """No positives or negatives: nothing in the canonical JSON, as before they existed (spec-notes E4)."""
        return without_defaults(handler(self), {"positives": [], "negatives": []})

    @model_validator(mode="after")
    def _lr_needs_positives(self) -> CalibrateManifestV2:
        lr = self.calibration if isinstance(self.calibration, LRCalibrationSettings) else None
        if lr is not None and not self.positives:
            raise ValueError("calibration.method lumina-attribution-v2 needs positives (the same-source trials of "
                             f"its proposition {lr.proposition!r})")
        influence = lr is not None and lr.proposition == "influence"
        if influence and not self.negatives:
            raise ValueError("proposition influence needs negatives: pieces the unmodified model generated with the "
                             "same settings (lumina-audit model customize writes them)")
        if self.negatives and not influence:
            raise ValueError("negatives belong to proposition influence only")
        if influence and any(p.sources or p.transform for p in self.positives):
            raise ValueError("the positives of proposition influence are labelled by their customization records, "
                             "not by sources or transform")
        return self


class AttributeManifestV2(AttributeManifest):
    """``lumina-audit/v2``: attribution in one method's signature space (reports name the method)."""

    apiVersion: Literal["lumina-audit/v2"]  # type: ignore[assignment]
    signature: UseSignatureSettings = Field(default_factory=UseSignatureSettings)  # type: ignore[assignment]
    pins: PinsSettingsV2 = Field(default_factory=PinsSettingsV2)
    attribution: AttributionSettingsV2 = Field(default_factory=AttributionSettings)  # type: ignore[assignment]


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
