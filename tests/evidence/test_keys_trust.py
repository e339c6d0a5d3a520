"""Key files and the trust file."""

from __future__ import annotations

import stat
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lumina_audit.evidence import keys
from lumina_audit.evidence.trust import NAMESPACES, TrustError, format_entry, load_trust, parse_trust


def test_private_key_is_0600_never_overwritten_and_round_trips(tmp_path: Path) -> None:
    k = keys.generate()
    keys.write_private_key(tmp_path / "a.key", k)
    assert stat.S_IMODE((tmp_path / "a.key").stat().st_mode) == 0o600
    with pytest.raises(keys.KeyFileError, match="refusing to overwrite"):
        keys.write_private_key(tmp_path / "a.key", keys.generate())
    again = keys.load_private_key(tmp_path / "a.key")
    assert keys.key_id(again.public_key()) == keys.key_id(k.public_key())


def test_encrypted_private_key(tmp_path: Path) -> None:
    k = keys.generate()
    keys.write_private_key(tmp_path / "e.key", k, b"correct horse")
    assert b"ENCRYPTED" in (tmp_path / "e.key").read_bytes()
    with pytest.raises(keys.KeyFileError, match="passphrase is needed"):
        keys.load_private_key(tmp_path / "e.key")
    with pytest.raises(keys.KeyFileError, match="wrong passphrase"):
        keys.load_private_key(tmp_path / "e.key", b"wrong")
    assert keys.key_id(keys.load_private_key(tmp_path / "e.key", b"correct horse").public_key()) == \
        keys.key_id(k.public_key())


def test_key_id_is_sha256_of_raw_public_key() -> None:
    import hashlib

    k = keys.generate()
    assert keys.key_id(k.public_key()) == hashlib.sha256(keys.raw_public_key(k.public_key())).hexdigest()
    line = keys.public_key_line(k.public_key(), "me")
    assert line.startswith("ssh-ed25519 ") and line.endswith(" me")
    assert keys.key_id(keys.parse_public_key(line)) == keys.key_id(k.public_key())
    with pytest.raises(keys.KeyFileError):
        keys.parse_public_key("ssh-rsa AAAA")


def test_authorise_steps() -> None:
    k = keys.generate()
    kid = keys.key_id(k.public_key())
    start = datetime(2026, 1, 1, tzinfo=UTC)
    trust = parse_trust(format_entry("alice@lab", ["lumina-audit/manifest"], k.public_key(), start,
                                     start + timedelta(days=365)))
    assert trust.authorise(kid, "lumina-audit/manifest", start + timedelta(days=1)).principal == "alice@lab"
    with pytest.raises(TrustError, match="not in the trust file"):
        trust.authorise("0" * 64, "lumina-audit/manifest", start)
    with pytest.raises(TrustError, match="not trusted for lumina-audit/ledger"):
        trust.authorise(kid, "lumina-audit/ledger", start + timedelta(days=1))
    with pytest.raises(TrustError, match="not valid at"):
        trust.authorise(kid, "lumina-audit/manifest", start - timedelta(seconds=1))
    with pytest.raises(TrustError, match="not valid at"):
        trust.authorise(kid, "lumina-audit/manifest", start + timedelta(days=365))


@pytest.mark.parametrize("line, message", [
    ("alice", "expected 'principal options"),
    ('al ice namespaces="lumina-audit/manifest" ssh-ed25519 AAAA', "malformed or repeated option"),
    ('alice namespaces="lumina-audit/other" KEY', "namespaces must be among"),
    ('alice nmspaces="lumina-audit/manifest" KEY', "unknown option"),
    ('alice namespaces="lumina-audit/manifest",valid-after="2026-01-01" KEY', "invalid time"),
    ('alice namespaces="lumina-audit/manifest",valid-after="20270101",valid-before="20260101" KEY', "not before"),
    ('alice namespaces="lumina-audit/manifest" ssh-ed25519 AAAAnotbase64', "malformed ssh-ed25519"),
    ('a/b namespaces="lumina-audit/manifest" KEY', "invalid principal"),
])
def test_malformed_trust_lines_name_the_line(line: str, message: str) -> None:
    key = keys.public_key_line(keys.generate().public_key())
    with pytest.raises(TrustError, match=message) as err:
        parse_trust("# comment\n\n" + line.replace("KEY", key), "trust")
    assert "trust:3" in str(err.value)


def test_missing_trust_file(tmp_path: Path) -> None:
    with pytest.raises(TrustError, match="cannot read trust file"):
        load_trust(tmp_path / "nope")


def test_a_principal_starting_with_at_is_refused() -> None:
    with pytest.raises(TrustError, match="not start with '@'"):
        format_entry("@policy", ["lumina-audit/manifest"], keys.generate().public_key())


@settings(max_examples=40, deadline=None)
@given(principal=st.from_regex(r"[A-Za-z0-9._-][A-Za-z0-9._@-]{0,39}", fullmatch=True),
       namespaces=st.sets(st.sampled_from(NAMESPACES), min_size=1),
       after=st.one_of(st.none(), st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1))),
       days=st.integers(1, 5000))
def test_format_and_parse_round_trip(principal: str, namespaces: set[str], after: datetime | None, days: int) -> None:
    k = keys.generate()
    a = after.replace(microsecond=0, tzinfo=UTC) if after else None
    b = a + timedelta(days=days) if a else None
    entry = parse_trust(format_entry(principal, sorted(namespaces), k.public_key(), a, b)).entries[0]
    assert (entry.principal, entry.namespaces, entry.valid_after, entry.valid_before) == (principal, frozenset(
        namespaces), a, b)
    assert entry.key_id == keys.key_id(k.public_key())
