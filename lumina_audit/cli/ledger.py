"""``lumina-audit ledger`` and ``verify ledger`` / ``verify proof``: inspect, prove, repair and verify a ledger."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ConfigError
from ._common import (
    JsonOpt,
    PassEnvOpt,
    echo,
    private_key,
    trust_store,
)

__all__ = ["ledger_app"]

ledger_app = typer.Typer(no_args_is_help=True, help="Inspect, prove and repair a ledger.")


@ledger_app.command("show", epilog="Example: lumina-audit ledger show work/ledger --json")
def ledger_show(
    path: Annotated[Path, typer.Argument(help="Ledger directory.")],
    as_json: JsonOpt = False,
) -> None:
    """List the records of a ledger (inspection; use `verify ledger` to check it)."""
    from ..evidence.ledger import Ledger

    led = Ledger.open(path)
    rows: list[dict[str, Any]] = [
        {"record": r.seq, "time": r.time.isoformat(), "kind": r.kind, "principal": r.principal, "key_id": r.key_id,
         "manifest_digest": r.body.get("manifest_digest"),
         "outputs": [o.get("path") for o in r.body.get("outputs", [])]} for r in led.records()]
    if as_json:
        echo(json.dumps({"origin": led.origin, "records": rows}, indent=1))
        return
    echo(f"ledger {path} (origin {led.origin})")
    for row in rows:
        echo(f"  {row['record']:>5}  {row['time']}  {row['kind']:<15} {row['principal']:<20} "
             f"{', '.join(str(o) for o in row['outputs'])}")


@ledger_app.command("checkpoint", epilog="Example: lumina-audit ledger checkpoint work/ledger > checkpoint.txt")
def ledger_checkpoint(path: Annotated[Path, typer.Argument(help="Ledger directory.")]) -> None:
    """Print the latest signed checkpoint (C2SP signed note); keep copies elsewhere to catch truncation."""
    from ..evidence.ledger import Ledger, LedgerError

    latest = Ledger.open(path).latest_checkpoint()
    if latest is None:
        raise LedgerError(f"{path}: the ledger has no checkpoint yet")
    sys.stdout.write(latest)


@ledger_app.command("prove", epilog="Example: lumina-audit ledger prove 3 --ledger work/ledger > proof-3.json")
def ledger_prove(
    record: Annotated[int, typer.Argument(help="Record number (from 0).")],
    ledger: Annotated[Path, typer.Option(help="Ledger directory.")] = Path("ledger"),
) -> None:
    """Print an inclusion proof of a record against the latest checkpoint (JSON, verifiable offline)."""
    from ..evidence.ledger import prove

    echo(json.dumps(prove(ledger, record), indent=1))


@ledger_app.command("repair", epilog="Example: lumina-audit ledger repair work/ledger --trust trust --key keys/op.key")
def ledger_repair(
    path: Annotated[Path, typer.Argument(help="Ledger directory.")],
    key: Annotated[Path | None, typer.Option("--key", help="Also checkpoint complete records that no "
                                             "checkpoint covers, signed with this key.")] = None,
    trust: Annotated[Path | None, typer.Option("--trust", help="Trust file (needed with --key).")] = None,
    passphrase_env: PassEnvOpt = None,
) -> None:
    """Remove a torn tail left by a crashed writer; never removes a complete record or checkpoint."""
    from ..evidence.keys import key_id
    from ..evidence.ledger import NAMESPACE, repair

    signer, principal = None, None
    if key is not None:
        if trust is None:
            raise ConfigError("--key needs --trust (to find the key's principal)")
        signer = private_key(key, passphrase_env)
        principal = trust_store(trust).authorise(key_id(signer.public_key()), NAMESPACE, datetime.now(UTC)).principal
    report = repair(path, signer_key=signer, principal=principal)
    echo(f"repaired {path}: removed {report.records_bytes_removed} torn byte(s) of records and "
         f"{report.checkpoints_bytes_removed} of checkpoints; {report.records} record(s), "
         f"{report.checkpoints} checkpoint(s)" + (" ; new checkpoint written" if report.checkpoint_added else ""))
