"""Inclusion proofs of one record, made from a ledger and checked offline.

:func:`prove` gives a JSON inclusion proof of a record against the latest checkpoint;
:func:`verify_proof` checks it offline (record signature and checkpoint key trusted at the
record's time, RFC 9162 inclusion); revocations recorded in the ledger are not visible there.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import merkle
from ..trust import TrustStore
from .format import HEX64, LedgerError, checkpoint_body, decode_record
from .signatures import check_record_signature, open_checkpoint
from .writer import Ledger

__all__ = ["PROOF_FORMAT", "ProofReport", "prove", "verify_proof"]

#: The ``format`` of an inclusion proof document (version 1).
PROOF_FORMAT = "lumina-inclusion-proof"


@dataclass(frozen=True)
class ProofReport:
    """An inclusion proof that verified (failures raise, so :attr:`bottom_line` is always true)."""

    origin: str
    seq: int
    tree_size: int
    root: str
    record: bytes
    kind: str
    record_signer: str
    checkpoint_key_id: str

    @property
    def bottom_line(self) -> bool:
        return True


def prove(path: Path, seq: int) -> dict[str, Any]:
    """An offline inclusion proof of record ``seq`` against the latest checkpoint."""
    ledger = Ledger.open(Path(path))
    records, checkpoints = ledger.contents()
    if not checkpoints:
        raise LedgerError(f"{path}: the ledger has no checkpoint yet")
    cp = checkpoint_body(checkpoints[-1])
    if not 0 <= seq < cp.size:
        raise LedgerError(f"record {seq} is not covered by the latest checkpoint (size {cp.size})")
    proof = merkle.inclusion_proof([r.leaf_hash for r in records], seq, cp.size)
    return {"format": PROOF_FORMAT, "version": 1, "origin": ledger.origin, "record": records[seq].payload.decode(),
            "leaf_index": seq, "tree_size": cp.size, "proof": [p.hex() for p in proof],
            "checkpoint": checkpoints[-1]}


def verify_proof(doc: dict[str, Any], trust: TrustStore, *, expected_record: bytes | None = None) -> ProofReport:
    """Verify an inclusion proof offline, in numbered steps that raise :class:`LedgerError`.

    Key revocations are not visible offline: only the trust file's windows apply.
    """
    def fail(step: int, message: str) -> LedgerError:
        return LedgerError(f"proof step {step}: {message}")

    # Step 1: the document's shape.
    fields = {"format": str, "version": int, "origin": str, "record": str, "leaf_index": int, "tree_size": int,
              "proof": list, "checkpoint": str}
    if not isinstance(doc, dict) or any(
            not isinstance(doc.get(k), t) or isinstance(doc.get(k), bool) for k, t in fields.items()):
        raise fail(1, "not an inclusion proof document (" + ", ".join(fields) + ")")
    if doc["format"] != PROOF_FORMAT or doc["version"] != 1:
        raise fail(1, f"unknown proof format/version {doc['format']!r}/{doc['version']!r}")
    if not all(isinstance(p, str) and HEX64.fullmatch(p) for p in doc["proof"]):
        raise fail(1, "proof elements must be 64 lowercase hex digits")
    # Step 2: the record is a canonical ledger record at the claimed index.
    try:
        record = doc["record"].encode()
        rec = decode_record(record)
    except (LedgerError, UnicodeEncodeError) as exc:
        raise fail(2, f"record {exc}") from None
    if rec.seq != doc["leaf_index"]:
        raise fail(2, f"record has seq {rec.seq}, the proof claims leaf index {doc['leaf_index']}")
    # Step 3: the record's own signature, by a key trusted at the record's time.
    try:
        check_record_signature(rec, trust)
    except LedgerError as exc:
        raise fail(3, f"record {rec.seq}: {exc.message}") from None
    # Step 4: the checkpoint, signed by a key trusted for the ledger (at the record's time at least).
    try:
        cp, cp_key = open_checkpoint(doc["checkpoint"], trust, lambda _size: rec.time)
    except LedgerError as exc:
        raise fail(4, f"checkpoint: {exc.message}") from None
    if cp.origin != doc["origin"] or cp.size != doc["tree_size"]:
        raise fail(4, f"checkpoint is for {cp.origin!r} size {cp.size}, the proof claims {doc['origin']!r} "
                      f"size {doc['tree_size']}")
    # Step 5: the Merkle inclusion proof against the checkpoint's root.
    try:
        merkle.verify_inclusion(rec.leaf_hash, doc["leaf_index"], cp.size,
                                [bytes.fromhex(p) for p in doc["proof"]], cp.root_hash)
    except merkle.ProofError as exc:
        raise fail(5, exc.message) from None
    # Step 6: the record is the one the caller expects.
    if expected_record is not None and bytes(expected_record) != record:
        raise fail(6, "the proven record differs from the expected record")
    return ProofReport(cp.origin, rec.seq, cp.size, cp.root_hash.hex(), record, rec.kind, rec.principal, cp_key)
