"""Verify evidence offline: ``ledger verify``, ``proof verify``, ``certificate verify``.

The three commands are registered on their groups by :mod:`.main`; the hidden group :data:`verify_app`
keeps their spellings of before (:data:`._grammar.DEPRECATED`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import ConfigError
from ._common import (
    EXIT_INVALID,
    EXIT_UNCHECKED,
    EXIT_VALID,
    JsonOpt,
    LedgerOpt,
    TrustOpt,
    echo,
    trust_store,
)
from ._grammar import alias_of

__all__ = ["CERTIFICATE_VERIFY_EPILOG", "LEDGER_VERIFY_EPILOG", "certificate_verify", "ledger_verify", "proof_app",
           "proof_verify", "verify_app"]

proof_app = typer.Typer(no_args_is_help=True, help="Verify inclusion proofs offline.")

verify_app = typer.Typer(no_args_is_help=True, help="Deprecated: now 'ledger verify', 'proof verify' and "
                         "'certificate verify'.")

#: The examples of ``ledger verify`` and ``certificate verify`` (registered by :mod:`.main`).
LEDGER_VERIFY_EPILOG = ("Example: lumina-audit ledger verify --ledger work/ledger --trust trust "
                        "--checkpoint saved-checkpoint.txt")
CERTIFICATE_VERIFY_EPILOG = ("Example: lumina-audit certificate verify out/q.pdf --roots pki/root.pem --trust trust "
                             "--ledger ledger --rerender")
PROOF_VERIFY_EPILOG = "Example: lumina-audit proof verify proof-3.json --trust trust"


def _report_json(report: Any) -> dict[str, Any]:
    return {"path": str(report.path), "status": report.status, "bottom_line": report.bottom_line,
            "records": report.records, "checkpoints": report.checkpoints,
            "findings": [{"record": f.seq, "step": f.step, "message": f.message, "severity": f.severity}
                         for f in report.findings]}


CheckpointOpt = Annotated[Path | None, typer.Option(help="A checkpoint kept elsewhere (catches truncation and "
                                                   "rewrites).")]
OutputsOpt = Annotated[bool, typer.Option(help="Check that recorded outputs still have their hashes.")]


def ledger_verify(
    ledger: LedgerOpt,
    trust: TrustOpt = Path("trust"),
    checkpoint: CheckpointOpt = None,
    outputs: OutputsOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Verify a ledger: chain, signatures, Merkle roots, checkpoint consistency, outputs on disk.

    Exit 0 valid, 1 invalid, 3 could not check.
    """
    from ..evidence.ledger import verify

    external = checkpoint.read_text(encoding="utf-8") if checkpoint is not None else None
    report = verify(ledger, trust_store(trust), check_outputs=outputs, external_checkpoint=external)
    if as_json:
        echo(json.dumps(_report_json(report), indent=1))
    else:
        echo(f"{report.status.upper()}: {ledger}: {report.records} record(s), {report.checkpoints} checkpoint(s)")
        for f in report.findings:
            where = f"record {f.seq}" if f.seq is not None else "ledger"
            echo(f"  {where}: [{f.step}] {f.message}")
    raise typer.Exit({"valid": EXIT_VALID, "invalid": EXIT_INVALID}.get(report.status, EXIT_UNCHECKED))


@verify_app.command("ledger", hidden=True, cls=alias_of("verify ledger"), epilog=LEDGER_VERIFY_EPILOG)
def verify_ledger(
    path: Annotated[Path, typer.Argument(help="Ledger directory.")] = Path("ledger"),
    trust: TrustOpt = Path("trust"),
    checkpoint: CheckpointOpt = None,
    outputs: OutputsOpt = True,
    as_json: JsonOpt = False,
) -> None:
    """Deprecated: now 'ledger verify', which names the ledger with --ledger DIR."""
    ledger_verify(path, trust, checkpoint, outputs, as_json)


@proof_app.command("verify", epilog=PROOF_VERIFY_EPILOG)
@verify_app.command("proof", hidden=True, cls=alias_of("verify proof"), epilog=PROOF_VERIFY_EPILOG)
def proof_verify(
    proof: Annotated[Path, typer.Argument(help="Inclusion proof JSON from `ledger prove`.")],
    trust: TrustOpt,
    as_json: JsonOpt = False,
) -> None:
    """Verify an inclusion proof offline: checkpoint signature, leaf, Merkle path (exit 0/1)."""
    from ..evidence.ledger import verify_proof

    try:
        doc = json.loads(proof.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{proof}: cannot read proof ({exc})") from None
    report = verify_proof(doc, trust_store(trust))
    if as_json:
        echo(json.dumps({"valid": report.bottom_line, "origin": report.origin, "record": report.seq,
                         "kind": report.kind, "tree_size": report.tree_size, "root": report.root,
                         "record_signer": report.record_signer,
                         "checkpoint_key_id": report.checkpoint_key_id}, indent=1))
    else:
        echo(f"valid: record {report.seq} ({report.kind}, signed by {report.record_signer}) is in ledger "
             f"{report.origin} of size {report.tree_size}, checkpoint key {report.checkpoint_key_id[:16]}...")


@verify_app.command("certificate", hidden=True, cls=alias_of("verify certificate"), epilog=CERTIFICATE_VERIFY_EPILOG)
def certificate_verify(
    pdf: Annotated[Path, typer.Argument(help="Signed certificate (PDF).")],
    roots: Annotated[list[Path], typer.Option(help="Trusted root certificates (PEM); repeatable.")],
    trust: TrustOpt,
    ledger: Annotated[Path | None, typer.Option(help="Also check the certificate's checkpoint against this "
                                                "ledger.")] = None,
    rerender: Annotated[bool, typer.Option(help="Also check that a fresh rendering equals the signed "
                                           "revision.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Verify a certificate offline, step by step (exit 0 valid, 1 invalid).

    Prints what :func:`lumina_audit.certificates.verify.verify_certificate` checked (steps 1-4,
    5 with --ledger, 6 with --rerender); a failed step ends the command with its message.
    """
    from ..certificates.verify import verify_certificate

    report = verify_certificate(pdf.read_bytes(), trust_roots_pem=[p.read_bytes() for p in roots],
                                ledger_trust=trust_store(trust), ledger=ledger, rerender=rerender)
    stamp = report.timestamp.isoformat() if report.timestamp is not None else None
    doc = {"valid": True, "signer": report.signer_subject, "signer_fingerprint": report.signer_fingerprint,
           "timestamp": stamp, "timestamp_trusted": report.timestamp_trusted, "pdf_sha256": report.pdf_sha256,
           "report_sha256": report.report_sha256, "ledger_origin": report.ledger_origin,
           "ledger_record": report.ledger_record, "checked_against_ledger": report.checked_against_ledger is not None,
           "certificate_record": report.certificate_record, "rerendered": report.rerendered}
    if as_json:
        echo(json.dumps(doc, indent=1))
    else:
        echo(f"valid: {pdf}")
        echo(f"  1-2 signed by {report.signer_subject} (whole file, /Contents as the signer wrote it, "
             f"trusted root; certificate SHA-256 {report.signer_fingerprint[:16]}...)")
        if stamp is not None:
            trusted = "a trusted" if report.timestamp_trusted else "an UNTRUSTED (not chained to --roots)"
            echo(f"      RFC 3161 timestamp {stamp} from {trusted} timestamp authority")
        else:
            echo("      no timestamp (PAdES B-B): the signing time is the signer's claim")
        echo(f"  3   attached report {report.report_sha256[:16]}... is an output of ledger record "
             f"{report.ledger_record}")
        echo(f"  4   that record is in ledger {report.ledger_origin} (size {report.tree_size}, signed checkpoint)")
        if report.checked_against_ledger is not None:
            echo(f"  5   the checkpoint is consistent with {report.checked_against_ledger}, and its certificate "
                 f"record {report.certificate_record} names this file (SHA-256 {report.pdf_sha256[:16]}...): "
                 "the file is the one issued")
        if report.rerendered:
            echo("  6   a fresh rendering of the report equals the signed revision")
