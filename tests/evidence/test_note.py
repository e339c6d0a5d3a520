"""C2SP signed notes (Ed25519) and tlog checkpoint bodies.

Known answers: the PeterNeumann/EnochRoot keys and notes of the Go reference
implementation, golang.org/x/mod/sumdb/note (package documentation and
note_test.go); RFC 8032 section 7.1 test 1 for an Ed25519 key pair. Ed25519
is deterministic, so signing must reproduce the Go note byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given, settings
from hypothesis import strategies as st

from lumina_audit.errors import LuminaError
from lumina_audit.evidence.note import (
    MAX_SIGNATURES,
    Checkpoint,
    NoteError,
    format_checkpoint,
    key_id,
    open_note,
    parse_checkpoint,
    parse_verifier_key,
    sign_note,
    verifier_key_string,
)

PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
GO_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann "
    "x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot "
    "rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"
)
GO_NOTE = GO_TEXT + "\n" + PETER_SIG

# RFC 8032 section 7.1, TEST 1.
RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")

ROOT = bytes.fromhex("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328")
LOG = "example.com/lumina-ledger"


def _peter_private() -> Ed25519PrivateKey:
    material = base64.b64decode(PETER_SKEY.split("+", 4)[4])
    assert material[0] == 0x01 and len(material) == 33
    return Ed25519PrivateKey.from_private_bytes(material[1:])


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _log_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(RFC8032_SECRET)


# --- known answers ----------------------------------------------------------------------------------------


def test_go_reference_note_is_reproduced_byte_for_byte() -> None:
    key = _peter_private()
    assert verifier_key_string("PeterNeumann", key.public_key()) == PETER_VKEY
    assert sign_note(GO_TEXT, "PeterNeumann", key) == GO_NOTE
    name, public = parse_verifier_key(PETER_VKEY)
    assert name == "PeterNeumann" and _raw(public) == _raw(key.public_key())
    assert open_note(GO_NOTE, {name: public}) == (GO_TEXT, ["PeterNeumann"])


def test_go_reference_doubly_signed_note() -> None:
    doubly = GO_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    keys = dict([parse_verifier_key(PETER_VKEY), parse_verifier_key(ENOCH_VKEY)])
    assert open_note(doubly, keys) == (GO_TEXT, ["PeterNeumann", "EnochRoot"])
    enoch_only = dict([parse_verifier_key(ENOCH_VKEY)])
    assert open_note(doubly, enoch_only) == (GO_TEXT, ["EnochRoot"])


def test_key_id_from_the_spec_formula() -> None:
    key = _log_key()
    public = _raw(key.public_key())
    assert public == RFC8032_PUBLIC
    # key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte Ed25519 public key)[:4]
    by_hand = hashlib.sha256(LOG.encode() + b"\x0a" + b"\x01" + RFC8032_PUBLIC).digest()[:4]
    assert by_hand == bytes.fromhex("f3b288a1")
    assert key_id(LOG, key.public_key()) == by_hand
    vkey = verifier_key_string(LOG, key.public_key())
    assert vkey == LOG + "+f3b288a1+" + base64.b64encode(b"\x01" + RFC8032_PUBLIC).decode()
    peter = _peter_private().public_key()
    assert hashlib.sha256(b"PeterNeumann\n\x01" + _raw(peter)).digest()[:4].hex() == "c74f20a3"


# --- round trip and tampering -----------------------------------------------------------------------------


def test_checkpoint_round_trip() -> None:
    body = format_checkpoint(LOG, 8, ROOT, ("ext one",))
    assert body == f"{LOG}\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\next one\n"
    note = sign_note(body, LOG, _log_key())
    opened, names = open_note(note, {LOG: _log_key().public_key()})
    assert (opened, names) == (body, [LOG])
    assert parse_checkpoint(opened) == Checkpoint(LOG, 8, ROOT, ("ext one",))


def _signed() -> str:
    return sign_note(format_checkpoint(LOG, 20852163, ROOT), LOG, _log_key())


def test_one_character_body_tamper_is_rejected() -> None:
    note = _signed()
    body_len = note.index("\n\n") + 1
    verifiers = {LOG: _log_key().public_key()}
    for i in range(body_len):
        replacement = "x" if note[i] != "x" else "y"
        with pytest.raises(NoteError):
            open_note(note[:i] + replacement + note[i + 1 :], verifiers)


def test_one_byte_signature_tamper_is_rejected() -> None:
    note = _signed()
    head, _, sig64 = note.rstrip("\n").rpartition(" ")
    blob = base64.b64decode(sig64)
    verifiers = {LOG: _log_key().public_key()}
    for i in range(len(blob)):
        for mask in (0x01, 0x80):
            bad = bytearray(blob)
            bad[i] ^= mask
            with pytest.raises(NoteError):
                open_note(f"{head} {base64.b64encode(bytes(bad)).decode()}\n", verifiers)
    for i, ch in enumerate(sig64.rstrip("=")):
        replacement = "A" if ch != "A" else "B"
        with pytest.raises(NoteError):
            open_note(f"{head} {sig64[:i]}{replacement}{sig64[i + 1:]}\n", verifiers)


def test_signature_moved_to_another_body_fails_loudly() -> None:
    key = _log_key()
    sig_line = sign_note("one\n", LOG, key).split("\n\n")[1]
    with pytest.raises(NoteError, match="does not verify"):
        open_note("two\n\n" + sig_line, {LOG: key.public_key()})


def test_unknown_key_is_rejected() -> None:
    note = _signed()
    other = Ed25519PrivateKey.from_private_bytes(bytes(32)).public_key()
    for verifiers in ({}, {LOG: other}, {"example.com/other": other}):
        with pytest.raises(NoteError, match="no signature from a known key"):
            open_note(note, verifiers)


def test_wrong_key_name_is_rejected() -> None:
    note = _signed()
    with pytest.raises(NoteError, match="no signature from a known key"):
        open_note(note, {"example.com/other": _log_key().public_key()})


def test_unknown_signatures_are_ignored() -> None:
    key, stranger = _log_key(), Ed25519PrivateKey.from_private_bytes(bytes(32))
    body = format_checkpoint(LOG, 1, ROOT)
    stranger_line = sign_note(body, "witness.example/w1", stranger).split("\n\n")[1]
    note = sign_note(body, LOG, key) + stranger_line
    assert open_note(note, {LOG: key.public_key()}) == (body, [LOG])
    both = {LOG: key.public_key(), "witness.example/w1": stranger.public_key()}
    assert open_note(note, both) == (body, [LOG, "witness.example/w1"])


@pytest.mark.parametrize(
    "name", ["", "has space", "has+plus", "tab\tname", "nbsp\u00a0name", "line\u2028sep"]
)
def test_bad_key_names_are_refused(name: str) -> None:
    key = _log_key()
    with pytest.raises(NoteError, match="key name"):
        sign_note("text\n", name, key)
    with pytest.raises(NoteError, match="key name"):
        verifier_key_string(name, key.public_key())
    with pytest.raises(NoteError, match="key name"):
        open_note("text\n\n— x AAAA\n", {name: key.public_key()})


def test_bad_key_name_in_signature_line_is_refused() -> None:
    line = _signed().split("\n\n")[1].replace(LOG, "bad+name")
    with pytest.raises(NoteError, match="key name"):
        open_note("text\n\n" + line, {LOG: _log_key().public_key()})


@pytest.mark.parametrize(
    "body", ["", "no final newline", "tab\there\n", "cr\r\n", "nul\x00\n", "bad \udc80\n"]
)
def test_bad_bodies_are_refused_by_sign(body: str) -> None:
    with pytest.raises(NoteError, match="note text"):
        sign_note(body, LOG, _log_key())


@pytest.mark.parametrize(
    ("mangle", "match"),
    [
        (lambda n: n.replace("\n\n", "\n"), "no blank line"),
        (lambda n: n.rstrip("\n"), "signature block"),
        (lambda n: n + "\n", "signature block"),
        (lambda n: n.replace("—", "-"), "em dash"),
        (lambda n: n.replace("— ", "—  "), "key name"),
        (lambda n: n.replace("=\n", "\n"), "base64"),
        (lambda n: n.replace("\n\n", "\n\r\n"), "control character"),
        (lambda n: n + "— " + LOG + " AAAA\n", "shorter than a key ID"),
        (lambda n: n + "— " + LOG + " AAAAAB==\n", "not canonical"),
        (lambda n: n + "— " + LOG + " not base64!\n", "base64"),
        (lambda n: n + ("— x AAAAAAA=\n" * MAX_SIGNATURES), "more than"),
    ],
)
def test_malformed_notes_are_refused(mangle: Callable[[str], str], match: str) -> None:
    with pytest.raises(NoteError, match=match):
        open_note(mangle(_signed()), {LOG: _log_key().public_key()})


def test_note_accepts_sixteen_signatures() -> None:
    key = _log_key()
    body = "many\n"
    strangers = [Ed25519PrivateKey.from_private_bytes(bytes([i]) * 32) for i in range(1, 16)]
    lines = "".join(sign_note(body, f"w{i}.example", k).split("\n\n")[1] for i, k in enumerate(strangers))
    assert open_note(sign_note(body, LOG, key) + lines, {LOG: key.public_key()}) == (body, [LOG])


# --- verifier keys ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "vkey",
    [
        "PeterNeumann+c74f20a3",  # no key material
        "PeterNeumann+c74f20a4+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # wrong key id
        "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # upper-case id
        "PeterNeumann+c74f20+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # short id
        "PeterNeumanm+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # other name
        "PeterNeumann+c74f20a3+Ahpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # type 0x02
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10",  # truncated key
        "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",  # space in name
    ],
)
def test_bad_verifier_keys_are_refused(vkey: str) -> None:
    with pytest.raises(NoteError):
        parse_verifier_key(vkey)


def test_verifier_key_round_trip_with_plus_in_base64() -> None:
    # Key names hold no '+', but base64 key material may: the vkey must split on the first two only.
    for seed in range(256):
        key = Ed25519PrivateKey.from_private_bytes(bytes([seed]) * 32).public_key()
        vkey = verifier_key_string(LOG, key)
        if "+" in vkey.split("+", 2)[2]:
            name, parsed = parse_verifier_key(vkey)
            assert name == LOG and _raw(parsed) == _raw(key)
            return
    pytest.fail("no seed gave a '+' in the key material")


# --- checkpoints ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "origin\n8\n",  # too few lines
        "origin\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=",  # no final newline
        "\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",  # empty origin
        "origin\n08\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",  # leading zero
        "origin\n-1\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
        "origin\n+1\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
        "origin\n\uff18\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",  # full-width digit
        "origin\n18446744073709551616\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",  # 2**64
        "origin\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQw==\n",  # 31 bytes
        "origin\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyh=\n",  # non-canonical base64
        "origin\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg\n",  # missing padding
        "origin\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n\n",  # empty extension line
        "origin\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\next\x07\n",  # control character
    ],
)
def test_bad_checkpoints_are_refused(body: str) -> None:
    with pytest.raises(NoteError):
        parse_checkpoint(body)


def test_format_checkpoint_refuses_bad_fields() -> None:
    with pytest.raises(NoteError):
        format_checkpoint("", 1, ROOT)
    with pytest.raises(NoteError):
        format_checkpoint("two\nlines", 1, ROOT)
    with pytest.raises(NoteError):
        format_checkpoint(LOG, -1, ROOT)
    with pytest.raises(NoteError):
        format_checkpoint(LOG, 2**64, ROOT)
    with pytest.raises(NoteError):
        format_checkpoint(LOG, 1, ROOT[:31])
    with pytest.raises(NoteError):
        format_checkpoint(LOG, 1, ROOT, ("",))
    with pytest.raises(NoteError):
        format_checkpoint(LOG, 1, ROOT, ("a\nb",))


def test_note_error_is_a_lumina_error() -> None:
    assert issubclass(NoteError, LuminaError)
    assert NoteError.exit_code == 1


_LINE = st.text(st.characters(min_codepoint=0x20, exclude_categories=["Cs"]), min_size=1, max_size=40)


@settings(max_examples=100, deadline=None)
@given(_LINE, st.integers(0, 2**64 - 1), st.binary(min_size=32, max_size=32), st.lists(_LINE, max_size=3))
def test_checkpoint_format_parse_round_trip(origin: str, size: int, root_hash: bytes, ext: list[str]) -> None:
    body = format_checkpoint(origin, size, root_hash, ext)
    assert parse_checkpoint(body) == Checkpoint(origin, size, root_hash, tuple(ext))
    key = _log_key()
    assert open_note(sign_note(body, LOG, key), {LOG: key.public_key()}) == (body, [LOG])
