"""``lumina-audit keys``: Ed25519 signing keys, trust-file lines, and key events recorded in a ledger."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from ._common import (
    JsonOpt,
    KeyOpt,
    LedgerOpt,
    PassEnvOpt,
    TrustOpt,
    echo,
    parse_time,
    passphrase,
    private_key,
    trust_store,
)

__all__ = ["keys_app"]

keys_app = typer.Typer(no_args_is_help=True, help="Ed25519 signing keys and key events.")


@keys_app.command("generate", epilog="Example: lumina-audit keys generate --out keys/alice --principal alice@lab "
                  "--namespace lumina-audit/manifest --namespace lumina-audit/ledger")
def keys_generate(
    out: Annotated[Path, typer.Option(help="Path prefix: writes PREFIX.key (mode 0600) and PREFIX.pub.")],
    principal: Annotated[str | None, typer.Option(help="Print a trust-file line for this principal.")] = None,
    namespace: Annotated[list[str], typer.Option(help="Namespaces of that line; repeatable.")] = [],  # noqa: B006
    passphrase_env: PassEnvOpt = None,
    ask_passphrase: Annotated[bool, typer.Option(help="Prompt for a passphrase to encrypt the key.")] = False,
    role: Annotated[str | None, typer.Option(help="Role of that line (e.g. operator, reviewer), which a "
                                                  "signing policy may require.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Generate an Ed25519 key pair; the private key is never overwritten."""
    from ..evidence.keys import generate, key_id, write_private_key, write_public_key
    from ..evidence.trust import NAMESPACES, format_entry, parse_trust

    if principal:  # refuse a line the parser would refuse before a key is written
        parse_trust(format_entry(principal, namespace or list(NAMESPACES), generate().public_key(), role=role))
    out.parent.mkdir(parents=True, exist_ok=True)
    key = generate()
    write_private_key(out.with_name(out.name + ".key"), key, passphrase(passphrase_env, confirm=True,
                                                                         ask=ask_passphrase))
    write_public_key(out.with_name(out.name + ".pub"), key.public_key(), principal or out.name)
    line = (format_entry(principal, namespace or list(NAMESPACES), key.public_key(), comment=out.name, role=role)
            if principal else None)
    if as_json:
        echo(json.dumps({"key_id": key_id(key.public_key()), "private_key": f"{out}.key",
                         "public_key": f"{out}.pub", "trust_line": line}, indent=1))
        return
    echo(f"key id {key_id(key.public_key())}")
    echo(f"wrote {out}.key (private, mode 0600) and {out}.pub")
    if line is not None:
        echo(line)


@keys_app.command("trust-line", epilog="Example: lumina-audit keys trust-line keys/bob.pub --principal bob@lab "
                  "--namespace lumina-audit/manifest --role reviewer --valid-before 2027-01-01")
def keys_trust_line(
    public_key: Annotated[Path, typer.Argument(help="Public key file (ssh-ed25519 line).")],
    principal: Annotated[str, typer.Option(help="Who holds the key.")],
    namespace: Annotated[list[str], typer.Option(help="Namespace; repeatable.")],
    valid_after: Annotated[str | None, typer.Option(help="ISO date or time (UTC).")] = None,
    valid_before: Annotated[str | None, typer.Option(help="ISO date or time (UTC).")] = None,
    role: Annotated[str | None, typer.Option(help="Role (e.g. operator, reviewer), which a signing policy "
                                                  "may require.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Print the trust-file line that lets PRINCIPAL's key sign in the given namespaces."""
    from ..evidence.keys import key_id, parse_public_key
    from ..evidence.trust import format_entry, parse_trust

    pub = parse_public_key(public_key.read_text(encoding="utf-8"))
    line = format_entry(principal, namespace, pub, parse_time(valid_after), parse_time(valid_before), role=role)
    parse_trust(line)  # refuse what the parser would refuse
    if as_json:
        echo(json.dumps({"key_id": key_id(pub), "principal": principal, "namespaces": list(namespace), "role": role,
                         "trust_line": line}, indent=1))
        return
    echo(line)


def _key_event(ledger: Path, trust: Path, key: Path, passphrase_env: str | None, kind: str,
               body: dict[str, Any], as_json: bool) -> None:
    from ..evidence.keys import key_id
    from ..evidence.ledger import LEDGER_NAMESPACE, Ledger

    signer = private_key(key, passphrase_env)
    entry = trust_store(trust).authorise(key_id(signer.public_key()), LEDGER_NAMESPACE, datetime.now(UTC))
    appended = Ledger.open(ledger).append(kind, body, signer, entry.principal)
    if as_json:
        echo(json.dumps({"ledger": str(ledger), "record": appended.seq, "kind": kind, **body}, indent=1))
        return
    echo(f"recorded {kind} as ledger record {appended.seq}")


@keys_app.command("revoke", epilog="Example: lumina-audit keys revoke 3f2a...e1 --ledger work/ledger "
                  "--trust trust --key keys/admin.key --reason 'laptop stolen'")
def keys_revoke(
    key_id_hex: Annotated[str, typer.Argument(metavar="KEY_ID", help="Key id (SHA-256 hex) to revoke.")],
    ledger: LedgerOpt,
    trust: TrustOpt,
    key: KeyOpt,
    reason: Annotated[str, typer.Option(help="Why the key is revoked.")],
    passphrase_env: PassEnvOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a key revocation: later records signed by that key are invalid."""
    _key_event(ledger, trust, key, passphrase_env, "key-revocation", {"key_id": key_id_hex, "reason": reason},
               as_json)


@keys_app.command("rotate", epilog="Example: lumina-audit keys rotate --ledger work/ledger --trust trust "
                  "--key keys/old.key --new keys/new.pub")
def keys_rotate(
    ledger: LedgerOpt,
    trust: TrustOpt,
    key: Annotated[Path, typer.Option("--key", help="The OLD private key (it signs the rotation).")],
    new: Annotated[Path, typer.Option(help="The new public key file.")],
    passphrase_env: PassEnvOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Record a key rotation, signed by the old key; the old key may not sign later records."""
    from ..evidence.keys import key_id, parse_public_key

    old = private_key(key, passphrase_env)
    new_id = key_id(parse_public_key(new.read_text(encoding="utf-8")))
    _key_event(ledger, trust, key, passphrase_env, "key-rotation",
               {"old_key_id": key_id(old.public_key()), "new_key_id": new_id}, as_json)
