"""Manifests ``lumina-audit/v2``: the signature methods of an Extract, the one method of a Calibrate or Attribute.

``lumina-audit/v1`` keeps its meaning and its canonical JSON: a manifest signed before version 2
existed keeps its digest (the literals were computed by the code of commit f02eb06).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lumina_audit.evidence.manifest import (
    AttributeManifest,
    CalibrateManifest,
    ExtractManifest,
    load_manifest,
)
from lumina_audit.signature.methods import GRADPROJ, GRADSTATS

from .test_manifest import line_of, refused, write

HEX_A, HEX_B = "a" * 64, "b" * 64
HEAD = f"""metadata: {{name: case}}
seed: 422024
model:
  directory: model
  sha256: {{state_dict.bin: {HEX_A}, compression_state_dict.bin: {HEX_B}}}
ledger: ledger
"""
EXTRACT = ("apiVersion: lumina-audit/v2\nkind: Extract\n" + HEAD +
           "inputs: [{path: audio}]\noutputs: {store: out/c.h5}\n")
CALIBRATE = ("apiVersion: lumina-audit/v2\nkind: Calibrate\n" + HEAD +
             "catalog: {path: out/c.h5}\ncontrols: [{path: audio}]\noutputs: {calibration: out/cal.json}\n")
ATTRIBUTE = ("apiVersion: lumina-audit/v2\nkind: Attribute\n" + HEAD + "catalog: {path: out/c.h5}\n"
             "calibration: {path: out/cal.json}\nqueries: [{path: audio}]\noutputs: {reports: out/r}\n")

# The demo's version 1 Calibrate and Attribute manifests (commit f02eb06), filled in.
V1_CALIBRATE = f"""apiVersion: lumina-audit/v1
kind: Calibrate
metadata:
  name: demo-calibration
  description: Noise floor of the demo catalog from control tracks that are not in it
seed: 422024
model:
  directory: "/m"
  sha256:
    state_dict.bin: {HEX_A}
    compression_state_dict.bin: {HEX_B}
catalog:
  path: out/catalog.h5
controls:
  - path: audio/controls
calibration:
  k: 3.0
  min_controls: 10
outputs:
  calibration: out/calibration.json
ledger: ledger
"""
V1_CALIBRATE_DIGEST = "0eb277ea33b035d2ae533690598c5697c323a6fffc773cf9633b18670cd60626"


def test_version_1_manifests_keep_their_digest_and_meaning(tmp_path: Path) -> None:
    (tmp_path / "audio" / "controls").mkdir(parents=True)
    loaded = load_manifest(write(tmp_path, V1_CALIBRATE))
    assert loaded.digest == V1_CALIBRATE_DIGEST
    assert loaded.api_version == "lumina-audit/v1" and loaded.methods() == (GRADSTATS,)
    assert json.loads(loaded.canonical_json)["signature"]["method"] == "lumina-gradstats-v1"


def test_v2_extract_defaults_to_both_methods_gradproj_first(tmp_path: Path) -> None:
    loaded = load_manifest(write(tmp_path, EXTRACT))
    assert isinstance(loaded.manifest, ExtractManifest) and loaded.methods() == (GRADPROJ, GRADSTATS)
    doc = json.loads(loaded.canonical_json)
    assert doc["signature"]["methods"] == ["lumina-gradproj-v1", "lumina-gradstats-v1"]
    assert "method" not in doc["signature"]
    spaces = loaded.spaces()
    assert [s.as_dict()["method"] for s in spaces] == ["lumina-gradproj-v1", "lumina-gradstats-v1"]
    one = load_manifest(write(tmp_path, EXTRACT + "signature: {methods: [lumina-gradstats-v1]}\n", "one.yaml"))
    assert one.methods() == (GRADSTATS,) and one.digest != loaded.digest
    swapped = load_manifest(write(tmp_path, EXTRACT.replace("ledger: ledger", "ledger: ledger\nsignature:\n  "
                                                            "methods: [lumina-gradstats-v1, lumina-gradproj-v1]"),
                                  "swapped.yaml"))
    assert swapped.methods() == (GRADSTATS, GRADPROJ) and swapped.digest != loaded.digest


@pytest.mark.parametrize(("text", "pattern"), [
    (CALIBRATE, None),
    (ATTRIBUTE, None),
    (CALIBRATE + "signature: {method: lumina-gradstats-v1}\n", "lumina-gradstats-v1"),
    (ATTRIBUTE + "signature: {method: lumina-gradstats-v1}\n", "lumina-gradstats-v1"),
])
def test_v2_calibrate_and_attribute_name_one_method(tmp_path: Path, text: str, pattern: str | None) -> None:
    loaded = load_manifest(write(tmp_path, text))
    assert isinstance(loaded.manifest, CalibrateManifest | AttributeManifest)
    assert [m.name for m in loaded.methods()] == [pattern or "lumina-gradproj-v1"]


@pytest.mark.parametrize(("text", "needle", "pattern"), [
    (EXTRACT + "signature: {methods: []}\n", "methods", r":{n}: signature\.methods: .*at least 1"),
    (EXTRACT + "signature: {methods: [lumina-gradproj-v1, lumina-gradproj-v1]}\n", "methods",
     r":{n}: signature\.methods: each method at most once"),
    (EXTRACT + "signature: {methods: [lumina-gradproj-v2]}\n", "methods",
     r":{n}: signature\.methods\[0\]: Input should be 'lumina-gradproj-v1' or 'lumina-gradstats-v1'"),
    (EXTRACT + "signature: {method: lumina-gradproj-v1}\n", "method", r":{n}: unknown key 'method' in signature"),
    (CALIBRATE + "signature: {methods: [lumina-gradproj-v1]}\n", "methods",
     r":{n}: unknown key 'methods' in signature"),
    (ATTRIBUTE + "signature: {method: lumina-gradstat-v1}\n", "method", r":{n}: signature\.method: Input should be"),
    (EXTRACT.replace("lumina-audit/v2", "lumina-audit/v9"), "apiVersion",
     r":{n}: apiVersion: must be one of 'lumina-audit/v1', 'lumina-audit/v2' \(got 'lumina-audit/v9'\)"),
    (EXTRACT.replace("lumina-audit/v2", "2"), "apiVersion", r":{n}: apiVersion: must be one of .*\(got 2\)"),
    (EXTRACT.replace("apiVersion: lumina-audit/v2\n", ""), None, r"missing key 'apiVersion' in the manifest"),
    (EXTRACT.replace("apiVersion: lumina-audit/v2", "apiVersion: lumina-audit/v1") +
     "signature: {methods: [lumina-gradproj-v1]}\n", "methods", r":{n}: unknown key 'methods' in signature"),
])
def test_v2_signature_settings_refused_with_line(tmp_path: Path, text: str, needle: str | None, pattern: str) -> None:
    if needle is not None:
        pattern = pattern.replace("{n}", str(line_of(text, needle)))
    refused(tmp_path, text, pattern)


# ------------------------------------------------ settings added to v2 later: chunk_batch, the memory pins

# Digests of the v2 manifests above by the code of commit 3dc861a, before these settings existed.
V2_DIGESTS = {
    "Extract": "68977554390fb00b409af91058e2e721244fda74fdebc36af7b51996fb877509",
    "Calibrate": "5416fa601af650a1b95b84f2a60c022c88781d41a3f0d139c0d9d6bfe9ffd9d9",
    "Attribute": "641760988483437d37a6e8be503f247e51b53b0e7cca01898223d7281d452128",
}


@pytest.mark.parametrize(("kind", "text"), [("Extract", EXTRACT), ("Calibrate", CALIBRATE), ("Attribute", ATTRIBUTE)])
def test_v2_manifests_signed_before_the_new_settings_keep_their_digest(tmp_path: Path, kind: str, text: str) -> None:
    loaded = load_manifest(write(tmp_path, text))
    assert loaded.digest == V2_DIGESTS[kind]
    doc = json.loads(loaded.canonical_json)
    assert "chunk_batch" not in doc["signature"] and not {"sums", "gradients"} & set(doc["pins"])
    pins, config = loaded.pins(), loaded.config()
    assert (pins.sums, pins.gradients, config.chunk_batch) == ("device", "together", 1)
    explicit = text + "pins: {sums: device, gradients: together}\nsignature: {chunk_batch: 1}\n"
    assert load_manifest(write(tmp_path, explicit, "explicit.yaml")).digest == V2_DIGESTS[kind]


def test_v2_memory_pins_and_chunk_batch_are_read_and_covered(tmp_path: Path) -> None:
    base = load_manifest(write(tmp_path, EXTRACT))
    memory = load_manifest(write(tmp_path, EXTRACT + "pins: {device: cuda, sums: host, gradients: streamed}\n",
                                 "memory.yaml"))
    pins = memory.pins()
    assert (pins.device, pins.sums, pins.gradients) == ("cuda", "host", "streamed")
    assert json.loads(memory.canonical_json)["pins"]["sums"] == "host" and memory.digest != base.digest
    # the memory pins change no bit: the signature spaces are those of the default pins
    assert [s.digest for s in memory.spaces()] == [s.digest for s in base.spaces()]
    batched = load_manifest(write(tmp_path, EXTRACT + "signature: {chunk_batch: 4}\n", "batched.yaml"))
    assert batched.config().chunk_batch == 4 and json.loads(batched.canonical_json)["signature"]["chunk_batch"] == 4
    assert batched.digest != base.digest
    # batching changes bits: every method's space differs, and names the batch
    for plain, other in zip(base.spaces(), batched.spaces(), strict=True):
        assert plain.digest != other.digest and other.as_dict()["chunk_batch"] == 4


@pytest.mark.parametrize(("text", "needle", "pattern"), [
    (V1_CALIBRATE + "pins: {sums: host}\n", "sums", r":{n}: unknown key 'sums' in pins"),
    (V1_CALIBRATE.replace("calibration:\n  k", "signature: {chunk_batch: 2}\ncalibration:\n  k"), "chunk_batch",
     r":{n}: unknown key 'chunk_batch' in signature"),
    (EXTRACT + "pins: {sums: gpu}\n", "sums", r":{n}: pins\.sums: Input should be 'device' or 'host'"),
    (EXTRACT + "pins: {gradients: lazy}\n", "gradients", r":{n}: pins\.gradients: Input should be 'together' or"),
    (EXTRACT + "signature: {chunk_batch: 0}\n", "chunk_batch", r":{n}: signature\.chunk_batch: .*greater than"),
    (EXTRACT + "signature: {chunk_batch: 65}\n", "chunk_batch", r":{n}: signature\.chunk_batch: .*less than or equal"),
    (EXTRACT + "signature: {chunk_batch: 2.0}\n", "chunk_batch", r":{n}: signature\.chunk_batch: .*integer"),
])
def test_new_settings_refused_with_line(tmp_path: Path, text: str, needle: str, pattern: str) -> None:
    (tmp_path / "audio" / "controls").mkdir(parents=True, exist_ok=True)
    refused(tmp_path, text, pattern.replace("{n}", str(line_of(text, needle))))


# ---------------------------------------------------------------- on_bad_input and execution (issue 13)

def test_v2_extract_bad_input_policy_and_engine_are_covered_and_defaults_keep_the_digest(tmp_path: Path) -> None:
    loaded = load_manifest(write(tmp_path, EXTRACT))
    doc = json.loads(loaded.canonical_json)
    assert "on_bad_input" not in doc and "execution" not in doc  # the defaults, as before they existed (E4)
    assert loaded.manifest.on_bad_input == "stop" and loaded.manifest.execution.engine == "local"
    explicit = EXTRACT + "on_bad_input: stop\nexecution: {engine: local, workers: 1, resources: {cpus: 1, gpus: 0}}\n"
    assert load_manifest(write(tmp_path, explicit, "explicit.yaml")).digest == V2_DIGESTS["Extract"] == loaded.digest
    digests = {loaded.digest}
    for extra in ("on_bad_input: skip\n", "execution: {engine: ray}\n", "execution: {engine: ray, workers: 4}\n",
                  "execution: {engine: ray, address: 'ray://head.lab:10001'}\n",
                  "execution: {engine: ray, address: '10.0.0.5:6379', resources: {cpus: 2, gpus: 0}}\n"):
        more = load_manifest(write(tmp_path, EXTRACT + extra, "more.yaml"))
        assert json.loads(more.canonical_json).keys() & {"on_bad_input", "execution"}
        digests.add(more.digest)
    assert len(digests) == 6  # every value is covered by the digest
    cuda = EXTRACT + "pins: {device: cuda}\nexecution: {engine: ray, workers: 8, resources: {cpus: 4, gpus: 1}}\n"
    assert load_manifest(write(tmp_path, cuda, "cuda.yaml")).manifest.execution.resources.gpus == 1


@pytest.mark.parametrize(("extra", "needle", "pattern"), [
    ("on_bad_input: ignore\n", "on_bad_input", r":{n}: on_bad_input: Input should be 'stop' or 'skip'"),
    ("execution: {engine: dask}\n", "execution", r":{n}: execution\.engine: Input should be 'local' or 'ray'"),
    ("execution: {workers: 2}\n", "execution", r":{n}: execution: engine 'local' computes in the run's own process"),
    ("execution: {engine: ray, workers: 0}\n", "execution", r":{n}: execution\.workers: .*greater than or equal to 1"),
    ("execution: {engine: ray, address: 'http://x:1'}\n", "execution",
     r":{n}: execution\.address: .*not a Ray address"),
    ("pins: {threads: 2}\nexecution: {engine: ray}\n", "execution",
     r":{n}: execution\.resources\.cpus \(1\) is below pins\.threads \(2\)"),
    ("pins: {device: cuda}\nexecution: {engine: ray}\n", "execution", r":{n}: pins\.device is cuda: give each worker"),
    ("execution: {engine: ray, resources: {gpus: 1}}\n", "execution", r":{n}: pins\.device is cpu: .*gpus must be 0"),
])
def test_v2_extract_execution_refused_with_line(tmp_path: Path, extra: str, needle: str, pattern: str) -> None:
    text = EXTRACT + extra
    refused(tmp_path, text, pattern.replace("{n}", str(line_of(text, needle))))


@pytest.mark.parametrize("extra", ["on_bad_input: skip\n", "execution: {engine: ray}\n"])
def test_the_new_keys_are_unknown_to_version_1_and_to_other_kinds(tmp_path: Path, extra: str) -> None:
    key = extra.split(":")[0]
    v1 = EXTRACT.replace("lumina-audit/v2", "lumina-audit/v1") + extra
    refused(tmp_path, v1, rf":{line_of(v1, key)}: unknown key '{key}' in the manifest")
    refused(tmp_path, CALIBRATE + extra, rf":{line_of(CALIBRATE + extra, key)}: unknown key '{key}' in the manifest")
