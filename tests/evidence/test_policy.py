"""The signing policy: how many distinct trusted principals sign each manifest kind, in which roles.

Stated in the trust file (``@policy`` lines, version 1); a trust file without one gets the
default, two distinct principals. ``verify_manifest`` (step 6), ``manifest verify`` (exit 1)
and ``run`` (exit 2, nothing written) refuse a manifest short of it, naming what is missing.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from typer.testing import CliRunner

from lumina_audit.cli.main import app
from lumina_audit.evidence import dsse, keys
from lumina_audit.evidence.manifest import KINDS, sign_manifest, verify_manifest
from lumina_audit.evidence.trust import (
    DEFAULT_POLICY,
    POLICY_KINDS,
    PolicyError,
    SigningRule,
    TrustError,
    TrustStore,
    format_entry,
    format_policy,
    load_trust,
    parse_trust,
)

from .test_manifest import ATTRIBUTE, FULL, write

MANIFEST, LEDGER = "lumina-audit/manifest", "lumina-audit/ledger"
OPERATOR, REVIEWER, AUDITOR, OPERATOR2 = (Ed25519PrivateKey.generate() for _ in range(4))
ATTRIBUTE_POLICY = format_policy("Attribute", 2, ("operator", "reviewer"), {"reviewer": 1})


def lines(*, roles: bool = True, policy: tuple[str, ...] = ()) -> str:
    """op@lab and op2@lab (operators), rev@lab (reviewer), aud@lab (auditor), then the policy lines."""
    def role(name: str) -> str | None:
        return name if roles else None
    return "\n".join([
        "# an allowed_signers-style trust file",
        format_entry("op@lab", [MANIFEST, LEDGER], OPERATOR.public_key(), role=role("operator")),
        format_entry("op2@lab", [MANIFEST], OPERATOR2.public_key(), role=role("operator")),
        format_entry("rev@lab", [MANIFEST], REVIEWER.public_key(), role=role("reviewer")),
        format_entry("aud@lab", [MANIFEST], AUDITOR.public_key(), role=role("auditor")),
        *policy,
    ]) + "\n"


def signed(tmp_path: Path, *signers: Ed25519PrivateKey, text: str = FULL) -> Path:
    tmp_path.mkdir(parents=True, exist_ok=True)
    path = write(tmp_path, text)
    for key in signers:
        sign_manifest(path, key)
    return path


def refused(path: Path, trust: TrustStore, pattern: str) -> str:
    with pytest.raises(dsse.SignatureVerificationError, match=pattern) as info:
        verify_manifest(path, trust)
    assert info.value.exit_code == 1 and info.value.message.startswith("step 6: signing policy not met: ")
    return info.value.message


def entry(principal: str, key: Ed25519PrivateKey, role: str | None = None) -> str:
    return format_entry(principal, [MANIFEST], key.public_key(), role=role)


# ---------------------------------------------------------------- the default

def test_policy_kinds_are_the_manifest_kinds() -> None:
    assert POLICY_KINDS == ("default", *KINDS)


def test_an_old_trust_file_reads_and_gets_the_default_two_signers(tmp_path: Path) -> None:
    old = "\n".join([entry("op@lab", OPERATOR), entry("rev@lab", REVIEWER)]) + "\n"  # no role, no @policy
    (tmp_path / "trust").write_text(old)
    trust = load_trust(tmp_path / "trust")
    assert trust.policy == DEFAULT_POLICY and not trust.policy.stated
    assert [e.role for e in trust.entries] == [None, None]
    assert DEFAULT_POLICY.document() == {"format": "lumina-signing-policy", "version": 1,
                                         "rules": {"default": {"threshold": 2}}}
    assert DEFAULT_POLICY.sha256 == hashlib.sha256(
        b'{"format":"lumina-signing-policy","rules":{"default":{"threshold":2}},"version":1}').hexdigest()
    path = signed(tmp_path, OPERATOR)
    message = refused(path, trust, r"need 2 distinct signers \(the default: .*trust states no @policy\)")
    assert message.endswith("counted 1: op@lab; missing: 1 more distinct signer"), message
    sign_manifest(path, REVIEWER)
    checked = verify_manifest(path, trust).policy
    assert (checked.rule, checked.kind, [e.principal for e in checked.counted]) == ("default", "Extract",
                                                                                   ["op@lab", "rev@lab"])
    assert checked.to_json() == {"sha256": DEFAULT_POLICY.sha256, "policy": DEFAULT_POLICY.document(),
                                 "stated": False, "kind": "Extract", "rule": "default",
                                 "counted": [{"principal": "op@lab", "role": None},
                                             {"principal": "rev@lab", "role": None}]}


def test_two_keys_of_one_principal_count_once(tmp_path: Path) -> None:
    second = Ed25519PrivateKey.generate()
    trust = parse_trust("\n".join([entry("op@lab", OPERATOR), entry("op@lab", second), entry("rev@lab", REVIEWER)]))
    path = signed(tmp_path, OPERATOR, second)
    refused(path, trust, r"counted 1: op@lab \(op@lab signed with several keys, counted once\); "
                         r"missing: 1 more distinct signer$")
    sign_manifest(path, REVIEWER)
    assert [e.principal for e in verify_manifest(path, trust).policy.counted] == ["op@lab", "rev@lab"]


def test_the_hint_says_when_the_trust_file_lists_too_few_principals(tmp_path: Path) -> None:
    path = signed(tmp_path, OPERATOR)
    with pytest.raises(dsse.SignatureVerificationError) as info:
        verify_manifest(path, parse_trust(entry("op@lab", OPERATOR), "lonely"))
    assert "lonely lists too few principals" in str(info.value.hint)
    with pytest.raises(dsse.SignatureVerificationError) as info:
        verify_manifest(path, parse_trust(lines()))
    assert info.value.hint == f"have another trusted principal add a signature (lumina-audit manifest sign {path} " \
                              "--key KEY)"


# ---------------------------------------------------------------- roles and thresholds

@pytest.mark.parametrize("signers, missing", [
    ((OPERATOR,), "missing: 1 reviewer"),
    ((OPERATOR, OPERATOR2), "missing: 1 reviewer"),
    ((REVIEWER,), "missing: 1 more distinct signer with role operator or reviewer"),
    ((OPERATOR, AUDITOR), "not counted: aud@lab (auditor); missing: 1 reviewer"),
    ((AUDITOR,), "counted 0: none; not counted: aud@lab (auditor); missing: 1 reviewer and 1 more distinct signer "
                 "with role operator or reviewer"),
])
def test_a_role_threshold_unmet_names_the_missing_role(tmp_path: Path, signers: tuple[Ed25519PrivateKey, ...],
                                                       missing: str) -> None:
    trust = parse_trust(lines(policy=(ATTRIBUTE_POLICY,)), "trust")
    message = refused(signed(tmp_path, *signers, text=ATTRIBUTE), trust,
                      r"Attribute manifests need 2 distinct signers with role operator or reviewer, at least 1 "
                      r"reviewer \(@policy Attribute in trust\)")
    assert message.endswith(missing), message


@pytest.mark.parametrize("signers", [(OPERATOR, REVIEWER), (REVIEWER, OPERATOR2, AUDITOR)])
def test_a_role_threshold_met(tmp_path: Path, signers: tuple[Ed25519PrivateKey, ...]) -> None:
    trust = parse_trust(lines(policy=(ATTRIBUTE_POLICY,)), "trust")
    checked = verify_manifest(signed(tmp_path, *signers, text=ATTRIBUTE), trust).policy
    assert checked.rule == "Attribute" and {e.role for e in checked.counted} == {"operator", "reviewer"}
    assert "aud@lab" not in [e.principal for e in checked.counted]
    assert checked.to_json()["stated"] is True
    assert checked.to_json()["policy"]["rules"]["Attribute"] == {"threshold": 2, "roles": ["operator", "reviewer"],
                                                                 "require": {"reviewer": 1}}


def test_each_kind_has_its_rule_and_default_the_others(tmp_path: Path) -> None:
    trust = parse_trust(lines(policy=(format_policy("Extract", 1), ATTRIBUTE_POLICY)), "trust")
    assert [name for name, _ in trust.policy.rules] == ["default", "Extract", "Attribute"]
    assert trust.policy.rule_for("Calibrate") == ("default", SigningRule(2))
    checked = verify_manifest(signed(tmp_path, OPERATOR), trust).policy  # an Extract: one signer stated
    assert checked.rule == "Extract" and checked.policy.document()["rules"]["default"] == {"threshold": 2}
    stated = parse_trust(lines(policy=(format_policy("default", 3),)), "trust")
    refused(signed(tmp_path / "d", OPERATOR, REVIEWER), stated,
            r"need 3 distinct signers \(@policy default in trust\); counted 2: op@lab \(operator\), rev@lab "
            r"\(reviewer\); missing: 1 more distinct signer$")


def test_check_policy_raises_policy_error_directly() -> None:
    trust = parse_trust(lines())
    op = trust.entries[0]
    with pytest.raises(PolicyError, match="missing: 1 more distinct signer") as info:
        trust.check_policy("Calibrate", (op,))
    assert isinstance(info.value, TrustError) and info.value.exit_code == 1
    assert [e.principal for e in trust.check_policy("Calibrate", (op, trust.entries[2])).counted] == ["op@lab",
                                                                                                       "rev@lab"]


# ---------------------------------------------------------------- the format

def test_policy_lines_round_trip_and_the_digest_is_the_content() -> None:
    a = parse_trust(lines(policy=(ATTRIBUTE_POLICY, format_policy("default", 2))))
    b = parse_trust(lines(policy=(format_policy("default", 2), ATTRIBUTE_POLICY.replace(
        'roles="operator,reviewer"', 'roles="reviewer,operator"'))))
    assert a.policy == b.policy and a.policy.sha256 == b.policy.sha256
    assert ATTRIBUTE_POLICY == ('@policy Attribute version="1",threshold="2",roles="operator,reviewer",'
                                'require="reviewer:1"')
    c = parse_trust(lines(policy=(ATTRIBUTE_POLICY.replace('require="reviewer:1"', 'require="operator:1"'),)))
    assert c.policy.sha256 != a.policy.sha256


@pytest.mark.parametrize("policy, message", [
    ('@policy Attribute version="2",threshold="2"', r"@policy version '2' is not known .*refusing to ignore"),
    ('@policy Attribute threshold="2"', r"@policy version None is not known"),
    ('@policy Attribute version="1",threshold="2",quorum="x"', "unknown @policy option"),
    ('@policy Review version="1",threshold="2"', "@policy names 'Review'"),
    ('@policy Attribute version="1"', r"threshold=\"N\" is required"),
    ('@policy Attribute version="1",threshold="0"', r"threshold=\"N\" is required"),
    ('@policy Attribute version="1",threshold="33"', r"threshold=\"N\" is required"),
    ('@policy Attribute version="1",threshold="2",roles="operator,operator"', "distinct role names"),
    ('@policy Attribute version="1",threshold="2",roles="Operator"', "distinct role names"),
    ('@policy Attribute version="1",threshold="2",require="reviewer"', "ROLE:N items"),
    ('@policy Attribute version="1",threshold="2",require="reviewer:1,reviewer:1"', "ROLE:N items"),
    ('@policy Attribute version="1",threshold="2",roles="operator",require="reviewer:1"',
     "require names role 'reviewer', which roles='operator' leaves out"),
    ('@policy Attribute version="1",threshold="2",require="reviewer:2,operator:1"', "more than threshold 2"),
    ('@policy Attribute version="1",threshold="2",roles="operator,approver"', r"role\(s\) approver, which no trust"),
    ("@policy Attribute", "expected '@policy KIND"),
    ('@revoked Attribute version="1"', "unknown marker '@revoked'"),
])
def test_malformed_policy_lines_are_refused_naming_the_line(policy: str, message: str) -> None:
    with pytest.raises(TrustError, match=message) as info:
        parse_trust(lines(policy=(policy,)), "trust")
    assert "trust:6:" in str(info.value)


def test_a_second_policy_for_one_kind_is_refused() -> None:
    with pytest.raises(TrustError, match=r"trust:7: a second @policy for Attribute \(the first is at trust:6\)"):
        parse_trust(lines(policy=(ATTRIBUTE_POLICY, ATTRIBUTE_POLICY)), "trust")


def test_roles_on_trust_lines() -> None:
    trust = parse_trust(lines())
    assert [e.role for e in trust.entries] == ["operator", "operator", "reviewer", "auditor"]
    line = format_entry("x@lab", [MANIFEST], OPERATOR.public_key(), role="reviewer")
    assert 'role="reviewer"' in line and parse_trust(line).entries[0].role == "reviewer"
    with pytest.raises(TrustError, match="invalid role 'Reviewer'"):
        parse_trust(line.replace('role="reviewer"', 'role="Reviewer"'))
    with pytest.raises(TrustError, match=r"trust:2: op@lab has role reviewer here and operator at line 1"):
        parse_trust(entry("op@lab", OPERATOR, "operator") + "\n" + entry("op@lab", OPERATOR2, "reviewer"), "trust")
    with pytest.raises(TrustError, match=r"has role \(none\) here and operator"):
        parse_trust(entry("op@lab", OPERATOR, "operator") + "\n" + entry("op@lab", OPERATOR2), "trust")


# ---------------------------------------------------------------- the CLI

def test_manifest_verify_refuses_one_signer_with_exit_1_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "trust").write_text(lines(policy=(ATTRIBUTE_POLICY,)))
    path = signed(tmp_path, OPERATOR, text=ATTRIBUTE)
    before = sorted(p.name for p in tmp_path.iterdir())
    runner = CliRunner()
    out = runner.invoke(app, ["manifest", "verify", str(path), "--trust", str(tmp_path / "trust")])
    assert out.exit_code == 1
    assert isinstance(out.exception, dsse.SignatureVerificationError)
    assert "missing: 1 reviewer" in out.exception.message
    assert sorted(p.name for p in tmp_path.iterdir()) == before
    sign_manifest(path, REVIEWER)
    out = runner.invoke(app, ["manifest", "verify", str(path), "--trust", str(tmp_path / "trust")])
    assert out.exit_code == 0, out.output
    assert "signed by rev@lab" in out.output and ", role reviewer)" in out.output
    assert "policy met: 2 distinct signers with role operator or reviewer, at least 1 reviewer (@policy Attribute" \
        in out.output
    doc = json.loads(runner.invoke(app, ["manifest", "verify", str(path), "--trust", str(tmp_path / "trust"),
                                         "--json"]).output)
    assert doc["signing_policy"]["rule"] == "Attribute" and [s["role"] for s in doc["signers"]] == ["operator",
                                                                                                    "reviewer"]


def test_keys_trust_line_and_generate_take_a_role(tmp_path: Path) -> None:
    keys.write_public_key(tmp_path / "rev.pub", REVIEWER.public_key(), "rev")
    runner = CliRunner()
    out = runner.invoke(app, ["keys", "trust-line", str(tmp_path / "rev.pub"), "--principal", "rev@lab",
                              "--namespace", MANIFEST, "--role", "reviewer"])
    assert out.exit_code == 0, out.output
    assert parse_trust(out.output).entries[0].role == "reviewer"
    out = runner.invoke(app, ["keys", "generate", "--out", str(tmp_path / "op"), "--principal", "op@lab",
                              "--role", "operator"])
    assert out.exit_code == 0, out.output
    assert parse_trust(out.output.strip().splitlines()[-1]).entries[0].role == "operator"
    bad = runner.invoke(app, ["keys", "generate", "--out", str(tmp_path / "x"), "--principal", "x@lab",
                              "--role", "Bad Role"])
    assert isinstance(bad.exception, TrustError) and not (tmp_path / "x.key").exists()

