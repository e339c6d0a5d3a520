"""DSSE envelopes: PAE, JSON form, signing and the numbered verification steps."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from lumina_audit.evidence import dsse
from lumina_audit.evidence.dsse import DsseSignature, Envelope, EnvelopeError, SignatureVerificationError, pae
from lumina_audit.evidence.keys import key_id
from lumina_audit.evidence.trust import TrustStore, format_entry, parse_trust

NOW = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
NS = "lumina-audit/manifest"
TYPE = "application/vnd.example+json"


def trust_for(*entries: tuple[str, Ed25519PrivateKey, list[str], datetime | None, datetime | None]) -> TrustStore:
    lines = [format_entry(p, ns, k.public_key(), a, b) for p, k, ns, a, b in entries]
    return parse_trust("\n".join(lines) + "\n", "trust.txt")


@pytest.fixture(scope="module")
def alice() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def bob() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture(scope="module")
def trust(alice: Ed25519PrivateKey, bob: Ed25519PrivateKey) -> TrustStore:
    return trust_for(("alice", alice, [NS], None, None), ("bob", bob, [NS, "lumina-audit/ledger"], None, None))


def signed(key: Ed25519PrivateKey, payload: bytes = b'{"a":1}') -> Envelope:
    return dsse.sign(Envelope(payload, TYPE), key)


def test_pae_known_answer() -> None:
    # The DSSE protocol's own example.
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world")
    assert pae("", b"") == b"DSSEv1 0  0 "
    # Lengths count bytes, not characters.
    assert pae("\u00e9", b"\x00\xff") == b"DSSEv1 2 \xc3\xa9 2 \x00\xff"


def test_round_trip_and_verify(alice: Ed25519PrivateKey, trust: TrustStore) -> None:
    env = signed(alice)
    again = Envelope.from_json(env.to_json())
    assert again == env
    doc = json.loads(env.to_json())
    assert set(doc) == {"payload", "payloadType", "signatures"}
    assert doc["signatures"][0]["keyid"] == key_id(alice.public_key())
    (entry,) = dsse.verify(again, trust, NS, NOW, TYPE)
    assert entry.principal == "alice"


def _flip(data: bytes, i: int) -> bytes:
    return data[:i] + bytes([data[i] ^ 1]) + data[i + 1:]


@pytest.mark.parametrize("where", [0, 3, -1])
def test_tampered_payload_refused(alice: Ed25519PrivateKey, trust: TrustStore, where: int) -> None:
    env = signed(alice, b'{"a":1,"b":"some longer payload"}')
    bad = Envelope(_flip(env.payload, where % len(env.payload)), env.payload_type, env.signatures)
    with pytest.raises(SignatureVerificationError, match=r"^step 3: .*does not verify"):
        dsse.verify(bad, trust, NS, NOW, TYPE)


@pytest.mark.parametrize("where", [0, 31, 63])
def test_tampered_signature_refused(alice: Ed25519PrivateKey, trust: TrustStore, where: int) -> None:
    env = signed(alice)
    s = env.signatures[0]
    bad = Envelope(env.payload, env.payload_type, (DsseSignature(s.keyid, _flip(s.sig, where)),))
    with pytest.raises(SignatureVerificationError, match=r"^step 3: signature 1 of 1 by alice .*does not verify"):
        dsse.verify(bad, trust, NS, NOW, TYPE)


def test_tampered_payload_type_refused(alice: Ed25519PrivateKey, trust: TrustStore) -> None:
    env = signed(alice)
    with pytest.raises(SignatureVerificationError, match=r"^step 1: payload type"):
        dsse.verify(env, trust, NS, NOW, TYPE + "x")
    # Same type asked for, but the envelope's type was changed after signing.
    bad = Envelope(env.payload, TYPE + "x", env.signatures)
    with pytest.raises(SignatureVerificationError, match=r"^step 3: .*does not verify"):
        dsse.verify(bad, trust, NS, NOW, TYPE + "x")


def test_no_signature_refused(trust: TrustStore) -> None:
    with pytest.raises(SignatureVerificationError, match=r"^step 2: the envelope has no signature"):
        dsse.verify(Envelope(b"x", TYPE), trust, NS, NOW, TYPE)


def test_unknown_key_refused(trust: TrustStore) -> None:
    with pytest.raises(SignatureVerificationError, match=r"^step 3: signature 1 of 1: key .* is not in the trust file"):
        dsse.verify(signed(Ed25519PrivateKey.generate()), trust, NS, NOW, TYPE)


def test_wrong_namespace_refused(alice: Ed25519PrivateKey, trust: TrustStore) -> None:
    with pytest.raises(SignatureVerificationError, match=r"^step 3: .*\(alice\) is not trusted for lumina-audit/led"):
        dsse.verify(signed(alice), trust, "lumina-audit/ledger", NOW, TYPE)


def test_validity_window(alice: Ed25519PrivateKey) -> None:
    window = trust_for(("alice", alice, [NS], NOW - timedelta(days=10), NOW + timedelta(days=10)))
    env = signed(alice)
    assert dsse.verify(env, window, NS, NOW, TYPE)[0].principal == "alice"
    with pytest.raises(SignatureVerificationError, match=r"^step 3: .*is not valid at"):
        dsse.verify(env, window, NS, NOW + timedelta(days=11), TYPE)  # expired
    with pytest.raises(SignatureVerificationError, match=r"^step 3: .*is not valid at"):
        dsse.verify(env, window, NS, NOW - timedelta(days=11), TYPE)  # not yet valid


def test_naive_time_refused(alice: Ed25519PrivateKey, trust: TrustStore) -> None:
    with pytest.raises(ValueError, match="timezone"):
        dsse.verify(signed(alice), trust, NS, datetime(2026, 1, 1), TYPE)


def test_duplicate_signer_refused(alice: Ed25519PrivateKey) -> None:
    with pytest.raises(EnvelopeError, match="already signed"):
        dsse.sign(signed(alice), alice)
    s = signed(alice).signatures[0]
    with pytest.raises(EnvelopeError, match="same keyid"):
        Envelope(b"x", TYPE, (s, s))


def test_multiple_signers(alice: Ed25519PrivateKey, bob: Ed25519PrivateKey, trust: TrustStore) -> None:
    env = dsse.sign(signed(alice), bob)
    env = Envelope.from_json(env.to_json())
    assert [e.principal for e in dsse.verify(env, trust, NS, NOW, TYPE)] == ["alice", "bob"]
    # Every signature must verify: one unknown signer spoils the envelope.
    env3 = dsse.sign(env, Ed25519PrivateKey.generate())
    with pytest.raises(SignatureVerificationError, match=r"^step 3: signature 3 of 3: key .* not in the trust file"):
        dsse.verify(env3, trust, NS, NOW, TYPE)
    # Bob alone is trusted for the ledger; Alice's signature makes the envelope fail there.
    with pytest.raises(SignatureVerificationError, match=r"^step 3: signature 1 of 2: .*not trusted"):
        dsse.verify(env, trust, "lumina-audit/ledger", NOW, TYPE)


_sigs = st.lists(
    st.tuples(st.text("0123456789abcdef", min_size=64, max_size=64), st.binary(min_size=1, max_size=80)),
    max_size=4, unique_by=lambda s: s[0])


@settings(max_examples=60, deadline=None)
@given(payload=st.binary(max_size=300), payload_type=st.text(min_size=1, max_size=40), sigs=_sigs)
def test_json_round_trip_property(payload: bytes, payload_type: str, sigs: list[tuple[str, bytes]]) -> None:
    env = Envelope(payload, payload_type, tuple(DsseSignature(k, s) for k, s in sigs))
    assert Envelope.from_json(env.to_json()) == env
    assert Envelope.from_json(env.to_json().encode()) == env


GOOD_SIG = {"keyid": "ab" * 32, "sig": base64.b64encode(b"\x01" * 64).decode()}
GOOD = {"payload": "eyJhIjoxfQ==", "payloadType": TYPE, "signatures": [GOOD_SIG]}


@pytest.mark.parametrize("text", [
    "",
    "not json",
    "[]",
    "null",
    json.dumps({k: v for k, v in GOOD.items() if k != "payload"}),
    json.dumps({**GOOD, "extra": 1}),
    json.dumps({**GOOD, "payload": "eyJhIjoxfQ"}),  # missing padding
    json.dumps({**GOOD, "payload": "eyJhIjoxfQ=\n="}),
    json.dumps({**GOOD, "payload": "eyJh-joxfQ=="}),  # URL-safe alphabet
    json.dumps({**GOOD, "payload": "eyJhIjoxfR=="}),  # non-zero padding bits: not canonical
    json.dumps({**GOOD, "payload": 5}),
    json.dumps({**GOOD, "payloadType": ""}),
    json.dumps({**GOOD, "payloadType": 7}),
    json.dumps({**GOOD, "signatures": {}}),
    json.dumps({**GOOD, "signatures": ["x"]}),
    json.dumps({**GOOD, "signatures": [{"keyid": "ab" * 32}]}),
    json.dumps({**GOOD, "signatures": [{**GOOD_SIG, "cert": "x"}]}),
    json.dumps({**GOOD, "signatures": [{**GOOD_SIG, "keyid": "AB" * 32}]}),
    json.dumps({**GOOD, "signatures": [{**GOOD_SIG, "keyid": 1}]}),
    json.dumps({**GOOD, "signatures": [{**GOOD_SIG, "sig": ""}]}),
    json.dumps({**GOOD, "signatures": [GOOD_SIG, GOOD_SIG]}),
    '{"payload": "eyJhIjoxfQ==", "payload": "eyJhIjoxfQ==", "payloadType": "t", "signatures": []}',
    '{"payload": "eyJhIjoxfQ==", "payloadType": "t", "signatures": [], "n": NaN}',
])
def test_malformed_json_refused(text: str) -> None:
    with pytest.raises(EnvelopeError):
        Envelope.from_json(text)


def test_well_formed_json_accepted() -> None:
    env = Envelope.from_json(json.dumps(GOOD))
    assert env.payload == b'{"a":1}' and env.signatures[0].sig == b"\x01" * 64
    assert Envelope.from_json(json.dumps({**GOOD, "signatures": []})).signatures == ()


def test_errors_are_verification_errors() -> None:
    assert SignatureVerificationError.exit_code == 1
    assert issubclass(EnvelopeError, SignatureVerificationError)
