"""Tests of the append-only signed ledger (lumina_audit.evidence.ledger)."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import rfc8785
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lumina_audit.evidence import merkle, note
from lumina_audit.evidence.dsse import pae
from lumina_audit.evidence.keys import generate, key_id, write_private_key
from lumina_audit.evidence.ledger import (
    LEDGER_NAMESPACE,
    LEDGER_PAYLOAD_TYPE,
    Ledger,
    LedgerError,
    LedgerReport,
    decode_frames,
    encode_frame,
    prove,
    repair,
    verify,
    verify_proof,
)
from lumina_audit.evidence.trust import TrustStore, format_entry, parse_trust

ROOT = Path(__file__).resolve().parents[2]
BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
ALICE = generate()
BOB = generate()
MALLORY = generate()


def at(minutes: float) -> datetime:
    return BASE + timedelta(minutes=minutes)


def trust(*keys: tuple[str, Ed25519PrivateKey], valid_before: datetime | None = None) -> TrustStore:
    lines = [format_entry(p, [LEDGER_NAMESPACE], k.public_key(), valid_before=valid_before) for p, k in keys]
    return parse_trust("\n".join(lines))


TRUST = trust(("alice", ALICE), ("bob", BOB))


def make(path: Path, n: int, key: Ed25519PrivateKey = ALICE, principal: str = "alice") -> Ledger:
    ledger = Ledger.create(path)
    for i in range(n):
        ledger.append("run", {"n": i, "note": f"run {i}"}, key, principal, now=at(i))
    return ledger


def frames(path: Path, name: str) -> list[bytes]:
    decoded = decode_frames((path / name).read_bytes())
    assert not decoded.tail
    return list(decoded.payloads)


def write_frames(path: Path, name: str, payloads: list[bytes]) -> None:
    (path / name).write_bytes(b"".join(encode_frame(p) for p in payloads))


def assert_invalid(report: LedgerReport, seq: int | None, text: str = "") -> None:
    assert report.status == "invalid" and not report.bottom_line, report
    assert any(f.seq == seq and text in f.message for f in report.findings), report.findings


def assert_valid(report: LedgerReport) -> None:
    assert report.status == "valid" and report.bottom_line, report.findings
    assert report.findings == ()


# --------------------------------------------------------------------------- round trip


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    ledger = make(path, 5)
    header = json.loads((path / "ledger.json").read_bytes())
    assert header["format"] == "lumina-ledger" and header["version"] == 1
    assert header["origin"].startswith("lumina-audit/ledger/") and len(header["origin"]) == 20 + 32
    report = verify(path, TRUST)
    assert_valid(report)
    assert (report.records, report.checkpoints) == (5, 5)

    records = ledger.records()
    assert [r.seq for r in records] == list(range(5))
    assert records[0].prev == "0" * 64
    assert records[3].prev == hashlib.sha256(records[2].payload).hexdigest()
    doc = json.loads(records[1].payload)
    assert set(doc) == {"format", "version", "seq", "time", "prev", "kind", "body", "signer", "signature"}
    assert doc["time"] == "2026-03-01T12:01:00.000000Z"
    assert doc["signer"] == {"key_id": key_id(ALICE.public_key()), "principal": "alice"}
    unsigned = rfc8785.dumps({k: v for k, v in doc.items() if k != "signature"})
    ALICE.public_key().verify(base64.b64decode(doc["signature"]), pae(LEDGER_PAYLOAD_TYPE, unsigned))
    assert pae("t", b"xy") == b"DSSEv1 1 t 2 xy"

    leaves = [r.payload for r in records]
    for k, text in enumerate(ledger.checkpoints(), start=1):
        body, names = note.open_note(text, {"alice": ALICE.public_key()})
        cp = note.parse_checkpoint(body)
        assert (cp.origin, cp.size, cp.root_hash, names) == (ledger.origin, k, merkle.root(leaves[:k]), ["alice"])
    assert ledger.latest_checkpoint() == ledger.checkpoints()[-1]

    for seq in range(5):
        doc_ = prove(path, seq)
        assert json.loads(json.dumps(doc_)) == doc_
        result = verify_proof(doc_, TRUST, expected_record=records[seq].payload)
        assert result.bottom_line and (result.seq, result.tree_size) == (seq, 5)
        assert result.root == merkle.root(leaves).hex()


def test_open_and_append_result(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    Ledger.create(path, origin="example.org/ledger")
    ledger = Ledger.open(path)
    assert ledger.origin == "example.org/ledger"
    got = ledger.append("certificate", {"id": "c1"}, BOB, "bob", now=at(0))
    assert got.seq == 0 and got.leaf_hash == merkle.leaf_hash(got.record)
    assert got.checkpoint == ledger.latest_checkpoint()
    with pytest.raises(LedgerError, match="already holds"):
        Ledger.create(path)
    with pytest.raises(LedgerError, match="clock went back"):
        ledger.append("run", {}, BOB, "bob", now=at(-1))
    with pytest.raises(LedgerError, match="principal"):
        ledger.append("run", {}, BOB, "bob smith", now=at(1))
    with pytest.raises(LedgerError, match="key-revocation body"):
        ledger.append("key-revocation", {"key_id": "xyz"}, BOB, "bob", now=at(1))
    with pytest.raises(LedgerError, match="canonical"):
        ledger.append("run", {"big": 2**60}, BOB, "bob", now=at(1))
    assert_valid(verify(path, TRUST))


def test_unknown_header_refused(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    make(path, 1)
    header = json.loads((path / "ledger.json").read_bytes())
    (path / "ledger.json").write_bytes(rfc8785.dumps({**header, "version": 2}))
    with pytest.raises(LedgerError, match="unknown ledger format/version"):
        Ledger.open(path)
    report = verify(path, TRUST)
    assert report.status == "could-not-check" and report.findings[0].step == "1 header"
    (path / "ledger.json").write_bytes(rfc8785.dumps({**header, "format": "other"}))
    assert verify(path, TRUST).status == "could-not-check"
    assert verify(tmp_path / "nowhere", TRUST).status == "could-not-check"
    (path / "ledger.json").write_bytes(b"{not json")
    assert verify(path, TRUST).status == "invalid"


# --------------------------------------------------------------------------- tampering


def test_edited_record_is_caught(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    make(path, 4)
    payloads = frames(path, "records")
    doc = json.loads(payloads[1])
    doc["body"]["note"] = "run 1 (edited)"
    payloads[1] = rfc8785.dumps(doc)
    write_frames(path, "records", payloads)
    report = verify(path, TRUST)
    assert_invalid(report, 1, "does not verify")
    assert_invalid(report, 2, "prev is not the hash of record 1")
    assert_invalid(report, 3, "root differs")


def test_deleted_swapped_inserted_replayed(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    make(path, 4)
    original = frames(path, "records")

    write_frames(path, "records", original[:2] + original[3:])
    assert_invalid(verify(path, TRUST), 2, "seq is 3, expected 2")

    write_frames(path, "records", [original[0], original[2], original[1], original[3]])
    report = verify(path, TRUST)
    assert_invalid(report, 1, "seq is 2")
    assert_invalid(report, 2, "prev")

    forged_dir = tmp_path / "forged"
    make(forged_dir, 3, MALLORY, "alice")
    forged = frames(forged_dir, "records")[2]
    write_frames(path, "records", original[:2] + [forged] + original[2:])
    report = verify(path, TRUST)
    assert_invalid(report, 2, "not in the trust file")
    assert_invalid(report, 3, "seq is 2, expected 3")

    write_frames(path, "records", [*original, original[1]])
    report = verify(path, TRUST)
    assert_invalid(report, 4, "seq is 1, expected 4")
    assert_invalid(report, 4, "record 4 is not covered by a signed checkpoint")

    write_frames(path, "records", original)
    assert_valid(verify(path, TRUST))


def test_truncation_needs_an_external_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    ledger = make(path, 4)
    kept = ledger.latest_checkpoint()
    assert kept is not None
    write_frames(path, "records", frames(path, "records")[:3])
    write_frames(path, "checkpoints", frames(path, "checkpoints")[:3])
    assert_valid(verify(path, TRUST))  # a clean truncation is valid on its own
    assert_invalid(verify(path, TRUST, external_checkpoint=kept), 2,
                   "truncated: external checkpoint covers 4 records, ledger has 3")
    older = ledger.checkpoints()[1]
    assert_valid(verify(path, TRUST, external_checkpoint=older))

    # A rewrite by the key holder: same size, other content, properly re-signed.
    fresh = tmp_path / "rewritten"
    Ledger.create(fresh, origin=ledger.origin)
    for i in range(4):
        Ledger.open(fresh).append("run", {"n": i, "note": "rewritten"}, ALICE, "alice", now=at(i))
    assert_valid(verify(fresh, TRUST))
    assert_invalid(verify(fresh, TRUST, external_checkpoint=kept), 3, "history was rewritten")
    other = note.sign_note(note.format_checkpoint("elsewhere", 1, merkle.EMPTY_ROOT), "alice", ALICE)
    assert_invalid(verify(fresh, TRUST, external_checkpoint=other), None, "origin")
    assert_invalid(verify(fresh, trust(("bob", BOB)), external_checkpoint=kept), None, "external checkpoint")


def flip_every_byte(path: Path, name: str) -> None:
    original = (path / name).read_bytes()
    assert original
    for offset in range(len(original)):
        data = bytearray(original)
        data[offset] ^= 0x01 if offset % 2 else 0x20
        (path / name).write_bytes(bytes(data))
        report = verify(path, TRUST)
        assert report.status == "invalid", (offset, bytes(data[max(0, offset - 20) : offset + 20]))
    (path / name).write_bytes(original)
    assert_valid(verify(path, TRUST))


def test_flip_every_byte_of_records(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    make(path, 2)
    flip_every_byte(path, "records")


def test_flip_every_byte_of_checkpoints(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    make(path, 2)
    flip_every_byte(path, "checkpoints")


def test_outputs(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    out = tmp_path / "out"
    out.mkdir()

    def output(name: str, data: bytes) -> dict[str, Any]:
        (out / name).write_bytes(data)
        return {"path": f"out/{name}", "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    ledger = Ledger.create(path)
    ledger.append("run", {"outputs": [output("a.json", b"a1"), output("b.json", b"b")]}, ALICE, "alice", at(0))
    ledger.append("run", {"outputs": [output("a.json", b"a2 replaced")]}, ALICE, "alice", at(1))
    assert_valid(verify(path, TRUST))  # a.json is checked against record 1 only

    (out / "b.json").write_bytes(b"B")
    assert_invalid(verify(path, TRUST), 0, "record 0: output out/b.json has changed")
    assert_valid(verify(path, TRUST, check_outputs=False))
    (out / "a.json").unlink()
    assert_invalid(verify(path, TRUST), 1, "record 1: output out/a.json is missing")
    assert_valid(verify(path, TRUST, check_outputs=False))
    assert_valid(verify(path, TRUST, outputs_root=tmp_path / "elsewhere", check_outputs=False))


def test_untrusted_key_and_key_window(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    ledger = make(path, 2)
    ledger.append("run", {"n": 2}, MALLORY, "mallory", now=at(2))
    report = verify(path, TRUST)
    assert_invalid(report, 2, "not in the trust file")
    assert_invalid(report, 2, "checkpoint 2: no signature by a key trusted")

    path2 = tmp_path / "window"
    make(path2, 4)
    report = verify(path2, trust(("alice", ALICE), valid_before=at(2)))
    assert_invalid(report, 2, "is not valid at 2026-03-01T12:02:00")
    assert_invalid(report, 3, "is not valid at")
    assert not any(f.seq in (0, 1) for f in report.findings)
    report = verify(path2, trust(("bob", ALICE)))
    assert_invalid(report, 0, "principal 'alice' is not the trust-file principal 'bob'")


def test_key_revocation_and_rotation(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    ledger = make(path, 1)
    ledger.append("key-revocation", {"key_id": key_id(BOB.public_key()), "reason": "laptop lost"},
                  ALICE, "alice", now=at(1))
    assert_valid(verify(path, TRUST))
    ledger.append("run", {"n": 2}, BOB, "bob", now=at(2))
    report = verify(path, TRUST)
    assert_invalid(report, 2, "revoked by record 1")
    assert_invalid(report, 2, "checkpoint 2: signed by key")

    path2 = tmp_path / "rotation"
    ledger = make(path2, 1)
    ledger.append("key-rotation", {"old_key_id": key_id(ALICE.public_key()), "new_key_id": key_id(BOB.public_key())},
                  ALICE, "alice", now=at(1))
    ledger.append("run", {"n": 2}, BOB, "bob", now=at(2))
    assert_valid(verify(path2, TRUST))
    ledger.append("run", {"n": 3}, ALICE, "alice", now=at(3))
    assert_invalid(verify(path2, TRUST), 3, "rotated out by record 1")

    path3 = tmp_path / "bad-rotation"
    ledger = make(path3, 1)
    ledger.append("key-rotation", {"old_key_id": key_id(BOB.public_key()), "new_key_id": key_id(ALICE.public_key())},
                  ALICE, "alice", now=at(1))
    assert_invalid(verify(path3, TRUST), 1, "must be signed by the old key")


def test_checkpoint_signed_by_untrusted_key(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    make(path, 3)
    checkpoints = frames(path, "checkpoints")
    body = checkpoints[1].decode()[: checkpoints[1].decode().rfind("\n\n") + 1]
    checkpoints[1] = note.sign_note(body, "alice", MALLORY).encode()
    write_frames(path, "checkpoints", checkpoints)
    assert_invalid(verify(path, TRUST), 1, "checkpoint 1: no signature by a key trusted")


def test_time_going_backwards(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    make(path, 2)
    other = tmp_path / "other"
    make(other, 3)
    # Re-sign a record 2 whose time is before record 1's.
    doc = json.loads(frames(other, "records")[2])
    doc["time"] = "2026-03-01T11:00:00.000000Z"
    doc["prev"] = hashlib.sha256(frames(path, "records")[1]).hexdigest()
    unsigned = {k: v for k, v in doc.items() if k != "signature"}
    doc["signature"] = base64.b64encode(ALICE.sign(pae(LEDGER_PAYLOAD_TYPE, rfc8785.dumps(unsigned)))).decode()
    write_frames(path, "records", [*frames(path, "records"), rfc8785.dumps(doc)])
    assert_invalid(verify(path, TRUST), 2, "goes backwards")


# --------------------------------------------------------------------------- proofs


def test_proof_rejections(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    ledger = make(path, 5)
    records = ledger.records()
    good = prove(path, 2)
    verify_proof(good, TRUST)

    def refused(change: Callable[[dict[str, Any]], None], step: int, **kwargs: Any) -> None:
        doc = copy.deepcopy(good)
        change(doc)
        with pytest.raises(LedgerError, match=f"proof step {step}"):
            verify_proof(doc, kwargs.pop("trust_store", TRUST), **kwargs)

    refused(lambda d: d.update(record=records[3].payload.decode()), 2)
    refused(lambda d: d.update(record=records[3].payload.decode(), leaf_index=3), 5)
    refused(lambda d: None, 6, expected_record=records[3].payload)
    refused(lambda d: d.update(leaf_index=1), 2)
    refused(lambda d: d.update(tree_size=4), 4)
    refused(lambda d: d["proof"].__setitem__(0, "00" * 32), 5)
    refused(lambda d: d["proof"].pop(), 5)
    refused(lambda d: d.update(format="x"), 1)
    body = good["checkpoint"][: good["checkpoint"].rfind("\n\n") + 1]
    refused(lambda d: d.update(checkpoint=note.sign_note(body, "alice", MALLORY)), 4)
    refused(lambda d: None, 3, trust_store=trust(("alice", MALLORY)))
    with pytest.raises(LedgerError, match="not covered"):
        prove(path, 5)


# --------------------------------------------------------------------------- concurrency and crashes


def worker(path: Path, key: Path, tag: str, *extra: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "tests.evidence.ledger_worker", str(path), str(key), "alice", tag, *extra]
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def alice_key_file(tmp_path: Path) -> Path:
    key_file = tmp_path / "alice.pem"
    write_private_key(key_file, ALICE)
    return key_file


def test_concurrent_appends(tmp_path: Path, alice_key_file: Path) -> None:
    path = tmp_path / "ledger"
    make(path, 2)
    barrier = tmp_path / "barrier"
    barrier.mkdir()
    procs = [worker(path, alice_key_file, f"w{i}", str(barrier)) for i in range(8)]
    deadline = time.monotonic() + 50
    while len(list(barrier.glob("ready-*"))) < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    (barrier / "go").touch()
    outs = [p.communicate(timeout=50) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, outs
    assert sorted(int(out) for out, _ in outs) == list(range(2, 10))
    assert_valid(verify(path, TRUST))
    records = Ledger.open(path).records()
    assert [r.seq for r in records] == list(range(10))
    assert sorted(r.body.get("worker", "") for r in records[2:]) == [f"w{i}" for i in range(8)]


def test_crash_mid_record_then_repair(tmp_path: Path, alice_key_file: Path) -> None:
    path = tmp_path / "ledger"
    ledger = make(path, 3)
    before = ledger.records()
    size = (path / "records").stat().st_size
    proc = worker(path, alice_key_file, "torn", "--torn")  # half a record written, then killed
    try:
        deadline = time.monotonic() + 30
        while (path / "records").stat().st_size == size and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=10)
    torn = (path / "records").stat().st_size - size
    assert torn > 0

    report = verify(path, TRUST)
    expected = f"torn tail after the last checkpoint: {torn} bytes at offset {size}"
    assert_invalid(report, 3, expected)
    assert [(f.step, f.message) for f in report.findings] == [("2 frames", expected)]
    with pytest.raises(LedgerError, match="torn tail") as info:
        ledger.append("run", {}, ALICE, "alice", now=at(10))
    assert "repair" in (info.value.hint or "")

    fixed = repair(path)
    assert (fixed.records_bytes_removed, fixed.checkpoints_bytes_removed, fixed.records) == (torn, 0, 3)
    assert_valid(verify(path, TRUST))
    assert ledger.records() == before
    ledger.append("run", {"after": "repair"}, ALICE, "alice", now=at(10))
    assert_valid(verify(path, TRUST))
    assert not repair(path).changed


def test_the_product_holds_no_test_hooks() -> None:
    """No file of the package names a test variable: crashes and kills are test doubles under tests/.

    The torn write above is ``tests/evidence/ledger_worker.py --torn``; the killed workers of the
    runner tests are ``tests/runner/kill_worker.py``. Neither the ledger writer nor a worker reads
    the environment.
    """
    package = ROOT / "lumina_audit"
    files = [f for f in package.rglob("*") if f.is_file() and "__pycache__" not in f.parts]
    assert len(files) > 50
    assert [str(f.relative_to(ROOT)) for f in files if b"LUMINA_AUDIT_TEST" in f.read_bytes()] == []
    for module in ("evidence/ledger/writer.py", "evidence/ledger/format.py", "runner/compute.py"):
        text = (package / module).read_text(encoding="utf-8")
        assert "os.environ" not in text and "getenv" not in text, module


def test_crash_between_record_and_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    make(path, 3)
    checkpoints = frames(path, "checkpoints")
    cut = encode_frame(checkpoints[2])
    write_frames(path, "checkpoints", checkpoints[:2])
    with (path / "checkpoints").open("ab") as fh:
        fh.write(cut[: len(cut) // 3])
    report = verify(path, TRUST)
    assert_invalid(report, 2, "record 2 is not covered by a signed checkpoint")
    assert_invalid(report, None, "torn checkpoint tail")
    assert repair(path).checkpoint_added is None
    assert_invalid(verify(path, TRUST), 2, "not covered")
    fixed = repair(path, signer_key=ALICE, principal="alice")
    assert fixed.checkpoint_added is not None and fixed.checkpoints == 3
    assert_valid(verify(path, TRUST))


def test_write_and_fsync_errors_abort(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "ledger"
    ledger = make(path, 1)

    def failing_fsync(fd: int) -> None:
        raise OSError(5, "Input/output error")

    with monkeypatch.context() as m:
        m.setattr(os, "fsync", failing_fsync)
        with pytest.raises(LedgerError, match="write or fsync failed"):
            ledger.append("run", {"n": 1}, ALICE, "alice", now=at(1))
    # The record may be on disk without its checkpoint: verify says so, the next append commits it.
    assert_invalid(verify(path, TRUST), 1, "record 1 is not covered by a signed checkpoint")
    ledger.append("run", {"n": 2}, ALICE, "alice", now=at(2))
    assert_valid(verify(path, TRUST))

    real_write = os.write
    with monkeypatch.context() as m:
        m.setattr(os, "write", lambda fd, data: real_write(fd, data[:10]))
        with pytest.raises(LedgerError, match="short write"):
            ledger.append("run", {"n": 3}, ALICE, "alice", now=at(3))
    assert_invalid(verify(path, TRUST), 3, "torn tail after the last checkpoint: 10 bytes")
    assert repair(path).records_bytes_removed == 10
    assert_valid(verify(path, TRUST))


def test_repair_refuses_what_is_not_a_torn_tail(tmp_path: Path) -> None:
    path = tmp_path / "ledger"
    make(path, 3)
    original = (path / "records").read_bytes()
    data = bytearray(original)
    data[len(data) // 2] ^= 1  # corrupt record 1: the rest of the file is unreadable, not torn
    (path / "records").write_bytes(bytes(data))
    with pytest.raises(LedgerError, match="corrupt frame"):
        repair(path)
    assert (path / "records").read_bytes() == bytes(data)
    # The last checkpointed record cut short: a torn record inside the checkpointed range.
    (path / "records").write_bytes(original[:-10])
    assert_invalid(verify(path, TRUST), 2, "torn record inside the checkpointed range")
    with pytest.raises(LedgerError, match="inside the checkpointed range"):
        repair(path)
    assert (path / "records").read_bytes() == original[:-10]


# --------------------------------------------------------------------------- properties


@settings(max_examples=200, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=6), st.binary(min_size=1, max_size=300).filter(
    lambda b: b"\n" not in b), st.data())
def test_frame_round_trip(payloads: list[bytes], last: bytes, data: st.DataObject) -> None:
    encoded = b"".join(encode_frame(p) for p in payloads)
    decoded = decode_frames(encoded)
    assert (list(decoded.payloads), decoded.end, decoded.tail) == (payloads, len(encoded), b"")
    frame = encode_frame(last)
    cut = data.draw(st.integers(1, len(frame) - 1))
    torn = decode_frames(encoded + frame[:cut])
    assert list(torn.payloads) == payloads and torn.tail == frame[:cut] and torn.torn
    assert not decode_frames(encoded + frame[:-1] + b"x").torn


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | st.text(max_size=20)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.dictionaries(st.text(max_size=8), JSON, max_size=5), min_size=1, max_size=3))
def test_random_bodies_round_trip(bodies: list[dict[str, Any]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ledger"
        ledger = Ledger.create(path)
        stored = []
        for i, body in enumerate(bodies):
            try:  # JSON that does not survive a parse (e.g. the float 2**53, written as an integer) is refused
                stable = rfc8785.dumps(json.loads(rfc8785.dumps(body))) == rfc8785.dumps(body)
            except ValueError:
                stable = False
            if not stable:
                with pytest.raises(LedgerError, match="canonical"):
                    ledger.append("run", body, ALICE, "alice", now=at(i))
                continue
            ledger.append("run", body, ALICE, "alice", now=at(i))
            stored.append(rfc8785.dumps(body))
        assert [rfc8785.dumps(r.body) for r in ledger.records()] == stored
        assert_valid(verify(path, TRUST, check_outputs=False))
