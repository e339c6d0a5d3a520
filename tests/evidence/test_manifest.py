"""Run manifests: strict YAML, validation with line numbers, paths, canonical digests, signatures."""

from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lumina_audit.evidence import dsse
from lumina_audit.evidence.manifest import (
    MANIFEST_NAMESPACE,
    MANIFEST_PAYLOAD_TYPE,
    AttributeManifest,
    ExtractManifest,
    ManifestError,
    load_manifest,
    resolve_inputs,
    sig_path,
    sign_manifest,
    verify_manifest,
)
from lumina_audit.evidence.trust import TrustStore, format_entry, format_policy, parse_trust
from lumina_audit.signature.pins import Pins
from lumina_audit.signature.space import SignatureConfig

from ..conftest import ROOT

HEX_A = "a" * 64
HEX_B = "0123456789abcdef" * 4

FULL = f"""\
# A complete Extract manifest, every setting written out.
apiVersion: lumina-audit/v1
kind: Extract
metadata:
  name: catalogue-2026.01_a
  description: Reference catalogue, first batch
seed: 422024
model:
  directory: model
  sha256:
    state_dict.bin: {HEX_A}
    compression_state_dict.bin: {HEX_B}
signature:
  method: lumina-gradstats-v1
  layers:
    P: [42, 43, 44, 45, 46, 47]
    M: [12, 13, 14, 15, 16, 17]
  tensors:
    - self_attn.in_proj_weight
    - self_attn.out_proj.weight
    - cross_attention.in_proj_weight
    - cross_attention.out_proj.weight
    - linear1.weight
    - linear2.weight
  stats: [mean, std, l2, max, min, skew]
  codebook_boosts: [0.4, 1.2, 1.3, 1.4]
  conditioning: "null"
  chunk_seconds: 10.0
  min_chunk_seconds: 1.0
  max_seconds: 900.0
  sample_rate: 32000
  resampler:
    function: torchaudio.functional.resample
    lowpass_filter_width: 6
    rolloff: 0.99
    resampling_method: sinc_interp_hann
pins:
  device: cpu
  dtype: float32
  threads: 1
  aten_cpu_capability: avx2
  onednn_max_cpu_isa: AVX2
  mkl_cbwr: null
  onednn: true
  sdpa_backend: math
  cuda:
    deterministic_algorithms: true
    cublas_workspace_config: ":4096:8"
    cudnn_deterministic: true
    cudnn_benchmark: false
    tf32: false
inputs:
  - path: audio
input_extensions: [".wav", ".flac", ".ogg", ".mp3", ".aiff"]
outputs:
  store: out/catalogue.h5
ledger: ledger
"""

# The same manifest: defaults left out, keys reordered, flow style, other quoting, comments, 10 for 10.0.
SAME = f"""
ledger: "ledger"   # where evidence goes
outputs: {{store: 'out/catalogue.h5'}}
inputs: [{{path: audio}}]
kind: Extract
apiVersion: "lumina-audit/v1"
seed: 422024
signature: {{chunk_seconds: 10, layers: {{M: [12, 13, 14, 15, 16, 17]}}}}
model: {{sha256: {{compression_state_dict.bin: "{HEX_B}", state_dict.bin: {HEX_A}}}, directory: model}}
metadata:
  description: "Reference catalogue, first batch"
  name: catalogue-2026.01_a
"""


def base_doc() -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load(FULL)
    return doc


def write(tmp_path: Path, text: str, name: str = "manifest.yaml") -> Path:
    (tmp_path / "model").mkdir(exist_ok=True)
    audio = tmp_path / "audio"
    audio.mkdir(exist_ok=True)
    (audio / "song.wav").write_bytes(b"RIFF")
    path = tmp_path / name
    path.write_text(text)
    return path


def write_doc(tmp_path: Path, doc: dict[str, Any], name: str = "manifest.yaml") -> Path:
    return write(tmp_path, yaml.safe_dump(doc, sort_keys=False), name)


def refused(tmp_path: Path, text: str, pattern: str) -> ManifestError:
    path = write(tmp_path, text)
    with pytest.raises(ManifestError) as info:
        load_manifest(path)
    assert re.search(pattern, info.value.message), info.value.message
    assert "\n" not in info.value.message
    return info.value


def line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


# ---------------------------------------------------------------- loading and validation

def test_full_manifest_loads(tmp_path: Path) -> None:
    loaded = load_manifest(write(tmp_path, FULL))
    m = loaded.manifest
    assert isinstance(m, ExtractManifest)
    assert m.metadata.name == "catalogue-2026.01_a" and m.seed == 422024
    assert m.model.digests() == {"state_dict.bin": HEX_A, "compression_state_dict.bin": HEX_B}
    assert loaded.base_dir == tmp_path.resolve()
    assert loaded.model_dir == tmp_path.resolve() / "model"
    assert loaded.store_path == tmp_path.resolve() / "out" / "catalogue.h5"
    assert loaded.ledger_dir == tmp_path.resolve() / "ledger"
    assert re.fullmatch(r"[0-9a-f]{64}", loaded.digest)
    doc = json.loads(loaded.canonical_json)
    assert doc["model"]["sha256"]["state_dict.bin"] == HEX_A
    assert doc["signature"]["layers"]["P"] == [42, 43, 44, 45, 46, 47]


def test_defaults_are_the_spec_values(tmp_path: Path) -> None:
    loaded = load_manifest(write(tmp_path, SAME))
    config, pins = loaded.config(), loaded.pins()
    # A manifest's omitted pins are those its format was defined with (docs/spec-notes.md E6): its digest covers
    # them, so they are not the program's later defaults (MKL_CBWR=COMPATIBLE, oneDNN off).
    assert config == SignatureConfig() and pins == replace(Pins(), mkl_cbwr=None, onednn=True)
    assert (Pins().mkl_cbwr, Pins().onednn) == ("COMPATIBLE", False)
    # The numbers of spec signature-v1, written out here on purpose.
    assert config.layers_p == (42, 43, 44, 45, 46, 47) and config.layers_m == (12, 13, 14, 15, 16, 17)
    assert config.codebook_boosts == (0.4, 1.2, 1.3, 1.4) and config.conditioning == "null"
    assert (config.chunk_seconds, config.min_chunk_seconds, config.max_seconds) == (10.0, 1.0, 900.0)
    assert config.sample_rate == 32000 and config.stats == ("mean", "std", "l2", "max", "min", "skew")
    assert dict(config.resampler) == {"function": "torchaudio.functional.resample", "lowpass_filter_width": 6,
                                      "rolloff": 0.99, "resampling_method": "sinc_interp_hann"}
    assert (pins.device, pins.threads, pins.aten_cpu_capability, pins.onednn_max_cpu_isa) == ("cpu", 1, "avx2", "AVX2")
    assert pins.mkl_cbwr is None and pins.onednn and pins.sdpa_backend == "math"
    assert pins.cublas_workspace_config == ":4096:8" and not pins.tf32 and not pins.cudnn_benchmark
    m = loaded.manifest
    assert m.input_extensions == (".wav", ".flac", ".ogg", ".mp3", ".aiff")


def test_duplicate_key_names_its_line(tmp_path: Path) -> None:
    text = FULL.replace("seed: 422024\n", "seed: 422024\nledger: elsewhere\n")
    refused(tmp_path, text, rf"manifest\.yaml:{line_of(text, 'ledger: ledger')}: duplicate key 'ledger' "
                            rf"\(first on line {line_of(text, 'elsewhere')}\)$")
    nested = FULL.replace("  threads: 1\n", "  threads: 1\n  threads: 2\n")
    refused(tmp_path, nested, rf":{line_of(nested, 'threads: 2')}: duplicate key 'threads'")


def test_unknown_key_names_line_and_key(tmp_path: Path) -> None:
    text = FULL.replace("  threads: 1", "  treads: 1")
    err = refused(tmp_path, text, rf"manifest\.yaml:{line_of(text, 'treads')}: unknown key 'treads' in pins")
    assert err.exit_code == 2
    text = FULL.replace("seed: 422024", "seed: 422024\nsneed: 1")
    refused(tmp_path, text, rf":{line_of(text, 'sneed')}: unknown key 'sneed' in the manifest")
    text = FULL.replace("    rolloff: 0.99", "    rolloff: 0.99\n    cutoff: 1")
    refused(tmp_path, text, rf":{line_of(text, 'cutoff')}: unknown key 'cutoff' in signature.resampler")
    text = FULL.replace("  - path: audio", "  - path: audio\n    songid: x")
    refused(tmp_path, text, rf":{line_of(text, 'songid')}: unknown key 'songid' in inputs\[0\]")


def at_line(text: str, needle: str | None, pattern: str) -> str:
    """``pattern`` with ``{n}`` replaced by the line of ``needle`` in ``text``."""
    return pattern.replace("{n}", str(line_of(text, needle))) if needle else pattern


@pytest.mark.parametrize(("old", "new", "needle", "pattern"), [
    ("apiVersion: lumina-audit/v1", "apiVersion: lumina-audit/v3", "apiVersion",
     r":{n}: apiVersion: must be one of 'lumina-audit/v1', 'lumina-audit/v2' \(got 'lumina-audit/v3'\)"),
    ("kind: Extract", "kind: Extrakt", "kind:", r":{n}: unknown kind 'Extrakt' \(expected one of Extract"),
    ("kind: Extract\n", "", None, r"manifest\.yaml: missing key 'kind'"),
    ("seed: 422024\n", "", None, r"manifest\.yaml: missing key 'seed' in the manifest"),
    (f"    state_dict.bin: {HEX_A}\n", "", "  sha256:", r":{n}: missing key 'state_dict\.bin' in model\.sha256"),
    ("seed: 422024", "seed: 42", "seed:", r":{n}: seed: must be 422024"),
    ("seed: 422024", "seed: '422024'", "seed:", r":{n}: seed: Input should be a valid integer"),
    ("seed: 422024", "seed: true", "seed:", r":{n}: seed: Input should be a valid integer"),
    (f"state_dict.bin: {HEX_A}", f"state_dict.bin: {HEX_A.upper()}", "state_dict.bin:",
     r':{n}: model\.sha256\["state_dict\.bin"\]: must be 64 lowercase hex'),
    (f"state_dict.bin: {HEX_A}", f"state_dict.bin: {HEX_A[:-1]}", "state_dict.bin:",
     r":{n}: .*must be 64 lowercase hex"),
    (f"state_dict.bin: {HEX_A}", f"state_dict.bin: {HEX_A}\n    optimizer.bin: {HEX_A}", "optimizer",
     r":{n}: unknown key 'optimizer\.bin' in model\.sha256"),
    ("  name: catalogue-2026.01_a", "  name: a catalogue", "name:", r":{n}: metadata\.name: must be 1-100 characters"),
    ("  name: catalogue-2026.01_a", "  name: " + "n" * 101, "name:", r":{n}: metadata\.name"),
    ("    P: [42, 43, 44, 45, 46, 47]", "    P: [42, 43, 44, 45, 46]", "    P:",
     r":{n}: invalid signature settings: layers_p must be 6 distinct"),
    ("    M: [12, 13, 14, 15, 16, 17]", "    M: [12, 13, 14, 15, 16, 16]", "    M:",
     r":{n}: invalid signature settings: layers_m"),
    ("  codebook_boosts: [0.4, 1.2, 1.3, 1.4]", "  codebook_boosts: [0.4, 1.2, 1.3]", "codebook_boosts",
     r":{n}: .*codebook_boosts must"),
    ("  sample_rate: 32000", "  sample_rate: 44100", "sample_rate", r":{n}: invalid signature settings: sample_rate"),
    ("    - linear2.weight", "    - linear3.weight", "  tensors:", r":{n}: invalid signature settings: tensors must"),
    ('  conditioning: "null"', "  conditioning: text", "conditioning", r":{n}: .*conditioning 'text' is not supported"),
    ("  chunk_seconds: 10.0", "  chunk_seconds: .nan", "  chunk_seconds:",
     r":{n}: signature\.chunk_seconds: Input should be a finite"),
    ("  chunk_seconds: 10.0", "  chunk_seconds: '10'", "  chunk_seconds:", r":{n}: signature\.chunk_seconds: "),
    ("  method: lumina-gradstats-v1", "  method: lumina-gradstats-v2", "method:", r":{n}: signature\.method"),
    ("    rolloff: 0.99", "    rolloff: 2.0", "  resampler:", r":{n}: invalid signature settings: resampler rolloff"),
    ("  threads: 1", "  threads: 0", "threads:", r":{n}: invalid pins: threads must be between 1 and 256"),
    ("    tf32: false", "    tf32: true", "  cuda:", r":{n}: invalid pins: TF32"),
    ("  device: cpu", "  device: tpu", "device:", r":{n}: pins\.device: Input should be 'cpu' or 'cuda'"),
    ("  - path: audio", "  - path: audio\n    sha256: xyz", "xyz", r":{n}: inputs\[0\]\.sha256: must be 64 lowercase"),
    ("  - path: audio", "  - path: ''", "path: ''", r":{n}: inputs\[0\]\.path: must be a non-empty path"),
    ("inputs:\n  - path: audio", "inputs: []", "inputs:", r":{n}: inputs: .*at least 1 item"),
    ("input_extensions: [", "input_extensions: [wav, ", "input_extensions",
     r":{n}: input_extensions\[0\]: 'wav' is not a file extension"),
])
def test_invalid_values_refused_with_line(tmp_path: Path, old: str, new: str, needle: str | None,
                                          pattern: str) -> None:
    assert old in FULL
    text = FULL.replace(old, new, 1)
    refused(tmp_path, text, at_line(text, needle, pattern))


def test_several_errors_are_counted(tmp_path: Path) -> None:
    text = FULL.replace("  threads: 1", "  treads: 1").replace("seed: 422024", "seed: 1")
    refused(tmp_path, text, r"\(and 1 more error\(s\)\)$")


@pytest.mark.parametrize(("text", "pattern"), [
    ("", r"empty manifest"),
    ("# only a comment\n", r"empty manifest"),
    ("- a\n- b\n", r"a manifest is a YAML mapping"),
    ("a: 1\n---\nb: 2\n", r"invalid YAML"),
    ("a: [1, 2\n", r"invalid YAML"),
    ("a: &x 1\nb: *x\n", r":1: invalid YAML: YAML anchors and aliases are not allowed"),
    ("base: &b {x: 1}\nother:\n  <<: *b\n", r":1: invalid YAML: YAML anchors"),
    ("a: 1\nb:\n  <<: {x: 1}\n", r":3: YAML merge keys \(<<\) are not allowed"),
    ("a: 1\n1: x\n", r":2: keys must be strings"),
    ("a: 1\ntrue: x\n", r":2: keys must be strings"),
    ("a: 1\n? [x]\n: y\n", r":2: keys must be strings"),
    ("a: 2026-01-01\n", r":1: dates and times must be quoted"),
    ("a: !!binary aGVsbG8=\n", r":1: YAML tag .*binary is not allowed"),
    ("a: !custom x\n", r":1: YAML tag !custom is not allowed"),
    ("a: !!python/object:os.system x\n", r"YAML tag .*python/object.* is not allowed"),
])
def test_strict_yaml(tmp_path: Path, text: str, pattern: str) -> None:
    refused(tmp_path, text, pattern)


def test_not_utf8_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(b"a: \xff\n")
    with pytest.raises(ManifestError, match="not UTF-8"):
        load_manifest(path)
    with pytest.raises(ManifestError, match="cannot read manifest"):
        load_manifest(tmp_path / "absent.yaml")


# ---------------------------------------------------------------- paths

@pytest.mark.parametrize(("old", "new", "pattern"), [
    ("ledger: ledger", "ledger: ../ledger", r":{n}: ledger: '\.\./ledger' must not contain '\.\.'"),
    ("ledger: ledger", "ledger: a/../../ledger", r":{n}: ledger: .*must not contain '\.\.'"),
    ("ledger: ledger", "ledger: a/../b", r":{n}: ledger: .*must not contain '\.\.'"),
    ("ledger: ledger", "ledger: /var/ledger", r":{n}: ledger: .*must be a relative path"),
    ("ledger: ledger", "ledger: .", r":{n}: ledger: '\.' resolves outside the manifest's folder \(to the folder"),
    ("  store: out/catalogue.h5", "  store: ../out.h5", r":{n}: outputs\.store: .*must not contain '\.\.'"),
    ("  store: out/catalogue.h5", "  store: /tmp/out.h5", r":{n}: outputs\.store: .*must be a relative path"),
    ("  store: out/catalogue.h5", '  store: "out/x\\x01.h5"', r":{n}: outputs\.store: .*control characters"),
])
def test_output_and_ledger_paths_stay_inside(tmp_path: Path, old: str, new: str, pattern: str) -> None:
    assert old in FULL
    text = FULL.replace(old, new)
    refused(tmp_path, text, at_line(text, new.split(":")[0], pattern))


def test_symlink_escape_refused(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    run = tmp_path / "run"
    run.mkdir()
    (run / "escape").symlink_to(outside, target_is_directory=True)
    (run / "inner").mkdir()
    (run / "fine").symlink_to(run / "inner", target_is_directory=True)
    refused(run, FULL.replace("ledger: ledger", "ledger: escape/ledger"),
            rf":{line_of(FULL, 'ledger:')}: ledger: 'escape/ledger' resolves outside the manifest's folder")
    refused(run, FULL.replace("store: out/catalogue.h5", "store: escape"),
            rf":{line_of(FULL, 'store:')}: outputs\.store: .*resolves outside")
    (run / "out.h5").symlink_to(outside / "out.h5")
    refused(run, FULL.replace("store: out/catalogue.h5", "store: out.h5"), r"outputs\.store: .*resolves outside")
    (run / "loop").symlink_to(run / "loop")
    refused(run, FULL.replace("ledger: ledger", "ledger: loop/x"),
            r"ledger: 'loop/x' (cannot be resolved|resolves outside)")
    loaded = load_manifest(write(run, FULL.replace("ledger: ledger", "ledger: fine/ledger")))
    assert loaded.ledger_dir == (run / "inner" / "ledger").resolve()
    # A link created after loading is caught when the path is used.
    loaded = load_manifest(write(run, FULL.replace("ledger: ledger", "ledger: later/ledger")))
    (run / "later").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ManifestError, match="resolves outside"):
        _ = loaded.ledger_dir


def test_model_and_inputs_may_be_absolute(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "model").mkdir(parents=True)
    (elsewhere / "x.wav").write_bytes(b"")
    run = tmp_path / "run"
    run.mkdir()
    text = FULL.replace("  directory: model", f"  directory: {elsewhere / 'model'}").replace(
        "  - path: audio", f"  - path: {elsewhere / 'x.wav'}")
    loaded = load_manifest(write(run, text))
    assert loaded.model_dir == (elsewhere / "model").resolve()
    assert [r.path for r in resolve_inputs(loaded)] == [(elsewhere / "x.wav").resolve()]


# ---------------------------------------------------------------- canonical digest

def test_digest_ignores_layout_order_comments_and_defaults(tmp_path: Path) -> None:
    a = load_manifest(write(tmp_path, FULL, "a.yaml"))
    b = load_manifest(write(tmp_path, SAME, "b.yaml"))
    c = load_manifest(write_doc(tmp_path, base_doc(), "c.yaml"))
    assert a.canonical_json == b.canonical_json == c.canonical_json
    assert a.digest == b.digest == c.digest
    assert a.manifest == b.manifest


MUTATIONS: list[tuple[tuple[str | int, ...], Any]] = [
    (("metadata", "name"), "catalogue-2026.01_b"),
    (("metadata", "description"), "Reference catalogue, first batch."),
    (("model", "directory"), "model/"),
    (("model", "sha256", "state_dict.bin"), "b" * 64),
    (("signature", "layers", "P"), [41, 43, 44, 45, 46, 47]),
    (("signature", "layers", "M"), [13, 12, 14, 15, 16, 17]),
    (("signature", "codebook_boosts"), [0.4, 1.2, 1.3, 1.5]),
    (("signature", "chunk_seconds"), 5.0),
    (("signature", "min_chunk_seconds"), 2.0),
    (("signature", "max_seconds"), 901.0),
    (("signature", "resampler", "lowpass_filter_width"), 7),
    (("signature", "resampler", "rolloff"), 0.98),
    (("signature", "resampler", "resampling_method"), "sinc_interp_kaiser"),
    (("pins", "device"), "cuda"),
    (("pins", "threads"), 2),
    (("pins", "aten_cpu_capability"), None),
    (("pins", "onednn_max_cpu_isa"), "AVX512_CORE"),
    (("pins", "mkl_cbwr"), "COMPATIBLE"),
    (("pins", "onednn"), False),
    (("pins", "cuda", "cublas_workspace_config"), ":16:8"),
    (("inputs", 0, "path"), "audio/"),
    (("input_extensions",), [".wav", ".flac", ".ogg", ".mp3"]),
    (("outputs", "store"), "out/catalogue2.h5"),
    (("ledger",), "ledger2"),
]


def mutate(doc: dict[str, Any], loc: tuple[str | int, ...], value: Any) -> dict[str, Any]:
    new = copy.deepcopy(doc)
    target: Any = new
    for part in loc[:-1]:
        target = target[part]
    target[loc[-1]] = value
    return new


@pytest.mark.parametrize(("loc", "value"), MUTATIONS, ids=[".".join(map(str, m[0])) for m in MUTATIONS])
def test_any_value_change_changes_digest(tmp_path: Path, loc: tuple[str | int, ...], value: Any) -> None:
    before = load_manifest(write_doc(tmp_path, base_doc(), "a.yaml"))
    after = load_manifest(write_doc(tmp_path, mutate(base_doc(), loc, value), "b.yaml"))
    assert before.digest != after.digest


def test_song_id_and_sha256_change_digest(tmp_path: Path) -> None:
    doc = base_doc()
    doc["inputs"] = [{"path": "audio/song.wav"}]
    digests = {load_manifest(write_doc(tmp_path, d, "m.yaml")).digest for d in (
        doc, mutate(doc, ("inputs", 0, "song_id"), "s1"), mutate(doc, ("inputs", 0, "sha256"), HEX_A))}
    assert len(digests) == 3


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=60))
def test_description_round_trips_and_is_covered(tmp_path: Path, description: str) -> None:
    base = load_manifest(write_doc(tmp_path, mutate(base_doc(), ("metadata", "description"), ""), "a.yaml"))
    loaded = load_manifest(write_doc(tmp_path, mutate(base_doc(), ("metadata", "description"), description), "b.yaml"))
    assert loaded.manifest.metadata.description == description
    assert (loaded.digest == base.digest) == (description == "")


# ---------------------------------------------------------------- signing

NOW = datetime.now(UTC)


def trust_of(*entries: tuple[str, Ed25519PrivateKey, list[str]], after: datetime | None = None,
             before: datetime | None = None, policy: str = "") -> TrustStore:
    lines = [format_entry(p, ns, k.public_key(), after, before) for p, k, ns in entries] + ([policy] if policy else [])
    return parse_trust("\n".join(lines) + "\n", "trust")


@pytest.fixture(scope="module")
def operator() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def reviewer() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def trust(operator: Ed25519PrivateKey, reviewer: Ed25519PrivateKey) -> TrustStore:
    return trust_of(("operator", operator, [MANIFEST_NAMESPACE]),
                    ("reviewer", reviewer, [MANIFEST_NAMESPACE, "lumina-audit/ledger"]))


def fails(path: Path, trust: TrustStore, pattern: str, at: datetime | None = None) -> None:
    with pytest.raises(dsse.SignatureVerificationError) as info:
        verify_manifest(path, trust, at)
    assert re.search(pattern, info.value.message), info.value.message
    assert info.value.exit_code == 1


def test_sign_then_verify(tmp_path: Path, operator: Ed25519PrivateKey, reviewer: Ed25519PrivateKey,
                          trust: TrustStore) -> None:
    path = write(tmp_path, FULL)
    sig = sign_manifest(path, operator)
    assert sig == sig_path(path) == tmp_path / "manifest.yaml.sig"
    fails(path, trust, r"^step 6: signing policy not met: .*missing: 1 more distinct signer")  # the default: two
    assert sign_manifest(path, reviewer) == sig
    verified = verify_manifest(path, trust)
    assert [s.principal for s in verified.signers] == ["operator", "reviewer"]
    assert verified.envelope.payload == verified.loaded.canonical_json
    assert verified.envelope.payload_type == MANIFEST_PAYLOAD_TYPE
    assert not list(tmp_path.glob(".*.tmp"))
    # Reformatting, reordering and comments keep the signature valid.
    path.write_text(SAME)
    assert verify_manifest(path, trust).loaded.digest == verified.loaded.digest


def test_second_signer(tmp_path: Path, operator: Ed25519PrivateKey, reviewer: Ed25519PrivateKey,
                       trust: TrustStore) -> None:
    path = write(tmp_path, FULL)
    sign_manifest(path, operator)
    path.write_text(SAME)  # same values: the reviewer may sign the reformatted file
    sign_manifest(path, reviewer)
    assert [s.principal for s in verify_manifest(path, trust).signers] == ["operator", "reviewer"]
    with pytest.raises(dsse.EnvelopeError, match="already signed"):
        sign_manifest(path, reviewer)
    # A reviewer key unknown to this trust file spoils the pair.
    fails(path, trust_of(("operator", operator, [MANIFEST_NAMESPACE])),
          r"^step 5\.3: signature 2 of 2: .*not in the trust")


def test_unsigned(tmp_path: Path, trust: TrustStore) -> None:
    fails(write(tmp_path, FULL), trust, r"^step 2: unsigned manifest")


def test_invalid_manifest_is_step_1(tmp_path: Path, operator: Ed25519PrivateKey, trust: TrustStore) -> None:
    path = write(tmp_path, FULL)
    sign_manifest(path, operator)
    path.write_text(FULL.replace("  threads: 1", "  treads: 1"))
    fails(path, trust, rf"^step 1: .*manifest\.yaml:{line_of(FULL, 'threads')}: unknown key 'treads' in pins")


def test_broken_envelope_is_step_3(tmp_path: Path, trust: TrustStore) -> None:
    path = write(tmp_path, FULL)
    sig_path(path).write_text('{"payload": "", "payloadType": "x"}')
    fails(path, trust, r"^step 3: .*missing member\(s\) signatures")


def test_unknown_key(tmp_path: Path, trust: TrustStore) -> None:
    path = write(tmp_path, FULL)
    sign_manifest(path, Ed25519PrivateKey.generate())
    fails(path, trust, r"^step 5\.3: signature 1 of 1: key .* is not in the trust file")


def test_expired_and_not_yet_valid_key(tmp_path: Path, operator: Ed25519PrivateKey) -> None:
    path = write(tmp_path, FULL)
    sign_manifest(path, operator)
    expired = trust_of(("operator", operator, [MANIFEST_NAMESPACE]), after=NOW - timedelta(days=30),
                       before=NOW - timedelta(days=1))
    fails(path, expired, r"^step 5\.3: .*\(operator\) is not valid at")
    future = trust_of(("operator", operator, [MANIFEST_NAMESPACE]), after=NOW + timedelta(days=1),
                      policy=format_policy("default", 1))  # one signer suffices when the policy says so
    fails(path, future, r"^step 5\.3: .*is not valid at")
    assert verify_manifest(path, future, at=NOW + timedelta(days=2)).signers[0].principal == "operator"


def test_wrong_namespace(tmp_path: Path, operator: Ed25519PrivateKey) -> None:
    path = write(tmp_path, FULL)
    sign_manifest(path, operator)
    fails(path, trust_of(("operator", operator, ["lumina-audit/ledger"])),
          r"^step 5\.3: .*\(operator\) is not trusted for lumina-audit/manifest")


def test_value_changed_after_signing(tmp_path: Path, operator: Ed25519PrivateKey, reviewer: Ed25519PrivateKey,
                                     trust: TrustStore) -> None:
    path = write(tmp_path, FULL)
    sign_manifest(path, operator)
    path.write_text(FULL.replace("  threads: 1", "  threads: 2").replace("seed: 422024", "seed:   422024 # same"))
    fails(path, trust, r"^step 4: manifest changed after signing \(differs in: pins\)")
    path.write_text(FULL.replace("rolloff: 0.99", "rolloff: 0.98").replace("ledger: ledger", "ledger: ledger2"))
    fails(path, trust, r"^step 4: .*\(differs in: ledger, signature\)")
    # Adding a signature to a changed manifest is refused, and the .sig is left as it was.
    before = sig_path(path).read_bytes()
    with pytest.raises(ManifestError, match=r"manifest changed since the existing signatures .*ledger, signature"):
        sign_manifest(path, reviewer)
    assert sig_path(path).read_bytes() == before


def test_payload_type_checked(tmp_path: Path, operator: Ed25519PrivateKey, trust: TrustStore) -> None:
    path = write(tmp_path, FULL)
    loaded = load_manifest(path)
    env = dsse.sign(dsse.Envelope(loaded.canonical_json, "application/json"), operator)
    sig_path(path).write_text(env.to_json())
    fails(path, trust, r"^step 5\.1: payload type 'application/json'")
    with pytest.raises(ManifestError, match="is not a manifest's"):
        sign_manifest(path, operator)


def test_sig_file_permissions(tmp_path: Path, operator: Ed25519PrivateKey) -> None:
    sig = sign_manifest(write(tmp_path, FULL), operator)
    assert os.stat(sig).st_mode & 0o777 == 0o644
    assert dsse.Envelope.from_json(sig.read_text()).payload_type == MANIFEST_PAYLOAD_TYPE


# ---------------------------------------------------------------- inputs

def test_resolve_inputs(tmp_path: Path) -> None:
    audio = tmp_path / "audio"
    audio.mkdir()
    for name in ("b.wav", "a.FLAC", "c.mp3", "notes.txt", "cover.jpg", "d.aiff", "e.ogg"):
        (audio / name).write_bytes(b"x")
    (audio / "sub").mkdir()
    (audio / "sub" / "deep.wav").write_bytes(b"x")
    (audio / "folder.wav").mkdir()  # a folder, even with an audio extension, is not taken
    (tmp_path / "single.wav").write_bytes(b"x")
    text = FULL.replace("  - path: audio", f"  - path: audio\n  - path: single.wav\n    song_id: solo\n"
                                           f"    sha256: {HEX_B}")
    loaded = load_manifest(write(tmp_path, text))
    got = resolve_inputs(loaded)
    assert [(r.path.name, r.song_id, r.expected_sha256) for r in got] == [
        ("a.FLAC", "a", None), ("b.wav", "b", None), ("c.mp3", "c", None), ("d.aiff", "d", None),
        ("e.ogg", "e", None), ("song.wav", "song", None), ("single.wav", "solo", HEX_B)]
    assert all(r.path.is_absolute() for r in got)


def test_resolve_inputs_extensions(tmp_path: Path) -> None:
    loaded = load_manifest(write(tmp_path, FULL.replace('input_extensions: [".wav", ', 'input_extensions: [".txt", ')))
    (tmp_path / "audio" / "n.txt").write_text("x")
    assert [r.song_id for r in resolve_inputs(loaded)] == ["n"]  # .wav is no longer listed


@pytest.mark.parametrize(("inputs", "pattern"), [
    ("  - path: missing.wav", r"manifest\.yaml:{n}: input 'missing\.wav' not found"),
    ("  - path: audio\n  - path: nowhere/", r":{m}: input 'nowhere/' not found"),
    ("  - path: empty", r":{n}: folder 'empty' holds no file with an extension in \.wav"),
    ("  - path: audio\n    song_id: x", r":{n}: 'audio' is a folder; song_id and sha256 are only allowed for files"),
    (f"  - path: audio\n    sha256: {HEX_A}", r"is a folder"),
    ("  - path: audio\n  - path: other/song.flac", r"duplicate song id 'song': .*song\.wav and .*song\.flac"),
    ("  - path: audio/song.wav\n  - path: audio/song.wav", r"duplicate song id 'song'"),
    ("  - path: audio\n  - path: x.wav\n    song_id: song", r"duplicate song id 'song'"),
])
def test_resolve_inputs_refusals(tmp_path: Path, inputs: str, pattern: str) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "song.flac").write_bytes(b"x")
    (tmp_path / "x.wav").write_bytes(b"x")
    loaded = load_manifest(write(tmp_path, FULL.replace("  - path: audio", inputs)))
    n = line_of(FULL, "- path: audio")
    pattern = pattern.replace("{n}", str(n)).replace("{m}", str(n + 1))
    with pytest.raises(ManifestError) as info:
        resolve_inputs(loaded)
    assert re.search(pattern, info.value.message), info.value.message


def _fill(text: str) -> str:
    for p in set(re.findall(r"<[^<>]+>", text)):
        if "sha256" in p:
            value = "ab" * 32
        elif p.startswith("</"):
            value = "/models/large" + p[1:-1]
        elif p.startswith("<https"):
            value = "https://tsa.example.org/rfc3161"
        else:
            value = "case-x"
        text = text.replace(p, value)
    return text


@pytest.mark.parametrize("kind", ["extract", "calibrate", "attribute"])
def test_musicgen_large_templates_validate_once_filled_in(tmp_path: Path, kind: str) -> None:
    text = (ROOT / "manifests" / "musicgen-large" / f"{kind}.yaml").read_text()
    assert {"<sha256 of state_dict.bin>", "</absolute/path/to/musicgen-large>"} <= set(re.findall(r"<[^<>]+>", text))
    with pytest.raises(ManifestError):  # as shipped, the placeholders are refused
        load_manifest(write(tmp_path, text, f"{kind}.yaml"))
    loaded = load_manifest(write(tmp_path, _fill(text), f"{kind}.yaml"))
    assert loaded.pins().device == "cuda" and loaded.config().layers_p == (42, 43, 44, 45, 46, 47)
    assert loaded.manifest.kind.lower() == kind
    assert "<" not in loaded.canonical_json.decode()


def test_musicgen_large_templates_share_one_signature_space(tmp_path: Path) -> None:
    """The three templates pin the same model, signature settings and pins; the store holds the compared method."""
    loaded = [load_manifest(write(tmp_path, _fill((ROOT / "manifests/musicgen-large" / f"{kind}.yaml").read_text()),
                                  f"{kind}.yaml")) for kind in ("extract", "calibrate", "attribute")]
    assert all(m.api_version == "lumina-audit/v2" for m in loaded)
    docs = [(m.manifest.model, m.config(), m.manifest.pins) for m in loaded]
    assert docs[0] == docs[1] == docs[2]
    extract, calibrate, attribute = loaded
    assert [m.name for m in extract.methods()] == ["lumina-gradproj-v1", "lumina-gradstats-v1"]
    assert calibrate.spaces() == attribute.spaces() == extract.spaces()[:1]  # gradproj, the primary method


# ---------------------------------------------------------------- certificates in an Attribute manifest

ATTRIBUTE = f"""apiVersion: lumina-audit/v1
kind: Attribute
metadata: {{name: case}}
seed: 422024
model: {{directory: model, sha256: {{state_dict.bin: {HEX_A}, compression_state_dict.bin: {HEX_B}}}}}
catalog: {{path: out/catalog.h5}}
calibration: {{path: out/calibration.json}}
queries: [{{path: audio}}]
certificates:
  signer: {{key: pki/signer.key, cert: pki/signer.pem}}
outputs: {{reports: out/reports, certificates: out/certificates}}
ledger: ledger
"""


def test_attribute_manifest_with_certificates(tmp_path: Path) -> None:
    loaded = load_manifest(write(tmp_path, ATTRIBUTE))
    m = loaded.manifest
    assert isinstance(m, AttributeManifest) and m.certificates is not None
    assert (m.certificates.page_size, m.certificates.timestamp_url, m.certificates.signer.chain) == ("A4", None, ())
    assert loaded.outputs == {"reports": tmp_path / "out" / "reports",
                              "certificates": tmp_path / "out" / "certificates"}
    without = load_manifest(write(tmp_path, ATTRIBUTE.replace("certificates:\n  signer: {key: pki/signer.key, "
                                  "cert: pki/signer.pem}\n", "").replace(", certificates: out/certificates", ""),
                                  "plain.yaml"))
    assert set(without.outputs) == {"reports"} and without.digest != loaded.digest
    letter = load_manifest(write(tmp_path, ATTRIBUTE.replace("cert: pki/signer.pem}", "cert: pki/signer.pem}\n"
                                                             "  page_size: Letter"), "letter.yaml"))
    assert letter.digest != loaded.digest


@pytest.mark.parametrize(("old", "new", "pattern"), [
    (", certificates: out/certificates", "", r":9: .*'certificates' and 'outputs.certificates' go together"),
    ("cert: pki/signer.pem}", "cert: pki/signer.pem, pkcs12: p.p12}", r":10: .*either key and cert, or pkcs12"),
    ("{key: pki/signer.key, cert: pki/signer.pem}", "{key: pki/signer.key}", r":10: .*give key and cert"),
    ("cert: pki/signer.pem}", "cert: pki/signer.pem, passphrase_env: 'X Y'}", r"name of an environment variable"),
    ("cert: pki/signer.pem}", "cert: pki/signer.pem}\n  timestamp_url: ftp://tsa", r":11: .*http:// or https://"),
    ("cert: pki/signer.pem}", "cert: pki/signer.pem}\n  page_size: A3", r":11: .*page_size"),
    ("cert: pki/signer.pem}", "cert: pki/signer.pem, cert_sha256: abc}", r"64 lowercase hex"),
    ("certificates: out/certificates", "certificates: ../certs", r"must not contain '..'"),
    ("cert: pki/signer.pem}", "cert: pki/signer.pem, password: x}", r"unknown key 'password'"),
])
def test_attribute_certificate_settings_refused(tmp_path: Path, old: str, new: str, pattern: str) -> None:
    assert old in ATTRIBUTE
    refused(tmp_path, ATTRIBUTE.replace(old, new), pattern)
