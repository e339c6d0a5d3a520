"""Tests of expected-digest parsing (lumina_audit._internal.digests)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lumina_audit.errors import ConfigError
from lumina_audit.signature.digests import parse_digest_args, parse_digest_text

H1 = "0123456789abcdef" * 4
H2 = "fedcba9876543210" * 4
SD, CSD = "state_dict.bin", "compression_state_dict.bin"


def test_sha256sum_text() -> None:
    text = f"{H1}  {SD}\n{H2}  {CSD}\n"
    assert parse_digest_text(text, "f") == {SD: H1, CSD: H2}


def test_sha256sum_binary_marker_and_directories() -> None:
    text = f"{H1} *{SD}\n{H2}  /models/musicgen-large/{CSD}\n"
    assert parse_digest_text(text, "f") == {SD: H1, CSD: H2}
    text = f"{H1} *./ckpt/{SD}\r\n{H2} *{CSD}\r\n"
    assert parse_digest_text(text, "f") == {SD: H1, CSD: H2}


def test_sha256sum_one_file_and_comments() -> None:
    assert parse_digest_text(f"# pinned\n\n{H1}  {SD}\n", "f") == {SD: H1}
    assert parse_digest_text("", "f") == {}


def test_identical_duplicate_accepted() -> None:
    assert parse_digest_text(f"{H1}  {SD}\n{H1}  a/{SD}\n", "f") == {SD: H1}


def test_json() -> None:
    assert parse_digest_text(json.dumps({SD: H1, CSD: H2}), "f") == {SD: H1, CSD: H2}
    assert parse_digest_text(json.dumps({CSD: H2}, indent=2) + "\n", "f") == {CSD: H2}


@pytest.mark.parametrize(
    "text",
    [
        f"{H1}  model.bin\n",  # not a checkpoint file
        f"{H1}  {SD}.bak\n",
        f"{'g' * 64}  {SD}\n",  # not hex
        f"{H1[:-1]}z  {SD}\n",
        f"{H1[:63]}  {SD}\n",  # short
        f"{H1}0  {SD}\n",  # long
        f"{H1}\n",  # no name
        f"{H1}  {SD}\n{H2}  {SD}\n",  # conflicting duplicates
        f"{H1}  {SD}\n{H2}  other/{SD}\n",
        json.dumps({"model.bin": H1}),
        json.dumps({SD: H1[:63]}),
        json.dumps({SD: 12}),
        json.dumps({SD: H1, f"a/{SD}": H2}),  # conflicting after the directory is dropped
        "{" + f'"{SD}": "{H1}"',  # invalid JSON
    ],
)
def test_refused(text: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_digest_text(text, "digests.txt")
    assert "digests.txt" in str(info.value)


def test_args_combine_file_and_assignments(tmp_path: Path) -> None:
    f = tmp_path / "large.sha256"
    f.write_text(f"{H1}  {SD}\n", encoding="utf-8")
    assert parse_digest_args(f, [f"{CSD}={H2}"]) == {SD: H1, CSD: H2}
    assert parse_digest_args(None, [f"{SD}={H1}", f"{CSD}={H2}"]) == {SD: H1, CSD: H2}
    g = tmp_path / "both.json"
    g.write_text(json.dumps({SD: H1, CSD: H2}), encoding="utf-8")
    assert parse_digest_args(g, []) == {SD: H1, CSD: H2}


def test_args_missing_digest_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.sha256"
    with pytest.raises(ConfigError) as info:
        parse_digest_args(missing, [f"{SD}={H1}", f"{CSD}={H2}"])
    assert str(missing) in str(info.value)


@pytest.mark.parametrize(
    ("assignments", "missing"),
    [([], [SD, CSD]), ([f"{SD}={H1}"], [CSD]), ([f"{CSD}={H2}"], [SD])],
)
def test_args_missing_checkpoint_digest_has_hint(assignments: list[str], missing: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        parse_digest_args(None, assignments)
    err = info.value
    for name in missing:
        assert name in str(err)
    assert err.hint and ("--sha256" in err.hint or "--digests" in err.hint)


@pytest.mark.parametrize(
    "item",
    [f"{SD}:{H1}", f"{SD} {H1}", f"model.bin={H1}", f"{SD}={H1[:40]}", f"{SD}=xyz"],
)
def test_args_bad_assignment(item: str) -> None:
    with pytest.raises(ConfigError):
        parse_digest_args(None, [item, f"{CSD}={H2}"])


_HEX = st.text(alphabet="0123456789abcdef", min_size=64, max_size=64)
_DIR = st.sampled_from(["", "./", "/models/large/", "ckpt/v1/"])


@settings(max_examples=100, deadline=None)
@given(
    h1=_HEX, h2=_HEX, d1=_DIR, d2=_DIR,
    binary=st.booleans(), newline=st.sampled_from(["\n", "\r\n"]), swap=st.booleans(),
)
def test_sha256sum_round_trip(
    h1: str, h2: str, d1: str, d2: str, binary: bool, newline: str, swap: bool
) -> None:
    sep = " *" if binary else "  "
    lines = [f"{h1}{sep}{d1}{SD}", f"{h2}{sep}{d2}{CSD}"]
    if swap:
        lines.reverse()
    text = newline.join(lines) + newline
    assert parse_digest_text(text, "f") == {SD: h1, CSD: h2}
    assert parse_digest_text(json.dumps({SD: h1, CSD: h2}), "f") == {SD: h1, CSD: h2}
