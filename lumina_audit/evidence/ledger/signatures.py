"""Who signed a record or a checkpoint, checked against the trust file.

A record is signed by its own signer over :meth:`~.format.Record.signed_bytes`; a checkpoint is a
C2SP signed note by a ledger key. Both keys must be trusted for :data:`~.format.LEDGER_NAMESPACE` at the
time that matters (the record's own time; the time of the last record a checkpoint covers).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from cryptography.exceptions import InvalidSignature

from .. import note
from ..trust import TrustError, TrustStore
from .format import LEDGER_NAMESPACE, LedgerError, Record, checkpoint_body

__all__ = ["check_record_signature", "open_checkpoint"]


def check_record_signature(rec: Record, trust: TrustStore) -> None:
    """The record's key is trusted at its time under its principal, and its signature verifies (else LedgerError)."""
    try:
        entry = trust.authorise(rec.key_id, LEDGER_NAMESPACE, rec.time)
    except TrustError as exc:
        raise LedgerError(exc.message) from None
    if entry.principal != rec.principal:
        raise LedgerError(f"principal {rec.principal!r} is not the trust-file principal {entry.principal!r}")
    try:
        entry.public_key.verify(rec.signature, rec.signed_bytes())
    except InvalidSignature:
        raise LedgerError(f"signature by {rec.principal} ({rec.key_id[:16]}...) does not verify") from None


def open_checkpoint(text: str, trust: TrustStore, at_for: Callable[[int], datetime]) -> tuple[note.Checkpoint, str]:
    """Steps: (1) parse; (2) a signature by a ledger key verifies; (3) that key is trusted when the
    last covered record was written. Returns the checkpoint and the key id that signed it."""
    cp = checkpoint_body(text)
    refused: list[str] = []
    for entry in trust.keys_for(LEDGER_NAMESPACE):
        try:
            note.open_note(text, {entry.principal: entry.public_key})
        except note.NoteError as exc:
            if exc.message.startswith("note carries no signature"):
                continue
            raise LedgerError(exc.message) from None
        try:
            trust.authorise(entry.key_id, LEDGER_NAMESPACE, at_for(cp.size))
        except TrustError as exc:
            refused.append(exc.message)
            continue
        return cp, entry.key_id
    raise LedgerError("; ".join(refused) or f"no signature by a key trusted for {LEDGER_NAMESPACE}")
