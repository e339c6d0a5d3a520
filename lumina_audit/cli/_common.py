"""What the command modules share: output, the common options, passphrases, keys and the trust file."""

from __future__ import annotations

import getpass
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ConfigError

__all__ = [
    "EXIT_INVALID",
    "EXIT_UNCHECKED",
    "EXIT_VALID",
    "JsonOpt",
    "KeyOpt",
    "LedgerOpt",
    "PassEnvOpt",
    "TrustOpt",
    "err",
    "echo",
    "parse_time",
    "passphrase",
    "private_key",
    "trust_store",
]

TrustOpt = Annotated[Path, typer.Option("--trust", help="Trust file (allowed_signers style).")]

KeyOpt = Annotated[Path, typer.Option("--key", help="Ed25519 private key (PEM).")]

PassEnvOpt = Annotated[str | None, typer.Option(help="Read the key passphrase from this environment variable.")]

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON for machines.")]

#: How every command names a ledger (an option; the old positional spellings: :mod:`._grammar`).
LedgerOpt = Annotated[Path, typer.Option("--ledger", help="Ledger directory.")]

#: ``verify`` exit codes.
EXIT_VALID, EXIT_INVALID, EXIT_UNCHECKED = 0, 1, 3


def echo(text: str) -> None:
    sys.stdout.write(text + "\n")


def err(text: str) -> None:
    sys.stderr.write(text + "\n")


def passphrase(env: str | None, *, confirm: bool = False, ask: bool = False) -> bytes | None:
    if env is not None:
        value = os.environ.get(env)
        if not value:
            raise ConfigError(f"environment variable {env} is empty or unset")
        return value.encode()
    if ask and sys.stdin.isatty():
        first = getpass.getpass("passphrase (empty for none): ")
        if confirm and first and getpass.getpass("again: ") != first:
            raise ConfigError("the passphrases differ")
        return first.encode() or None
    return None


def private_key(path: Path, env: str | None) -> Any:
    from ..evidence.keys import KeyFileError, load_private_key

    try:
        return load_private_key(path, passphrase(env))
    except KeyFileError as exc:
        if "encrypted" in exc.message and env is None and sys.stdin.isatty():
            return load_private_key(path, passphrase(None, ask=True))
        raise


def trust_store(path: Path) -> Any:
    from ..evidence.trust import load_trust

    return load_trust(path)


def parse_time(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ConfigError(f"invalid time {value!r} (ISO 8601, e.g. 2026-01-01 or 2026-01-01T00:00:00Z)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
