"""``lumina-audit ledger``: inspect, prove and repair a ledger (``ledger verify`` is in :mod:`.verify`)."""

from __future__ import annotations

import base64
import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ConfigError
from ._common import (
    JsonOpt,
    LedgerOpt,
    PassEnvOpt,
    echo,
    private_key,
    trust_store,
)
from ._grammar import ledger_named_by_option

__all__ = ["ledger_app"]

ledger_app = typer.Typer(no_args_is_help=True, help="Inspect, prove, repair and verify a ledger.")


@ledger_app.command("show", cls=ledger_named_by_option("ledger show DIR"),
                    epilog="Example: lumina-audit ledger show --ledger work/ledger --json")
def ledger_show(
    ledger: LedgerOpt,
    as_json: JsonOpt = False,
) -> None:
    """List the records of a ledger (inspection; use `ledger verify` to check it)."""
    from ..evidence.ledger import Ledger

    led = Ledger.open(ledger)
    rows: list[dict[str, Any]] = [
        {"record": r.seq, "time": r.time.isoformat(), "kind": r.kind, "principal": r.principal, "key_id": r.key_id,
         "manifest_digest": r.body.get("manifest_digest"),
         "outputs": [o.get("path") for o in r.body.get("outputs", [])]} for r in led.records()]
    if as_json:
        echo(json.dumps({"origin": led.origin, "records": rows}, indent=1))
        return
    echo(f"ledger {ledger} (origin {led.origin})")
    for row in rows:
        echo(f"  {row['record']:>5}  {row['time']}  {row['kind']:<15} {row['principal']:<20} "
             f"{', '.join(str(o) for o in row['outputs'])}")


@ledger_app.command("checkpoint", cls=ledger_named_by_option("ledger checkpoint DIR"),
                    epilog="Example: lumina-audit ledger checkpoint --ledger work/ledger > checkpoint.txt")
def ledger_checkpoint(
    ledger: LedgerOpt,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON for machines: the checkpoint's origin, "
                                          "tree size and root (as written, not verified) and its text.")] = False,
) -> None:
    """Print the latest signed checkpoint (C2SP signed note); keep copies elsewhere to catch truncation."""
    from ..evidence.ledger import Ledger, LedgerError
    from ..evidence.note import parse_checkpoint

    latest = Ledger.open(ledger).latest_checkpoint()
    if latest is None:
        raise LedgerError(f"{ledger}: the ledger has no checkpoint yet")
    if as_json:
        parsed = parse_checkpoint(latest[:latest.rfind("\n\n") + 1])
        echo(json.dumps({"ledger": str(ledger), "origin": parsed.origin, "tree_size": parsed.size,
                         "root": base64.b64encode(parsed.root_hash).decode("ascii"), "checkpoint": latest}, indent=1))
        return
    sys.stdout.write(latest)


@ledger_app.command("prove", cls=ledger_named_by_option("ledger prove RECORD", default="ledger"),
                    epilog="Example: lumina-audit ledger prove 3 --ledger work/ledger > proof-3.json")
def ledger_prove(
    record: Annotated[int, typer.Argument(help="Record number (from 0).")],
    ledger: LedgerOpt,
    as_json: Annotated[bool, typer.Option("--json", help="The proof is JSON with or without it.")] = False,
) -> None:
    """Print an inclusion proof of a record against the latest checkpoint (JSON, verifiable offline)."""
    from ..evidence.ledger import prove

    del as_json  # accepted as on every command that prints a result: the proof is JSON either way
    echo(json.dumps(prove(ledger, record), indent=1))


@ledger_app.command("repair", cls=ledger_named_by_option("ledger repair DIR"),
                    epilog="Example: lumina-audit ledger repair --ledger work/ledger --trust trust --key keys/op.key")
def ledger_repair(
    ledger: LedgerOpt,
    key: Annotated[Path | None, typer.Option("--key", help="Also checkpoint complete records that no "
                                             "checkpoint covers, signed with this key.")] = None,
    trust: Annotated[Path | None, typer.Option("--trust", help="Trust file (needed with --key).")] = None,
    passphrase_env: PassEnvOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove a torn tail left by a crashed writer; never removes a complete record or checkpoint."""
    from ..evidence.keys import key_id
    from ..evidence.ledger import LEDGER_NAMESPACE, repair

    signer, principal = None, None
    if key is not None:
        if trust is None:
            raise ConfigError("--key needs --trust (to find the key's principal)")
        signer = private_key(key, passphrase_env)
        principal = trust_store(trust).authorise(key_id(signer.public_key()), LEDGER_NAMESPACE,
                                                 datetime.now(UTC)).principal
    report = repair(ledger, signer_key=signer, principal=principal)
    if as_json:
        echo(json.dumps({"ledger": str(ledger), "records_bytes_removed": report.records_bytes_removed,
                         "checkpoints_bytes_removed": report.checkpoints_bytes_removed,
                         "checkpoint_added": report.checkpoint_added, "records": report.records,
                         "checkpoints": report.checkpoints, "changed": report.changed}, indent=1))
        return
    echo(f"repaired {ledger}: removed {report.records_bytes_removed} torn byte(s) of records and "
         f"{report.checkpoints_bytes_removed} of checkpoints; {report.records} record(s), "
         f"{report.checkpoints} checkpoint(s)" + (" ; new checkpoint written" if report.checkpoint_added else ""))
