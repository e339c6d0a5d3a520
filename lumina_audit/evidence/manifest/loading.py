"""Loading a manifest: strict YAML, validation, canonical JSON and its digest, and its input files.

A manifest's identity is the SHA-256 of the RFC 8785 canonical JSON of the validated model,
defaults included, so reformatting the YAML, reordering keys or adding comments keeps a
signature valid and any change of value breaks it. Every refusal is one
:class:`~.reader.ManifestError` naming the file and line.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import rfc8785
from pydantic import (
    ValidationError,
)

from ...signature.methods import SignatureMethod, get_method
from ...signature.pins import Pins
from ...signature.space import SignatureConfig, SignatureSpace
from .execution import resources_problem
from .models import (
    ADAPTERS,
    API_V1,
    API_VERSIONS,
    KINDS,
    AttributeManifest,
    ExtractManifestV2,
    InputSpec,
    Manifest,
)
from .reader import Loc, ManifestError, read_yaml

__all__ = ["LoadedManifest", "ResolvedInput", "load_manifest", "resolve_inputs"]


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

    @property
    def api_version(self) -> str:
        return self.manifest.apiVersion

    def spaces(self) -> tuple[SignatureSpace, ...]:
        """The signature space of each method, from the manifest's model digests (before any model loads)."""
        config = self.config()
        return tuple(config.space(self.manifest.model.digests(), m) for m in self.methods())

    def methods(self) -> tuple[SignatureMethod, ...]:
        """The signature methods the run computes, the primary one first (``lumina-audit/v1``: gradstats)."""
        return tuple(get_method(name) for name in self.manifest.signature.method_names())

    def pins(self) -> Pins:
        return self.manifest.pins.to_pins()


def load_manifest(path: str | os.PathLike[str]) -> LoadedManifest:
    """Read, validate and canonicalise a manifest; every refusal is one ManifestError naming file and line."""
    source = Path(path)
    doc, lines = read_yaml(source)
    api = doc.get("apiVersion", API_V1)  # a missing apiVersion is reported by the validation below
    if not isinstance(api, str) or api not in ADAPTERS:
        known = ", ".join(repr(v) for v in API_VERSIONS)
        shown = repr(api) if isinstance(api, str | int | float | bool) and len(repr(api)) < 80 else type(api).__name__
        raise _error(source, lines, ("apiVersion",), f"apiVersion: must be one of {known} (got {shown})")
    try:
        manifest = ADAPTERS[api].validate_python(doc)
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
    if isinstance(manifest, ExtractManifestV2) and (problem := resources_problem(manifest.execution,
                                                                                 manifest.pins)) is not None:
        raise _error(source, lines, *problem)
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
    #: A positive's source song ids and transform, when the manifest gives them.
    sources: tuple[str, ...] = ()
    transform: str | None = None


def resolve_inputs(loaded: LoadedManifest, field_name: str | None = None, *,
                   allow_missing: bool = False) -> list[ResolvedInput]:
    """Input files in manifest order; a folder gives its files with the listed extensions, by name, non-recursive.

    A file's song id is the manifest's ``song_id`` or the file name without its extension.
    ``field_name``: the list to resolve (default: the kind's audio inputs; ``positives`` for a
    version 2 Calibrate's derived copies, whose labels travel with them). A listed file that
    does not exist is refused, or with ``allow_missing`` kept in the list for the caller to
    report (an Extract under ``on_bad_input: skip``); a missing folder is always refused.
    """
    from ...signature.codes import CODES_SUFFIX

    m = loaded.manifest
    field_name = field_name or {"Extract": "inputs", "Calibrate": "controls", "Attribute": "queries"}[m.kind]
    specs: tuple[InputSpec, ...] = getattr(m, field_name, ())
    extensions = {e.lower() for e in m.input_extensions}
    if field_name in ("positives", "negatives", "queries"):  # generated pieces may be carried as their codes
        extensions.add(CODES_SUFFIX)
    result: list[ResolvedInput] = []
    for i, spec in enumerate(specs):
        loc: Loc = (field_name, i, "path")
        target = loaded.anywhere(spec.path)
        if target.is_dir():
            labels = (getattr(spec, "sources", None), getattr(spec, "transform", None))
            if spec.song_id is not None or spec.sha256 is not None or labels != (None, None):
                allowed = "song_id, sha256, sources and transform are" if field_name == "positives" else \
                    "song_id and sha256 are"
                raise _error(loaded.path, loaded.lines, loc, f"{spec.path!r} is a folder; {allowed} only allowed for "
                             "files")
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
        elif target.is_file() or (allow_missing and not target.exists() and not spec.path.endswith("/")):
            result.append(ResolvedInput(target, spec.song_id or target.stem, spec.sha256,
                                        tuple(getattr(spec, "sources", None) or ()), getattr(spec, "transform", None)))
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
