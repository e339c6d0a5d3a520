"""Evidence end to end: keys, signed manifests, `run`, the ledger made by it, and its verification."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from lumina_audit.attribution.store import read_store
from lumina_audit.errors import LuminaError
from lumina_audit.evidence import keys
from lumina_audit.evidence.ledger import Ledger, decode_frames, encode_frame, verify
from lumina_audit.evidence.manifest import sign_manifest
from lumina_audit.evidence.trust import DEFAULT_POLICY, format_entry, format_policy, load_trust
from lumina_audit.runner.run import run_manifest
from lumina_audit.signature.pins import MARKER

from ..conftest import GOLDEN, PINS_YAML, TINY, tiny_digests

CLIPS = GOLDEN / "clips"
LEDGER_NS, MANIFEST_NS = "lumina-audit/ledger", "lumina-audit/manifest"


def cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != MARKER}
    return subprocess.run([sys.executable, "-m", "lumina_audit", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, timeout=300, check=False)


def manifest_yaml(name: str, store: str, clips: list[str], digests: dict[str, str] | None = None) -> str:
    d = digests or tiny_digests()
    inputs = "\n".join(f"  - path: {CLIPS / c}" for c in clips)
    return f"""apiVersion: lumina-audit/v1
kind: Extract
metadata:
  name: {name}
seed: 422024
model:
  directory: {TINY}
  sha256:
    state_dict.bin: {d['state_dict.bin']}
    compression_state_dict.bin: {d['compression_state_dict.bin']}
inputs:
{inputs}
outputs:
  store: out/{store}
ledger: ledger
{PINS_YAML}"""


@dataclass
class World:
    root: Path
    trust: Path
    alice: Path  # manifest + ledger signer (operator)
    bob: Path  # manifest reviewer
    saved_checkpoint: str


def _key(root: Path, name: str) -> tuple[Path, Any]:
    k = keys.generate()
    keys.write_private_key(root / f"{name}.key", k)
    return root / f"{name}.key", k


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> World:
    root = tmp_path_factory.mktemp("evidence")
    alice_path, alice = _key(root, "alice")
    bob_path, bob = _key(root, "bob")
    (root / "trust").write_text("\n".join([
        format_entry("alice@lab", [MANIFEST_NS, LEDGER_NS], alice.public_key()),
        format_entry("bob@lab", [MANIFEST_NS], bob.public_key()),
    ]) + "\n")
    trust = load_trust(root / "trust")
    # Record 0 through the command line, as a user would run it.
    (root / "m0.yaml").write_text(manifest_yaml("first", "first.h5", ["d_mono32k_float.wav", "a_copy.flac"]))
    for key in (alice_path, bob_path):
        out = cli("manifest", "sign", "m0.yaml", "--key", str(key), cwd=root)
        assert out.returncode == 0, out.stderr
    out = cli("manifest", "verify", "m0.yaml", "--trust", "trust", "--json", cwd=root)
    assert out.returncode == 0 and {s["principal"] for s in json.loads(out.stdout)["signers"]} == {"alice@lab",
                                                                                                    "bob@lab"}
    out = cli("manifest", "run", "m0.yaml", "--trust", "trust", "--key", "alice.key", "--json", cwd=root)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["record"] == 0
    saved = (root / "ledger" / "checkpoints").read_bytes()
    saved_checkpoint = decode_frames(saved).payloads[-1].decode()
    # Records 1 and 2 in-process (the test session already runs under the default pins).
    for i, clip in ((1, "a_stereo44k_pcm16.wav"), (2, "b_mono48k_pcm24.wav")):
        (root / f"m{i}.yaml").write_text(manifest_yaml(f"run{i}", f"run{i}.h5", [clip]))
        sign_manifest(root / f"m{i}.yaml", alice)
        sign_manifest(root / f"m{i}.yaml", bob)  # the default policy: two distinct signers
        assert run_manifest(root / f"m{i}.yaml", trust, alice).seq == i
    return World(root, root / "trust", alice_path, bob_path, saved_checkpoint)


def test_run_made_a_valid_ledger_and_store(world: World) -> None:
    report = verify(world.root / "ledger", load_trust(world.trust))
    assert report.status == "valid" and report.records == 3, report.findings
    store = read_store(world.root / "out" / "first.h5")
    assert store.song_ids == ("d_mono32k_float", "a_copy")
    out = cli("ledger", "verify", "--ledger", "ledger", "--trust", "trust", "--json", cwd=world.root)
    assert out.returncode == 0 and json.loads(out.stdout)["status"] == "valid"
    rec = json.loads(decode_frames((world.root / "ledger" / "records").read_bytes()).payloads[0])
    body = rec["body"]
    assert body["outputs"][0]["path"] == "out/first.h5" and len(body["inputs"]) == 2
    assert {"python", "torch", "audiocraft", "numpy", "h5py"} <= set(body["environment"]["versions"])
    assert body["environment"]["pins"]["threads"] == 1 and body["manifest"]["metadata"]["name"] == "first"
    assert {s["principal"] for s in body["manifest_signers"]} == {"alice@lab", "bob@lab"}
    # The record names the policy the signers met: the default (no @policy line), by digest and content.
    assert body["signing_policy"] == {
        "sha256": DEFAULT_POLICY.sha256, "stated": False, "kind": "Extract", "rule": "default",
        "policy": {"format": "lumina-signing-policy", "version": 1, "rules": {"default": {"threshold": 2}}},
        "counted": [{"principal": "alice@lab", "role": None}, {"principal": "bob@lab", "role": None}]}


def test_inclusion_proof_verifies_offline(world: World) -> None:
    out = cli("ledger", "prove", "1", "--ledger", "ledger", cwd=world.root)
    assert out.returncode == 0, out.stderr
    (world.root / "proof1.json").write_text(out.stdout)
    ok = cli("proof", "verify", "proof1.json", "--trust", "trust", "--json", cwd=world.root)
    assert ok.returncode == 0 and json.loads(ok.stdout)["record"] == 1
    doc = json.loads(out.stdout)
    doc["leaf_index"] = 2
    (world.root / "proof-bad.json").write_text(json.dumps(doc))
    bad = cli("proof", "verify", "proof-bad.json", "--trust", "trust", cwd=world.root)
    assert bad.returncode == 1 and bad.stderr.startswith("error: ")


def _copy(world: World, tmp: Path) -> Path:
    shutil.copytree(world.root / "ledger", tmp / "ledger")
    shutil.copytree(world.root / "out", tmp / "out")
    return tmp / "ledger"


def _frames(ledger: Path) -> list[bytes]:
    return list(decode_frames((ledger / "records").read_bytes()).payloads)


def _write(ledger: Path, payloads: list[bytes]) -> None:
    (ledger / "records").write_bytes(b"".join(encode_frame(p) for p in payloads))


def _edit_value(p: list[bytes]) -> list[bytes]:
    doc = json.loads(p[1])
    doc["body"]["result"]["songs"] = 7
    import rfc8785

    return [p[0], rfc8785.dumps(doc), *p[2:]]


TAMPERS = {
    "edit a value": (_edit_value, 1),
    "delete a record": (lambda p: [p[0], p[2]], 1),
    "swap two": (lambda p: [p[0], p[2], p[1]], 1),
    "insert one": (lambda p: [p[0], p[0], p[1], p[2]], 1),
    "replay an old record": (lambda p: [*p, p[0]], 3),
}


@pytest.mark.parametrize("name", sorted(TAMPERS))
def test_tamper_battery_on_a_real_ledger(world: World, tmp_path: Path, name: str) -> None:
    change, concerned = TAMPERS[name]
    ledger = _copy(world, tmp_path)
    _write(ledger, change(_frames(ledger)))
    report = verify(ledger, load_trust(world.trust))
    assert report.status == "invalid", name
    assert concerned in {f.seq for f in report.findings}, (name, report.findings)


def test_truncation_is_caught_with_an_external_checkpoint(world: World, tmp_path: Path) -> None:
    ledger = _copy(world, tmp_path)
    full = (ledger / "checkpoints").read_bytes()
    latest = decode_frames(full).payloads[-1].decode()
    _write(ledger, _frames(ledger)[:2])
    cps = decode_frames(full).payloads
    (ledger / "checkpoints").write_bytes(b"".join(encode_frame(c) for c in cps[:2]))
    trust = load_trust(world.trust)
    assert verify(ledger, trust, check_outputs=False).status == "valid"  # consistent on its own ...
    report = verify(ledger, trust, check_outputs=False, external_checkpoint=latest)
    assert report.status == "invalid" and any("truncat" in f.message for f in report.findings)
    assert verify(ledger, trust, check_outputs=False, external_checkpoint=world.saved_checkpoint).status == "valid"


def test_flipped_bytes_are_caught(world: World, tmp_path: Path) -> None:
    """A flipped bit anywhere in frame k (length, hash, payload or newline) ends the readable records at k: that
    frame and the rest are one corrupt tail at k's offset, and the checkpoints of sizes k+1..3 cover records that
    are no longer there. Nothing else is reported (the records before k are untouched)."""
    ledger = _copy(world, tmp_path)
    data = (ledger / "records").read_bytes()
    trust = load_trust(world.trust)
    starts = [0]
    for payload in _frames(ledger):
        starts.append(starts[-1] + len(encode_frame(payload)))
    assert starts[-1] == len(data) and len(starts) == 4
    seen = set()
    for offset in range(0, len(data), max(1, len(data) // 150)):
        flipped = bytearray(data)
        flipped[offset] ^= 0x04
        (ledger / "records").write_bytes(bytes(flipped))
        k = max(i for i in range(3) if starts[i] <= offset)  # the record whose frame holds the flipped byte
        seen.add(k)
        report = verify(ledger, trust, check_outputs=False)
        assert (report.status, report.records, report.checkpoints) == ("invalid", k, 3), (offset, report.findings)
        expected = [(None, "7 checkpoints", f"checkpoint {j}: covers {j + 1} records, the ledger has {k}")
                    for j in range(k, 3)]
        expected.append((k, "2 frames",
                         f"corrupt record frame: {len(data) - starts[k]} bytes at offset {starts[k]} cannot be read"))
        assert [(f.seq, f.step, f.message) for f in report.findings] == expected, offset
        assert all(f.severity == "invalid" for f in report.findings), offset
    assert seen == {0, 1, 2}
    (ledger / "records").write_bytes(data)


def test_changed_output_file_is_caught(world: World, tmp_path: Path) -> None:
    ledger = _copy(world, tmp_path)
    store = tmp_path / "out" / "run1.h5"
    data = bytearray(store.read_bytes())
    data[-1] ^= 1
    store.write_bytes(bytes(data))
    report = verify(ledger, load_trust(world.trust))
    assert report.status == "invalid" and any(f.seq == 1 and "run1.h5" in f.message for f in report.findings)
    assert verify(ledger, load_trust(world.trust), check_outputs=False).status == "valid"


# ----------------------------------------------------------------- refusals of `run`

def _both(world: World) -> tuple[Any, Any]:
    return keys.load_private_key(world.alice), keys.load_private_key(world.bob)


def _refused(world: World, tmp_path: Path, manifest: str, sign_with: Any | None, trust_text: str | None = None,
             operator: Any | None = None, match: str = "") -> None:
    root = tmp_path
    shutil.copytree(world.root / "ledger", root / "ledger")
    (root / "m.yaml").write_text(manifest)
    for signer in sign_with if isinstance(sign_with, tuple) else () if sign_with is None else (sign_with,):
        sign_manifest(root / "m.yaml", signer)
    (root / "trust").write_text(trust_text if trust_text is not None else world.trust.read_text())
    before = (root / "ledger" / "records").read_bytes()
    op = operator or keys.load_private_key(world.alice)
    with pytest.raises(LuminaError, match=match):
        run_manifest(root / "m.yaml", load_trust(root / "trust"), op)
    assert (root / "ledger" / "records").read_bytes() == before
    assert not (root / "out").exists()


def test_run_refuses_unsigned(world: World, tmp_path: Path) -> None:
    _refused(world, tmp_path, manifest_yaml("x", "x.h5", ["d_mono32k_float.wav"]), None, match="unsigned")


def test_run_refuses_unknown_key(world: World, tmp_path: Path) -> None:
    _refused(world, tmp_path, manifest_yaml("x", "x.h5", ["d_mono32k_float.wav"]), keys.generate(),
             match="not in the trust file")


def test_run_refuses_expired_key(world: World, tmp_path: Path) -> None:
    old = keys.generate()
    past = datetime.now(UTC) - timedelta(days=10)
    trust = world.trust.read_text() + format_entry("old@lab", [MANIFEST_NS], old.public_key(),
                                                   past - timedelta(days=30), past) + "\n"
    _refused(world, tmp_path, manifest_yaml("x", "x.h5", ["d_mono32k_float.wav"]), old, trust,
             match="not valid at")


def test_run_refuses_wrong_namespace(world: World, tmp_path: Path) -> None:
    ledger_only = keys.generate()
    trust = world.trust.read_text() + format_entry("svc@lab", [LEDGER_NS], ledger_only.public_key()) + "\n"
    _refused(world, tmp_path, manifest_yaml("x", "x.h5", ["d_mono32k_float.wav"]), ledger_only, trust,
             match="not trusted for lumina-audit/manifest")


def test_run_refuses_a_value_changed_after_signing(world: World, tmp_path: Path) -> None:
    text = manifest_yaml("x", "x.h5", ["d_mono32k_float.wav"])
    (tmp_path / "m.yaml").write_text(text)
    sign_manifest(tmp_path / "m.yaml", keys.load_private_key(world.alice))
    sig = (tmp_path / "m.yaml.sig").read_text()
    sub = tmp_path / "changed"
    sub.mkdir()
    (sub / "m.yaml.sig").write_text(sig)
    changed = text.replace("name: x", "name: y")
    root = sub
    shutil.copytree(world.root / "ledger", root / "ledger")
    (root / "m.yaml").write_text(changed)
    before = (root / "ledger" / "records").read_bytes()
    with pytest.raises(LuminaError, match="changed after signing"):
        run_manifest(root / "m.yaml", load_trust(world.trust), keys.load_private_key(world.alice))
    assert (root / "ledger" / "records").read_bytes() == before


def test_run_refuses_a_model_whose_digest_differs(world: World, tmp_path: Path) -> None:
    wrong = dict(tiny_digests(), **{"state_dict.bin": "ab" * 32})
    _refused(world, tmp_path, manifest_yaml("x", "x.h5", ["d_mono32k_float.wav"], wrong),
             _both(world), match="differs from the expected")


def test_run_refuses_to_overwrite_a_recorded_output(world: World) -> None:
    before = (world.root / "ledger" / "records").read_bytes()
    with pytest.raises(LuminaError, match="already recorded by ledger record 1"):
        run_manifest(world.root / "m1.yaml", load_trust(world.trust), keys.load_private_key(world.alice))
    assert (world.root / "ledger" / "records").read_bytes() == before


def test_run_refuses_an_operator_key_not_trusted_for_the_ledger(world: World, tmp_path: Path) -> None:
    _refused(world, tmp_path, manifest_yaml("x", "x.h5", ["d_mono32k_float.wav"]),
             _both(world), operator=keys.load_private_key(world.bob),
             match="not trusted for lumina-audit/ledger")


# ----------------------------------------------------------------- the signing policy

def test_run_refuses_a_manifest_signed_by_one_principal(world: World, tmp_path: Path) -> None:
    """The trust file states no policy: two distinct principals, and two keys of alice are one."""
    text = manifest_yaml("x", "x.h5", ["d_mono32k_float.wav"])
    alice = keys.load_private_key(world.alice)
    _refused(world, tmp_path / "one", text, alice,
             match=r"^refusing to run .*step 6: signing policy not met: Extract manifests need 2 distinct signers "
                   r"\(the default: .* states no @policy\); counted 1: alice@lab; missing: 1 more distinct signer$")
    second = keys.generate()
    trust = world.trust.read_text() + format_entry("alice@lab", [MANIFEST_NS], second.public_key()) + "\n"
    _refused(world, tmp_path / "same", text, (alice, second), trust,
             match=r"counted 1: alice@lab \(alice@lab signed with several keys, counted once\); missing: 1 more")


def test_a_role_policy_is_enforced_by_run_and_verify_and_named_by_the_record(world: World, tmp_path: Path) -> None:
    """Extract: 2 of {operator, reviewer}, at least 1 reviewer. Two operators fall short; operator and
    reviewer run, and the record names the stated policy."""
    alice, bob, carol = keys.load_private_key(world.alice), keys.load_private_key(world.bob), keys.generate()
    trust = "\n".join([
        format_entry("alice@lab", [MANIFEST_NS, LEDGER_NS], alice.public_key(), role="operator"),
        format_entry("carol@lab", [MANIFEST_NS], carol.public_key(), role="operator"),
        format_entry("bob@lab", [MANIFEST_NS], bob.public_key(), role="reviewer"),
        format_policy("Extract", 2, ("operator", "reviewer"), {"reviewer": 1}),
    ]) + "\n"
    text = manifest_yaml("x", "x.h5", ["d_mono32k_float.wav"])
    _refused(world, tmp_path / "two-operators", text, (alice, carol), trust,
             match=r"step 6: .*Extract manifests need 2 distinct signers with role operator or reviewer, at least "
                   r"1 reviewer \(@policy Extract in .*\); counted 2: alice@lab \(operator\), carol@lab "
                   r"\(operator\); missing: 1 reviewer$")
    root = tmp_path / "cli"
    root.mkdir()
    (root / "trust").write_text(trust)
    (root / "m.yaml").write_text(text)
    sign_manifest(root / "m.yaml", alice)
    for args, code in ((("manifest", "verify", "m.yaml", "--trust", "trust"), 1),
                       (("manifest", "run", "m.yaml", "--trust", "trust", "--key", str(world.alice)), 2)):
        out = cli(*args, cwd=root)
        lines = out.stderr.strip().splitlines()
        assert out.returncode == code, out.stdout + out.stderr
        assert lines[0].startswith("error: ") and "missing: 1 reviewer" in lines[0] and len(lines) <= 2, lines
        assert "Traceback" not in out.stderr and not out.stdout
    assert sorted(p.name for p in root.iterdir()) == ["m.yaml", "m.yaml.sig", "trust"]  # nothing written
    sign_manifest(root / "m.yaml", bob)
    out = cli("manifest", "verify", "m.yaml", "--trust", "trust", "--json", cwd=root)
    assert out.returncode == 0, out.stderr
    checked = json.loads(out.stdout)["signing_policy"]
    assert checked["stated"] is True and checked["rule"] == "Extract"
    shutil.copytree(world.root / "ledger", root / "ledger")
    result = run_manifest(root / "m.yaml", load_trust(root / "trust"), alice)
    body = next(r.body for r in Ledger.open(root / "ledger").records() if r.seq == result.seq)
    policy = load_trust(root / "trust").policy
    assert body["signing_policy"] == checked and checked["sha256"] == policy.sha256 != DEFAULT_POLICY.sha256
    assert body["signing_policy"]["policy"]["rules"] == {
        "default": {"threshold": 2},
        "Extract": {"threshold": 2, "roles": ["operator", "reviewer"], "require": {"reviewer": 1}}}
    assert body["signing_policy"]["counted"] == [{"principal": "alice@lab", "role": "operator"},
                                                 {"principal": "bob@lab", "role": "reviewer"}]


def test_cli_refusals_are_one_line(world: World, tmp_path: Path) -> None:
    (tmp_path / "m.yaml").write_text(manifest_yaml("x", "x.h5", ["d_mono32k_float.wav"]))
    shutil.copy(world.trust, tmp_path / "trust")
    out = cli("manifest", "run", "m.yaml", "--trust", "trust", "--key", str(world.alice), cwd=tmp_path)
    lines = out.stderr.strip().splitlines()
    refusal = "error: refusing to run m.yaml: step 2: unsigned manifest: m.yaml.sig not found"
    assert out.returncode == 2 and lines[0] == refusal, out.stderr
    assert "Traceback" not in out.stderr and len(lines) <= 2
    out = cli("ledger", "verify", "--ledger", "nowhere", "--trust", "trust", cwd=tmp_path)
    assert out.returncode == 3, out.stdout + out.stderr


def test_key_revocation_through_the_cli_invalidates_later_records(world: World, tmp_path: Path) -> None:
    ledger = _copy(world, tmp_path)
    shutil.copy(world.trust, tmp_path / "trust")
    bob_id = keys.key_id(keys.load_private_key(world.bob).public_key())
    out = cli("keys", "revoke", bob_id, "--ledger", str(ledger), "--trust", "trust", "--key", str(world.alice),
              "--reason", "test", cwd=tmp_path)
    assert out.returncode == 0 and "ledger record 3" in out.stdout, out.stderr
    assert verify(ledger, load_trust(tmp_path / "trust")).status == "valid"
    from lumina_audit.evidence.ledger import Ledger

    alice_id = keys.key_id(keys.load_private_key(world.alice).public_key())
    Ledger.open(ledger).append("key-revocation", {"key_id": alice_id, "reason": "self"},
                               keys.load_private_key(world.alice), "alice@lab")
    Ledger.open(ledger).append("note", {"text": "after revocation"}, keys.load_private_key(world.alice), "alice@lab")
    report = verify(ledger, load_trust(tmp_path / "trust"))
    assert report.status == "invalid" and 5 in {f.seq for f in report.findings}, report.findings
