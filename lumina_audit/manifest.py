"""Run manifests: strict YAML, validated models, canonical digests, detached DSSE signatures.

A manifest says exactly what a run does: which model (by digest), which
signature settings and numerical pins, which inputs, where outputs and the
ledger go. Its identity is the SHA-256 of the RFC 8785 canonical JSON of the
validated model, defaults included, so reformatting the YAML, reordering keys
or adding comments keeps a signature valid and any change of value breaks it.

The YAML reader refuses duplicate keys, anchors, aliases, merge keys, non-string
keys and tags other than plain scalars, and remembers the line of every key so
that each error names it (``manifest.yaml:12: unknown key 'treads' in pins``).
Outputs and the ledger must stay inside the manifest's folder.

A signature lives in ``<manifest>.sig``: a DSSE envelope whose payload is the
canonical JSON; operator and reviewer may each add one.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, TypeAlias, TypeVar

import rfc8785
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from . import dsse
from ._internal.fileio import fsync_dir
from .errors import ConfigError, LuminaError
from .pins import Pins
from .space import METHOD, STATS, TENSORS, SignatureConfig
from .trust import TrustEntry, TrustStore

__all__ = [
    "DEFAULT_INPUT_EXTENSIONS", "KINDS", "NAMESPACE", "PAYLOAD_TYPE", "SEED", "AttributeManifest",
    "CalibrateManifest", "CertificateSettings", "CertificateSigner", "ExtractManifest", "FileRef", "LoadedManifest",
    "Manifest", "ManifestError", "ResolvedInput", "VerifiedManifest", "load_manifest", "resolve_inputs",
    "sig_path", "sign_manifest", "verify_manifest",
]

PAYLOAD_TYPE = "application/vnd.lumina-audit.manifest.v1+json"
NAMESPACE = "lumina-audit/manifest"
#: The seed of lumina-gradstats-v1; a manifest must state it.
SEED = 422024
DEFAULT_INPUT_EXTENSIONS = (".wav", ".flac", ".ogg", ".mp3", ".aiff")
MAX_MANIFEST_BYTES = 1 << 20

Loc: TypeAlias = tuple[str | int, ...]


class ManifestError(LuminaError):
    """A manifest was refused; ``key_path`` locates the offending key when known."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None, key_path: Loc = ()) -> None:
        super().__init__(message, hint=hint)
        self.key_path = key_path


# ---------------------------------------------------------------- strict YAML

_T = "tag:yaml.org,2002:"
_SCALAR_TAGS = {_T + "str", _T + "int", _T + "float", _T + "bool", _T + "null"}


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader without anchors, aliases, merge keys, duplicate or non-string keys; records key lines."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self.lines: dict[Loc, int] = {}

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.MarkedYAMLError(problem="YAML anchors and aliases are not allowed",
                                       problem_mark=event.start_mark)
        return super().compose_node(parent, index)

    def to_python(self, node: yaml.Node, loc: Loc = ()) -> Any:
        line = node.start_mark.line + 1
        if isinstance(node, yaml.MappingNode):
            data: dict[str, Any] = {}
            for key_node, value_node in node.value:
                kline = key_node.start_mark.line + 1
                if key_node.tag == _T + "merge" or key_node.value == "<<":
                    raise ManifestError(f"line {kline}: YAML merge keys (<<) are not allowed")
                if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != _T + "str":
                    raise ManifestError(f"line {kline}: keys must be strings")
                key = key_node.value
                if key in data:
                    first = self.lines[(*loc, key)]
                    raise ManifestError(f"line {kline}: duplicate key {key!r} (first on line {first})")
                self.lines[(*loc, key)] = kline
                data[key] = self.to_python(value_node, (*loc, key))
            return data
        if isinstance(node, yaml.SequenceNode):
            items = []
            for i, item in enumerate(node.value):
                self.lines[(*loc, i)] = item.start_mark.line + 1
                items.append(self.to_python(item, (*loc, i)))
            return items
        if node.tag == _T + "timestamp":
            raise ManifestError(f"line {line}: dates and times must be quoted strings")
        if node.tag not in _SCALAR_TAGS:
            raise ManifestError(f"line {line}: YAML tag {node.tag} is not allowed")
        return self.construct_object(node)


def _read_yaml(path: Path) -> tuple[dict[str, Any], dict[Loc, int]]:
    try:
        raw = path.read_bytes()[:MAX_MANIFEST_BYTES + 1]
    except OSError as exc:
        raise ManifestError(f"{path}: cannot read manifest ({exc.strerror})") from None
    if len(raw) > MAX_MANIFEST_BYTES:
        raise ManifestError(f"{path}: manifest is larger than {MAX_MANIFEST_BYTES} bytes")
    try:
        loader = _StrictLoader(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ManifestError(f"{path}: manifest is not UTF-8") from None
    try:
        node = loader.get_single_node()
        doc = None if node is None else loader.to_python(node)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise ManifestError(f"{where}: invalid YAML: {exc.problem or exc.context}") from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"{path}: invalid YAML: {exc}") from None
    except RecursionError:
        raise ManifestError(f"{path}: YAML nested too deeply") from None
    except ManifestError as exc:
        raise ManifestError(f"{path}:{exc.message.removeprefix('line ')}") from None
    finally:
        loader.dispose()
    if not isinstance(doc, dict):
        raise ManifestError(f"{path}: empty manifest" if doc is None else f"{path}: a manifest is a YAML mapping")
    return doc, loader.lines


# ---------------------------------------------------------------- models

_Item = TypeVar("_Item")


def _as_tuple(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


#: A YAML list held as an immutable tuple (dumped as a JSON list).
FrozenList = Annotated[tuple[_Item, ...], BeforeValidator(_as_tuple)]




def _matching(regex: str, message: str) -> AfterValidator:
    """A validator that accepts a string matching ``regex`` whole; ``message`` may name ``{value!r}``."""
    pattern = re.compile(regex)

    def check(value: str) -> str:
        if not pattern.fullmatch(value):
            raise ValueError(message.format(value=value))
        return value

    return AfterValidator(check)


def _path_text(value: str) -> str:
    if not value or any(ord(c) < 32 for c in value):
        raise ValueError("must be a non-empty path without control characters")
    return value


def _inside(value: str) -> str:
    """Relative, no '..': outputs and ledgers stay inside the manifest's folder."""
    if PurePosixPath(value).is_absolute() or value.startswith("\\"):
        raise ValueError(f"{value!r} must be a relative path (inside the manifest's folder)")
    if ".." in PurePosixPath(value).parts:
        raise ValueError(f"{value!r} must not contain '..'")
    return value


def _seed(value: int) -> int:
    if value != SEED:
        raise ValueError(f"must be {SEED} for {METHOD} (the spec's seed), got {value}")
    return value






Hex64 = Annotated[str, _matching(r"[0-9a-f]{64}", "must be 64 lowercase hex digits (a SHA-256)")]
PathText = Annotated[str, AfterValidator(_path_text)]
InsidePath = Annotated[str, AfterValidator(_path_text), AfterValidator(_inside)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


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


class SignatureSettings(_Model):
    """Every setting of spec signature-v1 sections 1-7, with the spec's defaults."""

    method: Literal["lumina-gradstats-v1"] = "lumina-gradstats-v1"
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


#: The defaults of a manifest's pins are those of :class:`Pins`, read from one place.
_PINS = Pins()


class CudaPins(_Model):
    deterministic_algorithms: bool = _PINS.cuda_deterministic
    cublas_workspace_config: str = _PINS.cublas_workspace_config
    cudnn_deterministic: bool = _PINS.cudnn_deterministic
    cudnn_benchmark: bool = _PINS.cudnn_benchmark
    tf32: bool = _PINS.tf32


class PinsSettings(_Model):
    """Every field of :class:`~lumina_audit.pins.Pins`, with its defaults (CUDA ones nested)."""

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
    from .certificate import CertificateError
    from .signer import check_timestamp_url  # one definition of an acceptable URL

    try:
        return check_timestamp_url(value)
    except CertificateError as exc:
        raise ValueError(exc.message) from None


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


#: Every kind of manifest.
Manifest: TypeAlias = ExtractManifest | CalibrateManifest | AttributeManifest
KINDS: tuple[str, ...] = ("Extract", "Calibrate", "Attribute")
_ADAPTER: TypeAdapter[Manifest] = TypeAdapter(Annotated[Manifest, Field(discriminator="kind")])


# ---------------------------------------------------------------- loading

def _where(loc: Loc) -> str:
    if not loc:
        return "the manifest"
    text = ""
    for part in loc:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += (f'["{part}"]' if "." in part else f".{part}") if text else part
    return text


def _nearest_line(loc: Loc, lines: Mapping[Loc, int]) -> int | None:
    while loc and loc not in lines:
        loc = loc[:-1]
    return lines.get(loc)


def _error(source: Path, lines: Mapping[Loc, int], loc: Loc, message: str) -> ManifestError:
    line = _nearest_line(loc, lines)
    return ManifestError(f"{source}:{line}: {message}" if line else f"{source}: {message}", key_path=loc)


def _validation_message(err: Mapping[str, Any], doc: Any) -> tuple[Loc, str]:
    loc: Loc = tuple(err["loc"])
    if loc and loc[0] in KINDS:
        loc = loc[1:]
    kind = err["type"]
    if kind == "union_tag_invalid":
        return ("kind",), f"unknown kind {doc.get('kind')!r} (expected one of {', '.join(KINDS)})"
    if kind == "union_tag_not_found":
        return (), "missing key 'kind'"
    if kind == "extra_forbidden":
        return loc, f"unknown key {loc[-1]!r} in {_where(loc[:-1])}"
    if kind == "missing":
        return loc[:-1], f"missing key {loc[-1]!r} in {_where(loc[:-1])}"
    msg = str(err["msg"]).removeprefix("Value error, ")
    value = err.get("input")
    got = f" (got {value!r})" if isinstance(value, str | int | float | bool) and len(repr(value)) < 80 else ""
    return loc, f"{_where(loc)}: {msg}{got if kind != 'value_error' else ''}"


@dataclass(frozen=True)
class LoadedManifest:
    """A validated manifest and its identity (canonical JSON and its SHA-256)."""

    path: Path
    base_dir: Path
    manifest: Manifest
    canonical_json: bytes
    digest: str
    lines: Mapping[Loc, int] = field(default_factory=dict, compare=False, repr=False)

    def inside(self, value: str, loc: Loc) -> Path:
        """``value`` under the manifest's folder, refusing anything that resolves outside it (symlinks too)."""
        try:
            target = (self.base_dir / value).resolve()
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop
            raise _error(self.path, self.lines, loc, f"{_where(loc)}: {value!r} cannot be resolved ({exc})") from None
        if target == self.base_dir or not target.is_relative_to(self.base_dir):
            raise _error(self.path, self.lines, loc, f"{_where(loc)}: {value!r} resolves outside the manifest's folder"
                         + (" (to the folder itself)" if target == self.base_dir else ""))
        return target

    def anywhere(self, value: str) -> Path:
        """A model or input path: absolute as given, relative to the manifest's folder otherwise."""
        try:
            return (self.base_dir / value).resolve()
        except (OSError, RuntimeError) as exc:
            raise ManifestError(f"{self.path}: {value!r} cannot be resolved ({exc})") from None

    @property
    def model_dir(self) -> Path:
        return self.anywhere(self.manifest.model.directory)

    @property
    def ledger_dir(self) -> Path:
        return self.inside(self.manifest.ledger, ("ledger",))

    @property
    def outputs(self) -> dict[str, Path]:
        """Every output of this kind by name (``store``, ``calibration``, ``reports``), checked to stay inside."""
        return {name: self.inside(value, ("outputs", name))
                for name, value in self.manifest.outputs.model_dump().items() if value is not None}

    @property
    def store_path(self) -> Path:
        """The output store of an Extract manifest."""
        return self.outputs["store"]

    def check_paths(self) -> None:
        """Refuse outputs or a ledger that resolve outside the manifest's folder (done at load, and at each use)."""
        self.inside(self.manifest.ledger, ("ledger",))
        _ = self.outputs

    def config(self) -> SignatureConfig:
        return self.manifest.signature.to_config()

    def pins(self) -> Pins:
        return self.manifest.pins.to_pins()


def load_manifest(path: str | os.PathLike[str]) -> LoadedManifest:
    """Read, validate and canonicalise a manifest; every refusal is one ManifestError naming file and line."""
    source = Path(path)
    doc, lines = _read_yaml(source)
    try:
        manifest = _ADAPTER.validate_python(doc)
    except ValidationError as exc:
        errors = exc.errors()
        loc, message = _validation_message(errors[0], doc)
        more = f" (and {len(errors) - 1} more error(s))" if len(errors) > 1 else ""
        raise _error(source, lines, loc, message + more) from None
    if isinstance(manifest, AttributeManifest) and (manifest.certificates is None) != (
            manifest.outputs.certificates is None):
        given: Loc = ("certificates",) if manifest.certificates is not None else ("outputs", "certificates")
        raise _error(source, lines, given, "'certificates' and 'outputs.certificates' go together: give both or "
                     "neither")
    try:
        manifest.signature.to_config()
        manifest.pins.to_pins()
    except ManifestError as exc:
        raise _error(source, lines, exc.key_path, exc.message) from None
    try:
        canonical = rfc8785.dumps(manifest.model_dump(mode="json", by_alias=True))
    except rfc8785.CanonicalizationError as exc:
        raise ManifestError(f"{source}: manifest cannot be canonicalised ({exc})") from None
    base = Path(os.path.abspath(source)).parent.resolve()
    loaded = LoadedManifest(source, base, manifest, canonical, hashlib.sha256(canonical).hexdigest(), lines)
    loaded.check_paths()
    return loaded


@dataclass(frozen=True)
class ResolvedInput:
    path: Path
    song_id: str
    expected_sha256: str | None


def resolve_inputs(loaded: LoadedManifest) -> list[ResolvedInput]:
    """Input files in manifest order; a folder gives its files with the listed extensions, by name, non-recursive.

    A file's song id is the manifest's ``song_id`` or the file name without its extension.
    """
    m = loaded.manifest
    field_name = {"Extract": "inputs", "Calibrate": "controls", "Attribute": "queries"}[m.kind]
    specs: tuple[InputSpec, ...] = getattr(m, field_name)
    extensions = {e.lower() for e in m.input_extensions}
    result: list[ResolvedInput] = []
    for i, spec in enumerate(specs):
        loc: Loc = (field_name, i, "path")
        target = loaded.anywhere(spec.path)
        if target.is_dir():
            if spec.song_id is not None or spec.sha256 is not None:
                raise _error(loaded.path, loaded.lines, loc, f"{spec.path!r} is a folder; song_id and sha256 "
                             "are only allowed for files")
            try:
                files = sorted((f for f in target.iterdir() if f.suffix.lower() in extensions and f.is_file()),
                               key=lambda f: f.name)
            except OSError as exc:
                message = f"cannot list folder {spec.path!r} ({exc.strerror})"
                raise _error(loaded.path, loaded.lines, loc, message) from None
            if not files:
                raise _error(loaded.path, loaded.lines, loc, f"folder {spec.path!r} holds no file with an extension "
                             f"in {', '.join(m.input_extensions)}")
            result += [ResolvedInput(f, f.stem, None) for f in files]
        elif target.is_file():
            result.append(ResolvedInput(target, spec.song_id or target.stem, spec.sha256))
        else:
            raise _error(loaded.path, loaded.lines, loc, f"input {spec.path!r} not found ({target})")
    seen: dict[str, Path] = {}
    for r in result:
        if any(ord(c) < 32 for c in r.song_id):
            raise ManifestError(f"{loaded.path}: song id {r.song_id!r} of {r.path} has control characters")
        if r.song_id in seen:
            raise ManifestError(f"{loaded.path}: duplicate song id {r.song_id!r}: {seen[r.song_id]} and {r.path}",
                                hint="give one of the files another song_id in the manifest")
        seen[r.song_id] = r.path
    return result


# ---------------------------------------------------------------- signing

@dataclass(frozen=True)
class VerifiedManifest:
    loaded: LoadedManifest
    signers: tuple[TrustEntry, ...]
    envelope: dsse.Envelope


def sig_path(path: str | os.PathLike[str]) -> Path:
    p = Path(path)
    return p.with_name(p.name + ".sig")


def _changed_keys(signed: bytes, current: bytes) -> list[str]:
    try:
        old = json.loads(signed)
    except ValueError:
        return ["(signed payload is not JSON)"]
    new = json.loads(current)
    if not isinstance(old, dict):
        return ["(signed payload is not a JSON object)"]
    return sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k)) or ["(signed payload not canonical)"]


def _write_atomic(path: Path, data: bytes) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def _read_envelope(sig: Path) -> dsse.Envelope:
    try:
        raw = sig.read_bytes()[:MAX_MANIFEST_BYTES * 4]
    except OSError as exc:
        raise dsse.EnvelopeError(f"{sig}: cannot read ({exc.strerror})") from None
    return dsse.Envelope.from_json(raw)


def sign_manifest(path: str | os.PathLike[str], private_key: Ed25519PrivateKey) -> Path:
    """Create ``<manifest>.sig``, or add a signature to it if it signs the manifest as it is now."""
    loaded = load_manifest(path)
    sig = sig_path(path)
    if sig.exists():
        envelope = _read_envelope(sig)
        if envelope.payload_type != PAYLOAD_TYPE:
            raise ManifestError(f"{sig}: payload type {envelope.payload_type!r} is not a manifest's")
        if envelope.payload != loaded.canonical_json:
            changed = ", ".join(_changed_keys(envelope.payload, loaded.canonical_json))
            raise ManifestError(f"{path}: manifest changed since the existing signatures were made "
                                f"(differs in: {changed}); refusing to add a signature",
                                hint=f"restore the signed manifest, or remove {sig} and collect all signatures again")
    else:
        envelope = dsse.Envelope(loaded.canonical_json, PAYLOAD_TYPE)
    _write_atomic(sig, (dsse.sign(envelope, private_key).to_json() + "\n").encode())
    return sig


def verify_manifest(path: str | os.PathLike[str], trust: TrustStore, at: datetime | None = None) -> VerifiedManifest:
    """Steps: (1) the manifest loads and validates; (2) ``<manifest>.sig`` exists; (3) the envelope parses;
    (4) its payload is the manifest's canonical JSON as it is now; (5) DSSE verification with the trust
    file in namespace ``lumina-audit/manifest`` at ``at`` (now, UTC, by default).
    """
    fail = dsse.SignatureVerificationError
    try:
        loaded = load_manifest(path)
    except ManifestError as exc:
        raise fail(f"step 1: {exc.message}") from None
    sig = sig_path(path)
    if not sig.is_file():
        raise fail(f"step 2: unsigned manifest: {sig} not found",
                   hint="have the manifest signed first; each signer adds a signature to the .sig file")
    try:
        envelope = _read_envelope(sig)
    except dsse.EnvelopeError as exc:
        raise fail(f"step 3: {sig}: {exc.message}") from None
    if envelope.payload != loaded.canonical_json:
        changed = ", ".join(_changed_keys(envelope.payload, loaded.canonical_json))
        raise fail(f"step 4: manifest changed after signing (differs in: {changed})")
    try:
        signers = dsse.verify(envelope, trust, NAMESPACE, at or datetime.now(UTC), PAYLOAD_TYPE)
    except dsse.SignatureVerificationError as exc:
        raise fail(re.sub(r"^step (\d+):", r"step 5.\1:", exc.message)) from None
    return VerifiedManifest(loaded, signers, envelope)
